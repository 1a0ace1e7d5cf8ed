"""clip_image: UINT8 pixels [N, S, S, 3] (resized and centre-cropped RGB) -> L2-normalised FP32 embeddings [N, D].

Normalisation (rescale to [0, 1], CLIP mean and std) happens here, on the device,
so clients send compact uint8 tensors.
"""

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
        self.tower = triton_runtime.VisionTower(args)

    def execute(self, requests):
        import torch

        # Dynamic batching hands over several requests: run them as one batch.
        pixels = [pb_utils.get_input_tensor_by_name(r, "PIXELS").as_numpy() for r in requests]
        counts = [p.shape[0] for p in pixels]
        batch = torch.from_numpy(np.concatenate(pixels)).to(self.tower.device).permute(0, 3, 1, 2)
        return triton_runtime.embedding_responses(pb_utils, self.tower.embed(batch), counts)
