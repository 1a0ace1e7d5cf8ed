"""MinIO bucket notifications: the fast path from a dropped file to a task.

MinIO posts one JSON document per event to the webhook, in the S3 event
format: `Records[].eventName` is s3:ObjectCreated:* or s3:ObjectRemoved:*, and
`Records[].s3.object.key` is URL-encoded (spaces arrive as '+'). Events can be
missed (a webhook down, a queue full): the reconciler's listing repairs that.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from services.indexer.annotations import is_annotation_file
from services.indexer.ingest import is_image_key
from vizsearch.names import DATASET_NAME, InvalidKey, check_key


@dataclass
class DatasetChanges:
    images: set[str] = field(default_factory=set)  # created, replaced or removed: each is re-checked
    annotation_files: set[str] = field(default_factory=set)  # any change asks for a scan

    @property
    def annotations_changed(self) -> bool:
        return bool(self.annotation_files)


class BadEvent(ValueError):
    pass


def _text(value, path: str) -> str:
    """A string field of the document: a string, and valid Unicode (no lone surrogates)."""
    if not isinstance(value, str):
        raise BadEvent(f"{path} is {type(value).__name__}, not a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise BadEvent(f"{path} is not valid Unicode: {error.reason} at {error.start}") from None
    return value


def changes_by_dataset(document: dict, bucket: str) -> dict[str, DatasetChanges]:
    """What an event document asks for, per dataset; records of other buckets,
    of other event types and of keys that are neither images nor annotations are ignored."""
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise BadEvent("not an S3 event notification: no Records list")
    changes: dict[str, DatasetChanges] = defaultdict(DatasetChanges)
    for index, record in enumerate(records):
        path = f"Records[{index}]"
        try:
            name = _text(record["eventName"], f"{path}.eventName")
            record_bucket = _text(record["s3"]["bucket"]["name"], f"{path}.s3.bucket.name")
            raw_key = _text(record["s3"]["object"]["key"], f"{path}.s3.object.key")
        except (KeyError, TypeError) as error:
            raise BadEvent(f"{path} lacks {error}") from error
        if record_bucket != bucket or not name.startswith(("s3:ObjectCreated:", "s3:ObjectRemoved:")):
            continue
        try:
            object_key = unquote_plus(raw_key, errors="strict")
        except UnicodeDecodeError as error:
            raise BadEvent(f"{path}.s3.object.key is not URL-encoded UTF-8: {error.reason}") from None
        dataset, _, key = object_key.partition("/")
        if not key or not DATASET_NAME.match(dataset):
            continue
        try:
            check_key(dataset, key)
        except InvalidKey as error:
            raise BadEvent(f"{path}.s3.object.key {raw_key[:80]!r}: {error}") from None
        if is_annotation_file(key):
            changes[dataset].annotation_files.add(key)
        elif is_image_key(key):
            changes[dataset].images.add(key)
    return dict(changes)
