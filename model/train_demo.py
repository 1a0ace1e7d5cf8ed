"""Trains vizsearch's demo CLIP: a small Hugging Face CLIPModel that understands the
street scenes of `vizsearch demo-data`, trained from scratch on this machine's CPU.

    python -m model.train_demo --out models/vizsearch-demo-clip

The recipe, deterministic for --seed (the checkpoint's training.json records it):
- data: --scenes scenes of demo_data's generator under seed --data-seed, taking the
  --style styles in turn (held-out evaluation sets use other seeds; "trained" is the
  widest style: every glyph of each class but the held-out ones, repainted vehicles,
  five image sizes and aspect ratios, varied light, haze, horizon, roadside, scale,
  rotation, partial occlusion and JPEG quality); each scene is JPEG-encoded and
  decoded, resized to a shortest edge of 224 as the embedder does, and every
  annotated object is cut out with a random margin of up to 20% (the indexer's
  default is 10%);
- a batch pairs scenes, seen through a random 224-wide window (half of them through
  the centre one, which is what the embedder sees; with --zoom, half of all windows
  closer instead, so objects look larger than any scene draws them), and object crops with
  captions built from a random subset of what is visible: "a taxi and a dog on a
  road at night", "a photo of a bus"; --jitter relights every image of a batch
  (brightness, saturation, a fade towards grey up to --haze, softening);
- the loss is CLIP's symmetric contrastive loss with every caption that truly
  describes an image counted as a positive (a caption naming only "bus" describes
  every image with a bus), plus an instance term that pulls a scene and a degraded
  copy of it (down- and up-sampled, noised; the first --batch-copies scenes of each
  batch) together, so near-duplicates find their original and not merely a scene with
  the same objects;
- the report holds quick in-process figures on two held-out sets: the classic style
  (seed --eval-seed) and the shifted one (seed --shifted-seed), whose glyphs and
  settings lie outside the training ranges;
- --precision bf16 autocasts the forward passes (a quarter faster on a CPU with
  AVX-512 BF16), --compile compiles the vision tower; --shape picks
  model/checkpoints.py's shape;
- weights are saved in fp16 with the real CLIP tokenizer and the reference image
  processor config: the same files a pretrained CLIP has.
"""

import argparse
import functools
import io
import json
import math
import multiprocessing
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from services.common import images
from model import checkpoints, preprocess
from model import demo_data
from model.metrics import precision_at

SIZE = 224
VISIBLE = 0.6  # share of an object's box inside the window for a caption to name it
SCENE_TEMPLATES = ("{}", "a photo of {}", "{} on a road", "a street with {}", "a road scene with {}")
OBJECT_TEMPLATES = ("a photo of {}", "{}", "a close-up of {}", "a picture of {}")


@dataclass
class Pool:
    """Pre-rendered training data, as uint8 pixels."""

    scenes: list[np.ndarray]  # [224, W, 3] each: W follows the scene's aspect ratio
    objects: list[list[tuple[str, float, float, float, float]]]  # per scene: label, x1, y1, x2, y2 in resized pixels
    lights: list[str]
    crops: np.ndarray  # [M, 224, 224, 3]
    crop_labels: list[str]
    crop_lights: list[str]


@functools.cache
def _sprites():
    return demo_data.emoji_sprites()


def decoded_scene(seed: int, index: int, style: demo_data.Style):
    """A scene as the embedder sees it: after its JPEG round trip."""
    picture, placed, light = demo_data.scene(seed, index, _sprites(), style)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=demo_data.jpeg_quality(seed, index, style))
    return Image.open(buffer).convert("RGB"), placed, light


