"""Starts the `milvus` wheel's embedded Milvus 2.3.5 standalone server in this process.

The wheel's own launcher forks the server and ignores SIGTERM; here the config is
written and the server exec'd in place, so the PID the stack records is Milvus
itself. Components bind 127.0.0.1 where Milvus's config allows it.
"""

import argparse
import json
import os
import socket
from pathlib import Path

import milvus

# A killed server's sessions outlive it in etcd for this long, and a restarted one serves no
# Strong read until they expire (its time ticks wait on them): Milvus's 30 s would time out
# every first query after `make down` and `make up`.
SESSION_TTL_S = 10
COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")


class _Config(milvus.MilvusServerConfig):
    def try_bind_port(self, port):
        """The wheel's free-port check, with SO_REUSEADDR as the server's own listeners
        set it: without it, connections of a stopped server still in TIME_WAIT make
        a free port look taken for a minute."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            return sock
        except OSError:
            sock.close()
            return None


def _write_etcd_config(config: _Config) -> Path:
    """The embedded etcd's own config: its client port where Milvus's endpoints say, and a
    free peer port, where etcd's default would be 2380 for every server (so that two stacks,
    say `make up`'s and the tests', could not run side by side)."""
    client = f"http://127.0.0.1:{config.get('etcd_port')}"
    peer = f"http://127.0.0.1:{_free_port_after(config, config.get('etcd_port'))}"
    path = Path(config.base_data_dir) / "configs" / "etcd.yaml"
    path.write_text(f"name: default\nlisten-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
                    f"initial-cluster: default={peer}\nlisten-client-urls: {client}\n"
                    f"advertise-client-urls: {client}\nlog-outputs: [{json.dumps(config.get('etcd_log_path'))}]\n")
    return path


def _free_port_after(config: _Config, start: int) -> int:
    """The first free port after `start` that none of Milvus's components was given."""
    given = {value for key, (_, value) in config.configurable_items.items() if key.endswith("_port")}
    for port in range(start + 1, 65536):
        if port not in given and (sock := config.try_bind_port(port)):
            sock.close()
            return port
    raise SystemExit(f"no free port after {start} for the embedded etcd's peers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, default=19530)
    parser.add_argument("--metrics-port", type=int, default=9091)
    parser.add_argument("--time-tick-ms", type=int, default=200)
    args = parser.parse_args()

    config = _Config(data_dir=str(args.data), proxy_port=args.port)
    for component in COMPONENTS:
        config.set(f"{component}.ip", "127.0.0.1")
    config.set("proxy.timeTickInterval", args.time_tick_ms)
    config.set("common.session.ttl", SESSION_TTL_S)
    config.resolve()  # picks free ports for etcd and the internal components
    milvus._initialize_data_files(config.base_data_dir)
    binary = Path(config.base_data_dir) / "bin" / "milvus"
    env = dict(
        os.environ,
        ETCD_CONFIG_PATH=str(_write_etcd_config(config)),
        DEPLOY_MODE="STANDALONE",
        METRICS_PORT=str(args.metrics_port),
        MILVUS_RUN_DIR=str(Path(config.base_data_dir) / "run"),
        LD_LIBRARY_PATH=f"{binary.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}",
    )
    os.chdir(config.base_data_dir)
    os.execve(binary, [str(binary), "run", "standalone"], env)


if __name__ == "__main__":
    main()
