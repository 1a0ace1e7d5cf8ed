"""Identity of entries and the escaping of values in Milvus expressions."""

from services.common.vectors import (
    MAX_BOXES_BYTES, Entry, _version_tuple, decode_boxes, encode_boxes, entry_id, quote, quote_list,
)
from services.indexer.ingest import is_image_key


def test_entry_ids_are_deterministic_and_distinguish_what_matters():
    base = entry_id("v1", "ds", "a.jpg")
    assert base == entry_id("v1", "ds", "a.jpg") and len(base) == 32
    others = {
        entry_id("v2", "ds", "a.jpg"), entry_id("v1", "ds2", "a.jpg"), entry_id("v1", "ds", "b.jpg"),
        entry_id("v1", "ds", "a.jpg", (1, 2, 3, 4), "car", "ground_truth"),
        entry_id("v1", "ds", "a.jpg", (1, 2, 3, 4), "car", "prediction"),
    }
    assert base not in others and len(others) == 5
    entry = Entry("ds", "a.jpg", [0.1], 10, 20, "sha", 0, box=(1, 2, 3, 4), label="car", source="ground_truth")
    assert entry.row("v1")["id"] == entry_id("v1", "ds", "a.jpg", (1, 2, 3, 4), "car", "ground_truth")
    assert entry.row("v1")["box_area"] == 4.0


def test_an_image_entry_stores_its_boxes_top_to_bottom_unless_too_many():
    def obj(y, label, source="ground_truth", score=0.0):
        return Entry("ds", "a.jpg", [0.1], 10, 20, "sha", 0, box=(1, y, 3, y + 1), label=label, source=source,
                     score=score)

    text = encode_boxes([obj(9, "dog"), obj(2, "car", "prediction", 0.5)])
    assert [(b["label"], b["box_y1"], b["source"], b["score"]) for b in decode_boxes(text)] == [
        ("car", 2, "prediction", 0.5), ("dog", 9, "ground_truth", 0.0)]
    assert encode_boxes([]) == "" and decode_boxes("") == []
    crowd = [obj(i, "pedestrian " * 20) for i in range(MAX_BOXES_BYTES // 200)]
    assert encode_boxes(crowd) == "", "too many for one VARCHAR: readers look them up instead"


def test_user_values_cannot_escape_their_string_literal():
    assert quote('a" or id != "') == '"a\\" or id != \\""'
    assert quote("back\\slash") == '"back\\\\slash"'
    assert quote("城市 street") == '"城市 street"'
    assert quote_list(["x", 'y"']) == '["x", "y\\""]'


def test_server_versions_parse():
    assert _version_tuple("v2.3.5-lite") == (2, 3, 5)
    assert _version_tuple("2.4.13-hotfix") == (2, 4, 13)
    assert _version_tuple("unknown") == ()


def test_image_keys():
    assert is_image_key("a/b/c.JPG") and is_image_key("x.webp") and is_image_key("y.tiff")
    assert not is_image_key("_annotations/coco.json")
    assert not is_image_key("_thumbs/a.jpg") and not is_image_key(".cache/a.jpg")
    assert not is_image_key("notes.txt") and not is_image_key("noextension")