def _render(seed_index_style: tuple[int, int, str]):
    seed, index, style = seed_index_style
    picture, placed, light = decoded_scene(seed, index, demo_data.STYLES[style])
    resized = preprocess.resize_shortest_edge(picture, SIZE)
    scale = resized.height / picture.height
    rng = np.random.default_rng([seed, index, 1])
    crops = []
    for p in placed:
        crops.append(preprocess.to_model_pixels(images.crop(picture, images.Box(*p.box), rng.uniform(0, 0.2)), SIZE))
    objects = [(p.label, *(v * scale for v in p.box)) for p in placed]
    return np.asarray(resized), objects, light, crops, [p.label for p in placed]


def render_pool(seed: int, count: int, workers: int, styles: list[str]) -> Pool:
    """`count` scenes, taking the styles in turn (scene i is of styles[i % len(styles)])."""
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        rendered = pool.map(_render, [(seed, i, styles[i % len(styles)]) for i in range(count)], chunksize=16)
    crops = [c for r in rendered for c in r[3]]
    return Pool(
        scenes=[r[0] for r in rendered],
        objects=[r[1] for r in rendered],
        lights=[r[2] for r in rendered],
        crops=np.stack(crops),
        crop_labels=[label for r in rendered for label in r[4]],
        crop_lights=[r[2] for r in rendered for _ in r[4]],
    )


def visible_labels(objects, left: float, top: float = 0.0, side: float = SIZE) -> set[str]:
    """The labels of objects with at least VISIBLE of their box inside the square window."""
    seen = set()
    for label, x1, y1, x2, y2 in objects:
        inside_x = max(0.0, min(x2, left + side) - max(x1, left))
        inside_y = max(0.0, min(y2, top + side) - max(y1, top))
        if inside_x * inside_y >= VISIBLE * (x2 - x1) * (y2 - y1):
            seen.add(label)
    return seen


def scene_window(rng: random.Random, objects, height: int, width: int, zoom: float) -> tuple[int, int, int, set[str]]:
    """A square window (left, top, side) on a resized scene and the labels it shows: at
    full height, half the time the centre one (what the embedder sees), else anywhere;
    with `zoom` above 1, half of all windows are instead up to `zoom` times closer,
    anywhere (objects larger than any scene draws them). A window that shows nothing is
    moved onto an object."""
    side = SIZE if zoom <= 1 or rng.random() < 0.5 else round(SIZE / rng.uniform(1.0, zoom))
    if side == SIZE and rng.random() < 0.5:
        left, top = (width - SIZE) // 2, 0
    else:
        left, top = rng.randint(0, width - side), rng.randint(0, height - side)
    seen = visible_labels(objects, left, top, side)
    if not seen:
        label, x1, y1, x2, y2 = rng.choice(objects)
        left = int(min(max(0, (x1 + x2 - side) / 2), width - side))
        top = int(min(max(0, (y1 + y2 - side) / 2), height - side))
        seen = visible_labels(objects, left, top, side) or {label}
    return left, top, side, seen


def describe(rng: random.Random, labels: set[str], light: str, templates) -> tuple[str, frozenset, str | None]:
    """A caption naming a random non-empty subset of `labels` (and maybe the light), with
    what it claims: the labels and the light (None: not said)."""
    named = rng.sample(sorted(labels), rng.randint(1, len(labels)))
    text = rng.choice(templates).format(demo_data.things(named))
    said_light = light if rng.random() < 0.5 else None
    if said_light:
        text += " " + demo_data.WHEN[said_light]
    return text, frozenset(named), said_light


