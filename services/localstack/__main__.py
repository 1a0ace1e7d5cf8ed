"""`python -m services.localstack up|down|status|demo`: the local stack (see `make up`, `make demo`)."""

import argparse
import sys

from services.localstack.launcher import Stack, StackError


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.localstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "demo"])
    args = parser.parse_args()
    stack = Stack()
    if args.command == "up":
        try:
            took = stack.up()
        except StackError as error:
            print(f"\nthe stack did not come up: {error}\n(`make down` stops what did start)", file=sys.stderr)
            return 1
        print(f"\nvizsearch is up in {took:.1f}s (run directory {stack.run}):")
        for status in stack.status():
            for name, endpoint in status.endpoints.items():
                print(f"  {name:18} {endpoint}")
        if stack.settings.api_keys_file is None:
            print("\nauthentication is OFF: the gateway listens on 127.0.0.1 only "
                  "(set VIZSEARCH_API_KEYS_FILE to require API keys)")
        else:
            print(f"\nauthentication is ON: API keys from {stack.settings.api_keys_file}")
        return 0
    if args.command == "down":
        stack.down()
        return 0
    if args.command == "demo":
        from services.localstack import demo

        return demo.run(stack)
    print(f"{'component':10} {'pid':>8}  {'state':10} endpoints")
    for status in stack.status():
        print(f"{status.name:10} {status.pid or '-':>8}  {status.state:10} {', '.join(status.endpoints.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
