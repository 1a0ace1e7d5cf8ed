"""Thumbnails kept in the bucket: where they live and what they are named, shared by the
workers (which render the grid's size as they index an image) and the gateway (which
renders any other size or crop on first request). A thumbnail is named by its image's
storage signature and the request, so a replaced image gets new ones and an old name is
never served for new bytes."""

import hashlib

from services.common.images import Box

# Top-level prefix of the bucket (not a dataset: names starting with "." are none).
PREFIX = ".thumbnails"
# The size the web app's grid asks for: the workers render it at ingestion.
GRID_SIZE = 256
GRID_FORMAT = "webp"


def name(dataset: str, key: str, signature: str, size: int, box: Box | None, image_format: str) -> str:
    region = "" if box is None else ",".join(f"{v:g}" for v in (box.x1, box.y1, box.x2, box.y2))
    identity = f"{dataset}/{key}|{signature}|{size}|{region}"
    return f"{hashlib.sha256(identity.encode()).hexdigest()[:40]}.{image_format}"
