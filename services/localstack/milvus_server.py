"""Starts the `milvus` wheel's embedded Milvus 2.3.5 standalone server in this process.

The wheel's own launcher forks the server and ignores SIGTERM; here the config is
written and the server exec'd in place, so the PID the stack records is Milvus
itself. Components bind 127.0.0.1 where Milvus's config allows it.
"""

import argparse
import os
import socket
from pathlib import Path

import milvus

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
    config.resolve()  # picks free ports for etcd and the internal components
    milvus._initialize_data_files(config.base_data_dir)
    binary = Path(config.base_data_dir) / "bin" / "milvus"
    env = dict(
        os.environ,
        DEPLOY_MODE="STANDALONE",
        METRICS_PORT=str(args.metrics_port),
        MILVUS_RUN_DIR=str(Path(config.base_data_dir) / "run"),
        LD_LIBRARY_PATH=f"{binary.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}",
    )
    os.chdir(config.base_data_dir)
    os.execve(binary, [str(binary), "run", "standalone"], env)


if __name__ == "__main__":
    main()
