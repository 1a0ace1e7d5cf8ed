"""Prometheus metrics every service exports (gRPC, and HTTP where it speaks it), and the
/metrics endpoint."""

import prometheus_client

RPC_REQUESTS = prometheus_client.Counter(
    "vizsearch_grpc_requests_total", "gRPC calls handled, by method and status code.", ["service", "method", "code"]
)
RPC_LATENCY = prometheus_client.Histogram(
    "vizsearch_grpc_request_seconds",
    "Time to handle a gRPC call.",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RPC_IN_FLIGHT = prometheus_client.Gauge(
    "vizsearch_grpc_in_flight", "gRPC calls being handled now (the service's queue depth).", ["service"]
)

HTTP_REQUESTS = prometheus_client.Counter(
    "vizsearch_http_requests_total", "HTTP requests handled, by route and status.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = prometheus_client.Histogram(
    "vizsearch_http_request_seconds", "Time to answer an HTTP request (to the end of its body).",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def serve_metrics(host: str, port: int) -> None:
    """Starts the /metrics HTTP endpoint on a daemon thread (port 0: none)."""
    if port:
        prometheus_client.start_http_server(port, addr=host)
