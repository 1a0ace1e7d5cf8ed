"""clip_text: UTF-8 texts [N, 1] -> L2-normalised FP32 embeddings [N, D].

Tokenised here with the checkpoint's own CLIPTokenizer (truncated to the model's
77 tokens, padded), so every client gets the reference tokenisation.
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from model import triton_runtime


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        text = {"name": "TEXT", "data_type": "TYPE_STRING", "dims": [1]}
        triton_runtime.add_embedding_io(auto_complete_model_config, text)
        return auto_complete_model_config

    def initialize(self, args):
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer

        path = triton_runtime.model_dir(json.loads(args["model_config"]))
        self.device, self.dtype = triton_runtime.device_and_dtype(args)
        self.model = triton_runtime.for_device(CLIPTextModelWithProjection.from_pretrained(
            path, config=triton_runtime.tower_config(path, "text"), dtype=self.dtype, attn_implementation="sdpa"
        ).to(self.device).eval(), self.device)
        self.tokenizer = CLIPTokenizer.from_pretrained(path)
        self.max_tokens = triton_runtime.max_text_tokens(path)
        if self.device.type == "cuda":
            # The first batches pay for CUDA kernels' selection: pay at load, for a short
            # query and for a full batch of the longest texts.
            batch = max(1, int(json.loads(args["model_config"]).get("max_batch_size", 1)))
            self.embed(["a photo"])
            self.embed(["a photo " * self.max_tokens] * batch)

    def embed(self, texts: list[str]):
        import torch

        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            return self.model(**tokens).text_embeds

    def execute(self, requests):
        texts = [pb_utils.get_input_tensor_by_name(r, "TEXT").as_numpy().reshape(-1) for r in requests]
        counts = [t.shape[0] for t in texts]
        decoded = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in np.concatenate(texts)]
        return triton_runtime.embedding_responses(pb_utils, self.embed(decoded), counts)
