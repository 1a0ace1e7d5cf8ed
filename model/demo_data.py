"""A BDD-like detection dataset, generated: street scenes (sky, roadside, road, in
varied colours and light) with objects drawn from the Noto Color Emoji font (real
artwork: Debian's fonts-noto-color-emoji), their boxes as COCO JSON under
`_annotations/`, and a caption per image. Deterministic for a seed and style; image i
depends only on (seed, i), so a larger set extends a smaller one.

    python -m model.demo_data --out ./demo --images 500 --seed 0 [--style classic]

STYLES holds the ranges scenes are drawn from: "classic" (the demo set: 640x384, 1 to
5 objects, each class's first glyph), "trained" (the demo model's training data: wider
ranges of everything, every glyph but the held-out ones) and "shifted" (a held-out set
with the held-out glyphs and every setting just outside the trained ranges).
"""

import argparse
import io
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vizsearch.names import ANNOTATIONS_DIR

WIDTH, HEIGHT = 640, 384  # the classic style's image size
EMOJI_FONT_SIZE = 109  # the only size the bitmap font has
MAX_TRIES = 20
FONT_PATHS = ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",)
TONES = ("", "\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF")
# class -> (every glyph the font draws it with, the classic one first; where it stands:
# "road" or "side"; relative size range): police and racing cars are cars, a fire engine
# is a truck, runners and a person with a white cane are pedestrians. Glyphs of a person
# riding a bike are left out: they are as much a pedestrian as a bicycle.
CLASSES = {
    "car": (("\U0001F697", "\U0001F698", "\U0001F693", "\U0001F694", "\U0001F3CE\ufe0f", "\U0001F699"), "road",
            (0.12, 0.26)),
    "taxi": (("\U0001F695", "\U0001F696"), "road", (0.12, 0.26)),
    "bus": (("\U0001F68C", "\U0001F68E", "\U0001F690", "\U0001F68D"), "road", (0.18, 0.34)),
    "truck": (("\U0001F69A", "\U0001F69B", "\U0001F692", "\U0001F6FB"), "road", (0.16, 0.32)),
    "bicycle": (("\U0001F6B2",), "road", (0.08, 0.18)),
    "motorcycle": (("\U0001F3CD\ufe0f", "\U0001F6F5"), "road", (0.09, 0.2)),
    "pedestrian": (tuple("\U0001F6B6" + tone for tone in TONES[:4])
                   + ("\U0001F6B6\u200d\u2642\ufe0f", "\U0001F9CD")
                   + tuple("\U0001F9CD" + tone for tone in TONES[1:]) + tuple("\U0001F3C3" + tone for tone in TONES)
                   + ("\U0001F9D1\u200d\U0001F9AF",)
                   + tuple("\U0001F6B6" + tone for tone in TONES[4:]) + ("\U0001F6B6\u200d\u2640\ufe0f",),
                   "side", (0.08, 0.18)),
    "traffic light": (("\U0001F6A6", "\U0001F6A5"), "side", (0.08, 0.16)),
    "stop sign": (("\U0001F6D1",), "side", (0.07, 0.14)),
    "dog": (("\U0001F415", "\U0001F436", "\U0001F429", "\U0001F415\u200d\U0001F9BA", "\U0001F9AE"), "side",
            (0.07, 0.15)),
}
# Glyphs the model never trains on, only the shifted style draws: the last of each class
# with more than one (the last three pedestrians: two skin tones and a woman walking).
# Bicycle and stop sign have one glyph each: their shifted scenes differ in all else.
HELD_OUT_GLYPHS = {label: glyphs[-3:] if label == "pedestrian" else glyphs[1:][-1:]
                   for label, (glyphs, _, _) in CLASSES.items()}
PAINTED = {"car", "bus", "truck", "motorcycle"}  # their paint may change colour (a taxi's may not)
# light -> (brightness, tint)
LIGHTS = {"day": (1.0, (0, 0, 0)), "dusk": (0.7, (40, 10, -20)), "night": (0.35, (-10, -10, 25)),
          "fog": (0.95, (0, 0, 0))}
SKIES = {"day": ((110, 170, 235), (190, 220, 250)), "dusk": ((250, 150, 90), (120, 90, 160)),
         "night": ((10, 15, 40), (40, 45, 80)), "fog": ((185, 188, 192), (210, 212, 215))}
HAZE = 190.0


