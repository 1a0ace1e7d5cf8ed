"""make bench-cpu-runtimes keeps working: every CPU runtime it compares runs the demo
model's image tower and reports a rate and a fidelity against the fp32 reference."""

from services.localstack.config import DEMO_MODEL
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
