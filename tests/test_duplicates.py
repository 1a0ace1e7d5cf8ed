"""Duplicate images: grouping the pairs a job found (unit), and the whole job on the real
stack through HTTP, gRPC and the CLI: exact copies by content, near copies by
embedding, a leak between two datasets, a batch delivered twice, and clear errors."""

import csv
import io
import json

import grpc
import pytest
from PIL import Image

from services.common.config import StorageSettings
from services.common.genproto.vizsearch.v1 import gateway_pb2_grpc, indexer_pb2
from services.common.storage import ObjectStore
from services.indexer.duplicates import Pair, group_pairs
from tests import imagegen
from tests.conftest import TEST_KEYS, wait_for_job
from vizsearch import cli

READER = {"Authorization": f"Bearer {TEST_KEYS['reader'][0]}"}
WRITER = {"Authorization": f"Bearer {TEST_KEYS['writer'][0]}"}
TRAIN, TEST = "dup-train", "dup-test"


def pair(a: str, b: str, similarity: float, hash_a: str = "", hash_b: str = "") -> Pair:
    return Pair(("ds", a), ("ds", b), similarity, (hash_a or f"h-{a}", hash_b or f"h-{b}"))


def keys(group) -> list[str]:
    return [image.key for image in group.images]


# -- grouping ------------------------------------------------------------------------
def test_a_chain_of_near_duplicates_is_not_one_group():
    # a~b, b~c, c~d, d~e: connected components would make one group of five unlike images;
    # d (the most similar to its neighbours) takes c and e, then b takes what is left.
    groups = group_pairs([pair("a", "b", 0.9), pair("b", "c", 0.91), pair("c", "d", 0.92), pair("d", "e", 0.93)])
    assert [keys(g) for g in groups] == [["c", "d", "e"], ["a", "b"]]
    assert [(round(g.min_similarity, 2), round(g.max_similarity, 2), g.exact) for g in groups] == [
        (0.92, 0.93, False), (0.9, 0.9, False)]


def test_copies_of_one_file_stay_together_and_are_exact():
    groups = group_pairs([pair("a", "b", 1.0, "same", "same"), pair("a", "c", 1.0, "same", "same"),
                          pair("x", "y", 0.97)])
    assert [keys(g) for g in groups] == [["a", "b", "c"], ["x", "y"]], "largest first"
    assert [g.exact for g in groups] == [True, False]
    assert groups[0].min_similarity == groups[0].max_similarity == 1.0


def test_an_image_whose_duplicates_were_grouped_first_joins_its_nearest():
    # b is the best connected: its group takes a and c; d's only duplicate, c, is taken.
    groups = group_pairs([pair("a", "b", 0.95), pair("b", "c", 0.96), pair("b", "e", 0.94), pair("c", "d", 0.9)])
    assert [keys(g) for g in groups] == [["a", "b", "c", "d", "e"]]
    assert round(groups[0].min_similarity, 2) == 0.9


def test_a_pair_found_from_both_ends_counts_once():
    groups = group_pairs([pair("a", "b", 0.95), pair("a", "b", 0.95)])
    assert [keys(g) for g in groups] == [["a", "b"]]


