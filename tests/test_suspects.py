"""Suspect labels: the vote (unit), and the whole job on the real stack through HTTP, gRPC
and the CLI, on demo scenes with a known tenth of their labels swapped."""

import json

import grpc
import pytest

from model import demo_data
from services.common.genproto.vizsearch.v1 import gateway_pb2_grpc, indexer_pb2
from services.indexer.suspects import rank_suspects, vote
from tests.conftest import TEST_KEYS, wait_for_job
from vizsearch import cli
from vizsearch.client import Client
from vizsearch.names import ANNOTATIONS_DIR

READER = {"Authorization": f"Bearer {TEST_KEYS['reader'][0]}"}
WRITER = {"Authorization": f"Bearer {TEST_KEYS['writer'][0]}"}
DATASET = "suspects"
SWAPPED = 0.1


def voter(label: str, similarity: float) -> dict:
    return {"label": label, "similarity": similarity}


# -- the vote --------------------------------------------------------------------------
def test_neighbours_that_agree_on_another_label_outvote_the_box():
    voters = [voter("taxi", 0.9), voter("taxi", 0.8), voter("car", 0.5)]
    assert vote("car", voters, 0.5) == ("taxi", pytest.approx(1.7 / 2.2))


@pytest.mark.parametrize("label, voters, min_agreement", [
    ("car", [voter("car", 0.9), voter("taxi", 0.8)], 0.3),  # its own label weighs more
    ("car", [voter("taxi", 0.6), voter("bus", 0.5), voter("dog", 0.5)], 0.5),  # no agreement on one other label
    ("car", [voter("car", 0.7), voter("taxi", 0.7)], 0.5),  # a tie keeps the label
    ("car", [], 0.5),
])
def test_a_label_holds_unless_one_other_label_wins_clearly(label, voters, min_agreement):
    assert vote(label, voters, min_agreement) is None


def test_suspects_are_ranked_by_agreement_then_by_how_alike_their_voters_are():
    def stored(key: str, agreement: float, similarity: float) -> tuple[bytes, bytes]:
        finding = {"key": key, "box": [0, 0, 10, 10], "size": [640, 480], "label": "car", "suggested": "taxi",
                   "agreement": agreement,
                   "neighbours": [["n.jpg", [1, 1, 9, 9], "taxi", similarity]]}
        return key.encode(), json.dumps(finding).encode()

    ranked = rank_suspects([stored("a", 0.7, 0.99), stored("b", 1.0, 0.8), stored("c", 1.0, 0.95)])
    assert [s.key for s in ranked] == ["c", "b", "a"]
    assert ranked[0].neighbours[0].box.x2 == 9 and ranked[0].suggested_label == "taxi"
    assert (ranked[0].width, ranked[0].height) == (640, 480)


# -- the job on the real stack -------------------------------------------------------------
@pytest.fixture(scope="module")
def swapped(stack, tmp_path_factory) -> set[tuple[str, tuple]]:
    """60 demo scenes with a tenth of their boxes given another label, indexed; returns the
    swapped boxes as (key, box)."""
    folder = tmp_path_factory.mktemp("suspects")
    coco = demo_data.generate(folder, 60, seed=41)
    changed = demo_data.swap_labels(coco, SWAPPED, seed=41)
    (folder / ANNOTATIONS_DIR / "instances.json").write_text(json.dumps(coco))
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    with Client(f"http://127.0.0.1:{stack.settings.gateway_http_port}", TEST_KEYS["writer"][0]) as client:
        client.upload(folder, DATASET, include=lambda key: not key.endswith("captions.json"))
        job = client.wait(client.scan(DATASET).id)
        assert job.state == "succeeded" and job.objects == len(coco["annotations"]), job
    return {(files[a["image_id"]], tuple(round(v) for v in (a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                                             a["bbox"][1] + a["bbox"][3]))) for a in changed}


def run_job(api, body: dict) -> dict:
    reply = api.post(f"/v1/datasets/{DATASET}/suspects", headers=WRITER, json=body)
    assert reply.status_code == 202, reply.text
    return wait_for_job(api, reply.json())


@pytest.mark.stack
def test_the_swapped_labels_lead_the_suspects(api, swapped):
    job = run_job(api, {})
    assert (job["state"], job["kind"]) == ("succeeded", "suspects"), job["error"]
    assert job["suspects"] == {"neighbours": 10, "min_agreement": 0.5}
    found = api.get(f"/v1/datasets/{DATASET}/suspects", headers=READER, params={"limit": 1000}).json()
    assert found["job"]["id"] == job["id"] and found["total_suspects"] == len(found["suspects"])
    top = found["suspects"][:len(swapped)]
    hits = [(s["key"], tuple(round(v) for v in s["box"])) in swapped for s in top]
    assert sum(hits) / len(swapped) >= 0.8, f"precision among the top {len(swapped)}: {sum(hits)}"
    first = found["suspects"][0]
    assert first["suggested_label"] != first["label"] and first["agreement"] >= 0.5
    assert first["neighbours"] and {n["label"] for n in first["neighbours"]} == {first["suggested_label"]}
    assert first["url"].endswith(f"/v1/images/{DATASET}/{first['key']}")
    label = first["label"]
    only = api.get(f"/v1/datasets/{DATASET}/suspects", headers=READER, params={"label": label}).json()
    assert only["suspects"] and {s["label"] for s in only["suspects"]} == {label}


