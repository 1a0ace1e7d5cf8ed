"""COCO and BDD100K annotation files become boxes per image key, and what cannot be used is said."""

import json

import pytest

from services.indexer import annotations as ann

KEYS = ann.KeyResolver(["street/a.jpg", "street/b.jpg", "c.png", "x/dup.jpg", "y/dup.jpg"])


def coco(annotations, images=None, categories=None) -> bytes:
    return json.dumps({
        "images": images or [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "c.png"}],
        "annotations": annotations,
        "categories": categories or [{"id": 3, "name": "car"}, {"id": 6, "name": "bus"}],
    }).encode()


def test_coco_boxes_become_corners_with_labels_and_sources():
    boxes, problems = ann.parse("_annotations/gt.json", coco([
        {"image_id": 1, "category_id": 3, "bbox": [10, 20, 30, 40]},
        {"image_id": 2, "category_id": 6, "bbox": [0, 0, 5.5, 6], "score": 0.75},
    ]), KEYS)
    assert problems == []
    assert boxes["street/a.jpg"] == [ann.Annotation("car", (10, 20, 40, 60), ann.GROUND_TRUTH, 0.0, "_annotations/gt.json#0")]
    assert boxes["c.png"] == [ann.Annotation("bus", (0, 0, 5.5, 6), ann.PREDICTION, 0.75, "_annotations/gt.json#1")]


def test_coco_problems_are_named_and_the_rest_is_kept():
    boxes, problems = ann.parse("_annotations/gt.json", coco(
        [
            {"image_id": 1, "category_id": 3, "bbox": [10, 20, 30, 40]},
            {"image_id": 1, "category_id": 3, "bbox": [10, 20, "wide", 40]},
            {"image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4]},
            {"image_id": 9, "category_id": 3, "bbox": [1, 2, 3, 4]},
            "junk",
        ],
        images=[{"id": 1, "file_name": "a.jpg"}, {"id": 9, "file_name": "missing.jpg"}],
    ), KEYS)
    assert len(boxes["street/a.jpg"]) == 1
    reasons = {(p.key, p.reason) for p in problems}
    assert ("street/a.jpg", "_annotations/gt.json#1: bbox is 'wide', not a number") in reasons
    assert ("_annotations/gt.json", "annotation 2 names image_id 7, not in images") in reasons
    assert ("missing.jpg", "_annotations/gt.json#3: no image 'missing.jpg' in the dataset") in reasons
    assert ("_annotations/gt.json", "annotation 4 is not an object") in reasons


def test_bdd_labels_with_box2d_only():
    frames = [{"name": "b.jpg", "labels": [
        {"category": "bus", "box2d": {"x1": 1, "y1": 2, "x2": 30, "y2": 40}},
        {"category": "lane", "poly2d": [[0, 0]]},
        {"category": "car", "box2d": {"x1": 5, "y1": 5, "x2": 9, "y2": 9}, "score": 0.5},
    ]}, {"name": "gone.jpg", "labels": []}]
    boxes, problems = ann.parse("_annotations/bdd.json", json.dumps(frames).encode(), KEYS)
    assert [(a.label, a.box, a.source) for a in boxes["street/b.jpg"]] == [
        ("bus", (1, 2, 30, 40), ann.GROUND_TRUTH), ("car", (5, 5, 9, 9), ann.PREDICTION)]
    assert [p.key for p in problems] == ["gone.jpg"]


@pytest.mark.parametrize("data, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b'{"info": {}}', "neither COCO"),
    (b"[1, 2]", "neither COCO"),
])
def test_unreadable_files_are_refused_whole(data, message):
    with pytest.raises(ann.AnnotationError, match=message):
        ann.parse("_annotations/x.json", data, KEYS)


def test_names_resolve_exactly_then_by_unique_base_name():
    assert KEYS.resolve("street/a.jpg") == "street/a.jpg"
    assert KEYS.resolve("./a.jpg") == "street/a.jpg"
    assert KEYS.resolve("images/100k/val/b.jpg") == "street/b.jpg"
    assert KEYS.resolve("dup.jpg") is None, "an ambiguous base name matches nothing"
    assert KEYS.resolve("x/dup.jpg") == "x/dup.jpg"


def test_fingerprint_follows_the_boxes_not_their_order():
    a = ann.Annotation("car", (1, 2, 3, 4), ann.GROUND_TRUTH, 0, "f#0")
    b = ann.Annotation("bus", (5, 6, 7, 8), ann.PREDICTION, 0.5, "f#1")
    assert ann.fingerprint([a, b]) == ann.fingerprint([b, a])
    assert ann.fingerprint([a]) != ann.fingerprint([a, b])
    assert ann.fingerprint([]) == ""
