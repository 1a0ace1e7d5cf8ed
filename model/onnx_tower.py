"""A checkpoint's image tower in ONNX Runtime, for CPU instances
(VIZSEARCH_CPU_RUNTIME=onnx-int8): exported with torch.onnx (the dynamo exporter, a
dynamic batch), its MatMuls quantised dynamically to int8 by onnxruntime.quantization.

Exporting and quantising take seconds to a minute, so the result is kept in
VIZSEARCH_ONNX_CACHE (default: a vizsearch-onnx folder in the system's temporary
directory), named by the weights' version: a restart, or a second instance, loads it.
The model directory itself may be read-only (a Helm volume), so nothing is written there.
"""

import fcntl
import os
import tempfile
from pathlib import Path

import numpy as np

from model import triton_runtime


def cache_dir() -> Path:
    return Path(os.environ.get("VIZSEARCH_ONNX_CACHE") or Path(tempfile.gettempdir()) / "vizsearch-onnx")


def image_tower_module(path: Path, attention: str = "sdpa"):
    """pixel_values -> image_embeds as a torch module: the tower as the Triton image model runs it."""
    import torch
    from transformers import CLIPVisionModelWithProjection

    class ImageTower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = CLIPVisionModelWithProjection.from_pretrained(
                path, config=triton_runtime.tower_config(path, "vision"), dtype=torch.float32,
                attn_implementation=attention).eval()

        def forward(self, pixel_values):
            return self.model(pixel_values=pixel_values).image_embeds

    return ImageTower()


def export(path: Path, fp32_file: Path, int8_file: Path | None = None) -> None:
    """The tower of checkpoint `path` as ONNX in fp32_file and, if given, quantised in int8_file."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    size = triton_runtime.image_size(path)
    with torch.inference_mode(False):  # the exporter traces outside inference mode
        torch.onnx.export(image_tower_module(path), (torch.zeros(2, 3, size, size),), fp32_file,
                          input_names=["pixel_values"], output_names=["image_embeds"], dynamo=True, verbose=False,
                          dynamic_shapes={"pixel_values": {0: torch.export.Dim("batch", min=1, max=4096)}})
    if int8_file is not None:
        quantize_dynamic(fp32_file, int8_file, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])


def int8_image_tower_file(path: Path) -> Path:
    """The checkpoint's int8 image tower, exported into the cache unless it is there; one
    process exports while any other waits for it (a lock file beside it)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{triton_runtime.weights_version(path)}-image-int8.onnx"
    with open(folder / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            with tempfile.TemporaryDirectory(dir=folder) as scratch:
                partial = Path(scratch) / target.name
                export(path, Path(scratch) / "fp32.onnx", partial)
                partial.replace(target)  # whole or absent, whatever interrupts it
    return target


class OnnxImageTower:
    """The int8 image tower in an ONNX Runtime session: normalised float32 pixels
    [N, 3, S, S] in, image embeddings [N, D] out."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        # Waiting threads sleep instead of spinning, as OMP_WAIT_POLICY=PASSIVE makes torch's:
        # the other models' stubs and the services beside Triton share these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(int8_image_tower_file(path)), options,
                                                    providers=["CPUExecutionProvider"])

    def __call__(self, pixel_values: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"pixel_values": np.ascontiguousarray(pixel_values, np.float32)})[0]
