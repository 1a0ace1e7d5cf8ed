"""An HTTP (ASGI) app served beside a gRPC server in the same event loop.

uvicorn normally owns SIGTERM and SIGINT; here grpc_server.serve does, and
stops this server from its on_stop hook, so shutdown is one orderly sequence.
"""

import asyncio
import contextlib

import uvicorn


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # the gRPC runner handles signals
        yield


class EmbeddedHttpServer:
    def __init__(self, app, host: str, port: int, forwarded_allow_ips: str | None = None):
        """forwarded_allow_ips: proxies (addresses, or "*") whose X-Forwarded-Proto and -For are
        believed, so URLs the app builds say https behind a TLS ingress; None: nobody's."""
        # httptools parses HTTP in C: about 0.2 ms less per request than h11 (pure Python) here.
        config = uvicorn.Config(app, host=host, port=port, http="httptools", log_config=None, access_log=False,
                                lifespan="off", proxy_headers=forwarded_allow_ips is not None,
                                forwarded_allow_ips=forwarded_allow_ips)
        self._server = _Server(config)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start (say, the port is taken)
                raise SystemExit(f"HTTP server on port {self._server.config.port} did not start")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            await self._task
