"""What a dataset name and an image key may be: one definition, used by the Python
client (to refuse a bad name before any request) and by the services (to refuse it
at the edge)."""

import re

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# S3's limit on a whole object name ("<dataset>/<key>"), in bytes of UTF-8.
MAX_OBJECT_NAME_BYTES = 1024
# A dataset's annotation files (COCO or BDD100K JSON) live under this prefix; they are not images.
ANNOTATIONS_DIR = "_annotations/"


class InvalidDatasetName(ValueError):
    pass


class InvalidKey(ValueError):
    """A key no object can have: asking storage for it is pointless."""


def check_dataset_name(name: str) -> str:
    if not DATASET_NAME.match(name or ""):
        raise InvalidDatasetName(
            f"dataset name {name!r} is invalid: use 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_key(dataset: str, key: str) -> str:
    """The key, if an object could be stored under it in the dataset: valid Unicode, no NUL
    or other control character, relative, without '.' or '..' segments (MinIO refuses
    them) and within S3's length."""
    try:
        size = len(f"{dataset}/{key}".encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey("the key is not valid Unicode (it holds a lone surrogate)") from None
    if not key:
        raise InvalidKey("the key is empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidKey("the key holds a control character")
    if key.startswith("/") or any(part in (".", "..") for part in key.split("/")):
        raise InvalidKey("the key is not a relative path without '.' and '..' segments")
    if size > MAX_OBJECT_NAME_BYTES:
        raise InvalidKey(f"the object name is {size} bytes of UTF-8, over S3's {MAX_OBJECT_NAME_BYTES}")
    return key


def check_text(value: str) -> str:
    """A string that can travel: valid Unicode (JSON allows lone surrogates; UTF-8 does not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"is not valid Unicode: a lone surrogate at character {error.start}") from None
    return value
