"""Result sets as files (vizsearch/export.py): search results as JSON lines, a CSV row per
box, and a COCO subset whose boxes convert back to the API's corners; duplicate groups and
suspect labels likewise."""

import csv
import io
import json

import pytest

from vizsearch.export import CSV_COLUMNS, GROUP_CSV_COLUMNS, SUSPECT_CSV_COLUMNS, export, export_groups, export_suspects
from vizsearch.models import DuplicateGroup, ImageRef, ObjectResult, SearchResult, SuspectLabel


def result(dataset: str, key: str, score: float, *boxes: ObjectResult) -> SearchResult:
    return SearchResult(dataset=dataset, key=key, score=score, width=640, height=480,
                        url=f"http://gw/v1/images/{dataset}/{key}", objects=list(boxes))


BUS = ObjectResult(box=[10, 20, 110, 70], label="bus", source="ground_truth", score=0.31)
CAR = ObjectResult(box=[5, 5, 25, 15], label="car", source="prediction", score=0.22, detector_score=0.9)
RESULTS = [result("bdd", "train/a.jpg", 0.33, BUS, CAR), result("bdd", "val/b.jpg", 0.30)]


def test_json_lines_are_the_api_results_one_per_line():
    lines = export(RESULTS, "jsonl").decode().splitlines()
    assert [SearchResult.model_validate_json(line) for line in lines] == RESULTS


def test_csv_has_a_row_per_box_and_one_for_an_image_without():
    rows = list(csv.DictReader(io.StringIO(export(RESULTS, "csv").decode())))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["rank"], r["key"], r["label"]) for r in rows] == [
        ("1", "train/a.jpg", "bus"), ("1", "train/a.jpg", "car"), ("2", "val/b.jpg", "")]
    assert (rows[1]["box_x2"], rows[1]["detector_score"], rows[0]["detector_score"]) == ("25.00", "0.900000", "")


def test_coco_has_the_images_their_boxes_and_the_labels_as_categories():
    coco = json.loads(export(RESULTS, "coco"))
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in coco["images"]] == [
        (1, "train/a.jpg", 640, 480), (2, "val/b.jpg", 640, 480)], "one dataset: file names are its keys"
    assert coco["categories"] == [{"id": 1, "name": "bus", "supercategory": ""},
                                  {"id": 2, "name": "car", "supercategory": ""}]
    bus, car = coco["annotations"]
    assert (bus["image_id"], bus["category_id"], bus["bbox"], bus["area"]) == (1, 1, [10, 20, 100, 50], 5000)
    assert "score" not in bus and car["score"] == 0.9, "a predicted box keeps its detector's score"
    assert len({a["id"] for a in coco["annotations"]}) == 2
    mixed = json.loads(export([*RESULTS, result("coco", "x.jpg", 0.2)], "coco"))
    assert [i["file_name"] for i in mixed["images"]] == ["bdd/train/a.jpg", "bdd/val/b.jpg", "coco/x.jpg"]


def test_an_unknown_format_is_refused_by_name():
    with pytest.raises(ValueError, match="format is 'xml'"):
        export(RESULTS, "xml")


def group(*keys: str, exact: bool = False) -> DuplicateGroup:
    return DuplicateGroup(images=[ImageRef(dataset="ds", key=k, url=f"http://gw/v1/images/ds/{k}") for k in keys],
                          min_similarity=1.0 if exact else 0.9, max_similarity=1.0 if exact else 0.95, exact=exact)


def test_duplicate_groups_are_a_json_line_each_or_a_csv_row_per_image():
    groups = [group("a.jpg", "b.jpg", "c.jpg"), group("x.jpg", "y.jpg", exact=True)]
    assert [DuplicateGroup.model_validate_json(line) for line in
            export_groups(groups, "jsonl").decode().splitlines()] == groups
    rows = list(csv.DictReader(io.StringIO(export_groups(groups, "csv").decode())))
    assert list(rows[0]) == list(GROUP_CSV_COLUMNS)
    assert [(r["group"], r["images"], r["key"], r["exact"]) for r in rows] == [
        ("1", "3", "a.jpg", "False"), ("1", "3", "b.jpg", "False"), ("1", "3", "c.jpg", "False"),
        ("2", "2", "x.jpg", "True"), ("2", "2", "y.jpg", "True")]
    with pytest.raises(ValueError, match="no boxes for COCO"):
        export_groups(groups, "coco")


def suspect(key: str, label: str, suggested: str, box: list[float]) -> SuspectLabel:
    return SuspectLabel(dataset="ds", key=key, url=f"http://gw/v1/images/ds/{key}", width=640, height=480, box=box,
                        label=label, suggested_label=suggested, agreement=0.9, neighbours=[])


def test_suspects_export_as_coco_with_their_current_label_and_the_suggestion_beside_it():
    found = [suspect("a.jpg", "car", "taxi", [10, 20, 110, 70]), suspect("a.jpg", "dog", "cat", [0, 0, 5, 5]),
             suspect("b.jpg", "car", "bus", [1, 2, 3, 4])]
    coco = json.loads(export_suspects(found, "coco"))
    assert [(i["id"], i["file_name"], i["width"]) for i in coco["images"]] == [(1, "a.jpg", 640), (2, "b.jpg", 640)]
    assert [c["name"] for c in coco["categories"]] == ["car", "dog"]
    first = coco["annotations"][0]
    assert (first["image_id"], first["bbox"], first["vizsearch_suggested_label"]) == (1, [10, 20, 100, 50], "taxi")
    rows = list(csv.DictReader(io.StringIO(export_suspects(found, "csv").decode())))
    assert list(rows[0]) == list(SUSPECT_CSV_COLUMNS) and [r["suggested_label"] for r in rows] == ["taxi", "cat", "bus"]
    assert len(export_suspects(found, "jsonl").decode().splitlines()) == 3
