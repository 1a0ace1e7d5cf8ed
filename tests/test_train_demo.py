"""The demo model's training recipe stays runnable: a few steps on a few scenes give a
complete Hugging Face CLIP checkpoint (fp16 weights, tokenizer, processor, report),
and the committed checkpoint is the one the recipe describes."""

import json
import random
import sys

import numpy as np

import torch
from transformers import CLIPModel, CLIPTokenizer

from model import train_demo
from services.localstack.config import DEMO_MODEL


def test_a_short_run_writes_a_loadable_checkpoint_with_its_report(tmp_path, monkeypatch, capsys):
    out = tmp_path / "clip"
    monkeypatch.setattr(sys, "argv", ["train_demo", "--out", str(out), "--steps", "2", "--scenes", "12",
                                      "--batch-scenes", "4", "--batch-objects", "4", "--batch-copies", "2",
                                      "--eval-scenes", "12", "--style", "classic", "trained", "--jitter", "--zoom", "1.6",
                                      "--precision", "bf16", "--compile", "--threads", "2"])
    train_demo.main()
    model = CLIPModel.from_pretrained(out)
    assert model.config.projection_dim == 128 and next(model.parameters()).dtype == torch.float16
    assert CLIPTokenizer.from_pretrained(out)("a bus")["input_ids"][0] == 49406
    report = json.loads((out / "training.json").read_text())
    assert report["recipe"]["steps"] == 2 and report["recipe"]["style"] == ["classic", "trained"]
    for held_out, style in (("held_out", "classic"), ("shifted", "shifted")):
        assert report[held_out]["style"] == style and set(report[held_out]) >= {
            "text_precision_at_10", "object_to_image_precision_at_10", "near_duplicate_rank1"}
    assert "trained in" in capsys.readouterr().out


def test_captions_name_only_what_the_window_shows():
    objects = [("bus", 0.0, 0.0, 100.0, 80.0), ("dog", 300.0, 100.0, 340.0, 140.0), ("taxi", 200.0, 150.0, 260.0, 200.0)]
    assert train_demo.visible_labels(objects, left=0) == {"bus"}  # 24 of the taxi's 60 pixels: too few
    assert train_demo.visible_labels(objects, left=50) == {"taxi"}  # half the bus: too little
    assert train_demo.visible_labels(objects, left=150) == {"taxi", "dog"}
    # A closer window: the dog is inside it, but only a fifth of the taxi's height.
    assert train_demo.visible_labels(objects, left=220, top=40, side=120) == {"dog"}


def test_a_window_shows_what_its_caption_names_and_a_closer_one_is_still_a_square():
    rng = random.Random(3)
    objects = [("bus", 10.0, 120.0, 90.0, 200.0), ("dog", 300.0, 150.0, 330.0, 180.0)]
    sizes = set()
    for _ in range(200):
        left, top, side, seen = train_demo.scene_window(rng, objects, 224, 400, zoom=1.6)
        assert 0 <= left <= 400 - side and 0 <= top <= 224 - side and 224 / 1.6 - 1 <= side <= 224
        assert seen and seen == train_demo.visible_labels(objects, left, top, side)
        sizes.add(side)
    assert len(sizes) > 10 and 224 in sizes


def test_jitter_keeps_pixels_in_range_and_varies_them():
    pixels = np.full((16, 8, 8, 3), 100, np.uint8)
    pixels[..., 0] = 200
    out = train_demo.jittered(pixels, torch.Generator().manual_seed(0), haze=0.5)
    assert out.shape == (16, 8, 8, 3) and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 255
    assert len({round(float(v), 1) for v in out[:, 0, 0, 0]}) > 8, "each image is lit its own way"


def test_the_committed_checkpoint_matches_its_recipe():
    report = json.loads((DEMO_MODEL / "training.json").read_text())
    assert report["recipe"]["data_seed"] != report["recipe"]["eval_seed"], "held-out scenes are unseen"
    assert (DEMO_MODEL / "model.safetensors").stat().st_size < 25 * 2**20
    assert report["held_out"]["text_precision_at_10"] >= 0.8
