"""Annotation files under `<dataset>/_annotations/`: COCO detection JSON or BDD100K
label JSON, turned into boxes per image key.

Both formats name images by file name; a name is matched to a key of the
dataset exactly, or else by its base name when that is unique. Boxes are
[x1, y1, x2, y2] in pixels of the image as displayed (EXIF orientation
applied). An annotation with a `score` is a model prediction, one without is
ground truth.
"""

import hashlib
import json
import posixpath
from collections import defaultdict
from dataclasses import asdict, dataclass

from services.common.wire import GROUND_TRUTH, PREDICTION
from vizsearch.names import ANNOTATIONS_DIR



@dataclass(frozen=True)
class Annotation:
    label: str
    box: tuple[float, float, float, float]
    source: str
    score: float
    origin: str  # "<annotation file key>#<index>", for error messages

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Annotation":
        return cls(data["label"], tuple(data["box"]), data["source"], data["score"], data["origin"])


@dataclass
class Problem:
    """An annotation that cannot be used: `key` is the image it names, or the file itself."""

    key: str
    reason: str


class AnnotationError(ValueError):
    pass


def is_annotation_file(key: str) -> bool:
    return key.startswith(ANNOTATIONS_DIR) and key.lower().endswith(".json")


class KeyResolver:
    """Finds the dataset key an annotation's file name means."""

    def __init__(self, keys):
        self.keys = set(keys)
        by_base = defaultdict(list)
        for key in self.keys:
            by_base[posixpath.basename(key)].append(key)
        self.by_base = {base: found[0] for base, found in by_base.items() if len(found) == 1}

    def resolve(self, name: str) -> str | None:
        name = name.lstrip("./")
        if name in self.keys:
            return name
        return self.by_base.get(posixpath.basename(name))


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnnotationError(f"{what} is {value!r}, not a number")
    return float(value)


def _score(item: dict, what: str) -> tuple[str, float]:
    if item.get("score") is None:
        return GROUND_TRUTH, 0.0
    return PREDICTION, _number(item["score"], f"{what} score")


def parse(file_key: str, data: bytes, resolver: KeyResolver) -> tuple[dict[str, list[Annotation]], list[Problem]]:
    """The boxes one annotation file gives each image, and what could not be used.
    Raises AnnotationError when the file as a whole is unreadable."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnnotationError(f"not valid JSON: {error}") from error
    if isinstance(document, dict) and "images" in document and "annotations" in document:
        return _parse_coco(file_key, document, resolver)
    if isinstance(document, list) and all(isinstance(frame, dict) and "name" in frame for frame in document):
        return _parse_bdd(file_key, document, resolver)
    raise AnnotationError("neither COCO detection JSON (images, annotations) nor BDD100K labels (a list of frames)")


def _parse_coco(file_key, document, resolver):
    boxes, problems = defaultdict(list), []
    categories = {c.get("id"): str(c.get("name", c.get("id"))) for c in document.get("categories") or []
                  if isinstance(c, dict)}
    images = {}
    for image in document["images"]:
        if isinstance(image, dict) and "id" in image and isinstance(image.get("file_name"), str):
            images[image["id"]] = image["file_name"]
    keys = {image_id: resolver.resolve(name) for image_id, name in images.items()}
    for index, item in enumerate(document["annotations"]):
        origin = f"{file_key}#{index}"
        if not isinstance(item, dict):
            problems.append(Problem(file_key, f"annotation {index} is not an object"))
            continue
        image_id = item.get("image_id")
        if image_id not in images:
            problems.append(Problem(file_key, f"annotation {index} names image_id {image_id!r}, not in images"))
            continue
        key = keys[image_id]
        if key is None:
            problems.append(Problem(images[image_id], f"{origin}: no image {images[image_id]!r} in the dataset"))
            continue
        try:
            bbox = item.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise AnnotationError(f"bbox is {bbox!r}, not [x, y, width, height]")
            x, y, w, h = (_number(v, "bbox") for v in bbox)
            label = categories.get(item.get("category_id"), str(item.get("category_id")))
            source, score = _score(item, "annotation")
        except AnnotationError as error:
            problems.append(Problem(key, f"{origin}: {error}"))
            continue
        boxes[key].append(Annotation(label, (x, y, x + w, y + h), source, score, origin))
    return dict(boxes), problems


def _parse_bdd(file_key, frames, resolver):
    boxes, problems = defaultdict(list), []
    for frame_index, frame in enumerate(frames):
        key = resolver.resolve(str(frame["name"]))
        if key is None:
            problems.append(Problem(str(frame["name"]), f"{file_key}: no image {frame['name']!r} in the dataset"))
            continue
        for index, label in enumerate(frame.get("labels") or []):
            origin = f"{file_key}#{frame_index}.{index}"
            if not isinstance(label, dict) or "box2d" not in label:
                continue  # lane and drivable-area labels carry no box
            try:
                box = label["box2d"]
                if not isinstance(box, dict):
                    raise AnnotationError(f"box2d is {box!r}")
                x1, y1, x2, y2 = (_number(box.get(k), f"box2d.{k}") for k in ("x1", "y1", "x2", "y2"))
                source, score = _score(label, "label")
            except AnnotationError as error:
                problems.append(Problem(key, f"{origin}: {error}"))
                continue
            boxes[key].append(Annotation(str(label.get("category", "")), (x1, y1, x2, y2), source, score, origin))
    return dict(boxes), problems


def fingerprint(annotations: list[Annotation]) -> str:
    """Changes whenever an image's boxes do, so the image is re-indexed."""
    if not annotations:
        return ""
    text = json.dumps(sorted((a.label, a.box, a.source, a.score) for a in annotations))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
