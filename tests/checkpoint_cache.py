"""The randomly initialised ViT-B/32-shaped CLIP that the tests and benchmarks serve,
built once into a cache outside git (600 MB)."""

import os
from pathlib import Path

from model.checkpoints import write_random_checkpoint

CACHE = Path(os.environ.get("VIZSEARCH_TEST_CACHE", Path.home() / ".cache" / "vizsearch-tests"))


def vit_b_32_checkpoint() -> Path:
    path = CACHE / "clip-vit-b-32-random-seed0"
    if not (path / "model.safetensors").is_file():
        write_random_checkpoint(path, "vit-b-32", seed=0)
    return path
