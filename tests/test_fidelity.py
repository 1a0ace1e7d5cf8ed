"""Fidelity: vectors through Triton and the embedder equal the transformers
reference computed directly from the same checkpoint (the demo CLIP, its fp16
weights loaded in fp32 as Triton's CPU instances do), for texts and for images of
every kind."""

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2
from tests import imagegen

pytestmark = pytest.mark.stack
TEXTS = ["taxis waiting at a crosswalk", "a red bus", "a photo of a dog", "night", "x " * 120]


@pytest.fixture(scope="module")
def reference(model_dir):
    model = CLIPModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    return model, CLIPTokenizer.from_pretrained(model_dir), CLIPImageProcessor.from_pretrained(model_dir)


def features(output) -> np.ndarray:
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output  # transformers 4 vs 5
    return torch.nn.functional.normalize(tensor, dim=-1).numpy()


def assert_faithful(ours: np.ndarray, theirs: np.ndarray) -> None:
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.999, cosines
    # A random model maps inputs close together, so also require the error to be
    # small next to the distance between different inputs' reference vectors.
    errors = np.linalg.norm(ours - theirs, axis=1)
    gaps = [np.linalg.norm(theirs[i] - theirs[j]) for i in range(len(theirs)) for j in range(i)]
    assert errors.max() < 0.1 * min(gaps), (errors, min(gaps))


def test_texts_match_reference(embedder, reference):
    model, tokenizer, _ = reference
    reply = embedder.EmbedTexts(embedder_pb2.EmbedTextsRequest(texts=TEXTS), timeout=60)
    ours = np.array([v.values for v in reply.vectors])
    tokens = tokenizer(TEXTS, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.inference_mode():
        theirs = features(model.get_text_features(**tokens))
    assert_faithful(ours, theirs)


def test_images_match_reference(embedder, reference):
    model, _, processor = reference
    scene = imagegen.scene(640, 480, seed=21)
    cases = [  # (bytes sent, box, what the reference sees)
        (imagegen.encode(scene, "JPEG", quality=92), None, None),
        (imagegen.encode(imagegen.scene(300, 500, seed=22), "PNG"), None, None),
        (imagegen.exif_rotated_jpeg(imagegen.scene(500, 320, seed=23)), None, None),
        (imagegen.encode(imagegen.scene(400, 400, seed=24).convert("L"), "PNG"), None, None),
        (imagegen.encode(scene, "PNG"), (100.0, 50.0, 420.0, 330.0), None),
    ]
    requests = [common_pb2.ImageInput(data=data, box=common_pb2.Box(x1=b[0], y1=b[1], x2=b[2], y2=b[3]) if b else None)
                for data, b, _ in cases]
    reply = embedder.EmbedImages(embedder_pb2.EmbedImagesRequest(images=requests, fail_on_item_error=True), timeout=120)
    ours = np.array([r.vector.values for r in reply.results])

    seen = []
    for data, box, _ in cases:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
        seen.append(image.crop(tuple(int(v) for v in box)) if box else image)
    pixels = processor(images=seen, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        theirs = features(model.get_image_features(pixel_values=pixels))
    assert_faithful(ours, theirs)