@dataclass(frozen=True)
class Style:
    """The ranges a scene's settings are drawn from."""

    name: str
    glyphs: str  # "classic" (each class's first), "trained" (all but the held-out ones) or "held-out"
    sizes: tuple[tuple[int, int], ...]  # image (width, height) choices
    lights: tuple[tuple[str, float], ...]  # (light, probability)
    brightness: tuple[float, float]  # multiplies the light's brightness
    haze: tuple[float, float]  # how far the picture fades to grey
    horizon: tuple[float, float]  # share of the height above the horizon
    roadsides: tuple[tuple[int, int, int], ...]
    asphalt: tuple[float, float]
    objects: tuple[int, int]  # how many, inclusive
    object_scale: tuple[float, float]  # multiplies the class's size range
    rotation: tuple[float, float]  # degrees either way
    repaint: float  # chance a PAINTED vehicle's colour turns
    occluded: float  # chance something hides part of an object
    occlusion: tuple[float, float]  # how much of its box it hides
    quality: tuple[int, int]  # JPEG quality
    # Each glyph's own shape: its width times a factor of this range (log-uniform), and
    # slanted by up to this share of its height, so a drawing not in the font still looks
    # like its class.
    stretch: tuple[float, float] = (1.0, 1.0)
    shear: float = 0.0


_CLASSIC_SIDES = ((90, 140, 70), (150, 140, 120), (120, 120, 125), (170, 160, 130))
STYLES = {
    # What the demo set and the first held-out set have always been.
    "classic": Style("classic", "classic", ((WIDTH, HEIGHT),), (("day", 0.5), ("dusk", 0.2), ("night", 0.3)),
                     (1.0, 1.0), (0.0, 0.0), (0.32, 0.45), _CLASSIC_SIDES, (70, 110), (1, 5), (1.0, 1.0), (0.0, 0.0),
                     0.0, 0.0, (0.0, 0.0), (90, 90)),
    # The training ranges: they hold the classic ones.
    "trained": Style("trained", "trained", ((WIDTH, HEIGHT), (640, 360), (720, 405), (768, 384), (560, 350)),
                     (("day", 0.5), ("dusk", 0.2), ("night", 0.3)), (0.75, 1.2), (0.0, 0.25), (0.3, 0.48),
                     _CLASSIC_SIDES + ((60, 110, 60), (190, 180, 160)), (60, 120), (1, 6), (0.8, 1.25), (0.0, 12.0),
                     0.5, 0.3, (0.1, 0.3), (45, 95), stretch=(0.8, 1.25), shear=0.2),
    # Just outside the training ranges: glyphs never trained on, larger pictures in
    # other shapes, fog thicker than any haze trained on, a higher horizon, other
    # roadsides and a paler road, larger objects, more rotation and occlusion, harsher JPEG.
    "shifted": Style("shifted", "held-out", ((1024, 768), (1280, 720)), (("fog", 1.0),), (1.0, 1.0), (0.3, 0.4),
                     (0.25, 0.29), ((225, 228, 235), (150, 70, 55), (110, 90, 130)), (125, 140), (3, 7),
                     (1.25, 1.4), (12.0, 15.0), 0.0, 0.3, (0.3, 0.35), (30, 44)),
}
CLASSIC = STYLES["classic"]


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


def emoji_sprites() -> dict[str, dict[str, Image.Image]]:
    """Every glyph of each class (class -> glyph -> sprite) as an RGBA image cropped to
    its visible pixels."""
    font = ImageFont.truetype(font_path(), EMOJI_FONT_SIZE)
    sprites: dict[str, dict[str, Image.Image]] = {}
    for label, (glyphs, _, _) in CLASSES.items():
        sprites[label] = {}
        for glyph in glyphs:
            canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
            ImageDraw.Draw(canvas).text((10, 10), glyph, font=font, embedded_color=True)
            sprites[label][glyph] = canvas.crop(canvas.getbbox())
    return sprites


def glyphs_of(label: str, style: Style) -> tuple[str, ...]:
    glyphs = CLASSES[label][0]
    if style.glyphs == "classic":
        return glyphs[:1]
    held_out = HELD_OUT_GLYPHS[label]
    if style.glyphs == "held-out":
        return held_out or glyphs
    return tuple(g for g in glyphs if g not in held_out)


