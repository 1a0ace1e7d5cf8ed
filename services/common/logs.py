"""Structured logging with a request id that follows a call across the gRPC hops.

The id arrives in (or is minted for) the `x-request-id` metadata of each call,
is kept in a context variable for the call's duration, stamped on every log line,
and sent on by the client interceptor to the next service.
"""

import contextvars
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable

REQUEST_ID_HEADER = "x-request-id"
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# Set by services.common.tracing when traces are on: the current trace's id, stamped on log lines.
trace_id: Callable[[], str] | None = None


def new_request_id() -> str:
    return uuid.uuid4().hex


class _JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if rid := request_id.get():
            line["request_id"] = rid
        if trace_id and (tid := trace_id()):
            line["trace_id"] = tid
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        rid = request_id.get()
        tid = trace_id() if trace_id else ""
        return " ".join(filter(None, [super().format(record), f"request_id={rid}" if rid else "",
                                      f"trace_id={tid}" if tid else "", fields]))


def configure(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter(service))
    else:
        handler.setFormatter(_TextFormatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def log(logger: logging.Logger, level: int, msg: str, **fields) -> None:
    """Logs msg with structured fields (JSON keys, or key=value in text format)."""
    logger.log(level, msg, extra={"fields": fields})
