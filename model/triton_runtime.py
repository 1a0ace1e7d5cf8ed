"""What the three CLIP models of this repository share: where the checkpoint is,
which device and precision to run on, and the checkpoint's identity.

The models in deploy/triton-models import it as `model.triton_runtime`: the repository's
root is on Triton's Python path (the local stack's Triton runs the project's virtual
environment; the Triton image copies model/ and sets PYTHONPATH).

The checkpoint is any Hugging Face CLIP directory (CLIPModel weights, tokenizer,
image-processor config). It is found in VIZSEARCH_MODEL_DIR, else the model
config's `model_dir` parameter; VIZSEARCH_MODEL names it in metadata.
"""

import hashlib
import json
import os
from pathlib import Path

DEFAULT_MODEL_DIR = "/models/clip"
WEIGHT_SUFFIXES = (".safetensors", ".bin")
CPU_RUNTIMES = ("fp32", "int8", "onnx-int8")
JPEG_DECODES = ("auto", "triton", "embedder")
# The most regions (images and boxes) the image tower embeds in one forward pass:
# bounds an instance's activation memory whatever the batch of requests holds.
MAX_FORWARD_BATCH = 512


def model_dir(model_config: dict) -> Path:
    configured = model_config.get("parameters", {}).get("model_dir", {}).get("string_value")
    path = Path(os.environ.get("VIZSEARCH_MODEL_DIR") or configured or DEFAULT_MODEL_DIR)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no Hugging Face CLIP checkpoint (config.json) in {path}")
    return path


def clip_config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def image_size(path: Path) -> int:
    """Side of the square the vision tower sees (after resize and centre crop)."""
    return int(clip_config(path)["vision_config"].get("image_size", 224))


def embedding_dim(path: Path) -> int:
    return int(clip_config(path).get("projection_dim", 512))


def max_text_tokens(path: Path) -> int:
    return int(clip_config(path)["text_config"].get("max_position_embeddings", 77))


def weights_version(path: Path) -> str:
    """sha256 over the weight files' names and bytes: changes exactly when the weights do."""
    digest = hashlib.sha256()
    for weights in sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES):
        digest.update(weights.name.encode())
        with weights.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def tower_config(path: Path, tower: str):
    """The config of one tower ("vision" or "text") carrying the checkpoint's projection size,
    which CLIPModel keeps at the top level and a tower config would otherwise default."""
    from transformers import CLIPConfig

    config = CLIPConfig.from_pretrained(path)
    tower_config = getattr(config, f"{tower}_config")
    tower_config.projection_dim = config.projection_dim
    return tower_config


def device_and_dtype(args: dict):
    """GPU instances run in half precision; CPU instances in fp32 (see cpu_runtime)."""
    import torch

    if args.get("model_instance_kind") == "GPU" and torch.cuda.is_available():
        return torch.device(f"cuda:{args['model_instance_device_id']}"), torch.float16
    return torch.device("cpu"), torch.float32


def cpu_runtime() -> str:
    """What CPU instances run, from VIZSEARCH_CPU_RUNTIME: "onnx-int8" (default, the
    fastest measured): the image tower in ONNX Runtime with int8 MatMuls
    (model/onnx_tower.py), the text tower in fp32 (it serves queries, one text at a
    time); "int8": every Linear layer of both towers dynamically quantised by torch.ao
    (deprecated in favour of torchao's, still shipped in the pinned 2.13); "fp32":
    torch, the reference. The int8 runtimes stay above a cosine of 0.999 to fp32 on
    ViT-B/32; speeds: docs/benchmarks.md, "CPU runtimes". Dynamic quantisation scales
    activations per batch, so an int8 vector depends slightly on its batch mates (a
    cosine above 0.999 to the same input embedded alone)."""
    runtime = os.environ.get("VIZSEARCH_CPU_RUNTIME", "onnx-int8")
    if runtime not in CPU_RUNTIMES:
        raise ValueError(f"VIZSEARCH_CPU_RUNTIME={runtime!r}: expected one of {', '.join(CPU_RUNTIMES)}")
    return runtime


def for_device(tower, device):
    """A loaded tower as an instance on `device` runs it."""
    import torch

    if device.type == "cpu" and cpu_runtime() == "int8":
        return torch.ao.quantization.quantize_dynamic(tower, {torch.nn.Linear}, dtype=torch.qint8)
    return tower


def torch_compile() -> bool:
    """VIZSEARCH_TORCH_COMPILE (default false): whether the image tower runs through
    torch.compile (inductor fuses the layer norms, GELUs and residual adds around the
    matmuls) where it runs in torch unquantised: GPU instances, and CPU instances with
    VIZSEARCH_CPU_RUNTIME=fp32. The batch dimension is compiled dynamic, so every batch
    of 2 and more shares one graph and batches of 1 have their own; the instance compiles
    both at load, so the first requests do not wait. Off by default: on a GPU it is
    unmeasured (make bench-gpu prints the tower's rate eager and compiled)."""
    value = os.environ.get("VIZSEARCH_TORCH_COMPILE", "false").strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(f"VIZSEARCH_TORCH_COMPILE={value!r}: expected true or false")
    return value in ("true", "1")


