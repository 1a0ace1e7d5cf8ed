"""The GPU path, measured without a Triton server: runs the model repository's python
models (clip_image, clip_jpeg, clip_text) as Triton's python backend would, as GPU
instances (fp16), and prints for one checkpoint (default: ViT-B/32's shape, random
weights):

- the GPU's fp16 matrix-multiply rate, measured (8192 x 8192 matmuls);
- fidelity: GPU fp16 vs CPU fp32 instances (images, texts), and clip_jpeg (JPEG bytes
  decoded, cropped and resized on the GPU) vs the CPU path (Pillow decode and resize in
  the embedder, then clip_image on the CPU), as lowest cosines;
- model only (uint8 pixels in): images/s at each batch size, the best one's share of
  the matmul rate (the tower's GFLOP per image from its config; ViT-B/32: 8.82), and
  at that batch size with the tower compiled (VIZSEARCH_TORCH_COMPILE=true), with the
  seconds the compiling instance took to load and its lowest cosine to the eager one;
- JPEG bytes -> vectors: images/s for 640x480 and 1280x720 JPEGs, one request per image
  as the embedder sends them, 256 requests per execute as the dynamic batcher joins them;
- 1280x720 JPEGs with 10 boxes each: images/s and boxes/s (embeddings/s);
- texts/s at batch 256.

    make bench-gpu            # python -m tests.bench.bench_gpu [--model DIR] [--seconds 5]

`--device cpu` runs the same code as CPU instances (fp32), which is how the tests run it.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from tests import imagegen, triton_python_models

BOXES_PER_IMAGE = 10


def vision_gflop_per_image(model_dir: Path) -> float:
    """The image tower's multiply-adds per image, times two: patch embedding, then per
    layer and token the attention projections (4 d^2), the MLP (2 d ff) and attention
    itself (2 n d). ViT-B/32: 8.82."""
    vision = json.loads((model_dir / "config.json").read_text())["vision_config"]
    size, patch = vision.get("image_size", 224), vision.get("patch_size", 32)
    d, ff, layers = vision.get("hidden_size", 768), vision.get("intermediate_size", 3072), vision.get(
        "num_hidden_layers", 12)
    patches = (size // patch) ** 2
    tokens = patches + 1
    macs = patches * 3 * patch * patch * d + layers * tokens * (4 * d * d + 2 * d * ff + 2 * tokens * d)
    return 2 * macs / 1e9


def matmul_tflops(device: str, seconds: float) -> float:
    """Measured rate of square matmuls: fp16 8192 on a GPU, fp32 2048 on a CPU."""
    import torch

    side, dtype = (8192, torch.float16) if device == "cuda" else (2048, torch.float32)
    a = torch.randn(side, side, device=device, dtype=dtype)
    b = torch.randn(side, side, device=device, dtype=dtype)
    rounds, elapsed = timed(lambda: (a @ b).sum().item(), seconds)
    return rounds * 2 * side**3 / elapsed / 1e12


def timed(work, seconds: float) -> tuple[int, float]:
    """(rounds, elapsed) of `work` repeated for about `seconds` after one warm-up round (at least one round)."""
    work()
    began, rounds = time.perf_counter(), 0
    while rounds == 0 or time.perf_counter() - began < seconds:
        work()
        rounds += 1
    return rounds, time.perf_counter() - began


def jpeg_requests(jpegs: list[bytes], regions: list[np.ndarray]) -> list:
    return triton_python_models.requests_of(JPEG=[np.array([[j]], dtype=np.object_) for j in jpegs],
                                            REGIONS=[r[None].astype(np.float32) for r in regions])


def annotated_jpegs(width: int, height: int, count: int, boxes: int, seed: int = 0):
    """`count` scene JPEGs with `boxes` random boxes each: (jpegs, regions [1 + boxes, 4] each)."""
    rng = np.random.default_rng(seed)
    jpegs, regions = [], []
    for i in range(count):
        jpegs.append(imagegen.encode(imagegen.scene(width, height, seed=seed * 1000 + i), "JPEG", quality=90))
        rows = [(0, 0, width, height)]
        for _ in range(boxes):
            w, h = int(rng.integers(24, width // 3)), int(rng.integers(24, height // 3))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            rows.append((x, y, x + w, y + h))
        regions.append(np.array(rows))
    return jpegs, regions


def jpeg_fidelity(jpeg_model, cpu_image, jpegs, regions) -> float:
    """Lowest cosine of clip_jpeg's vectors against the embedder's CPU path through clip_image."""
    from model import preprocess
    from services.common import images

    responses = jpeg_model.execute(jpeg_requests(jpegs, regions))
    lowest = 1.0
    for data, rows, response in zip(jpegs, regions, responses):
        image = images.decode(data, 10**9)
        size = cpu_image.tower.size
        pixels = np.stack([preprocess.to_model_pixels(image.crop(tuple(int(v) for v in r)), size) for r in rows])
        reference = triton_python_models.run(cpu_image, "PIXELS", [pixels])
        lowest = min(lowest, float((response.output_tensors[0].as_numpy()[0] * reference).sum(1).min()))
    return lowest


def share_of_matmul_rate(images_per_s: float, gflop: float, matmul_tflops: float) -> float:
    return round(images_per_s * gflop / 1e3 / matmul_tflops, 3)


def compiled_tower(kind: str, batch: int, pixels: np.ndarray, eager, seconds: float, gflop: float,
                   matmul_tflops: float) -> dict:
    """The image tower through torch.compile at one batch size: load time (compiling), rate, fidelity to eager."""
    import os

    before = os.environ.get("VIZSEARCH_TORCH_COMPILE")
    os.environ["VIZSEARCH_TORCH_COMPILE"] = "true"
    try:
        began = time.perf_counter()
        compiled = triton_python_models.load("clip_image", kind, max_batch_size=batch)
        load_s = time.perf_counter() - began
    finally:
        if before is None:
            del os.environ["VIZSEARCH_TORCH_COMPILE"]
        else:
            os.environ["VIZSEARCH_TORCH_COMPILE"] = before
    rounds, elapsed = timed(lambda: triton_python_models.run(compiled, "PIXELS", [pixels]), seconds)
    cosine = (triton_python_models.run(compiled, "PIXELS", [pixels]) * triton_python_models.run(
        eager, "PIXELS", [pixels])).sum(1).min()
    rate = rounds * batch / elapsed
    return {"compiled": compiled.tower.compiled, "batch": batch, "images_per_s": round(rate, 1),
            "load_s": round(load_s, 1),
            "share_of_matmul_rate": share_of_matmul_rate(rate, gflop, matmul_tflops),
            "lowest_cosine_to_eager": round(float(cosine), 5)}


def measure(model_dir: Path, device: str, seconds: float, batches: tuple[int, ...], jpeg_batch: int,
            distinct: int) -> dict:
    """Every figure above, as a dict; `distinct` JPEGs of each kind are generated and repeated to fill a batch."""
    import os

    import torch

    os.environ["VIZSEARCH_MODEL_DIR"] = str(model_dir)
    kind = "GPU" if device == "cuda" else "CPU"
    results: dict = {"model": model_dir.name, "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                     "torch": torch.__version__}
    from model import device_preprocess

    results["jpeg_decoder"] = device_preprocess.jpeg_decoder()
    results["matmul_tflops"] = round(matmul_tflops(device, seconds), 2)

    largest = max(batches)
    image = triton_python_models.load("clip_image", kind, max_batch_size=largest)
    jpeg = triton_python_models.load("clip_jpeg", kind, max_batch_size=jpeg_batch)
    text = triton_python_models.load("clip_text", kind, max_batch_size=256)
    cpu_image = triton_python_models.load("clip_image", "CPU") if kind == "GPU" else image
    size = image.tower.size
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (largest, size, size, 3), dtype=np.uint8)
    texts = np.array([[f"a photo of {n} taxis waiting at a crosswalk".encode()] for n in range(256)], dtype=np.object_)

    fidelity = {}
    if kind == "GPU":
        cpu_text = triton_python_models.load("clip_text", "CPU")
        for name, gpu_model, cpu_model, data, field in (("clip_image", image, cpu_image, pixels[:32], "PIXELS"),
                                                        ("clip_text", text, cpu_text, texts[:32], "TEXT")):
            split = [data[:7], data[7:]]
            fidelity[f"{name} gpu fp16 vs cpu fp32"] = round(float((
                triton_python_models.run(gpu_model, field, split)
                * triton_python_models.run(cpu_model, field, split)).sum(1).min()), 5)
    jpegs_720, regions_720 = annotated_jpegs(1280, 720, distinct, BOXES_PER_IMAGE)
    fidelity["clip_jpeg vs cpu path (1280x720, 10 boxes)"] = round(
        jpeg_fidelity(jpeg, cpu_image, jpegs_720[:4], regions_720[:4]), 5)
    results["lowest_cosine"] = fidelity

    model_only = {}
    for batch in batches:
        rounds, elapsed = timed(lambda: triton_python_models.run(image, "PIXELS", [pixels[:batch]]), seconds)
        model_only[batch] = round(rounds * batch / elapsed, 1)
    best = max(model_only, key=model_only.get)
    results["model_only_images_per_s"] = model_only
    gflop = vision_gflop_per_image(model_dir)
    results["model_only_best"] = {"batch": best, "images_per_s": model_only[best], "gflop_per_image": round(gflop, 2),
                                  "share_of_matmul_rate": share_of_matmul_rate(model_only[best], gflop,
                                                                               results["matmul_tflops"])}
    results["model_only_compiled"] = compiled_tower(kind, best, pixels[:best], image, seconds, gflop,
                                                    results["matmul_tflops"])

    def fill(items: list) -> list:
        return (items * (jpeg_batch // len(items) + 1))[:jpeg_batch]

    jpeg_rates = {}
    for width, height in ((640, 480), (1280, 720)):
        jpegs, _ = annotated_jpegs(width, height, distinct, 0, seed=1)
        requests = jpeg_requests(fill(jpegs), [np.array([(0, 0, width, height)])] * jpeg_batch)
        rounds, elapsed = timed(lambda: jpeg.execute(requests), seconds)
        jpeg_rates[f"{width}x{height}"] = round(rounds * jpeg_batch / elapsed, 1)
    results["jpeg_to_vectors_images_per_s"] = jpeg_rates

    requests = jpeg_requests(fill(jpegs_720), fill(regions_720))
    rounds, elapsed = timed(lambda: jpeg.execute(requests), seconds)
    images_per_s = rounds * jpeg_batch / elapsed
    results["annotated_1280x720_10_boxes"] = {"images_per_s": round(images_per_s, 1),
                                              "boxes_per_s": round(images_per_s * BOXES_PER_IMAGE, 1),
                                              "embeddings_per_s": round(images_per_s * (1 + BOXES_PER_IMAGE), 1)}

    rounds, elapsed = timed(lambda: triton_python_models.run(text, "TEXT", [texts]), seconds)
    results["texts_per_s_batch_256"] = round(rounds * len(texts) / elapsed, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a Hugging Face CLIP directory (default: ViT-B/32's shape, random)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per figure")
    parser.add_argument("--batches", default="64,128,256,512", help="model-only batch sizes")
    parser.add_argument("--jpeg-batch", type=int, default=256, help="JPEG requests per execute (max_batch_size)")
    parser.add_argument("--distinct", type=int, default=32, help="different JPEGs generated of each kind")
    args = parser.parse_args()
    import torch

    from tests.checkpoint_cache import vit_b_32_checkpoint

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(f"torch {torch.__version__} sees no CUDA device: run on a GPU machine with a CUDA build of "
                     "torch, or pass --device cpu")
    sys.modules["triton_python_backend_utils"] = triton_python_models.backend_utils()
    results = measure(args.model or vit_b_32_checkpoint(), args.device, args.seconds,
                      tuple(int(b) for b in args.batches.split(",")), args.jpeg_batch, args.distinct)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
