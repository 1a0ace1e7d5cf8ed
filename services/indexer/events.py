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
from services.indexer.catalog import DATASET_NAME
from services.indexer.ingest import is_image_key


@dataclass
class DatasetChanges:
    images: set[str] = field(default_factory=set)  # created, replaced or removed: each is re-checked
    annotations_changed: bool = False


class BadEvent(ValueError):
    pass


def changes_by_dataset(document: dict, bucket: str) -> dict[str, DatasetChanges]:
    """What an event document asks for, per dataset; records of other buckets,
    of other event types and of keys that are neither images nor annotations are ignored."""
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise BadEvent("not an S3 event notification: no Records list")
    changes: dict[str, DatasetChanges] = defaultdict(DatasetChanges)
    for index, record in enumerate(records):
        try:
            name = record["eventName"]
            s3 = record["s3"]
            record_bucket = s3["bucket"]["name"]
            raw_key = s3["object"]["key"]
        except (KeyError, TypeError) as error:
            raise BadEvent(f"Records[{index}] lacks {error}") from error
        if record_bucket != bucket or not name.startswith(("s3:ObjectCreated:", "s3:ObjectRemoved:")):
            continue
        dataset, _, key = unquote_plus(raw_key).partition("/")
        if not key or not DATASET_NAME.match(dataset):
            continue
        if is_annotation_file(key):
            changes[dataset].annotations_changed = True
        elif is_image_key(key):
            changes[dataset].images.add(key)
    return dict(changes)
