"""A result set as a file: JSON lines, CSV, or a COCO subset (the images and their boxes)
that FiftyOne and most training code load directly. The result sets: a search's results,
a duplicates job's groups (JSON lines or CSV: they have no boxes), a suspect-labels job's
suspects.

Pure functions of the API's models: the CLI writes them itself, the gateway serves them
(POST /v1/search/export, GET /v1/datasets/{name}/duplicates/export and .../suspects/export),
and the web app's Export menus ask the gateway.
"""

import csv
import io
import json
from collections.abc import Sequence

from vizsearch.models import DuplicateGroup, MapPoint, SearchResult, SuspectLabel

# format -> (media type, file extension)
FORMATS = {"jsonl": ("application/x-ndjson", "jsonl"), "csv": ("text/csv", "csv"), "coco": ("application/json", "json")}
CSV_COLUMNS = ("rank", "dataset", "key", "score", "width", "height", "url", "label", "source", "box_x1", "box_y1",
               "box_x2", "box_y2", "box_score", "detector_score")
GROUP_CSV_COLUMNS = ("group", "images", "exact", "min_similarity", "max_similarity", "dataset", "key", "url")
SUSPECT_CSV_COLUMNS = ("rank", "dataset", "key", "width", "height", "url", "box_x1", "box_y1", "box_x2", "box_y2",
                       "label", "suggested_label", "agreement", "voters")
GROUP_FORMATS = ("jsonl", "csv")
POINT_CSV_COLUMNS = ("x", "y", "dataset", "key", "labels", "box_x1", "box_y1", "box_x2", "box_y2")


def export(results: Sequence[SearchResult], format: str) -> bytes:
    """The results, best first, in one of FORMATS."""
    if format == "jsonl":
        return _json_lines(results)
    if format == "csv":
        return to_csv(results).encode()
    if format == "coco":
        return json.dumps(to_coco(results), indent=1).encode()
    raise ValueError(f"format is {format!r}: give one of {', '.join(FORMATS)}")


def export_groups(groups: Sequence[DuplicateGroup], format: str) -> bytes:
    """Duplicate groups, largest first: a group per JSON line, or a CSV row per image."""
    if format == "jsonl":
        return _json_lines(groups)
    if format == "csv":
        rows = ([number, len(g.images), g.exact, f"{g.min_similarity:.6f}", f"{g.max_similarity:.6f}", i.dataset,
                 i.key, i.url] for number, g in enumerate(groups, 1) for i in g.images)
        return _csv(GROUP_CSV_COLUMNS, rows)
    raise ValueError(f"format is {format!r}: give one of {', '.join(GROUP_FORMATS)} (a group has no boxes for COCO)")


def export_suspects(suspects: Sequence[SuspectLabel], format: str) -> bytes:
    """Suspect labels, most certain first: a suspect per JSON line, a CSV row each, or COCO
    with each suspect box as an annotation of its current label (vizsearch_suggested_label
    and vizsearch_agreement beside it)."""
    if format == "jsonl":
        return _json_lines(suspects)
    if format == "csv":
        rows = ([rank, s.dataset, s.key, s.width, s.height, s.url, *(f"{v:.2f}" for v in s.box), s.label,
                 s.suggested_label, f"{s.agreement:.6f}", len(s.neighbours)] for rank, s in enumerate(suspects, 1))
        return _csv(SUSPECT_CSV_COLUMNS, rows)
    if format == "coco":
        return json.dumps(suspects_coco(suspects), indent=1).encode()
    raise ValueError(f"format is {format!r}: give one of {', '.join(FORMATS)}")


def export_points(points: Sequence[MapPoint], format: str) -> bytes:
    """A map's points: a JSON line each, or a CSV row each (labels joined by |)."""
    if format == "jsonl":
        return _json_lines(points)
    if format == "csv":
        rows = ([f"{p.x:.5f}", f"{p.y:.5f}", p.dataset, p.key, "|".join(p.labels),
                 *([f"{v:.2f}" for v in p.box] if p.box else [""] * 4)] for p in points)
        return _csv(POINT_CSV_COLUMNS, rows)
    raise ValueError(f"format is {format!r}: give one of {', '.join(GROUP_FORMATS)}")


def suspects_coco(suspects: Sequence[SuspectLabel]) -> dict:
    image_ids: dict[tuple[str, str], int] = {}
    images, annotations = [], []
    category = {label: i for i, label in enumerate(sorted({s.label for s in suspects}), 1)}
    for s in suspects:
        if (s.dataset, s.key) not in image_ids:
            image_ids[s.dataset, s.key] = len(images) + 1
            images.append({"id": len(images) + 1, "file_name": s.key, "width": s.width, "height": s.height,
                           "coco_url": s.url, "vizsearch_dataset": s.dataset})
        x1, y1, x2, y2 = s.box
        annotations.append({"id": len(annotations) + 1, "image_id": image_ids[s.dataset, s.key],
                            "category_id": category[s.label], "bbox": [x1, y1, x2 - x1, y2 - y1],
                            "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                            "vizsearch_suggested_label": s.suggested_label, "vizsearch_agreement": s.agreement})
    return {"info": {"description": "vizsearch suspect labels", "version": "1.0"}, "images": images,
            "annotations": annotations, "categories": [{"id": i, "name": n, "supercategory": ""}
                                                        for n, i in category.items()]}


def _json_lines(items) -> bytes:
    return "".join(item.model_dump_json() + "\n" for item in items).encode()


def _csv(columns: Sequence[str], rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode()


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
