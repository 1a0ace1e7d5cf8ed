"""The HTTP door observed like the gRPC ones: each request takes its x-request-id (or
mints one), which every log line and every gRPC call made for it carry, and which the
response returns; and it leaves one access-log line and the HTTP metrics, by route
template (so /v1/images/{dataset}/{key} is one series, not one per image)."""

import logging
import time

from services.common import logs, metrics

logger = logging.getLogger(__name__)
_QUIET_PATHS = ("/healthz", "/readyz")
_REQUEST_ID = logs.REQUEST_ID_HEADER.encode()


class RequestObservability:
    """Pure ASGI middleware, outermost: requests refused before any route (401, 413) count too."""

    def __init__(self, app, service: str):
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        rid = headers.get(_REQUEST_ID, b"").decode("latin-1")[:128] or logs.new_request_id()
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (_REQUEST_ID, rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or ("static" if scope["path"].startswith(
                ("/app/", "/static/")) else "unmatched")
            metrics.HTTP_REQUESTS.labels(self.service, scope["method"], route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(self.service, scope["method"], route).observe(elapsed)
            if scope["path"] not in _QUIET_PATHS:
                logs.log(logger, logging.INFO, "http", method=scope["method"], route=route, path=scope["path"][:300],
                         status=status, ms=round(elapsed * 1000, 2))
            logs.request_id.reset(token)
