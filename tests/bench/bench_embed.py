"""Embedding throughput: `make bench-embed`.

Serves a CLIP with OpenAI ViT-B/32's shape (random weights: speed does not
depend on them) through Triton and the embedder, on ports of its own, and prints:
images/s through the embedder at batch 64 (JPEG in, vectors out), the same image
encoder's images/s called directly in torch, their ratio (target >= 0.8), text
embeddings/s, the machine's fp32 matmul GFLOP/s and the fraction of it the image
encoder reaches (8.8 GFLOP per image). On a GPU it adds fp16 direct images/s.
"""

import argparse
import concurrent.futures
import os
import tempfile
import time
from pathlib import Path

import grpc
import torch

from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.localstack.config import StackSettings
from services.localstack.launcher import Stack
from tests import imagegen
from tests.checkpoint_cache import vit_b_32_checkpoint

GFLOP_PER_IMAGE = 8.8
PORT_SHIFT = 12_000  # beyond the test stacks' ports


def matmul_gflops(seconds: float = 3.0, n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - started) / 1e9


def direct_images_per_s(model_dir: Path, batch: int, rounds: int, device: str = "cpu", dtype=torch.float32) -> float:
    from transformers import CLIPVisionModelWithProjection

    model = CLIPVisionModelWithProjection.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    pixels = torch.randn(batch, 3, 224, 224, dtype=dtype, device=device)
    with torch.inference_mode():
        model(pixel_values=pixels)
        started = time.perf_counter()
        for _ in range(rounds):
            model(pixel_values=pixels).image_embeds.float().cpu()
    return batch * rounds / (time.perf_counter() - started)


def service_images_per_s(stub, batch: int, rounds: int, clients: int, jpegs: list[bytes] | None = None) -> float:
    """Images/s through the embedder, `clients` callers each sending batches of `batch`
    (generated 640x480 JPEGs unless given)."""
    jpegs = jpegs or [imagegen.encode(imagegen.scene(640, 480, seed=i), "JPEG", quality=90) for i in range(batch)]
    request = embedder_pb2.EmbedImagesRequest(images=[common_pb2.ImageInput(data=d) for d in jpegs],
                                              fail_on_item_error=True)
    stub.EmbedImages(request, timeout=600)  # warm up
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: stub.EmbedImages(request, timeout=600), range(rounds)))
    return batch * rounds / (time.perf_counter() - started)


def service_texts_per_s(stub, batch: int, rounds: int) -> float:
    texts = [f"a photo of {i} taxis waiting at a crosswalk at night" for i in range(batch)]
    stub.EmbedTexts(embedder_pb2.EmbedTextsRequest(texts=texts), timeout=600)
    started = time.perf_counter()
    for _ in range(rounds):
        stub.EmbedTexts(embedder_pb2.EmbedTextsRequest(texts=texts), timeout=600)
    return batch * rounds / (time.perf_counter() - started)


def main() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--clients", type=int, default=2, help="concurrent callers of the embedder")
    args = parser.parse_args()

    model_dir = vit_b_32_checkpoint()
    ports = StackSettings.shifted_ports(PORT_SHIFT)
    with tempfile.TemporaryDirectory() as run_dir:
        stack = Stack(StackSettings(run_dir=Path(run_dir), model=str(model_dir), **ports))
        stack.components = [c for c in stack.components if c.name in ("triton", "embedder")]
        try:
            stack.up(log=lambda line: None)
            with grpc.insecure_channel(f"127.0.0.1:{stack.settings.embedder_port}") as channel:
                stub = embedder_pb2_grpc.EmbedderStub(channel)
                runtime = stub.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=60).runtime
                service = service_images_per_s(stub, args.batch, args.rounds, args.clients)
                texts = service_texts_per_s(stub, 256, args.rounds)
        finally:
            stack.down(log=lambda line: None)

    direct = direct_images_per_s(model_dir, args.batch, args.rounds)
    gflops = matmul_gflops()
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"fp32 matmul:                       {gflops:8.1f} GFLOP/s")
    print(f"Triton runs the towers as {runtime} (VIZSEARCH_CPU_RUNTIME)")
    print(f"image encoder, direct torch (fp32): {direct:8.2f} images/s at batch {args.batch}")
    print(f"image encoder, through embedder:    {service:8.2f} images/s at batch {args.batch} "
          f"({args.clients} clients, 640x480 JPEG in)")
    print(f"embedder / direct:                  {service / direct:8.2f}  (target >= 0.80)")
    print(f"image encoder share of matmul peak: {direct * GFLOP_PER_IMAGE / gflops:8.1%} "
          f"(direct), {service * GFLOP_PER_IMAGE / gflops:.1%} (embedder; int8 runtimes pass the fp32 peak)")
    print(f"text encoder, through embedder:     {texts:8.1f} texts/s at batch 256")
    if torch.cuda.is_available():
        fp16 = direct_images_per_s(model_dir, args.batch, args.rounds * 5, "cuda", torch.float16)
        print(f"image encoder, direct torch (fp16, {torch.cuda.get_device_name()}): {fp16:8.1f} images/s")


if __name__ == "__main__":
    main()
