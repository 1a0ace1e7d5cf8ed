"""Hostile and malformed input at the edges, on the real test stack: each gets a clear
4xx naming the problem, loses nothing, and costs the server little (a body without a
key is refused before it is read; a key no object can have never reaches storage)."""

import json
import socket
import time
from copy import deepcopy

import grpc
import httpx
import pytest

from services.common.genproto.vizsearch.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc
from tests.conftest import TEST_KEYS, TEST_WEBHOOK_TOKEN
from tests.test_events import load

pytestmark = pytest.mark.stack
READER = {"Authorization": f"Bearer {TEST_KEYS['reader'][0]}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def api(stack):
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.settings.gateway_http_port}", timeout=60) as client:
        yield client


def refused(reply: httpx.Response, status: int, *words: str) -> str:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    detail = reply.json()["detail"]
    assert all(w in detail for w in words), detail
    return detail


@pytest.mark.parametrize("body, where", [
    ('{"query": {"text": "a \\ud800 taxi"}}', "query.text"),
    ('{"query": {"text": "taxi"}, "datasets": ["\\ud800"]}', "datasets"),
    ('{"query": {"text": "taxi"}, "labels": ["bus\\udfff"], "level": "objects"}', "labels"),
    ('{"query": {"image": {"dataset": "ds", "key": "a\\ud800.jpg"}}}', "query.image.key"),
])
def test_lone_surrogates_are_refused_naming_the_field(api, body, where):
    refused(api.post("/v1/search", content=body, headers=READER), 422, where, "not valid Unicode")


def test_lone_surrogates_in_embedding_texts_are_refused(api):
    refused(api.post("/v1/embeddings", content='{"texts": ["ok", "\\udc80"]}', headers=READER), 422, "texts",
            "not valid Unicode")


@pytest.mark.parametrize("path, words", [
    ("/v1/images/ds/a/%2E%2E/b.jpg", "'.' and '..' segments"),
    ("/v1/images/ds/a%00.jpg", "control character"),
    ("/v1/images/ds/" + "a" * 1100 + ".jpg", "over S3's 1024"),
    ("/v1/images/ds//etc/passwd", "relative path"),
    ("/v1/images/..%2Fetc/passwd", "dataset name"),
])
def test_image_keys_that_cannot_exist_are_refused_at_the_edge(api, path, words):
    refused(api.get(path, headers=READER), 400, words)


def test_image_keys_that_cannot_exist_are_refused_over_grpc_too(stack):
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.gateway_grpc_port}") as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        request = gateway_pb2.GetImageRequest(ref=common_pb2.ObjectRef(dataset="ds", key="a/../b.jpg"))
        with pytest.raises(grpc.RpcError) as error:
            list(stub.GetImage(request, metadata=[("authorization", READER["Authorization"])], timeout=10))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'..'" in error.value.details()


