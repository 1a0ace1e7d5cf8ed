"""A BDD-like detection dataset, generated: street scenes (sky, roadside, road, in
varied colours and light) with 1 to 5 objects drawn from the Noto Color Emoji font
(real artwork: Debian's fonts-noto-color-emoji), their boxes as COCO JSON under
`_annotations/`, and a caption per image. Deterministic for a seed; image i depends
only on (seed, i), so a larger set extends a smaller one.

    python -m model.demo_data --out ./demo --images 500 --seed 0
"""

import argparse
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vizsearch.names import ANNOTATIONS_DIR

WIDTH, HEIGHT = 640, 384
EMOJI_FONT_SIZE = 109  # the only size the bitmap font has
MAX_TRIES = 20
FONT_PATHS = ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",)
# class -> (emoji, where it stands: "road" or "side", relative size range)
CLASSES = {
    "car": ("\U0001F697", "road", (0.12, 0.26)),
    "taxi": ("\U0001F695", "road", (0.12, 0.26)),
    "bus": ("\U0001F68C", "road", (0.18, 0.34)),
    "truck": ("\U0001F69A", "road", (0.16, 0.32)),
    "bicycle": ("\U0001F6B2", "road", (0.08, 0.18)),
    "motorcycle": ("\U0001F3CD\ufe0f", "road", (0.09, 0.2)),
    "pedestrian": ("\U0001F6B6", "side", (0.08, 0.18)),
    "traffic light": ("\U0001F6A6", "side", (0.08, 0.16)),
    "stop sign": ("\U0001F6D1", "side", (0.07, 0.14)),
    "dog": ("\U0001F415", "side", (0.07, 0.15)),
}
LIGHTS = {"day": (1.0, (0, 0, 0)), "dusk": (0.7, (40, 10, -20)), "night": (0.35, (-10, -10, 25))}
SKIES = {"day": ((110, 170, 235), (190, 220, 250)), "dusk": ((250, 150, 90), (120, 90, 160)),
         "night": ((10, 15, 40), (40, 45, 80))}


class MissingFont(RuntimeError):
    pass


@dataclass(frozen=True)
class Placed:
    label: str
    box: tuple[int, int, int, int]  # x1, y1, x2, y2


def font_path() -> str:
    for path in (os.environ.get("VIZSEARCH_EMOJI_FONT", ""), *FONT_PATHS):
        if path and Path(path).is_file():
            return path
    raise MissingFont("the Noto Color Emoji font is missing: apt-get install fonts-noto-color-emoji "
                      "(or set VIZSEARCH_EMOJI_FONT to NotoColorEmoji.ttf)")


def emoji_sprites() -> dict[str, Image.Image]:
    """Each class's emoji as an RGBA image cropped to its visible pixels."""
    font = ImageFont.truetype(font_path(), EMOJI_FONT_SIZE)
    sprites = {}
    for label, (text, _, _) in CLASSES.items():
        canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((10, 10), text, font=font, embedded_color=True)
        sprites[label] = canvas.crop(canvas.getbbox())
    return sprites


