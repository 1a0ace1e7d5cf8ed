"""CPU runtimes: make bench-cpu-runtimes keeps working (every runtime it compares runs
the demo model's image tower and reports a rate and a fidelity against the fp32
reference), and the Triton models run the one VIZSEARCH_CPU_RUNTIME names."""

import json
import sys

import numpy as np
import pytest
import torch

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


def test_the_int8_runtime_serves_both_towers_faithfully_and_says_so(triton_models):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 224, 224, 3), dtype=np.uint8)
    texts = np.array([[f"a photo of {n} buses at night".encode()] for n in range(12)], dtype=np.object_)
    for model, name, data in (("clip_image", "PIXELS", pixels), ("clip_text", "TEXT", texts)):
        fp32, int8 = triton_models(model, "fp32"), triton_models(model, "int8")
        assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in torch_module(int8).modules())
        assert not any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in torch_module(fp32).modules())
        split = [data[:5], data[5:]]  # two requests in one execute, as dynamic batching hands them over
        cosines = (triton_python_models.run(fp32, name, split) * triton_python_models.run(int8, name, split)).sum(1)
        assert cosines.min() >= 0.99, (model, cosines)
    metadata = triton_models("clip_metadata", "int8")
    assert json.loads(metadata.document[0])["runtime"] == "cpu-int8"


def test_an_unknown_cpu_runtime_is_named(triton_models):
    with pytest.raises(ValueError, match="VIZSEARCH_CPU_RUNTIME='fp8'"):
        triton_models("clip_image", "fp8")
