"""The model repository's python models (deploy/triton-models), loaded and run as Triton's
python backend would (initialize, then execute on several requests at once), without a
Triton server: for the model-level tests and the GPU benchmark.

`triton_python_backend_utils` exists only inside Triton: backend_utils() is a minimal
stand-in with the names the models use; install it in sys.modules before load().
"""

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parents[1] / "deploy" / "triton-models"


def backend_utils() -> types.ModuleType:
    utils = types.ModuleType("triton_python_backend_utils")

    class Tensor:
        def __init__(self, name, array):
            self.name, self._array = name, np.asarray(array)

        def as_numpy(self):
            return self._array

    class TritonError(Exception):
        def message(self):
            return self.args[0]

    class InferenceResponse:
        def __init__(self, output_tensors=(), error=None):
            self.output_tensors, self._error = list(output_tensors), error

        def has_error(self):
            return self._error is not None

        def error(self):
            return self._error

    utils.Tensor, utils.TritonError, utils.InferenceResponse = Tensor, TritonError, InferenceResponse
    utils.get_input_tensor_by_name = lambda request, name: next(t for t in request if t.name == name)
    return utils


def load(model: str, kind: str = "CPU", max_batch_size: int = 64):
    """An initialised instance of `model` of kind "CPU" or "GPU" (device 0)."""
    sys.path.insert(0, str(MODELS / model / "1"))
    spec = importlib.util.spec_from_file_location(f"{model}_{kind}", MODELS / model / "1" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    instance = module.TritonPythonModel()
    config = {"parameters": {}, "max_batch_size": max_batch_size}
    instance.initialize({"model_config": json.dumps(config), "model_instance_kind": kind,
                         "model_instance_device_id": "0"})
    return instance


def requests_of(**inputs) -> list[list]:
    """One request per position of the inputs' lists: requests_of(PIXELS=[a, b]) is two requests."""
    utils = sys.modules["triton_python_backend_utils"]
    names = list(inputs)
    return [[utils.Tensor(name, array) for name, array in zip(names, arrays)] for arrays in zip(*inputs.values())]


def run(instance, name: str, batches: list[np.ndarray]) -> np.ndarray:
    """The model's EMBEDDING outputs of one execute over one request per batch, concatenated."""
    responses = instance.execute(requests_of(**{name: batches}))
    return np.concatenate([r.output_tensors[0].as_numpy() for r in responses])
