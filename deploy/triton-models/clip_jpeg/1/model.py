"""clip_jpeg: encoded JPEGs [N, 1] and integer regions [N, K, 4] (left, top, right,
bottom in the decoded image's pixels) -> L2-normalised FP32 embeddings [N, K, D].

Decoding (nvJPEG on a GPU), cropping, resizing and normalisation all happen on the
instance's device, in batches (model/device_preprocess.py), so the embedder does no
pixel work for JPEGs when Triton has a GPU. A JPEG that does not decode, or regions
outside its image, fail only their own request.
"""

import numpy as np
import triton_python_backend_utils as pb_utils

from model import device_preprocess, triton_runtime


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        path = triton_runtime.model_dir(auto_complete_model_config.as_dict())
        auto_complete_model_config.add_output(
            {"name": "EMBEDDING", "data_type": "TYPE_FP32", "dims": [-1, triton_runtime.embedding_dim(path)]})
        return auto_complete_model_config

    def initialize(self, args):
        self.tower = triton_runtime.VisionTower(args)

    def execute(self, requests):
        import torch

        jpegs, regions, counts = [], [], []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "JPEG").as_numpy().reshape(-1)
            boxes = pb_utils.get_input_tensor_by_name(request, "REGIONS").as_numpy()
            jpegs.extend(bytes(d) for d in data)
            counts.append(len(data))
            if boxes.ndim != 3 or len(boxes) != len(data):
                regions.extend([device_preprocess.BadJpeg(f"REGIONS must be [N, K, 4], got {list(boxes.shape)}")]
                               * len(data))
            else:
                regions.extend(np.rint(boxes).astype(np.int64))
        # Every region of every image that decoded, as one batch for the tower.
        good_images, good_regions, outcomes = [], [], []
        for image, image_regions in zip(device_preprocess.decode_jpegs(jpegs, self.tower.device), regions):
            try:
                for failure in (image, image_regions):
                    if isinstance(failure, Exception):
                        raise failure
                device_preprocess.check_regions(image_regions, image.shape[2], image.shape[1])
                good_images.append(image)
                good_regions.append(image_regions)
                outcomes.append(len(image_regions))
            except device_preprocess.BadJpeg as error:
                outcomes.append(str(error))
        embedded = np.zeros((0, 0), np.float32)
        if good_images:
            pixels = device_preprocess.regions_to_pixels(good_images, good_regions, self.tower.size)
            embedded = torch.nn.functional.normalize(self.tower.embed(pixels).float(), dim=-1).cpu().numpy()
        responses, image, row = [], 0, 0
        for count in counts:
            mine = outcomes[image : image + count]
            image += count
            failures = [o for o in mine if isinstance(o, str)]
            if failures:
                row += sum(o for o in mine if not isinstance(o, str))
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("; ".join(failures))))
                continue
            rows = sum(mine)
            vectors = embedded[row : row + rows].reshape(count, rows // count, -1)
            row += rows
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("EMBEDDING", vectors)]))
        return responses
