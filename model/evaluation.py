"""Retrieval quality of a running vizsearch, measured through the gateway's public API.

    python -m model.evaluation                      # generated held-out demo sets (make eval)
    python -m model.evaluation --data DIR --name coco [--captions FILE]

Without --data, two generated sets the demo model never trained on: the classic demo
style (seed 1), and a shifted one whose glyphs and generator settings all lie outside
the training ranges (seed 2; model/demo_data.py's STYLES). Each dataset (or DIR:
images plus COCO detection JSON under `_annotations/`) is uploaded twice: with its annotations, and without them (image
entries only), then indexed by the stack (workers, Triton, Milvus). Then, through
the gateway:
- text->image: "a photo of a {class}" per class: precision@10, recall@50 and average
  precision (over the first 1,000 results) against the annotated boxes;
- caption->image (when captions exist, COCO's format): Recall@1/5/10 of the image
  a caption describes, the protocol of CLIP's published COCO figures;
- image->image: precision@10 of results sharing a class with the query image;
- object->image: precision@10 of results holding an object of the query box's class,
  over object entries, and over image entries when annotations are withheld;
- duplicates: an exact copy, and a re-encoded (JPEG quality 60) and resized copy,
  of an indexed image find the original at rank 1.
A query image never counts among its own results. Prints a table and writes JSON.
"""

import argparse
import io
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from model.metrics import average_precision, precision_at, recall_at
from vizsearch import cli
from vizsearch.client import Client, image_spec
from vizsearch.names import ANNOTATIONS_DIR

# Targets for the demo model on generated held-out sets: the classic style, and the
# shifted one (glyphs and generator settings it never trained on).
TARGETS = {"text_to_image.precision_at_10": 0.8, "object_to_image.precision_at_10": 0.8,
           "duplicates.near_rank1": 0.98}
SHIFTED_TARGETS = {"text_to_image.precision_at_10": 0.8, "object_to_image.precision_at_10": 0.8}
MAX_TOP_K = 1000


@dataclass
class GroundTruth:
    """What the annotations say: each image key's classes and boxes, and its captions."""

    classes: list[str]
    labels: dict[str, set[str]] = field(default_factory=dict)  # key -> classes in it
    boxes: list[tuple[str, str, list[float]]] = field(default_factory=list)  # key, class, [x1, y1, x2, y2]
    captions: list[tuple[str, str]] = field(default_factory=list)  # caption, key


def _key_of(file_names: list[str], keys: set[str]) -> dict[str, str]:
    """A COCO file_name -> the dataset key holding it (the same path, or the one key with its name)."""
    by_name = Counter(Path(k).name for k in keys)
    named = {Path(k).name: k for k in keys}
    found = {}
    for name in file_names:
        if name in keys:
            found[name] = name
        elif by_name[Path(name).name] == 1:
            found[name] = named[Path(name).name]
    return found


def load_ground_truth(folder: Path, captions_file: Path | None) -> GroundTruth:
    keys = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and not p.relative_to(folder).as_posix().startswith(ANNOTATIONS_DIR)}
    detections = sorted((folder / ANNOTATIONS_DIR).glob("*.json"))
    if not detections:
        raise SystemExit(f"no COCO detection JSON under {folder / ANNOTATIONS_DIR}")
    truth = GroundTruth(classes=[])
    for path in detections:
        coco = json.loads(path.read_text())
        names = {c["id"]: c["name"] for c in coco["categories"]}
        truth.classes += [n for n in names.values() if n not in truth.classes]
        key_of = _key_of([i["file_name"] for i in coco["images"]], keys)
        image_key = {i["id"]: key_of.get(i["file_name"]) for i in coco["images"]}
        for key in image_key.values():
            if key:
                truth.labels.setdefault(key, set())
        for a in coco["annotations"]:
            key = image_key.get(a["image_id"])
            if key and not a.get("iscrowd"):
                x, y, w, h = a["bbox"]
                truth.labels[key].add(names[a["category_id"]])
                truth.boxes.append((key, names[a["category_id"]], [x, y, x + w, y + h]))
    if captions_file and captions_file.is_file():
        coco = json.loads(captions_file.read_text())
        key_of = _key_of([i["file_name"] for i in coco["images"]], keys)
        image_key = {i["id"]: key_of.get(i["file_name"]) for i in coco["images"]}
        truth.captions = [(a["caption"].strip(), image_key[a["image_id"]]) for a in coco["annotations"]
                          if image_key.get(a["image_id"])]
    return truth