@pytest.mark.stack
def test_a_stricter_vote_finds_fewer(api, swapped):
    loose = api.get(f"/v1/datasets/{DATASET}/suspects", headers=READER).json()
    strict = run_job(api, {"neighbours": 5, "min_agreement": 0.95})
    found = api.get(f"/v1/datasets/{DATASET}/suspects", headers=READER, params={"job": strict["id"]}).json()
    assert found["total_suspects"] <= loose["total_suspects"]
    assert all(s["agreement"] >= 0.95 and len(s["neighbours"]) <= 5 for s in found["suspects"])


@pytest.mark.stack
@pytest.mark.parametrize("method, path, body, status, detail", [
    ("post", "/v1/datasets/no-such/suspects", {}, 404, "no dataset 'no-such'"),
    ("post", f"/v1/datasets/{DATASET}/suspects", {"neighbours": 0}, 422, "neighbours"),
    ("post", f"/v1/datasets/{DATASET}/suspects", {"min_agreement": 1.5}, 422, "min_agreement"),
    ("get", "/v1/datasets/webapp-none/suspects", None, 404, "no dataset"),
    ("get", f"/v1/datasets/{DATASET}/suspects?job=20000101-000000-abcdef", None, 404, "no suspects job"),
])
def test_bad_requests_are_refused_by_name(api, swapped, method, path, body, status, detail):
    headers = WRITER if method == "post" else READER
    reply = api.post(path, headers=headers, json=body) if method == "post" else api.get(path, headers=headers)
    assert reply.status_code == status, reply.text
    assert detail in reply.json()["detail"]


@pytest.mark.stack
def test_before_any_job_the_answer_says_to_start_one(api, swapped):
    assert api.post("/v1/datasets/suspects-none/scan", headers=WRITER).status_code == 202  # registers it
    reply = api.get("/v1/datasets/suspects-none/suspects", headers=READER)
    assert reply.status_code == 404 and "no suspects job of dataset 'suspects-none' yet" in reply.json()["detail"]


@pytest.mark.stack
def test_the_grpc_door_and_the_cli_answer_alike(stack, api, swapped, capsys):
    run_job(api, {})
    http = api.get(f"/v1/datasets/{DATASET}/suspects", headers=READER, params={"limit": 5}).json()
    with grpc.insecure_channel(f"127.0.0.1:{stack.settings.gateway_grpc_port}") as channel:
        gateway = gateway_pb2_grpc.GatewayStub(channel)
        reply = gateway.GetSuspectLabels(indexer_pb2.GetSuspectLabelsRequest(dataset=DATASET, limit=5),
                                         metadata=[("authorization", f"Bearer {TEST_KEYS['reader'][0]}")])
    assert [(s.key, s.suggested_label) for s in reply.suspects] == [(s["key"], s["suggested_label"])
                                                                    for s in http["suspects"]]
    url = f"http://127.0.0.1:{stack.settings.gateway_http_port}"
    assert cli.main(["suspects", DATASET, "--show", "--limit", "5", "--url", url,
                     "--api-key", TEST_KEYS["reader"][0]]) == 0
    out = capsys.readouterr().out
    assert f"{reply.total_suspects} suspects among" in out
    assert all(s.key in out for s in reply.suspects)


@pytest.mark.stack
def test_every_suspect_exports_and_a_running_job_is_not_exported_half_done(stack, api, swapped, tmp_path):
    found = api.get(f"/v1/datasets/{DATASET}/suspects", headers=READER, params={"limit": 1000}).json()
    coco = api.get(f"/v1/datasets/{DATASET}/suspects/export", headers=READER, params={"format": "coco"})
    assert coco.status_code == 200, coco.text
    exported = coco.json()
    assert len(exported["annotations"]) == found["total_suspects"]
    assert {a["vizsearch_suggested_label"] for a in exported["annotations"]} == {
        s["suggested_label"] for s in found["suspects"]}
    assert all((i["width"], i["height"]) == (demo_data.WIDTH, demo_data.HEIGHT) for i in exported["images"])
    out = tmp_path / "suspects.csv"
    url = f"http://127.0.0.1:{stack.settings.gateway_http_port}"
    assert cli.main(["suspects", DATASET, "--show", "--export", "csv", "-o", str(out), "--url", url,
                     "--api-key", TEST_KEYS["reader"][0]]) == 0
    assert len(out.read_text().splitlines()) == found["total_suspects"] + 1
    job = api.post(f"/v1/datasets/{DATASET}/suspects", headers=WRITER, json={}).json()
    early = api.get(f"/v1/datasets/{DATASET}/suspects/export", headers=READER, params={"job": job["id"]})
    if early.status_code == 409:  # still running: the usual case; it may also have finished already
        assert job["id"] in early.json()["detail"] and "has not finished" in early.json()["detail"]
    else:
        assert early.status_code == 200
    wait_for_job(api, job)
