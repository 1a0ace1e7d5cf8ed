"""A result set as a file: JSON lines, CSV, or a COCO subset (the images and their boxes)
that FiftyOne and most training code load directly.

Pure functions of the API's search results: the CLI writes them itself, the gateway serves
them at POST /v1/search/export, and the web app's Export button asks the gateway.
"""

import csv
import io
import json
from collections.abc import Sequence

from vizsearch.models import SearchResult

# format -> (media type, file extension)
FORMATS = {"jsonl": ("application/x-ndjson", "jsonl"), "csv": ("text/csv", "csv"), "coco": ("application/json", "json")}
CSV_COLUMNS = ("rank", "dataset", "key", "score", "width", "height", "url", "label", "source", "box_x1", "box_y1",
               "box_x2", "box_y2", "box_score", "detector_score")


def export(results: Sequence[SearchResult], format: str) -> bytes:
    """The results, best first, in one of FORMATS."""
    if format == "jsonl":
        return "".join(result.model_dump_json() + "\n" for result in results).encode()
    if format == "csv":
        return to_csv(results).encode()
    if format == "coco":
        return json.dumps(to_coco(results), indent=1).encode()
    raise ValueError(f"format is {format!r}: give one of {', '.join(FORMATS)}")


def to_csv(results: Sequence[SearchResult]) -> str:
    """A row per box (its image's columns repeated), or one row for an image without boxes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rank, result in enumerate(results, 1):
        image = [rank, result.dataset, result.key, f"{result.score:.6f}", result.width, result.height, result.url]
        if not result.objects:
            writer.writerow(image + [""] * (len(CSV_COLUMNS) - len(image)))
        for box in result.objects:
            detector = "" if box.detector_score is None else f"{box.detector_score:.6f}"
            writer.writerow(image + [box.label, box.source, *(f"{v:.2f}" for v in box.box), f"{box.score:.6f}",
                                     detector])
    return out.getvalue()


def to_coco(results: Sequence[SearchResult]) -> dict:
    """COCO's object-detection layout. file_name is the key, relative to the dataset's folder,
    when every result is of one dataset, else dataset/key; coco_url is the gateway's image
    URL. Boxes become annotations ([x, y, width, height]); a predicted box keeps its
    detector's score, and every box its similarity to the query as vizsearch_score."""
    one_dataset = len({r.dataset for r in results}) <= 1
    labels = sorted({box.label for r in results for box in r.objects})
    category = {label: i for i, label in enumerate(labels, 1)}
    images, annotations = [], []
    for image_id, result in enumerate(results, 1):
        images.append({"id": image_id, "file_name": result.key if one_dataset else f"{result.dataset}/{result.key}",
                       "width": result.width, "height": result.height, "coco_url": result.url,
                       "vizsearch_dataset": result.dataset, "vizsearch_score": result.score})
        for box in result.objects:
            x1, y1, x2, y2 = box.box
            annotation = {"id": len(annotations) + 1, "image_id": image_id, "category_id": category[box.label],
                          "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                          "vizsearch_source": box.source, "vizsearch_score": box.score}
            if box.detector_score is not None:
                annotation["score"] = box.detector_score
            annotations.append(annotation)
    return {"info": {"description": "vizsearch results", "version": "1.0"}, "images": images,
            "annotations": annotations, "categories": [{"id": i, "name": n, "supercategory": ""}
                                                        for n, i in category.items()]}
