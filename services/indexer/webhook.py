"""The indexer's HTTP endpoints: the one MinIO posts bucket notifications to, and the
backlog that worker autoscaling reads.

Configure MinIO with `notify_webhook` pointing at POST /v1/minio/events and
`auth_token` set to VIZSEARCH_WEBHOOK_TOKEN (MinIO sends it as a Bearer token).
"""

import asyncio
import hmac
import logging

import redis
import urllib3
from fastapi import FastAPI, Header, HTTPException, Request
from minio.error import S3Error
from pydantic import BaseModel

from services.common import tracing
from services.common.http_observability import RequestObservability
from services.indexer.events import BadEvent, changes_by_dataset
from services.indexer.indexer import Indexer
from services.indexer.state import Transient

logger = logging.getLogger(__name__)


class EventsAccepted(BaseModel):
    jobs: list[str]


class Backlog(BaseModel):
    planned_units: int
    in_flight_units: int
    pending_units: int  # both: the units a worker has still to run


def _token_matches(authorization: str | None, expected: str) -> bool:
    if not expected or not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    given = value if scheme.lower() == "bearer" and value else authorization
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def create_app(indexer: Indexer, token: str, bucket: str) -> FastAPI:
    app = FastAPI(title="vizsearch indexer webhook", docs_url=None, redoc_url=None)
    app.add_middleware(RequestObservability, service="indexer")
    tracing.instrument_app(app)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/backlog", response_model=Backlog)
    async def backlog() -> Backlog:
        """Units of work not finished: what worker autoscaling follows (KEDA's metrics-api
        scaler), since the broker's own queue is kept short on purpose."""
        work = indexer.state.work
        try:
            planned, in_flight = await asyncio.to_thread(lambda: (work.backlog(), len(work.in_flight())))
        except redis.RedisError as error:
            raise HTTPException(503, f"Redis: {error}") from error
        return Backlog(planned_units=planned, in_flight_units=in_flight, pending_units=planned + in_flight)

    @app.post("/v1/minio/events", response_model=EventsAccepted)
    async def minio_events(request: Request, authorization: str | None = Header(default=None)) -> EventsAccepted:
        if not _token_matches(authorization, token):
            raise HTTPException(401, "missing or wrong token: send Authorization: Bearer <VIZSEARCH_WEBHOOK_TOKEN>")
        try:
            document = await request.json()
        except ValueError as error:
            raise HTTPException(400, f"the body is not JSON: {error}") from error
        try:
            changes = changes_by_dataset(document, bucket)
        except BadEvent as error:
            raise HTTPException(422, str(error)) from error
        try:
            jobs = await asyncio.to_thread(indexer.apply_events, changes) if changes else []
        except (Transient, redis.RedisError, S3Error, urllib3.exceptions.HTTPError) as error:
            # MinIO retries a failed delivery; the reconciler finds what is still missed.
            raise HTTPException(503, f"a backend is unavailable: {error}") from error
        return EventsAccepted(jobs=jobs)

    return app
