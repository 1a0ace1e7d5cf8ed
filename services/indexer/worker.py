"""Runs a Celery worker for the ingestion tasks: `python -m services.indexer.worker`.

Threads, not forked processes: a task mostly waits on storage, the embedder and
Milvus, and gRPC channels do not survive a fork.
"""

import os
import socket

from services.common import logs, metrics
from services.indexer.tasks import QUEUE, app, settings


def main() -> None:
    logs.configure("worker", settings.log_level, settings.log_format)
    metrics.serve_metrics(settings.host, settings.metrics_port)
    app.worker_main([
        "worker", "--pool", "threads", "--concurrency", str(settings.worker_concurrency),
        "--queues", QUEUE, "--loglevel", settings.log_level, "--without-gossip", "--without-mingle",
        "--hostname", f"worker-{os.getpid()}@{socket.gethostname()}",
    ])


if __name__ == "__main__":
    main()
