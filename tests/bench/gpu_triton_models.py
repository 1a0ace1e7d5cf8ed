"""GPU check of the Triton model repository's python models, for a machine with a GPU
but no Triton server: runs deploy/triton-models' clip_image and clip_text exactly as
Triton's python backend would (initialize, then execute on batches of requests), once
as a CPU instance (fp32) and once as a GPU instance (fp16), and prints how closely
the GPU's embeddings match the CPU's and the GPU's throughput.

    python -m tests.bench.gpu_triton_models [--model DIR] [--vit-b-32]

`triton_python_backend_utils` exists only inside Triton; a minimal stand-in with the
same names (Tensor, InferenceResponse, get_input_tensor_by_name) takes its place.
"""

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "deploy" / "triton-models"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                   "preprocessor_config.json")


def _backend_utils() -> types.ModuleType:
    utils = types.ModuleType("triton_python_backend_utils")

    class Tensor:
        def __init__(self, name, array):
            self.name, self._array = name, np.asarray(array)

        def as_numpy(self):
            return self._array

    class InferenceResponse:
        def __init__(self, output_tensors):
            self.output_tensors = output_tensors

    utils.Tensor, utils.InferenceResponse = Tensor, InferenceResponse
    utils.get_input_tensor_by_name = lambda request, name: next(t for t in request if t.name == name)
    return utils


def load(model: str, kind: str):
    sys.path.insert(0, str(MODELS / model / "1"))
    spec = importlib.util.spec_from_file_location(f"{model}_{kind}", MODELS / model / "1" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    instance = module.TritonPythonModel()
    instance.initialize({"model_config": json.dumps({"parameters": {}}), "model_instance_kind": kind,
                         "model_instance_device_id": "0"})
    return instance


def run(instance, name: str, batches: list[np.ndarray]) -> np.ndarray:
    utils = sys.modules["triton_python_backend_utils"]
    requests = [[utils.Tensor(name, batch)] for batch in batches]
    responses = instance.execute(requests)
    return np.concatenate([r.output_tensors[0].as_numpy() for r in responses])


def vit_b_32_random(out: Path, like: Path) -> Path:
    """A random CLIP of ViT-B/32's shape, with `like`'s tokenizer and processor files."""
    import torch
    from transformers import CLIPModel

    from model.checkpoints import clip_config

    torch.manual_seed(0)
    CLIPModel(clip_config("vit-b-32")).save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copy(like / name, out / name)
    return out


def check(model_dir: Path) -> dict:
    import torch

    os.environ["VIZSEARCH_MODEL_DIR"] = str(model_dir)
    size = json.loads((model_dir / "config.json").read_text())["vision_config"].get("image_size", 224)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, size, size, 3), dtype=np.uint8)
    texts = np.array([[f"a photo of {n} cars at night".encode()] for n in range(64)], dtype=np.object_)
    result = {"model": model_dir.name}
    for model, name, data in (("clip_image", "PIXELS", pixels), ("clip_text", "TEXT", texts)):
        cpu, gpu = load(model, "CPU"), load(model, "GPU")
        assert gpu.device.type == "cuda" and gpu.dtype == torch.float16, (gpu.device, gpu.dtype)
        # Several requests in one execute, as dynamic batching hands them over.
        split = [data[:7], data[7:40], data[40:]]
        reference, ours = run(cpu, name, split), run(gpu, name, split)
        cosines = (reference * ours).sum(1)
        result[model] = {"min_cosine_gpu_fp16_vs_cpu_fp32": round(float(cosines.min()), 5)}
        for batch in (64, 256):
            big = np.concatenate([data] * (batch // 64))
            run(gpu, name, [big])  # warm-up
            began, rounds = time.perf_counter(), 20
            for _ in range(rounds):
                run(gpu, name, [big])
            result[model][f"gpu_items_per_s_batch_{batch}"] = round(rounds * batch / (time.perf_counter() - began))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "vizsearch-demo-clip")
    parser.add_argument("--vit-b-32", action="store_true", help="also a random model of ViT-B/32's shape")
    args = parser.parse_args()
    import torch

    sys.modules["triton_python_backend_utils"] = _backend_utils()
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}", flush=True)
    results = [check(args.model)]
    if args.vit_b_32:
        with tempfile.TemporaryDirectory() as scratch:
            results.append(check(vit_b_32_random(Path(scratch) / "clip-vit-b-32-random", args.model)))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
