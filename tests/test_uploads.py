"""Uploads through the gateway (no storage credentials on the client): files are stored as
sent, hashed on the way, and sent again only when their bytes differ from what is stored,
whatever storage's ETag says."""

import hashlib

import httpx
import pytest

from services.common.config import StorageSettings
from services.common.storage import ObjectStore
from tests import imagegen
from tests.conftest import TEST_KEYS
from vizsearch.client import ApiError, Client

pytestmark = pytest.mark.stack
DATASET = "uploaded"


@pytest.fixture(scope="module")
def gateway(stack) -> str:
    return f"http://127.0.0.1:{stack.settings.gateway_http_port}"


@pytest.fixture(scope="module")
def store(stack) -> ObjectStore:
    return ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{stack.settings.storage_port}"))


def test_a_folder_is_uploaded_once_and_sent_again_only_where_it_changed(gateway, store, tmp_path):
    folder = tmp_path / "drop"
    (folder / "cam").mkdir(parents=True)
    for i in range(4):
        (folder / "cam" / f"{i}.jpg").write_bytes(imagegen.encode(imagegen.scene(96, 64, seed=40 + i)))
    (folder / "notes #1.txt").write_text("a key with a space and a #")
    (folder / ".hidden").write_text("left out")
    with Client(gateway, TEST_KEYS["writer"][0]) as client:
        assert client.upload(folder, DATASET) == (5, 0)
        stored = {o.key: o for o in store.list(DATASET)}
        assert sorted(stored) == ["cam/0.jpg", "cam/1.jpg", "cam/2.jpg", "cam/3.jpg", "notes #1.txt"]
        assert store.get(DATASET, "cam/2.jpg", 10**6) == (folder / "cam" / "2.jpg").read_bytes()
        assert client.upload(folder, DATASET) == (0, 5)
        (folder / "cam" / "1.jpg").write_bytes(imagegen.encode(imagegen.scene(96, 64, seed=99)))
        assert client.upload(folder, DATASET) == (1, 4)
        # Replaced in storage behind the gateway's back: its bytes are not what was uploaded.
        store.put(DATASET, "cam/3.jpg", b"someone else's bytes")
        assert client.upload(folder, DATASET) == (1, 4)
        assert store.get(DATASET, "cam/3.jpg", 10**6) == (folder / "cam" / "3.jpg").read_bytes()


def test_an_upload_answers_its_size_and_hash(gateway):
    body = b"\x00\x01 some bytes" * 1000
    reply = httpx.put(f"{gateway}/v1/datasets/{DATASET}/files/raw/one.bin", content=body,
                      headers={"Authorization": f"Bearer {TEST_KEYS['writer'][0]}"})
    assert reply.status_code == 201
    assert reply.json() == {"key": "raw/one.bin", "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


@pytest.mark.parametrize("key, path, status, words", [
    ("reader", "/files/a.jpg", 403, "has role read; this needs write"),
    ("writer", "/files/a/%2E%2E/b.jpg", 422, "'..' segments"),
    ("street-only", "/files/a.jpg", 403, "has role read"),
])
def test_uploads_need_the_write_role_and_a_possible_key(gateway, key, path, status, words):
    reply = httpx.put(f"{gateway}/v1/datasets/{DATASET}{path}", content=b"x",
                      headers={"Authorization": f"Bearer {TEST_KEYS[key][0]}"})
    assert reply.status_code == status and words in reply.json()["detail"], reply.text


def test_a_check_names_what_is_wrong(gateway):
    with Client(gateway, TEST_KEYS["writer"][0]) as client:
        with pytest.raises(ApiError) as error:
            client._call("POST", f"/v1/datasets/{DATASET}/files/check",
                         json={"files": [{"key": "a.jpg", "size": 1, "sha256": "not-a-hash"}]})
    assert error.value.status == 422 and "sha256" in error.value.detail
