"""CPU runtimes for CLIP's image tower: `make bench-cpu-runtimes`.

Runs one image tower (OpenAI ViT-B/32's shape with random weights by default, or
--model DIR) on this machine's CPU at batch --batch, on the pixels of generated
640x480 scenes, in each runtime a CPU instance could serve it with, and prints
images/s and the fidelity against transformers' fp32 eager forward (the reference):
the lowest cosine over the batch (issue target: at least 0.99).

- torch fp32, eager attention (the reference) and scaled-dot-product attention;
- torch int8: dynamic quantisation of every Linear layer (torch.ao);
- torch bf16 autocast, measured only where the CPU has bf16 units (AVX-512 BF16 or
  AMX): elsewhere oneDNN emulates bf16 and it is slower than fp32;
- ONNX Runtime fp32: the tower exported with torch.onnx (dynamo exporter), and int8:
  that graph's MatMuls dynamically quantised by onnxruntime.quantization.

Random weights measure speed faithfully; their fidelity figures are a floor check
(trained weights quantise differently): pass --model with a real checkpoint to
measure those.
"""

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model import onnx_tower, preprocess, triton_runtime
from model.train_demo import Normaliser
from tests import imagegen
from tests.checkpoint_cache import vit_b_32_checkpoint

FIDELITY_TARGET = 0.99


def cpu_has_bf16_units() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def images_per_s(run: Callable[[], object], batch: int, seconds: float) -> float:
    run()  # warm-up
    count, started = 0, time.perf_counter()
    while count == 0 or time.perf_counter() - started < seconds:
        run()
        count += 1
    return batch * count / (time.perf_counter() - started)


def torch_runtimes(path: Path) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    eager, sdpa = onnx_tower.image_tower_module(path, "eager"), onnx_tower.image_tower_module(path, "sdpa")
    int8 = torch.ao.quantization.quantize_dynamic(sdpa, {torch.nn.Linear}, dtype=torch.qint8)  # a quantised copy

    def bf16(pixels):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return sdpa(pixels).float()

    runtimes = {"torch fp32 eager (reference)": eager, "torch fp32 sdpa": sdpa, "torch int8 dynamic": int8}
    if cpu_has_bf16_units():
        runtimes["torch bf16 autocast"] = bf16
    return runtimes


def onnx_runtimes(path: Path, workdir: Path, threads: int) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    import onnxruntime

    fp32_file, int8_file = workdir / "image.onnx", workdir / "image-int8.onnx"
    onnx_tower.export(path, fp32_file, int8_file)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads

    def session(file: Path):
        runner = onnxruntime.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        return lambda pixels: torch.from_numpy(runner.run(None, {"pixel_values": pixels.numpy()})[0])

    return {"onnxruntime fp32": session(fp32_file), "onnxruntime int8 dynamic": session(int8_file)}


def scene_pixels(path: Path, batch: int) -> torch.Tensor:
    """Normalised model pixels of generated 640x480 scenes, as the Triton model gets them."""
    import json

    size = triton_runtime.image_size(path)
    pixels = np.stack([preprocess.to_model_pixels(imagegen.scene(640, 480, seed=i), size) for i in range(batch)])
    return Normaliser(json.loads((path / "preprocessor_config.json").read_text()))(pixels)


def measure(path: Path, batch: int, seconds: float, threads: int) -> list[tuple[str, float, float]]:
    """(runtime, images/s, lowest cosine against the reference) for each runtime."""
    pixels = scene_pixels(path, batch)
    results = []
    with tempfile.TemporaryDirectory() as workdir, torch.inference_mode():
        runtimes = torch_runtimes(path)
        reference = runtimes["torch fp32 eager (reference)"](pixels)
        runtimes.update(onnx_runtimes(path, Path(workdir), threads))
        for name, run in runtimes.items():
            rate = images_per_s(lambda: run(pixels), batch, seconds)
            cosine = F.cosine_similarity(run(pixels).float(), reference, dim=-1).min().item()
            results.append((name, rate, cosine))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a CLIP checkpoint (default: ViT-B/32's shape, random weights)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0, help="time each runtime runs for")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = args.model or vit_b_32_checkpoint()
    results = measure(path, args.batch, args.seconds, args.threads)
    print(f"image tower of {path.name}, batch {args.batch}, {args.threads} threads"
          + ("" if cpu_has_bf16_units() else "; no bf16 units on this CPU: bf16 not measured"))
    print(f"{'runtime':32} {'images/s':>9} {'vs ref':>7} {'min cos':>8}")
    for name, rate, cosine in results:
        verdict = "" if cosine >= FIDELITY_TARGET else f"  below {FIDELITY_TARGET}"
        print(f"{name:32} {rate:9.1f} {rate / results[0][1]:7.2f} {cosine:8.4f}{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