def sample_batch(pool: Pool, rng: random.Random, scenes: int, crops: int, zoom: float = 1.0):
    """Pixels [B, 224, 224, 3] (scenes first), captions, and the positives matrix."""
    pixels, captions, claims, truths = [], [], [], []
    for index in rng.sample(range(len(pool.scenes)), scenes):
        height, width = pool.scenes[index].shape[:2]
        left, top, side, seen = scene_window(rng, pool.objects[index], height, width, zoom)
        window = pool.scenes[index][top : top + side, left : left + side]
        if side != SIZE:
            window = np.asarray(Image.fromarray(window).resize((SIZE, SIZE), Image.Resampling.BICUBIC))
        pixels.append(window)
        text, named, light = describe(rng, seen, pool.lights[index], SCENE_TEMPLATES)
        captions.append(text)
        claims.append((named, light))
        truths.append((seen, pool.lights[index]))
    for index in rng.sample(range(len(pool.crops)), crops):
        label, light = pool.crop_labels[index], pool.crop_lights[index]
        pixels.append(pool.crops[index])
        text, named, said = describe(rng, {label}, light, OBJECT_TEMPLATES)
        captions.append(text)
        claims.append((named, said))
        truths.append(({label}, light))
    positives = np.array(
        [[named <= seen and light in (None, true_light) for named, light in claims] for seen, true_light in truths],
        dtype=np.float32,
    )
    return np.stack(pixels), captions, positives


class Normaliser:
    def __init__(self, processor_config: dict):
        import torch

        self.mean = torch.tensor(processor_config["image_mean"]).reshape(1, 3, 1, 1) * 255
        self.std = torch.tensor(processor_config["image_std"]).reshape(1, 3, 1, 1) * 255

    def __call__(self, pixels):
        import torch

        batch = torch.as_tensor(pixels).permute(0, 3, 1, 2).float()
        return (batch - self.mean) / self.std


def jittered(pixels, generator, haze: float):
    """Light no scene was drawn in, on uint8 pixels [B, H, W, 3]: each image brightened or
    darkened, its colours muted or deepened, half of them faded towards a grey (haze and
    fog thicker than the scenes' own, up to `haze`), a quarter softened (harsher JPEG,
    lower resolution). Returns float pixels [B, H, W, 3] in 0..255."""
    import torch

    batch = torch.as_tensor(pixels).float()
    count = len(batch)

    def uniform(low, high):
        return torch.empty(count, 1, 1, 1).uniform_(low, high, generator=generator)

    # saturation s, brightness b, fade f towards grey level g, folded into one pass:
    # ((mean + (x - mean) * s) * b) * (1 - f) + g * f
    saturation, brightness, level = uniform(0.6, 1.25), uniform(0.75, 1.25), uniform(120.0, 220.0)
    fade = uniform(0.0, haze) * (torch.rand(count, 1, 1, 1, generator=generator) < 0.5)
    scale = brightness * (1 - fade)
    grey = batch.mean(-1, keepdim=True).mul_((1 - saturation) * scale).add_(level * fade)
    batch = batch.mul_(saturation * scale).add_(grey)
    soft = torch.rand(count, generator=generator) < 0.25
    if soft.any():
        chosen = batch[soft].permute(0, 3, 1, 2).contiguous()
        factor = float(torch.empty(1).uniform_(0.35, 0.8, generator=generator))
        batch[soft] = resampled(chosen, factor).permute(0, 2, 3, 1)
    return batch.clamp_(0, 255)


def resampled(batch, factor: float):
    """Images [B, C, H, W] scaled down by `factor` and back up: detail lost as by a smaller
    or harsher-compressed copy."""
    import torch.nn.functional as F

    small = F.interpolate(batch, scale_factor=factor, mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=batch.shape[-2:], mode="bilinear", align_corners=False)


def degraded(batch, generator):
    """A near-duplicate of each image: resampled through a smaller size, with noise
    (what re-encoding and resizing do)."""
    import torch

    factor = float(torch.empty(1).uniform_(0.35, 0.9, generator=generator))
    return resampled(batch, factor) + torch.randn(batch.shape, generator=generator) * 0.05


