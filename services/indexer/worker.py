"""Runs a Celery worker for the ingestion tasks: `python -m services.indexer.worker`.

Threads, not forked processes: a task mostly waits on storage, the embedder and
Milvus, and gRPC channels do not survive a fork. Each task runs one unit of the
work ledger (services/indexer/unit_runner.py).
"""

import os
import socket

from celery import Celery

from services.common import logs, metrics, tracing
from services.indexer.celery_app import INDEX_TASK, QUEUE, SCAN_TASK, create_app
from services.indexer.config import IndexerSettings
from services.indexer.dispatcher import Dispatcher
from services.indexer.duplicates import DuplicateFinder
from services.indexer.ingest import Ingestor
from services.indexer.jobs import DUPLICATES, MAP, SUSPECTS
from services.indexer.maps import MapMaker
from services.indexer.state import IndexerState
from services.indexer.suspects import SuspectFinder
from services.indexer.unit_runner import LeaseKeeper, UnitRunner


def register_tasks(app: Celery, runner: UnitRunner) -> None:
    @app.task(name=SCAN_TASK)
    def scan(job_id: str, dataset: str, unit: str) -> None:
        runner.run(job_id, dataset, unit)

    @app.task(name=INDEX_TASK)
    def index(job_id: str, dataset: str, unit: str) -> None:
        runner.run(job_id, dataset, unit)


def main() -> None:
    settings = IndexerSettings()
    logs.configure("worker", settings.log_level, settings.log_format)
    tracing.configure("worker", settings.otlp_endpoint, settings.trace_sample_ratio)
    tracing.instrument_celery()
    metrics.serve_metrics(settings.host, settings.metrics_port)
    name = f"worker-{os.getpid()}@{socket.gethostname()}"
    state = IndexerState(settings)
    app = create_app(settings)
    keeper = LeaseKeeper(state.work, name, settings.worker_concurrency, settings.task_lease_s)
    ingestor = Ingestor(state)
    analyses = {DUPLICATES: DuplicateFinder(state), SUSPECTS: SuspectFinder(state), MAP: MapMaker(state)}
    register_tasks(app, UnitRunner(state, ingestor, analyses, Dispatcher(state, app), keeper))
    keeper.start()
    try:
        app.worker_main([
            "worker", "--pool", "threads", "--concurrency", str(settings.worker_concurrency),
            "--queues", QUEUE, "--loglevel", settings.log_level, "--without-gossip", "--without-mingle",
            "--hostname", name,
        ])
    finally:
        keeper.stop()
        ingestor.close()
        state.close()


if __name__ == "__main__":
    main()