# -- the job on the real stack ---------------------------------------------------------
def _jpeg(picture: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def indexed(stack, api):
    """dup-train: eight distinct scenes, an exact copy of one under another key, and a
    re-encoded, resized copy of another; dup-test: an exact copy of a third (a leak)."""
    store = ObjectStore(StorageSettings(s3_endpoint=f"127.0.0.1:{stack.settings.storage_port}"))
    scenes = [imagegen.scene(640, 480, seed=900 + i) for i in range(8)]
    files = {TRAIN: {f"scenes/{i}.jpg": _jpeg(p, quality=90) for i, p in enumerate(scenes)}, TEST: {}}
    files[TRAIN]["copies/exact-of-0.jpg"] = files[TRAIN]["scenes/0.jpg"]
    files[TRAIN]["copies/small-of-1.jpg"] = _jpeg(scenes[1].resize((480, 360), Image.Resampling.BILINEAR), quality=60)
    files[TEST]["leaked-2.jpg"] = files[TRAIN]["scenes/2.jpg"]
    files[TEST]["other.jpg"] = _jpeg(imagegen.scene(640, 480, seed=990), quality=90)
    for dataset, content in files.items():
        for key, data in content.items():
            store.put(dataset, key, data, "image/jpeg")
        job = wait_for_job(api, api.post(f"/v1/datasets/{dataset}/scan", headers=WRITER).json())
        assert (job["state"], job["done"]) == ("succeeded", len(content)), job
    return files


def run_job(api, body: dict) -> dict:
    reply = api.post(f"/v1/datasets/{TRAIN}/duplicates", headers=WRITER, json=body)
    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert job["kind"] == "duplicates" and job["duplicates"]["datasets"][0] == TRAIN
    return wait_for_job(api, job)


@pytest.mark.stack
def test_duplicates_are_found_within_a_dataset_and_across_datasets(api, indexed):
    job = run_job(api, {"against": [TEST], "threshold": 0.97})
    assert (job["state"], job["total"], job["done"]) == ("succeeded", 10, 10), job
    assert job["duplicates"] == {"datasets": [TRAIN, TEST], "threshold": 0.97}
    reply = api.get(f"/v1/datasets/{TRAIN}/duplicates", headers=READER)
    assert reply.status_code == 200, reply.text
    found = reply.json()
    assert found["job"]["id"] == job["id"], "the latest job by default"
    groups = {tuple((i["dataset"], i["key"]) for i in g["images"]): g for g in found["groups"]}
    exact = groups[((TRAIN, "copies/exact-of-0.jpg"), (TRAIN, "scenes/0.jpg"))]
    assert exact["exact"] and exact["min_similarity"] == 1.0
    near = groups[((TRAIN, "copies/small-of-1.jpg"), (TRAIN, "scenes/1.jpg"))]
    assert not near["exact"] and 0.97 <= near["min_similarity"] < 1.0
    leak = groups[((TEST, "leaked-2.jpg"), (TRAIN, "scenes/2.jpg"))]
    assert leak["exact"] and leak["images"][0]["url"].endswith(f"/v1/images/{TEST}/leaked-2.jpg")
    assert (TEST, "other.jpg") not in {image for group in groups for image in group}
    assert found["total_groups"] == len(found["groups"]) and found["duplicate_images"] == sum(map(len, groups))
    page = api.get(f"/v1/datasets/{TRAIN}/duplicates", headers=READER, params={"limit": 1, "offset": 1}).json()
    assert page["groups"] == found["groups"][1:2] and page["total_groups"] == found["total_groups"]


@pytest.mark.stack
def test_without_other_datasets_a_leak_is_not_looked_for(api, indexed):
    job = run_job(api, {"threshold": 0.97})
    found = api.get(f"/v1/datasets/{TRAIN}/duplicates", headers=READER, params={"job": job["id"]}).json()
    assert job["duplicates"]["datasets"] == [TRAIN]
    assert {i["dataset"] for g in found["groups"] for i in g["images"]} == {TRAIN}
    assert len(found["groups"]) >= 2


@pytest.mark.stack
def test_a_batch_delivered_twice_finds_the_same_pairs(stack, api, indexed):
    """What a redelivered task does: the same batch compared again writes the same pairs."""
    from services.indexer.config import IndexerSettings
    from services.indexer.duplicates import DuplicateFinder
    from services.indexer.state import IndexerState

    job = run_job(api, {"against": [TEST], "threshold": 0.97})
    settings = IndexerSettings(redis_url=f"redis://127.0.0.1:{stack.settings.redis_port}/0",
                               milvus_uri=f"http://127.0.0.1:{stack.settings.milvus_port}",
                               embedder_url=f"127.0.0.1:{stack.settings.embedder_port}")
    state = IndexerState(settings)
    try:
        version = state.jobs.analysis(job["id"], indexer_pb2.DuplicateSearch)[0]
        entries = [entry for page in state.vectors.entry_ids(version, "images", TRAIN) for entry in page]
        finder = DuplicateFinder(state)
        payload = json.dumps(entries)
        first, again = (finder.compare(job["id"], TRAIN, payload, lambda: None) for _ in range(2))
        assert first.findings == again.findings and first.outcomes == again.outcomes
        stored = dict((k.decode(), v.decode()) for k, v in state.jobs.findings(job["id"]))
        assert dict(first.findings) == stored, "the job's own batches stored exactly these pairs"
    finally:
        state.close()


@pytest.mark.parametrize("method, path, body, status, detail", [
    ("post", "/v1/datasets/no-such/duplicates", {}, 404, "no dataset 'no-such'"),
    ("post", f"/v1/datasets/{TRAIN}/duplicates", {"against": ["no-such"]}, 404, "no dataset 'no-such'"),
    ("post", f"/v1/datasets/{TRAIN}/duplicates", {"threshold": 1.5}, 422, "threshold"),
    ("post", f"/v1/datasets/{TRAIN}/duplicates", {"threshold": 0}, 422, "threshold"),
    ("get", f"/v1/datasets/{TEST}/duplicates", None, 404, "no duplicates job of dataset 'dup-test' yet"),
    ("get", f"/v1/datasets/{TRAIN}/duplicates?job=20000101-000000-abcdef", None, 404, "no duplicates job"),
    ("get", f"/v1/datasets/{TRAIN}/duplicates?limit=0", None, 422, "limit"),
])
@pytest.mark.stack
def test_bad_requests_are_refused_by_name(api, indexed, method, path, body, status, detail):
    headers = WRITER if method == "post" else READER
    reply = api.post(path, headers=headers, json=body) if method == "post" else api.get(path, headers=headers)
    assert reply.status_code == status, reply.text
    assert detail in reply.json()["detail"]


@pytest.mark.stack
def test_a_reader_cannot_start_one_and_a_scoped_key_cannot_see_another_dataset(api, indexed):
    assert api.post(f"/v1/datasets/{TRAIN}/duplicates", headers=READER, json={}).status_code == 403
    street = {"Authorization": f"Bearer {TEST_KEYS['street-only'][0]}"}
    assert api.get(f"/v1/datasets/{TRAIN}/duplicates", headers=street).status_code in (403, 404)


@pytest.mark.stack
def test_the_grpc_door_answers_alike(stack, api, indexed):
    run_job(api, {"against": [TEST], "threshold": 0.97})
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.gateway_grpc_port}") as channel:
        gateway = gateway_pb2_grpc.GatewayStub(channel)
        metadata = [("authorization", f"Bearer {TEST_KEYS['reader'][0]}")]
        reply = gateway.GetDuplicates(indexer_pb2.GetDuplicatesRequest(dataset=TRAIN), metadata=metadata)
        http = api.get(f"/v1/datasets/{TRAIN}/duplicates", headers=READER).json()
        assert reply.job.id == http["job"]["id"] and reply.total_groups == http["total_groups"]
        assert [[i.key for i in g.images] for g in reply.groups] == [[i["key"] for i in g["images"]]
                                                                     for g in http["groups"]]
        with pytest.raises(grpc.RpcError) as refused:
            gateway.FindDuplicates(indexer_pb2.FindDuplicatesRequest(dataset=TRAIN, threshold=2.0),
                                   metadata=[("authorization", f"Bearer {TEST_KEYS['writer'][0]}")])
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "threshold" in refused.value.details()