def _background(rng: np.random.Generator, light: str, style: Style, size: tuple[int, int]
                ) -> tuple[Image.Image, int, int]:
    """Sky, a roadside band and a road with lane marks; returns the image and where
    the roadside and the road begin (y)."""
    width, height = size
    horizon = int(height * rng.uniform(*style.horizon))
    road_top = horizon + int(height * rng.uniform(0.1, 0.16))
    pixels = np.zeros((height, width, 3), np.float32)
    top, bottom = (np.array(c, np.float32) for c in SKIES[light])
    t = np.linspace(0, 1, horizon)[:, None]
    pixels[:horizon] = (top * (1 - t) + bottom * t)[:, None, :]
    side = rng.choice(style.roadsides)
    pixels[horizon:road_top] = np.array(side, np.float32) + rng.normal(0, 8, (road_top - horizon, width, 3))
    asphalt = rng.uniform(*style.asphalt)
    pixels[road_top:] = asphalt + rng.normal(0, 5, (height - road_top, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    lane_y = (road_top + height) // 2
    for x in range(int(rng.integers(0, 60)), width, 90):
        draw.rectangle([x, lane_y - 3, x + 45, lane_y + 3], fill=(235, 225, 160))
    return image, horizon, road_top


def _relight(image: Image.Image, light: str, brightness: float, haze: float) -> Image.Image:
    scale, tint = LIGHTS[light]
    pixels = np.asarray(image, np.float32) * (scale * brightness) + np.array(tint, np.float32)
    if haze:
        pixels = pixels * (1 - haze) + HAZE * haze
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _repainted(sprite: Image.Image, turn: int) -> Image.Image:
    """The sprite with every hue turned by `turn` (of 256): another paint, grey parts unchanged."""
    hsv = np.array(sprite.convert("RGB").convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + turn) % 256
    painted = Image.fromarray(hsv, "HSV").convert("RGB")
    painted.putalpha(sprite.getchannel("A"))
    return painted


def _sprite(label: str, sprites: dict[str, dict[str, Image.Image]], style: Style,
            extra: np.random.Generator) -> Image.Image:
    """One of the style's glyphs for `label`, maybe repainted, stretched, slanted and rotated."""
    sprite = sprites[label][str(extra.choice(glyphs_of(label, style)))]
    # A turn of 60..235 never paints a red car taxi-yellow.
    if label in PAINTED and extra.random() < style.repaint:
        sprite = _repainted(sprite, int(extra.integers(60, 236)))
    if style.stretch != (1.0, 1.0):
        factor = math.exp(extra.uniform(*(math.log(v) for v in style.stretch)))
        sprite = sprite.resize((max(1, round(sprite.width * factor)), sprite.height), Image.Resampling.BICUBIC)
    if style.shear > 0:
        slant = extra.uniform(-style.shear, style.shear)
        width = sprite.width + math.ceil(abs(slant) * sprite.height)
        # x_source = x + slant * y - offset: the top or bottom edge moves sideways.
        offset = max(0.0, slant * sprite.height)
        sprite = sprite.transform((width, sprite.height), Image.Transform.AFFINE, (1, slant, -offset, 0, 1, 0),
                                  Image.Resampling.BICUBIC)
        sprite = sprite.crop(sprite.getbbox())
    if style.rotation[1] > 0:
        angle = extra.uniform(*style.rotation) * extra.choice((-1, 1))
        sprite = sprite.rotate(angle, Image.Resampling.BICUBIC, expand=True)
        sprite = sprite.crop(sprite.getbbox())
    return sprite


def _occlude(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], share: float,
             extra: np.random.Generator) -> None:
    """Something flat (a post, a hedge, a parked thing) hiding `share` of the box from one side."""
    x1, y1, x2, y2 = box
    colour = tuple(int(c) for c in extra.integers(30, 200, 3))
    side = str(extra.choice(("left", "right", "bottom")))
    if side == "left":
        draw.rectangle([x1, y1, x1 + round((x2 - x1) * share), y2], fill=colour)
    elif side == "right":
        draw.rectangle([x2 - round((x2 - x1) * share), y1, x2, y2], fill=colour)
    else:
        draw.rectangle([x1, y2 - round((y2 - y1) * share), x2, y2], fill=colour)


def scene(seed: int, index: int, sprites: dict[str, dict[str, Image.Image]], style: Style = CLASSIC
          ) -> tuple[Image.Image, list[Placed], str]:
    """Image `index` of the dataset of (`seed`, `style`): the picture, its objects, its lighting."""
    rng = np.random.default_rng([seed, index])
    # Draws the classic style never made come from their own stream, so classic scenes
    # stay what they always were.
    extra = np.random.default_rng([seed, index, 2])
    names, chances = zip(*style.lights)
    light = str(rng.choice(list(names), p=list(chances)))
    width, height = style.sizes[int(extra.integers(len(style.sizes)))]
    brightness, haze = extra.uniform(*style.brightness), extra.uniform(*style.haze)
    image, horizon, road_top = _background(rng, light, style, (width, height))
    low_count, high_count = style.objects
    labels = list(rng.choice(list(CLASSES), size=int(rng.integers(low_count, high_count + 1))))
    placed: list[Placed] = []
    for label in sorted(labels, key=lambda name: CLASSES[name][1] == "road"):  # roadside first, road in front
        _, where, (low, high) = CLASSES[label]
        sprite = _sprite(label, sprites, style, extra)
        side = int(width * rng.uniform(low, high) * extra.uniform(*style.object_scale))
        scale = side / max(sprite.size)
        w, h = max(8, int(sprite.width * scale)), max(8, int(sprite.height * scale))
        for _ in range(MAX_TRIES):  # where it hides no more than a third of another object
            if where == "road":
                bottom = int(rng.uniform(min(road_top + h * 0.6, height), height))  # a tall one may fill the road
            else:
                bottom = int(rng.uniform(horizon + 4, road_top + 6))
            x1 = int(rng.integers(0, width - w))
            y1 = max(0, bottom - h)
            box = (x1, y1, x1 + w, min(height, y1 + h))
            if all(_covered(other.box, box) <= 1 / 3 for other in placed):
                break
        else:
            continue
        if rng.random() < 0.5:
            sprite = sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        resized = sprite.resize((w, h), Image.Resampling.LANCZOS)
        image.paste(resized, (x1, y1), resized)
        placed.append(Placed(label, box))
    draw = ImageDraw.Draw(image)
    for p in placed:
        if extra.random() < style.occluded:
            _occlude(draw, p.box, extra.uniform(*style.occlusion), extra)
    return _relight(image, light, brightness, haze), placed, light


def _covered(below, above) -> float:
    """The share of box `below` that box `above` covers."""
    w = max(0, min(below[2], above[2]) - max(below[0], above[0]))
    h = max(0, min(below[3], above[3]) - max(below[1], above[1]))
    return w * h / ((below[2] - below[0]) * (below[3] - below[1]))


WHEN = {"day": "during the day", "dusk": "at dusk", "night": "at night", "fog": "in fog"}


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


def jpeg_quality(seed: int, index: int, style: Style) -> int:
    low, high = style.quality
    return int(np.random.default_rng([seed, index, 3]).integers(low, high + 1))


def generate(out: Path, images: int, seed: int, style: Style = CLASSIC) -> dict:
    """Writes images/, _annotations/instances.json (COCO detection) and captions.json (COCO
    captions) under `out`."""
    sprites = emoji_sprites()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / ANNOTATIONS_DIR).mkdir(exist_ok=True)
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)]
    category_ids = {c["name"]: c["id"] for c in categories}
    description = f"vizsearch demo street scenes, seed {seed}" + ("" if style == CLASSIC else f", {style.name} style")
    coco = {"info": {"description": description},
            "images": [], "annotations": [], "categories": categories}
    captions = []
    for i in range(images):
        picture, placed, light = scene(seed, i, sprites, style)
        name = f"images/{i:05d}.jpg"
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=jpeg_quality(seed, i, style))
        (out / name).write_bytes(buffer.getvalue())
        coco["images"].append({"id": i + 1, "file_name": name, "width": picture.width, "height": picture.height})
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
    parser.add_argument("--style", choices=list(STYLES), default="classic",
                        help="classic: the demo set; trained: the demo model's training ranges; shifted: settings "
                             "outside them, with glyphs the model never saw (docs/model.md)")
    args = parser.parse_args(argv)
    try:
        coco = generate(args.out, args.images, args.seed, STYLES[args.style])
    except MissingFont as error:
        print(error, file=sys.stderr)
        return 1
    print(f"wrote {len(coco['images'])} images with {len(coco['annotations'])} boxes to {args.out} "
          f"(images/, _annotations/instances.json, captions.json)\n"
          f"next: vizsearch ingest {args.out} --dataset demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