def _background(rng: np.random.Generator, light: str) -> tuple[Image.Image, int, int]:
    """Sky, a roadside band and a road with lane marks; returns the image and where
    the roadside and the road begin (y)."""
    horizon = int(HEIGHT * rng.uniform(0.32, 0.45))
    road_top = horizon + int(HEIGHT * rng.uniform(0.1, 0.16))
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    top, bottom = (np.array(c, np.float32) for c in SKIES[light])
    t = np.linspace(0, 1, horizon)[:, None]
    pixels[:horizon] = (top * (1 - t) + bottom * t)[:, None, :]
    side = rng.choice([(90, 140, 70), (150, 140, 120), (120, 120, 125), (170, 160, 130)])
    pixels[horizon:road_top] = np.array(side, np.float32) + rng.normal(0, 8, (road_top - horizon, WIDTH, 3))
    asphalt = rng.uniform(70, 110)
    pixels[road_top:] = asphalt + rng.normal(0, 5, (HEIGHT - road_top, WIDTH, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    lane_y = (road_top + HEIGHT) // 2
    for x in range(int(rng.integers(0, 60)), WIDTH, 90):
        draw.rectangle([x, lane_y - 3, x + 45, lane_y + 3], fill=(235, 225, 160))
    return image, horizon, road_top


def _relight(image: Image.Image, light: str) -> Image.Image:
    scale, tint = LIGHTS[light]
    pixels = np.asarray(image, np.float32) * scale + np.array(tint, np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def scene(seed: int, index: int, sprites: dict[str, Image.Image]) -> tuple[Image.Image, list[Placed], str]:
    """Image `index` of the dataset of `seed`: the picture, its objects, its lighting."""
    rng = np.random.default_rng([seed, index])
    light = str(rng.choice(list(LIGHTS), p=[0.5, 0.2, 0.3]))
    image, horizon, road_top = _background(rng, light)
    labels = list(rng.choice(list(CLASSES), size=int(rng.integers(1, 6))))
    placed: list[Placed] = []
    for label in sorted(labels, key=lambda name: CLASSES[name][1] == "road"):  # roadside first, road in front
        _, where, (low, high) = CLASSES[label]
        sprite = sprites[label]
        side = int(WIDTH * rng.uniform(low, high))
        scale = side / max(sprite.size)
        w, h = max(8, int(sprite.width * scale)), max(8, int(sprite.height * scale))
        for _ in range(MAX_TRIES):  # where it hides no more than a third of another object
            if where == "road":
                bottom = int(rng.uniform(road_top + h * 0.6, HEIGHT))
            else:
                bottom = int(rng.uniform(horizon + 4, road_top + 6))
            x1 = int(rng.integers(0, WIDTH - w))
            y1 = max(0, bottom - h)
            box = (x1, y1, x1 + w, min(HEIGHT, y1 + h))
            if all(_covered(other.box, box) <= 1 / 3 for other in placed):
                break
        else:
            continue
        if rng.random() < 0.5:
            sprite = sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        resized = sprite.resize((w, h), Image.Resampling.LANCZOS)
        image.paste(resized, (x1, y1), resized)
        placed.append(Placed(label, box))
    return _relight(image, light), placed, light


def _covered(below, above) -> float:
    """The share of box `below` that box `above` covers."""
    w = max(0, min(below[2], above[2]) - max(below[0], above[0]))
    h = max(0, min(below[3], above[3]) - max(below[1], above[1]))
    return w * h / ((below[2] - below[0]) * (below[3] - below[1]))


WHEN = {"day": "during the day", "dusk": "at dusk", "night": "at night"}


def things(names: list[str]) -> str:
    """'a taxi, a bus and an umbrella'."""
    words = [("an " if n[0] in "aeiou" else "a ") + n for n in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def caption(placed: list[Placed], light: str) -> str:
    names = []
    for p in placed:
        if p.label not in names:
            names.append(p.label)
    return f"{things(names)} on a road {WHEN[light]}"


def generate(out: Path, images: int, seed: int, quality: int = 90) -> dict:
    """Writes images/, _annotations/instances.json (COCO detection) and captions.json (COCO
    captions) under `out`."""
    sprites = emoji_sprites()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / ANNOTATIONS_DIR).mkdir(exist_ok=True)
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)]
    category_ids = {c["name"]: c["id"] for c in categories}
    coco = {"info": {"description": f"vizsearch demo street scenes, seed {seed}"},
            "images": [], "annotations": [], "categories": categories}
    captions = []
    for i in range(images):
        picture, placed, light = scene(seed, i, sprites)
        name = f"images/{i:05d}.jpg"
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality)
        (out / name).write_bytes(buffer.getvalue())
        coco["images"].append({"id": i + 1, "file_name": name, "width": WIDTH, "height": HEIGHT})
        for p in placed:
            x1, y1, x2, y2 = p.box
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": i + 1,
                                        "category_id": category_ids[p.label], "bbox": [x1, y1, x2 - x1, y2 - y1],
                                        "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        captions.append({"id": i + 1, "image_id": i + 1, "caption": caption(placed, light)})
    (out / ANNOTATIONS_DIR / "instances.json").write_text(json.dumps(coco))
    # COCO's captions format, as in captions_val2017.json; outside _annotations/, which holds boxes.
    (out / "captions.json").write_text(json.dumps({"images": coco["images"], "annotations": captions}, indent=1))
    return coco


def swap_labels(coco: dict, fraction: float, seed: int) -> list[dict]:
    """Gives `fraction` of the annotations (chosen at random) another class, in place: a
    dataset with known label errors. Returns the changed annotations."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(coco["annotations"]), size=round(len(coco["annotations"]) * fraction), replace=False)
    category_ids = [c["id"] for c in coco["categories"]]
    swapped = []
    for index in sorted(chosen):
        annotation = coco["annotations"][index]
        annotation["category_id"] = int(rng.choice([c for c in category_ids if c != annotation["category_id"]]))
        swapped.append(annotation)
    return swapped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.demo_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        coco = generate(args.out, args.images, args.seed)
    except MissingFont as error:
        print(error, file=sys.stderr)
        return 1
    print(f"wrote {len(coco['images'])} images with {len(coco['annotations'])} boxes to {args.out} "
          f"(images/, _annotations/instances.json, captions.json)\n"
          f"next: vizsearch ingest {args.out} --dataset demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
