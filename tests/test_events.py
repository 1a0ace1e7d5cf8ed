"""MinIO's event documents (recorded format, URL-encoded keys) become per-dataset changes."""

import json
from pathlib import Path

import pytest

from services.indexer.events import BadEvent, changes_by_dataset

EVENTS = Path(__file__).parent / "data" / "minio_events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_recorded_put_event_decodes_the_key():
    changes = changes_by_dataset(load("put.json"), "vizsearch")
    assert list(changes) == ["events-ds"]
    assert changes["events-ds"].images == {"street scenes/cam 1+2.jpg"}
    assert not changes["events-ds"].annotations_changed


def test_recorded_delete_event():
    changes = changes_by_dataset(load("delete.json"), "vizsearch")
    assert changes["events-ds"].images == {"street scenes/cam 1+2.jpg"}


def test_annotation_upload_asks_for_a_scan_and_other_records_are_ignored():
    document = load("put.json")
    template = document["Records"][0]

    def record(key, bucket="vizsearch", name="s3:ObjectCreated:Put"):
        copy = json.loads(json.dumps(template))
        copy["s3"]["object"]["key"], copy["s3"]["bucket"]["name"], copy["eventName"] = key, bucket, name
        return copy

    document["Records"] = [
        record("bdd%2F_annotations%2Flabels.json"),
        record("bdd%2Fa.jpg", bucket="other"),
        record("bdd%2Fb.jpg", name="s3:ObjectAccessed:Get"),
        record("bdd%2Fnotes.txt"),
        record("top-level.jpg"),
        record("bad%20name%2Fa.jpg"),
    ]
    changes = changes_by_dataset(document, "vizsearch")
    assert list(changes) == ["bdd"]
    assert changes["bdd"].annotations_changed and changes["bdd"].images == set()


@pytest.mark.parametrize("document", [{}, {"Records": "x"}, [], {"Records": [{"eventName": "s3:ObjectCreated:Put"}]}])
def test_malformed_documents_are_refused(document):
    with pytest.raises(BadEvent):
        changes_by_dataset(document, "vizsearch")