@pytest.mark.stack
def test_the_cli_runs_a_job_and_prints_the_groups(stack, indexed, capsys):
    url = f"http://127.0.0.1:{stack.settings.gateway_http_port}"
    common = ["--url", url, "--api-key", TEST_KEYS["writer"][0]]
    assert cli.main(["duplicates", TRAIN, "--against", TEST, "--threshold", "0.97", *common]) == 0
    out = capsys.readouterr().out
    assert f"{TEST}/leaked-2.jpg" in out and f"{TRAIN}/copies/exact-of-0.jpg" in out and "exact" in out
    assert cli.main(["duplicates", TRAIN, "--show", "--json", "--limit", "1", *common]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["job"]["kind"] == "duplicates" and len(shown["groups"]) == 1 and shown["total_groups"] >= 3


@pytest.mark.stack
def test_every_group_exports_as_json_lines_or_csv(stack, api, indexed, tmp_path):
    job = run_job(api, {"against": [TEST], "threshold": 0.97})
    shown = api.get(f"/v1/datasets/{TRAIN}/duplicates", headers=READER, params={"job": job["id"]}).json()
    reply = api.get(f"/v1/datasets/{TRAIN}/duplicates/export", headers=READER, params={"format": "csv"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    assert f'filename="{TRAIN}-duplicates.csv"' in reply.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert len(rows) == shown["duplicate_images"] and {r["group"] for r in rows} == {
        str(n) for n in range(1, shown["total_groups"] + 1)}
    lines = api.get(f"/v1/datasets/{TRAIN}/duplicates/export", headers=READER).text.splitlines()
    assert [json.loads(line) for line in lines] == shown["groups"]
    coco = api.get(f"/v1/datasets/{TRAIN}/duplicates/export", headers=READER, params={"format": "coco"})
    assert coco.status_code == 422 and "format" in coco.json()["detail"]
    out = tmp_path / "groups.jsonl"
    url = f"http://127.0.0.1:{stack.settings.gateway_http_port}"
    assert cli.main(["duplicates", TRAIN, "--show", "--export", "jsonl", "-o", str(out), "--url", url,
                     "--api-key", TEST_KEYS["reader"][0]]) == 0
    assert out.read_text().splitlines() == lines
