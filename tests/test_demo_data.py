"""The generated street-scene dataset: deterministic, with boxes that frame what was drawn."""

import dataclasses
import json

import numpy as np
from PIL import Image

from model import demo_data


def test_the_same_seed_gives_the_same_dataset_and_a_larger_set_extends_a_smaller(tmp_path):
    first = demo_data.generate(tmp_path / "a", 6, seed=3)
    demo_data.generate(tmp_path / "b", 6, seed=3)
    demo_data.generate(tmp_path / "c", 8, seed=3)
    demo_data.generate(tmp_path / "d", 6, seed=4)
    for i in range(6):
        name = f"images/{i:05d}.jpg"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "c" / name).read_bytes()
    assert (tmp_path / "a" / "images/00000.jpg").read_bytes() != (tmp_path / "d" / "images/00000.jpg").read_bytes()
    assert first == json.loads((tmp_path / "b" / "_annotations" / "instances.json").read_text())


def test_boxes_lie_in_the_image_and_frame_drawn_objects(tmp_path):
    coco = demo_data.generate(tmp_path, 30, seed=0)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert sorted(names.values()) == sorted(demo_data.CLASSES)
    per_image = {}
    for annotation in coco["annotations"]:
        per_image.setdefault(annotation["image_id"], []).append(annotation)
        x, y, w, h = annotation["bbox"]
        assert 0 <= x and 0 <= y and x + w <= demo_data.WIDTH and y + h <= demo_data.HEIGHT and w >= 8 and h >= 8
    assert all(1 <= len(found) <= 5 for found in per_image.values()) and len(per_image) == 30
    seen = {names[a["category_id"]] for a in coco["annotations"]}
    assert len(seen) >= 8, "30 scenes show most classes"
    captions = json.loads((tmp_path / "captions.json").read_text())
    assert captions["images"] == coco["images"]
    for entry, image in zip(captions["annotations"], coco["images"]):
        labels = {names[a["category_id"]] for a in per_image[image["id"]]}
        assert all(label in entry["caption"] for label in labels), entry
        assert entry["caption"].endswith(("during the day", "at dusk", "at night"))
    with Image.open(tmp_path / coco["images"][0]["file_name"]) as picture:
        assert picture.size == (demo_data.WIDTH, demo_data.HEIGHT) and picture.format == "JPEG"


def test_the_command_writes_a_dataset_ready_to_drop(tmp_path, capsys):
    assert demo_data.main(["--out", str(tmp_path / "demo"), "--images", "3", "--seed", "1"]) == 0
    assert "wrote 3 images" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "demo" / "images").iterdir()) == ["00000.jpg", "00001.jpg", "00002.jpg"]


def test_a_missing_font_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo_data, "FONT_PATHS", ("/nonexistent/NotoColorEmoji.ttf",))
    monkeypatch.delenv("VIZSEARCH_EMOJI_FONT", raising=False)
    assert demo_data.main(["--out", str(tmp_path / "x"), "--images", "1"]) == 1
    assert "apt-get install fonts-noto-color-emoji" in capsys.readouterr().err


def test_the_shifted_style_lies_outside_every_training_range():
    trained, shifted = demo_data.STYLES["trained"], demo_data.STYLES["shifted"]
    for label in demo_data.CLASSES:
        if len(demo_data.CLASSES[label][0]) > 1:
            assert not set(demo_data.glyphs_of(label, trained)) & set(demo_data.glyphs_of(label, shifted)), label
    assert demo_data.glyphs_of("bus", demo_data.CLASSIC) == demo_data.glyphs_of("bus", trained)[:1]
    assert not set(shifted.sizes) & set(trained.sizes) and not set(shifted.roadsides) & set(trained.roadsides)
    assert not {light for light, _ in shifted.lights} & {light for light, _ in trained.lights}
    for setting in ("haze", "horizon", "asphalt", "object_scale", "rotation", "occlusion", "quality"):
        (low, high), (trained_low, trained_high) = getattr(shifted, setting), getattr(trained, setting)
        assert high <= trained_low or low >= trained_high, setting  # they may only touch
    assert shifted.objects[1] > trained.objects[1]


def test_the_held_out_glyphs_stay_those_the_shifted_set_was_measured_with():
    # New training glyphs go before each class's last: the shifted set must not change.
    assert demo_data.HELD_OUT_GLYPHS == {
        "car": ("\U0001F699",), "taxi": ("\U0001F696",), "bus": ("\U0001F68D",), "truck": ("\U0001F6FB",),
        "bicycle": (), "motorcycle": ("\U0001F6F5",),
        "pedestrian": ("\U0001F6B6\U0001F3FE", "\U0001F6B6\U0001F3FF", "\U0001F6B6\u200d\u2640\ufe0f"),
        "traffic light": ("\U0001F6A5",), "stop sign": (), "dog": ("\U0001F9AE",)}


def test_trained_scenes_draw_only_trained_glyphs_and_shifted_scenes_only_held_out_ones():
    sprites = demo_data.emoji_sprites()
    for name in ("trained", "shifted"):
        style = demo_data.STYLES[name]
        # Only the glyphs the style may draw: any other would be a KeyError.
        allowed = {label: {g: s for g, s in by_glyph.items() if g in demo_data.glyphs_of(label, style)}
                   for label, by_glyph in sprites.items()}
        for index in range(12):
            picture, placed, light = demo_data.scene(5, index, allowed, style)
            assert picture.size in style.sizes and light in dict(style.lights)
            assert placed and all(0 <= p.box[0] < p.box[2] <= picture.width and 0 <= p.box[1] < p.box[3]
                                  <= picture.height for p in placed)


def test_a_generated_shifted_set_records_its_own_picture_sizes(tmp_path):
    coco = demo_data.generate(tmp_path, 4, seed=2, style=demo_data.STYLES["shifted"])
    for image in coco["images"]:
        with Image.open(tmp_path / image["file_name"]) as picture:
            assert picture.size == (image["width"], image["height"]) in demo_data.STYLES["shifted"].sizes
    captions = json.loads((tmp_path / "captions.json").read_text())
    assert all(entry["caption"].endswith("in fog") for entry in captions["annotations"])


def test_trained_glyphs_are_stretched_and_slanted_within_their_ranges():
    sprites = demo_data.emoji_sprites()
    sign = sprites["stop sign"]["\U0001F6D1"]
    trained = demo_data.STYLES["trained"]
    stretched = dataclasses.replace(trained, rotation=(0.0, 0.0), shear=0.0)
    slanted = dataclasses.replace(trained, rotation=(0.0, 0.0), stretch=(1.0, 1.0))
    extra = np.random.default_rng(0)
    factors = [demo_data._sprite("stop sign", sprites, stretched, extra).width / sign.width for _ in range(40)]
    assert 0.8 - 0.02 <= min(factors) < 0.9 and 1.15 < max(factors) <= 1.25 + 0.02
    for _ in range(20):
        sprite = demo_data._sprite("stop sign", sprites, slanted, extra)
        assert abs(sprite.height - sign.height) <= 2
        assert sign.width - 2 <= sprite.width <= sign.width + 0.2 * sign.height + 2
    # The classic and shifted styles draw each glyph as the font does.
    for style in (demo_data.CLASSIC, dataclasses.replace(demo_data.STYLES["shifted"], rotation=(0.0, 0.0))):
        assert demo_data._sprite("stop sign", sprites, style, extra).size == sign.size
