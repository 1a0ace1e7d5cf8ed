"""clip_metadata: any request -> one JSON document describing the checkpoint the
other models serve (model id, dimension, weights version, image size, token
limit), what they run as (gpu-fp16, cpu-onnx-int8, cpu-int8 or cpu-fp32) and who decodes JPEGs
(triton's clip_jpeg, on a GPU, or the embedder).

Triton's own metadata cannot carry these, and clients (the embedder) need them
to preprocess correctly and to stamp every vector with the model version.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils

from model import triton_runtime


class TritonPythonModel:
    def initialize(self, args):
        path = triton_runtime.model_dir(json.loads(args["model_config"]))
        document = {
            "model_id": os.environ.get("VIZSEARCH_MODEL") or str(path),
            "dimension": triton_runtime.embedding_dim(path),
            "version": triton_runtime.weights_version(path),
            "image_size": triton_runtime.image_size(path),
            "max_text_tokens": triton_runtime.max_text_tokens(path),
            "runtime": triton_runtime.serving_runtime(),
            "jpeg_decode": triton_runtime.jpeg_decode(),
        }
        self.document = np.array([json.dumps(document).encode()], dtype=np.object_)

    def execute(self, requests):
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("METADATA", self.document)])
            for _ in requests
        ]