def compiles_image_tower(device) -> bool:
    """Whether an image tower on `device` runs compiled (see torch_compile)."""
    return torch_compile() and (device.type == "cuda" or cpu_runtime() == "fp32")


def jpeg_decode() -> str:
    """Who decodes JPEGs, from VIZSEARCH_JPEG_DECODE: "auto" (default) is "triton" where
    Triton has a GPU (clip_jpeg decodes, crops and resizes there, in batches) and
    "embedder" where it has none (the embedder's thread pool does that work on the CPU,
    in parallel, and sends pixels); "triton" or "embedder" force one. The embedder learns
    the answer from clip_metadata."""
    import torch

    choice = os.environ.get("VIZSEARCH_JPEG_DECODE", "auto")
    if choice not in JPEG_DECODES:
        raise ValueError(f"VIZSEARCH_JPEG_DECODE={choice!r}: expected one of {', '.join(JPEG_DECODES)}")
    if choice == "auto":
        return "triton" if torch.cuda.is_available() else "embedder"
    return choice


def serving_runtime() -> str:
    """What the towers run as, for the metadata: gpu-fp16 where Triton has a GPU (it
    places an instance on each), else cpu-<cpu_runtime()>; "-compiled" follows where
    the image tower runs through torch.compile."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    runtime = "gpu-fp16" if device.type == "cuda" else f"cpu-{cpu_runtime()}"
    return f"{runtime}-compiled" if compiles_image_tower(device) else runtime


def add_embedding_io(auto_complete_model_config, input_spec: dict) -> None:
    """Declares the model's input and its EMBEDDING output, sized from the checkpoint."""
    path = model_dir(auto_complete_model_config.as_dict())
    auto_complete_model_config.add_input(input_spec)
    auto_complete_model_config.add_output({"name": "EMBEDDING", "data_type": "TYPE_FP32", "dims": [embedding_dim(path)]})


def embedding_responses(pb_utils, embeddings, counts: list[int]) -> list:
    """L2-normalised FP32 embeddings of one dynamic batch, split back into one response per request."""
    import torch

    normalised = torch.nn.functional.normalize(embeddings.float(), dim=-1).cpu().numpy()
    responses, start = [], 0
    for count in counts:
        output = pb_utils.Tensor("EMBEDDING", normalised[start : start + count])
        responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
        start += count
    return responses


class VisionTower:
    """A checkpoint's image tower as one Triton instance runs it (clip_image, clip_jpeg):
    takes RGB pixels in 0..255 and normalises them itself, on the instance's device, so
    clients send compact uint8 tensors (or JPEG bytes)."""

    def __init__(self, args: dict):
        import torch
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        config = json.loads(args["model_config"])
        path = model_dir(config)
        self.device, self.dtype = device_and_dtype(args)
        self.size = image_size(path)
        self.model = self.onnx = None
        if self.device.type == "cpu" and cpu_runtime() == "onnx-int8":
            from model.onnx_tower import OnnxImageTower

            self.onnx = OnnxImageTower(path, torch.get_num_threads())
        else:
            self.model = for_device(CLIPVisionModelWithProjection.from_pretrained(
                path, config=tower_config(path, "vision"), dtype=self.dtype, attn_implementation="sdpa"
            ).to(self.device).eval(), self.device)
        self.compiled = compiles_image_tower(self.device) and self.model is not None
        self.forward = torch.compile(self.model) if self.compiled else self.model
        processor = CLIPImageProcessor.from_pretrained(path)
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(processor.image_mean, device=self.device).reshape(shape) * 255.0
        self.std = torch.tensor(processor.image_std, device=self.device).reshape(shape) * 255.0
        if self.device.type == "cuda" or self.compiled:
            # The first batches of each size pay for CUDA kernels' selection, and for
            # compilation (a graph for 1, one for any larger batch): pay at load.
            largest = min(MAX_FORWARD_BATCH, max(1, int(config.get("max_batch_size", 1))))
            for batch in sorted({1, min(2, largest), largest}):
                self.embed(torch.zeros((batch, 3, self.size, self.size), device=self.device))

    def embed(self, pixels):
        """Image embeddings (not yet normalised) of pixels [N, 3, S, S] in 0..255, any float or uint8 dtype."""
        import torch

        with torch.inference_mode():
            parts = []
            for start in range(0, len(pixels), MAX_FORWARD_BATCH):
                chunk = pixels[start : start + MAX_FORWARD_BATCH].to(self.device).float()
                normalised = ((chunk - self.mean) / self.std).to(self.dtype)
                if self.onnx is not None:
                    parts.append(torch.from_numpy(self.onnx(normalised.numpy())))
                    continue
                if self.compiled:  # one layout and a dynamic batch: the graphs compiled at load fit
                    normalised = normalised.contiguous()
                    torch._dynamo.maybe_mark_dynamic(normalised, 0)
                parts.append(self.forward(pixel_values=normalised).image_embeds)
            return torch.cat(parts)
