"""The demo model's training recipe stays runnable: a few steps on a few scenes give a
complete Hugging Face CLIP checkpoint (fp16 weights, tokenizer, processor, report),
and the committed checkpoint is the one the recipe describes."""

import json
import sys

import torch
from transformers import CLIPModel, CLIPTokenizer

from model import train_demo
from services.localstack.config import DEMO_MODEL


def test_a_short_run_writes_a_loadable_checkpoint_with_its_report(tmp_path, monkeypatch, capsys):
    out = tmp_path / "clip"
    monkeypatch.setattr(sys, "argv", ["train_demo", "--out", str(out), "--steps", "2", "--scenes", "12",
                                      "--batch-scenes", "4", "--batch-objects", "4", "--batch-copies", "2",
                                      "--eval-scenes", "12", "--style", "trained", "--threads", "2"])
    train_demo.main()
    model = CLIPModel.from_pretrained(out)
    assert model.config.projection_dim == 128 and next(model.parameters()).dtype == torch.float16
    assert CLIPTokenizer.from_pretrained(out)("a bus")["input_ids"][0] == 49406
    report = json.loads((out / "training.json").read_text())
    assert report["recipe"]["steps"] == 2 and report["recipe"]["style"] == "trained"
    for held_out, style in (("held_out", "classic"), ("shifted", "shifted")):
        assert report[held_out]["style"] == style and set(report[held_out]) >= {
            "text_precision_at_10", "object_to_image_precision_at_10", "near_duplicate_rank1"}
    assert "trained in" in capsys.readouterr().out


def test_captions_name_only_what_the_window_shows():
    objects = [("bus", 0.0, 100.0), ("dog", 300.0, 340.0), ("taxi", 200.0, 260.0)]
    assert train_demo.visible_labels(objects, left=0) == {"bus"}  # 24 of the taxi's 60 pixels: too few
    assert train_demo.visible_labels(objects, left=50) == {"taxi"}  # half the bus: too little
    assert train_demo.visible_labels(objects, left=150) == {"taxi", "dog"}


def test_the_committed_checkpoint_matches_its_recipe():
    report = json.loads((DEMO_MODEL / "training.json").read_text())
    assert report["recipe"]["data_seed"] != report["recipe"]["eval_seed"], "held-out scenes are unseen"
    assert (DEMO_MODEL / "model.safetensors").stat().st_size < 25 * 2**20
    assert report["held_out"]["text_precision_at_10"] >= 0.8
