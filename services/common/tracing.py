"""OpenTelemetry traces across HTTP -> gRPC -> Celery -> Triton, off unless
VIZSEARCH_OTLP_ENDPOINT names an OTLP/HTTP collector.

Off (the default), nothing of OpenTelemetry is imported and no call pays for it: the
hooks below return no interceptors and leave apps as they are. On, every service
exports its spans (service.name `vizsearch-<service>`), the gRPC doors and channels,
the HTTP apps and the Celery tasks are instrumented, and the embedder passes the
context to Triton in `traceparent`, so Triton started with `--trace-config
mode=opentelemetry` adds its own spans to the same trace.
"""

import logging
from contextlib import contextmanager

from services.common import logs

logger = logging.getLogger(__name__)
# Probes and scrapes would drown the traces that matter.
_UNTRACED_URLS = "healthz,readyz,metrics"
_provider = None


def configure(service: str, endpoint: str, sample_ratio: float = 1.0) -> bool:
    """Starts exporting this process's spans to `endpoint` (OTLP/HTTP, say
    http://otel-collector:4318); does nothing when it is empty. Returns whether tracing is on."""
    global _provider
    if not endpoint:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as error:
        raise SystemExit(f"VIZSEARCH_OTLP_ENDPOINT is set but OpenTelemetry is not installed ({error}): "
                         "pip install 'vizsearch[server,tracing]'") from error
    _provider = TracerProvider(
        resource=Resource.create({"service.name": f"vizsearch-{service}", "service.namespace": "vizsearch"}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")))
    trace.set_tracer_provider(_provider)
    logs.trace_id = _current_trace_id
    logs.log(logger, logging.INFO, "tracing on", endpoint=endpoint, sample_ratio=sample_ratio)
    return True


def enabled() -> bool:
    return _provider is not None


def shutdown() -> None:
    """Sends the spans still buffered (called as the process stops)."""
    if _provider is not None:
        _provider.shutdown()


def _current_trace_id() -> str:
    from opentelemetry import trace
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def server_interceptors() -> list:
    if not enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor
    return [aio_server_interceptor()]


def client_interceptors() -> list:
    if not enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors
    return list(aio_client_interceptors())


def traced_blocking_channel(channel):
    """A blocking channel whose calls are traced (the instrumentation wraps it its own way)."""
    if not enabled():
        return channel
    from opentelemetry.instrumentation.grpc import client_interceptor, grpcext
    return grpcext.intercept_channel(channel, client_interceptor())


def instrument_app(app) -> None:
    """Traces a FastAPI app's requests (the gateway's API, the indexer's webhook)."""
    if enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        FastAPIInstrumentor.instrument_app(app, excluded_urls=_UNTRACED_URLS)


def instrument_celery() -> None:
    """Traces task sends and runs: a unit's spans join the trace of what dispatched it."""
    if enabled():
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        CeleryInstrumentor().instrument()


def context_headers() -> dict[str, str] | None:
    """The current trace context as headers (`traceparent`) for a call no interceptor sees
    (Triton's client), or to continue the trace later; None when tracing is off."""
    if not enabled():
        return None
    from opentelemetry import propagate
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


@contextmanager
def continued(headers: dict[str, str] | None):
    """Runs the block inside the trace `headers` name (a job's, kept when it was asked
    for: every unit of the job joins it, however long it waited to be sent)."""
    if not enabled() or not headers:
        yield
        return
    from opentelemetry import context, propagate
    token = context.attach(propagate.extract(headers))
    try:
        yield
    finally:
        context.detach(token)
