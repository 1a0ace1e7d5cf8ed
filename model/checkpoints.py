"""Builds Hugging Face CLIP checkpoints offline: the real CLIP tokenizer from the BPE
vocabulary that ships inside the open_clip_torch wheel, the reference image-processor
config, and randomly initialised weights of a chosen shape.

    python -m model.checkpoints random --shape tiny --out DIR

A random model embeds faithfully but understands nothing; it stands in where no
trained checkpoint can be downloaded (tests, benchmarks, the local stack's default).
"""

import argparse
import gzip
import importlib.util
import json
from pathlib import Path

# Shapes: vision (layers, width, heads, patch, image size), text (layers, width, heads), projection.
SHAPES = {
    # OpenAI's ViT-B/32: 12 x 768 vision, 12 x 512 text, 512-d projection; 8.8 GFLOP per image.
    "vit-b-32": dict(vision=(12, 768, 12, 32, 224), text=(12, 512, 8), projection=512),
    # Small enough to start in seconds on a laptop CPU; same preprocessing as the real one.
    "tiny": dict(vision=(2, 128, 4, 32, 224), text=(2, 128, 4), projection=128),
    # The demo model that model.train_demo trains on a CPU: 9 M parameters.
    "demo": dict(vision=(4, 192, 6, 32, 224), text=(3, 128, 4), projection=128),
    # The demo model's budget spent on finer patches (196 of 16 pixels, half the width):
    # small objects span more of them; a training step costs about 1.5 times as much.
    "demo16": dict(vision=(4, 96, 4, 16, 224), text=(3, 128, 4), projection=128),
    # demo16 a third wider.
    "demo16w": dict(vision=(4, 128, 4, 16, 224), text=(3, 128, 4), projection=128),
    # demo16 twice as wide: the demo model's width in 16-pixel patches.
    "demo16x": dict(vision=(4, 192, 6, 16, 224), text=(3, 128, 4), projection=128),
}
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
VOCAB_SIZE = 49408
CONTEXT_LENGTH = 77


def bpe_vocabulary_file() -> Path:
    spec = importlib.util.find_spec("open_clip")  # locates the package without importing it (or torchvision)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("open_clip_torch is not installed: `pip install --no-deps open_clip_torch`")
    return Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def write_tokenizer(out: Path) -> None:
    """Writes vocab.json and merges.txt exactly as OpenAI's CLIP tokenizer defines them."""
    lines = gzip.open(bpe_vocabulary_file(), "rt", encoding="utf-8").read().split("\n")
    merge_count = VOCAB_SIZE - 2 * 256 - 2  # byte symbols, their word-final forms, two specials
    merges = [tuple(line.split()) for line in lines[1 : 1 + merge_count]]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == VOCAB_SIZE, len(vocab)
    (out / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
               "pad_token": "<|endoftext|>"}
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": CONTEXT_LENGTH, **special}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2))


def write_image_processor(out: Path, image_size: int) -> None:
    config = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True, "size": {"shortest_edge": image_size}, "resample": 3,
        "do_center_crop": True, "crop_size": {"height": image_size, "width": image_size},
        "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
        "do_convert_rgb": True,
    }
    (out / "preprocessor_config.json").write_text(json.dumps(config, indent=2))


def clip_config(shape: str):
    from transformers import CLIPConfig

    spec = SHAPES[shape]
    v_layers, v_width, v_heads, patch, image_size = spec["vision"]
    t_layers, t_width, t_heads = spec["text"]
    return CLIPConfig(
        projection_dim=spec["projection"],
        vision_config=dict(num_hidden_layers=v_layers, hidden_size=v_width, intermediate_size=4 * v_width,
                           num_attention_heads=v_heads, patch_size=patch, image_size=image_size),
        text_config=dict(num_hidden_layers=t_layers, hidden_size=t_width, intermediate_size=4 * t_width,
                         num_attention_heads=t_heads, vocab_size=VOCAB_SIZE,
                         max_position_embeddings=CONTEXT_LENGTH, bos_token_id=49406, eos_token_id=49407,
                         pad_token_id=49407),
    )


def write_random_checkpoint(out: Path, shape: str, seed: int = 0) -> Path:
    """A randomly initialised CLIPModel of `shape`, with tokenizer and processor files."""
    import torch
    from transformers import CLIPModel

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = clip_config(shape)
    CLIPModel(config).eval().save_pretrained(out, safe_serialization=True)
    write_tokenizer(out)
    write_image_processor(out, config.vision_config.image_size)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    random = commands.add_parser("random", help="write a randomly initialised CLIP checkpoint")
    random.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    random.add_argument("--seed", type=int, default=0)
    random.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if (args.out / "config.json").exists():
        print(f"{args.out} already holds a checkpoint; leaving it")
        return
    print(f"wrote {write_random_checkpoint(args.out, args.shape, args.seed)}")


if __name__ == "__main__":
    main()