def multi_positive_loss(logits, positives):
    """Cross-entropy against every true caption (rows) and every true image (columns)."""
    rows = -(positives / positives.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    cols = -(positives.T / positives.T.sum(1, keepdim=True) * logits.T.log_softmax(1)).sum(1).mean()
    return (rows + cols) / 2


def train(args) -> dict:
    import torch
    import torch.nn.functional as F
    from transformers import CLIPModel, CLIPTokenizer

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    checkpoints.write_tokenizer(out)
    checkpoints.write_image_processor(out, SIZE)
    tokenizer = CLIPTokenizer.from_pretrained(out)
    normalise = Normaliser(json.loads((out / "preprocessor_config.json").read_text()))

    pool = render_pool(args.data_seed, args.scenes, args.threads, args.style)
    print(f"rendered {len(pool.scenes)} scenes and {len(pool.crops)} objects in {time.monotonic() - started:.0f} s",
          flush=True)
    config = checkpoints.clip_config(args.shape)
    # In bf16, plain attention trains faster on a CPU than scaled-dot-product attention,
    # whose backward dominates a step (0.36 s against 0.47 s for a demo16 batch's vision
    # pass, compiled); in fp32 the fused kernel wins. Serving loads its own choice.
    config._attn_implementation = "eager" if args.precision == "bf16" else "sdpa"
    model = CLIPModel(config)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.98), eps=1e-6, fused=True)
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))
    )
    rng, generator = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
    tokens_of = functools.lru_cache(maxsize=None)(lambda text: tokenizer(text)["input_ids"])
    # Compiling fuses the vision tower's small element-wise kernels (a quarter off its
    # forward and backward on a CPU); the first step pays about half a minute for it.
    vision = torch.compile(model.vision_model) if args.compile else model.vision_model
    model.train()
    for step in range(1, args.steps + 1):
        pixels, captions, positives = sample_batch(pool, rng, args.batch_scenes, args.batch_objects, args.zoom)
        batch = normalise(jittered(pixels, generator, args.haze) if args.jitter else pixels)
        ids = [tokens_of(c) for c in captions]
        longest = max(map(len, ids))
        input_ids = torch.tensor([t + [tokenizer.pad_token_id] * (longest - len(t)) for t in ids])
        mask = torch.tensor([[1] * len(t) + [0] * (longest - len(t)) for t in ids])
        copies = degraded(batch[: args.batch_copies], generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            image_features = model.visual_projection(vision(pixel_values=torch.cat([batch, copies])).pooler_output)
            text_features = model.get_text_features(input_ids=input_ids, attention_mask=mask).pooler_output
        image_embeds = F.normalize(image_features.float(), dim=-1)
        text_embeds = F.normalize(text_features.float(), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        originals, duplicates = image_embeds[: len(batch)], image_embeds[len(batch) :]
        loss = multi_positive_loss(scale * originals @ text_embeds.T, torch.from_numpy(positives))
        instance = scale * duplicates @ originals[: args.batch_copies].T
        target = torch.arange(args.batch_copies)
        loss = loss + args.instance_weight * (F.cross_entropy(instance, target) + F.cross_entropy(instance.T, target)) / 2
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == args.steps:
            print(f"step {step}/{args.steps} loss {loss.item():.3f} scale {scale.item():.1f} "
                  f"{time.monotonic() - started:.0f} s", flush=True)
    model.eval()
    report = {name: quick_evaluation(model, tokenizer, normalise, seed, args.eval_scenes, demo_data.STYLES[style])
              for name, seed, style in (("held_out", args.eval_seed, "classic"),
                                        ("shifted", args.shifted_seed, "shifted"))}
    model.half().save_pretrained(out, safe_serialization=True)
    report.update(minutes=round((time.monotonic() - started) / 60, 1), recipe={
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"})
    (out / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def quick_evaluation(model, tokenizer, normalise, seed: int, count: int, style: demo_data.Style) -> dict:
    """In-process figures on held-out scenes of `style`, seen as the embedder sees them: text->image
    precision@10 per class, object crop->image precision@10 (image entries only), and the
    rank-1 rate of re-encoded, resized copies. The stack's harness is `make eval`."""

    import torch
    import torch.nn.functional as F
    from PIL import Image

    def embed_images(pixels):
        with torch.inference_mode():
            return torch.cat([F.normalize(model.get_image_features(pixel_values=normalise(pixels[i : i + 64])).pooler_output, dim=-1)
                              for i in range(0, len(pixels), 64)])

    scenes = [decoded_scene(seed, i, style) for i in range(count)]
    labels = [{p.label for p in placed} for _, placed, _ in scenes]
    index = embed_images(np.stack([preprocess.to_model_pixels(picture, SIZE) for picture, _, _ in scenes]))
    classes = list(demo_data.CLASSES)
    with torch.inference_mode():
        tokens = tokenizer([f"a photo of a {c}" for c in classes], padding=True, return_tensors="pt")
        texts = F.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)
    text_p10 = [precision_at([c in labels[i] for i in (index @ t).argsort(descending=True).tolist()], 10)
                for c, t in zip(classes, texts)]
    crops, crop_labels = [], []
    for picture, placed, _ in scenes[:50]:
        crops.append(preprocess.to_model_pixels(images.crop(picture, images.Box(*placed[0].box)), SIZE))
        crop_labels.append(placed[0].label)
    queries = embed_images(np.stack(crops))
    object_p10 = [precision_at([c in labels[i] for i in (index @ q).argsort(descending=True).tolist()], 10)
                  for c, q in zip(crop_labels, queries)]
    copies = []
    for picture, _, _ in scenes[:100]:
        buffer = io.BytesIO()
        picture.resize((picture.width * 3 // 4, picture.height * 3 // 4)).save(buffer, "JPEG", quality=60)
        copies.append(preprocess.to_model_pixels(Image.open(buffer).convert("RGB"), SIZE))
    top = (embed_images(np.stack(copies)) @ index.T).argmax(1)
    return {
        "text_precision_at_10": round(float(np.mean(text_p10)), 3),
        "text_precision_at_10_per_class": {c: round(p, 2) for c, p in zip(classes, text_p10)},
        "object_to_image_precision_at_10": round(float(np.mean(object_p10)), 3),
        "near_duplicate_rank1": round(float((top == torch.arange(len(copies))).float().mean()), 3),
        "scenes": count, "seed": seed, "style": style.name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shape", choices=[s for s in checkpoints.SHAPES if s != "vit-b-32"], default="demo",
                        help="model/checkpoints.py's SHAPES")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--scenes", type=int, default=4000)
    parser.add_argument("--batch-scenes", type=int, default=32)
    parser.add_argument("--batch-objects", type=int, default=32)
    parser.add_argument("--batch-copies", type=int, default=32, help="scenes of a batch also seen degraded")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--instance-weight", type=float, default=0.5)
    parser.add_argument("--zoom", type=float, default=1.0,
                        help="half the scene windows are seen up to this much closer (1: never, the committed "
                             "model's recipe)")
    parser.add_argument("--jitter", action=argparse.BooleanOptionalAction, default=False,
                        help="vary brightness, colour, haze and sharpness of every training image")
    parser.add_argument("--haze", type=float, default=0.5, help="the thickest haze --jitter fades towards")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: autocast the forward passes and train with plain attention (fast where the CPU "
                             "has AVX-512 BF16 or AMX)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="torch.compile the vision tower for training (needs a C++ compiler)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=1000, help="demo_data seed of the training scenes")
    parser.add_argument("--style", nargs="+", choices=list(demo_data.STYLES), default=["classic"],
                        help="demo_data styles of the training scenes, taken in turn (the committed model's: classic; the "
                             "widest ranges: trained)")
    parser.add_argument("--eval-seed", type=int, default=1, help="demo_data seed of the held-out check (classic style)")
    parser.add_argument("--shifted-seed", type=int, default=2, help="demo_data seed of the shifted held-out check")
    parser.add_argument("--eval-scenes", type=int, default=500)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    report = train(parser.parse_args())
    print(json.dumps({name: report[name] for name in ("held_out", "shifted")}, indent=2))
    print(f"trained in {report['minutes']} min")


if __name__ == "__main__":
    main()
