"""The retrieval-quality harness: its metrics, and a small run of it through the test
stack's gateway whose floors catch regressions in preprocessing, cropping or scoring."""

import json

import pytest

from services.localstack import demo
from model import demo_data, evaluation
from vizsearch.client import Client
from model.metrics import average_precision, precision_at, recall_at
from tests.conftest import TEST_KEYS

# Below what this small run gives (0.84, 0.975, 0.745, 0.575, 1.0, 1.0 on 2026-11-27) and
# far above chance (a class is in about a third of the scenes): the data and the model are
# fixed, so a drop means preprocessing, cropping or scoring changed.
FLOORS = {"text_to_image.precision_at_10": 0.7, "object_to_image.precision_at_10": 0.85,
          "image_to_image.precision_at_10": 0.6, "object_to_image_without_annotations.precision_at_10": 0.4,
          "duplicates.exact_rank1": 1.0, "duplicates.near_rank1": 0.95}


def test_ranking_metrics():
    ranked = [True, False, True, False, False]
    assert precision_at(ranked, 2) == 0.5 and precision_at(ranked, 10) == 0.2  # missing results are misses
    assert recall_at(ranked, 3, total_relevant=4) == 0.5 and recall_at([], 3, total_relevant=0) == 0.0
    assert average_precision(ranked, total_relevant=2) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(ranked, total_relevant=4) == pytest.approx((1 + 2 / 3) / 4), "unfound ones count 0"


def test_ground_truth_matches_coco_file_names_to_keys(tmp_path):
    demo_data.generate(tmp_path, 4, seed=5)
    truth = evaluation.load_ground_truth(tmp_path, tmp_path / "captions.json")
    assert sorted(truth.labels) == [f"images/{i:05d}.jpg" for i in range(4)]
    assert truth.classes == list(demo_data.CLASSES)
    assert {key for key, _, _ in truth.boxes} == set(truth.labels)
    assert [key for _, key in truth.captions] == sorted(truth.labels)
    coco = json.loads((tmp_path / "_annotations" / "instances.json").read_text())
    for image in coco["images"]:
        image["file_name"] = image["file_name"].removeprefix("images/")  # COCO's own layout: bare file names
    (tmp_path / "_annotations" / "instances.json").write_text(json.dumps(coco))
    assert evaluation.load_ground_truth(tmp_path, None).labels == truth.labels


@pytest.mark.stack
def test_a_small_harness_run_stays_above_its_floors(stack, tmp_path, capsys):
    folder = tmp_path / "heldout"
    demo_data.generate(folder, 120, seed=2)
    truth = evaluation.load_ground_truth(folder, folder / "captions.json")
    with Client(f"http://127.0.0.1:{stack.settings.gateway_http_port}", TEST_KEYS["writer"][0]) as client:
        evaluation.ingest(client, folder, "heldout", with_annotations=True)
        evaluation.ingest(client, folder, "heldout-bare", with_annotations=False)
        report = evaluation.evaluate(client, folder, truth, "heldout", "heldout-bare", queries=20,
                                     duplicate_queries=20, max_captions=40)
    print(evaluation.table(report))
    assert report["images"] == 120 and report["text_to_image"]["queries"] == len(demo_data.CLASSES)
    assert report["model"]["model_id"] == "vizsearch-demo-clip"
    assert report["object_to_image"]["level"] == "objects"
    assert report["object_to_image_without_annotations"]["level"] == "images"
    assert report["caption_to_image"]["queries"] == 40
    assert report["text_to_image"]["per_class"]["bus"]["precision_at_10"] >= 0.8, "a text query 'bus' finds buses"
    for name, floor in FLOORS.items():
        section, metric = name.split(".")
        assert report[section][metric] >= floor, (name, report[section])
    assert "text_to_image" in capsys.readouterr().out


@pytest.mark.stack
def test_the_demo_ingests_street_scenes_and_answers_three_queries(stack, capsys):
    assert demo.run(stack, api_key=TEST_KEYS["writer"][0], images=40) == 0
    out = capsys.readouterr().out
    assert "succeeded: 40 indexed" in out
    for title in ("text 'a taxi on a road at night'", "image demo/images/", "object demo/images/"):
        assert title in out
    assert "vizsearch --url" in out and "curl -s" in out
