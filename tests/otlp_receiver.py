"""A minimal OTLP/HTTP trace receiver for tests: what a collector would get, kept in
memory. It takes both encodings: protobuf (the Python exporter) and JSON, with hex ids
as OTLP specifies (Triton's C++ exporter)."""

import gzip
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict


class OtlpReceiver:
    def __init__(self):
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                if self.headers.get("content-type", "").startswith("application/json"):
                    receiver._keep_json(json.loads(body))
                else:
                    receiver._keep(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _keep(self, request) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
                    spans.append(ReceivedSpan(service, span.name, span.trace_id.hex(), span.span_id.hex(),
                                              span.parent_span_id.hex(), attributes))
        with self._lock:
            self.spans.extend(spans)

    def _keep_json(self, request: dict) -> None:
        spans = []
        for resource_spans in request.get("resourceSpans", []):
            service = next((a["value"].get("stringValue", "") for a in resource_spans.get("resource", {}).get(
                "attributes", []) if a["key"] == "service.name"), "")
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    attributes = {a["key"]: next(iter(a["value"].values()), "") for a in span.get("attributes", [])}
                    spans.append(ReceivedSpan(service, span["name"], span["traceId"].lower(), span["spanId"].lower(),
                                              span.get("parentSpanId", "").lower(), attributes))
        with self._lock:
            self.spans.extend(spans)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def __enter__(self) -> "OtlpReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
