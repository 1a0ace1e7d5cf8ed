"""clip_image: UINT8 pixels [N, S, S, 3] (resized and centre-cropped RGB) -> L2-normalised FP32 embeddings [N, D].

Normalisation (rescale to [0, 1], CLIP mean and std) happens here, on the device,
so clients send compact uint8 tensors.
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from model import triton_runtime


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        size = triton_runtime.image_size(triton_runtime.model_dir(auto_complete_model_config.as_dict()))
        pixels = {"name": "PIXELS", "data_type": "TYPE_UINT8", "dims": [size, size, 3]}
        triton_runtime.add_embedding_io(auto_complete_model_config, pixels)
        return auto_complete_model_config

    def initialize(self, args):
        import torch
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        path = triton_runtime.model_dir(json.loads(args["model_config"]))
        self.device, self.dtype = triton_runtime.device_and_dtype(args)
        self.model = triton_runtime.for_device(CLIPVisionModelWithProjection.from_pretrained(
            path, config=triton_runtime.tower_config(path, "vision"), dtype=self.dtype
        ).to(self.device).eval(), self.device)
        processor = CLIPImageProcessor.from_pretrained(path)
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(processor.image_mean, device=self.device).reshape(shape) * 255.0
        self.std = torch.tensor(processor.image_std, device=self.device).reshape(shape) * 255.0

    def execute(self, requests):
        import torch

        # Dynamic batching hands over several requests: run them as one batch.
        pixels = [pb_utils.get_input_tensor_by_name(r, "PIXELS").as_numpy() for r in requests]
        counts = [p.shape[0] for p in pixels]
        with torch.inference_mode():
            batch = torch.from_numpy(np.concatenate(pixels)).to(self.device)
            batch = (batch.permute(0, 3, 1, 2).float() - self.mean) / self.std
            embeddings = self.model(pixel_values=batch.to(self.dtype)).image_embeds
        return triton_runtime.embedding_responses(pb_utils, embeddings, counts)
