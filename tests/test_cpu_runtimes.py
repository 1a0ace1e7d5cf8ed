"""CPU runtimes: make bench-cpu-runtimes keeps working (every runtime it compares runs
the demo model's image tower and reports a rate and a fidelity against the fp32
reference), and the Triton models run the one VIZSEARCH_CPU_RUNTIME names."""

import json
import sys

import numpy as np
import pytest
import torch

from model import triton_runtime
from services.localstack.config import DEMO_MODEL
from tests import triton_python_models
from tests.bench import bench_cpu_runtimes


def test_every_runtime_embeds_close_to_the_reference():
    results = {name: (rate, cosine) for name, rate, cosine in
               bench_cpu_runtimes.measure(DEMO_MODEL, batch=4, seconds=0, threads=2)}
    assert {"torch fp32 eager (reference)", "torch fp32 sdpa", "torch int8 dynamic", "onnxruntime fp32",
            "onnxruntime int8 dynamic"} <= set(results)
    assert results["torch fp32 eager (reference)"][1] > 0.9999
    for name in ("torch fp32 sdpa", "onnxruntime fp32"):  # the same arithmetic, reordered
        assert results[name][1] > 0.999, name
    assert all(rate > 0 and -1 <= cosine <= 1.0001 for rate, cosine in results.values())


@pytest.fixture
def triton_models(monkeypatch):
    """The model repository's python models, loaded as Triton would on a CPU instance."""
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", triton_python_models.backend_utils())
    monkeypatch.setenv("VIZSEARCH_MODEL_DIR", str(DEMO_MODEL))

    def load(model: str, runtime: str):
        monkeypatch.setenv("VIZSEARCH_CPU_RUNTIME", runtime)
        return triton_python_models.load(model)

    return load


def torch_module(instance):
    """The tower a Triton model instance runs (clip_image keeps it in a VisionTower)."""
    return instance.tower.model if hasattr(instance, "tower") else instance.model


def quantised(module) -> bool:
    return any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in module.modules())


@pytest.mark.parametrize("runtime", ["int8", "onnx-int8"])
def test_each_fast_runtime_serves_both_towers_faithfully_and_says_so(triton_models, runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("VIZSEARCH_ONNX_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 224, 224, 3), dtype=np.uint8)
    texts = np.array([[f"a photo of {n} buses at night".encode()] for n in range(12)], dtype=np.object_)
    for model, name, data in (("clip_image", "PIXELS", pixels), ("clip_text", "TEXT", texts)):
        fp32, fast = triton_models(model, "fp32"), triton_models(model, runtime)
        assert not quantised(torch_module(fp32))
        if runtime == "int8":
            assert quantised(torch_module(fast))
        elif model == "clip_image":
            assert fast.tower.model is None and fast.tower.onnx is not None
        else:
            assert not quantised(torch_module(fast)), "onnx-int8 leaves the text tower in fp32"
        split = [data[:5], data[5:]]  # two requests in one execute, as dynamic batching hands them over
        cosines = (triton_python_models.run(fp32, name, split) * triton_python_models.run(fast, name, split)).sum(1)
        assert cosines.min() >= 0.99, (model, cosines)
    metadata = triton_models("clip_metadata", runtime)
    assert json.loads(metadata.document[0])["runtime"] == f"cpu-{runtime}"


def test_the_onnx_tower_is_exported_once_per_checkpoint(triton_models, tmp_path, monkeypatch):
    monkeypatch.setenv("VIZSEARCH_ONNX_CACHE", str(tmp_path))
    triton_models("clip_image", "onnx-int8")
    [exported] = tmp_path.glob("*-image-int8.onnx")
    assert exported.name.startswith(triton_runtime.weights_version(DEMO_MODEL))
    written = exported.stat().st_mtime_ns
    triton_models("clip_jpeg", "onnx-int8")  # a second instance, or a restart: loads the cached file
    assert exported.stat().st_mtime_ns == written and len(list(tmp_path.iterdir())) == 2  # the file and its lock


def test_a_compiled_image_tower_compiles_at_load_and_embeds_as_eager(triton_models, monkeypatch):
    from torch._dynamo.utils import counters

    eager = triton_models("clip_image", "fp32")
    monkeypatch.setenv("VIZSEARCH_TORCH_COMPILE", "true")
    compiled = triton_models("clip_image", "fp32")
    assert compiled.tower.compiled and not eager.tower.compiled
    graphs = counters["stats"]["unique_graphs"]
    pixels = np.random.default_rng(0).integers(0, 256, (9, 224, 224, 3), dtype=np.uint8)
    # Batches of every size, as dynamic batching makes them: no compilation after load.
    for split in ([pixels[:1]], [pixels[1:4]], [pixels[:2], pixels[2:9]]):
        cosines = (triton_python_models.run(eager, "PIXELS", split)
                   * triton_python_models.run(compiled, "PIXELS", split)).sum(1)
        assert cosines.min() >= 0.9999
    assert counters["stats"]["unique_graphs"] == graphs
    assert json.loads(triton_models("clip_metadata", "fp32").document[0])["runtime"] == "cpu-fp32-compiled"
    # Quantised runtimes run as they are: compiling applies to the unquantised torch tower.
    assert not triton_models("clip_image", "int8").tower.compiled
    assert json.loads(triton_models("clip_metadata", "int8").document[0])["runtime"] == "cpu-int8"
    monkeypatch.setenv("VIZSEARCH_TORCH_COMPILE", "maybe")
    with pytest.raises(ValueError, match="VIZSEARCH_TORCH_COMPILE='maybe'"):
        triton_models("clip_image", "fp32")


def test_an_unknown_cpu_runtime_is_named(triton_models):
    with pytest.raises(ValueError, match="VIZSEARCH_CPU_RUNTIME='fp8'"):
        triton_models("clip_image", "fp8")