def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, dict]:
    """Sends a request as given (headers promising a body that may never come) and reads the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head.encode() + b"\r\n" + body)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < _length(reply):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    return status, json.loads(reply.split(b"\r\n\r\n", 1)[1] or b"{}")


def _length(reply: bytes) -> int:
    for line in reply.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def test_a_body_without_a_key_is_refused_before_it_is_read(stack):
    # Headers promise 50 MB that are never sent: an answer proves none of it was awaited.
    head = ("POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 50000000\r\n")
    status, problem = raw_request(stack.settings.gateway_http_port, head)
    assert status == 401 and "missing API key" in problem["detail"]


def test_a_body_over_the_limit_is_refused_before_it_is_read(stack):
    head = ("POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: {READER['Authorization']}\r\nContent-Length: 50000000\r\n")
    status, problem = raw_request(stack.settings.gateway_http_port, head)
    assert status == 413 and "over the 29360128-byte limit" in problem["detail"]


def test_a_chunked_body_over_the_limit_is_cut_off(api):
    def body():
        yield b'{"query": {"text": "'
        for _ in range(30):
            yield b"a" * 1024 * 1024
        yield b'"}}'

    refused(api.post("/v1/search", content=body(), headers=READER), 413, "over the 29360128-byte limit")


# -- the indexer's webhook ----------------------------------------------------
def webhook(stack, document) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{stack.settings.webhook_port}/v1/minio/events", json=document,
                      headers={"Authorization": f"Bearer {TEST_WEBHOOK_TOKEN}"}, timeout=30)


def event(key: str, name="s3:ObjectCreated:Put") -> dict:
    document = deepcopy(load("put.json"))
    document["Records"][0]["s3"]["object"]["key"], document["Records"][0]["eventName"] = key, name
    return document


@pytest.mark.parametrize("document, words", [
    (event("ds%2Fa.jpg", name=42), "eventName is int, not a string"),
    (event(["ds/a.jpg"]), "s3.object.key is list, not a string"),
    (event("ds%2Fa%00.jpg"), "control character"),
    (event("ds%2F%ED%A0%80.jpg"), "not URL-encoded UTF-8"),
])
def test_malformed_events_are_refused_naming_the_field(stack, document, words):
    reply = webhook(stack, document)
    assert reply.status_code == 422 and words in reply.json()["detail"], reply.text


def test_a_lone_surrogate_in_an_event_is_refused(stack):
    body = json.dumps(event("ds%2Fa.jpg")).replace("ds%2Fa.jpg", "ds%2Fa\\ud800.jpg")
    reply = httpx.post(f"http://127.0.0.1:{stack.settings.webhook_port}/v1/minio/events", content=body,
                       headers={"Authorization": f"Bearer {TEST_WEBHOOK_TOKEN}", "Content-Type": "application/json"})
    assert reply.status_code == 422 and "not valid Unicode" in reply.json()["detail"]


def test_an_event_for_an_object_that_does_not_exist_creates_no_dataset(stack, api):
    reply = webhook(stack, event("phantom-ds%2Fnever-uploaded.jpg"))
    assert reply.status_code == 200 and reply.json() == {"jobs": []}
    names = [d["name"] for d in api.get("/v1/datasets", headers=READER).json()["datasets"]]
    assert "phantom-ds" not in names
    refused(api.get("/v1/datasets/phantom-ds", headers=READER), 404, "phantom-ds")


def test_a_grpc_request_with_a_string_that_is_not_utf8_is_invalid_not_internal(stack):
    # SearchRequest{query: QueryTerm{text: <a UTF-8-encoded lone surrogate>}}, built by hand:
    # no protobuf library will encode it.
    text = b"\xed\xa0\x80"
    term = b"\x0a" + bytes([len(text)]) + text
    request = b"\x0a" + bytes([len(term)]) + term
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.gateway_grpc_port}") as channel:
        search = channel.unary_unary("/vizsearch.v1.Gateway/Search", request_serializer=lambda raw: raw,
                                     response_deserializer=lambda raw: raw)
        with pytest.raises(grpc.RpcError) as error:
            search(request, metadata=[("authorization", READER["Authorization"])], timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid Search message" in error.value.details()


def test_a_revoked_key_stops_working_without_a_restart(stack, api):
    """The gateway reads its keys file again when it changes (in a pod, the mounted Secret)."""
    from services.gateway.auth import hash_key

    keys_file = stack.settings.api_keys_file
    original = keys_file.read_text()
    temporary = {"name": "temporary", "sha256": hash_key("temporary-secret"), "role": "read"}

    def status_with(key: str) -> int:
        return api.get("/v1/model", headers={"Authorization": f"Bearer {key}"}).status_code

    def eventually(condition, timeout_s=20):
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, "the keys file was not read again"
            time.sleep(0.5)

    try:
        keys_file.write_text(json.dumps(json.loads(original) + [temporary]))
        eventually(lambda: status_with("temporary-secret") == 200)
        keys_file.write_text(original)  # revoked
        eventually(lambda: status_with("temporary-secret") == 401)
        keys_file.write_text("{not json")  # a broken file is refused: the keys in force stay
        time.sleep(7)
        assert status_with(TEST_KEYS["admin"][0]) == 200
    finally:
        keys_file.write_text(original)


def test_the_http_door_serves_no_metrics(api):
    assert api.get("/metrics", headers=READER).status_code == 404


def test_the_indexer_reports_its_backlog_for_worker_autoscaling(stack):
    reply = httpx.get(f"http://127.0.0.1:{stack.settings.webhook_port}/v1/backlog", timeout=10).json()
    assert set(reply) == {"planned_units", "in_flight_units", "pending_units"}
    assert reply["pending_units"] == reply["planned_units"] + reply["in_flight_units"] >= 0


def test_one_request_id_follows_a_search_through_every_service(stack, api):
    """The HTTP door takes the caller's x-request-id, returns it, logs it, and passes it on:
    the query service and the embedder log the same id."""
    rid = f"trace-{time.time_ns()}"
    reply = api.post("/v1/search", json={"query": {"text": f"a bus, request {rid}"}},  # new text: embedded anew
                     headers={**READER, "x-request-id": rid})
    assert reply.status_code == 200 and reply.headers["x-request-id"] == rid
    deadline = time.monotonic() + 10
    for component in ("gateway", "query", "embedder"):
        while rid not in stack.log_file(component).read_text():
            assert time.monotonic() < deadline, f"{component} did not log {rid}"
            time.sleep(0.2)
    access = [json.loads(line) for line in stack.log_file("gateway").read_text().splitlines()
              if rid in line and '"msg": "http"' in line]
    assert access and access[0]["route"] == "/v1/search" and access[0]["status"] == 200
    minted = api.get("/v1/model", headers=READER).headers["x-request-id"]
    assert len(minted) == 32, "one is minted when the caller sends none"


def test_http_requests_are_counted_by_route(stack, api):
    api.get("/v1/images/nope/a.jpg", headers=READER)
    metrics = httpx.get(f"http://127.0.0.1:{stack.settings.gateway_metrics_port}/metrics").text
    assert 'vizsearch_http_requests_total{method="GET",route="/v1/images/{dataset_name}/{key:path}",' \
           'service="gateway",status="404"}' in metrics