def spread(items: list, count: int) -> list:
    """`count` items evenly spaced through `items` (deterministic)."""
    if len(items) <= count:
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def ingest(client: Client, folder: Path, dataset: str, with_annotations: bool) -> None:
    include = (lambda key: True) if with_annotations else (lambda key: not key.startswith(ANNOTATIONS_DIR))
    sent, kept = cli.upload(client, folder, dataset, threads=8, include=include)
    print(f"{dataset}: uploaded {sent} files ({kept} already there)", flush=True)
    job = cli.follow(client, client.scan(dataset).id)
    if job.state == "failed":
        raise SystemExit(f"indexing {dataset} failed: {job.error}")
    print(f"{dataset}: {job.state}: {job.done} indexed, {job.skipped} unchanged, {job.failed} failed, "
          f"{job.objects} objects", flush=True)


def ranked_keys(client: Client, query: dict, dataset: str, top_k: int, level: str, exclude: str = "") -> list[str]:
    reply = client.search(query, datasets=[dataset], top_k=min(MAX_TOP_K, top_k + bool(exclude)), level=level)
    return [hit.key for hit in reply.results if hit.key != exclude][:top_k]


def near_duplicate(data: bytes, scale: float = 0.75, quality: int = 60) -> bytes:
    with Image.open(io.BytesIO(data)) as picture:
        picture = picture.convert("RGB")
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        buffer = io.BytesIO()
        picture.resize(size, Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def evaluate(client: Client, folder: Path, truth: GroundTruth, dataset: str, bare_dataset: str,
             queries: int = 50, duplicate_queries: int = 100, max_captions: int | None = None,
             targets: dict[str, float] = TARGETS) -> dict:
    keys = sorted(truth.labels)
    depth = min(MAX_TOP_K, len(keys))
    report: dict = {"model": client.model().model_dump(), "dataset": dataset, "images": len(keys),
                    "boxes": len(truth.boxes), "classes": len(truth.classes)}

    per_class = {}
    for name in _progress(truth.classes, "text->image"):
        total = sum(name in labels for labels in truth.labels.values())
        if not total:
            continue
        ranked = ranked_keys(client, {"text": f"a photo of a {name}"}, dataset, depth, "images")
        relevant = [name in truth.labels.get(k, ()) for k in ranked]
        per_class[name] = {"precision_at_10": precision_at(relevant, 10), "recall_at_50": recall_at(relevant, 50, total),
                           "average_precision": average_precision(relevant, total), "relevant": total}
    report["text_to_image"] = {**_means(per_class.values(), ("precision_at_10", "recall_at_50")),
                               "map": _mean([c["average_precision"] for c in per_class.values()]),
                               "queries": len(per_class), "per_class": per_class}

    if truth.captions:
        ranks = []
        for text, key in _progress(truth.captions[:max_captions], "caption->image"):
            ranked = ranked_keys(client, {"text": text}, dataset, 10, "images")
            ranks.append(ranked.index(key) + 1 if key in ranked else None)
        report["caption_to_image"] = {f"recall_at_{k}": _mean([r is not None and r <= k for r in ranks])
                                      for k in (1, 5, 10)} | {"queries": len(ranks)}

    image_p10 = []
    for key in _progress(spread([k for k in keys if truth.labels[k]], queries), "image->image"):
        ranked = ranked_keys(client, {"image": {"dataset": dataset, "key": key}}, dataset, 10, "images", exclude=key)
        image_p10.append(precision_at([bool(truth.labels[key] & truth.labels.get(k, set())) for k in ranked], 10))
    report["image_to_image"] = {"precision_at_10": _mean(image_p10), "queries": len(image_p10)}

    for name, target, level in (("object_to_image", dataset, "objects"),
                                ("object_to_image_without_annotations", bare_dataset, "images")):
        scores = []
        for key, label, box in _progress(spread(truth.boxes, queries), name.replace("_to_", "->")):
            query = {"object": {"dataset": target, "key": key, "box": box}}
            ranked = ranked_keys(client, query, target, 10, level, exclude=key)
            scores.append(precision_at([label in truth.labels.get(k, ()) for k in ranked], 10))
        report[name] = {"precision_at_10": _mean(scores), "queries": len(scores), "level": level}

    exact, near = [], []
    for key in _progress(spread(keys, duplicate_queries), "duplicates"):
        data = (folder / key).read_bytes()
        for found, copy in ((exact, data), (near, near_duplicate(data))):
            found.append(ranked_keys(client, {"image": image_spec(copy)}, dataset, 1, "images") == [key])
    report["duplicates"] = {"exact_rank1": _mean(exact), "near_rank1": _mean(near), "queries": len(near),
                            "near_copy": "resized to 75% and re-encoded as JPEG quality 60"}
    report["targets"] = {name: {"value": _lookup(report, name), "target": target,
                                "met": _lookup(report, name) >= target} for name, target in targets.items()}
    return report


def _progress(items: list, task: str):
    """A progress bar on a terminal, nothing in a log."""
    return tqdm(items, desc=task, unit="query", disable=None, leave=False)


def _mean(values) -> float:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else 0.0


def _means(rows, names) -> dict:
    rows = list(rows)
    return {name: _mean(r[name] for r in rows) for name in names}


def _lookup(report: dict, dotted: str) -> float:
    section, name = dotted.split(".")
    return report[section][name]


def table(report: dict) -> str:
    lines = [f"model {report['model']['model_id']} (version {report['model']['version']}), dataset "
             f"{report['dataset']}: {report['images']} images, {report['boxes']} boxes, {report['classes']} classes",
             f"{'task':38} {'metric':18} {'value':>7} {'target':>7}"]
    targets = {name: t["target"] for name, t in report["targets"].items()}
    for section in ("text_to_image", "caption_to_image", "image_to_image", "object_to_image",
                    "object_to_image_without_annotations", "duplicates"):
        for metric, value in report.get(section, {}).items():
            if isinstance(value, float):
                target = targets.get(f"{section}.{metric}")
                mark = "" if target is None else f"{target:7.2f}" + (" ok" if value >= target else " MISSED")
                lines.append(f"{section:38} {metric:18} {value:7.3f} {mark}")
    lines.append("text_to_image per class (precision@10 / recall@50 / AP):")
    for name, row in report["text_to_image"]["per_class"].items():
        lines.append(f"  {name:24} {row['precision_at_10']:.2f} / {row['recall_at_50']:.2f} / "
                     f"{row['average_precision']:.2f}  ({row['relevant']} images)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("VIZSEARCH_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--api-key", default=os.environ.get("VIZSEARCH_API_KEY"))
    parser.add_argument("--data", type=Path, help="a dataset folder with COCO boxes under _annotations/ "
                                                    "(default: generate a demo set)")
    parser.add_argument("--captions", type=Path, help="COCO captions JSON (default: DATA/captions.json if present)")
    parser.add_argument("--name", default="", help="dataset name (needed with --data)")
    parser.add_argument("--images", type=int, default=500, help="size of each generated set")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated classic set (the demo model "
                                                            "trained on seed 1000: any other is held out)")
    parser.add_argument("--shifted-seed", type=int, default=2, help="seed of the generated shifted set")
    parser.add_argument("--cache", type=Path, default=Path(".run/eval"), help="where generated sets are kept")
    parser.add_argument("--queries", type=int, default=50, help="image and object queries")
    parser.add_argument("--duplicate-queries", type=int, default=100)
    parser.add_argument("--max-captions", type=int, help="caption queries at most (default: all)")
    parser.add_argument("--out", type=Path, default=Path("eval.json"))
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    if args.data is None:
        sets = generated_sets(args.cache, args.images, args.seed, args.shifted_seed)
    elif not args.name:
        parser.error("--data needs --name")
    else:
        sets = [(args.name, args.data, args.name, args.captions or args.data / "captions.json", TARGETS)]
    reports = {}
    with Client(args.url, args.api_key, timeout_s=120) as client:
        for label, folder, name, captions, targets in sets:
            truth = load_ground_truth(folder, captions)
            ingest(client, folder, name, with_annotations=True)
            ingest(client, folder, f"{name}-bare", with_annotations=False)
            reports[label] = evaluate(client, folder, truth, name, f"{name}-bare", args.queries,
                                      args.duplicate_queries, args.max_captions, targets)
    for label, report in reports.items():
        print(f"== {label}\n{table(report)}")
    args.out.write_text(json.dumps(reports, indent=2) + "\n")
    print(f"wrote {args.out}")
    missed = [n for report in reports.values() for n, t in report["targets"].items() if not t["met"]]
    return 1 if args.check and missed else 0


def generated_sets(cache: Path, images: int, seed: int, shifted_seed: int) -> list[tuple]:
    """The held-out classic set and the shifted one, generated into `cache` once:
    (label, folder, dataset name, captions file, targets) each."""
    from model import demo_data

    sets = []
    for label, style, set_seed, targets in (("held_out", "classic", seed, TARGETS),
                                            ("shifted", "shifted", shifted_seed, SHIFTED_TARGETS)):
        tag = "" if style == "classic" else f"{style}-"
        folder = cache / f"demo-{tag}s{set_seed}-{images}"
        if not (folder / "captions.json").is_file():
            demo_data.generate(folder, images, set_seed, demo_data.STYLES[style])
        sets.append((label, folder, f"eval-demo-{tag}s{set_seed}-{images}", folder / "captions.json", targets))
    return sets


if __name__ == "__main__":
    sys.exit(main())
