"""CLIP's image preprocessing: resize and centre-crop exactly as transformers'
CLIPImageProcessor does, leaving uint8 pixels for Triton (the model normalises them)."""

import numpy as np
from PIL import Image


def resize_shortest_edge(image: Image.Image, size: int) -> Image.Image:
    """The image scaled (bicubic) so that its shorter side is `size`, as CLIPImageProcessor does."""
    width, height = image.size
    if width <= height:
        new_width, new_height = size, int(size * height / width)
    else:
        new_width, new_height = int(size * width / height), size
    return image.resize((new_width, new_height), resample=Image.Resampling.BICUBIC)


def to_model_pixels(image: Image.Image, size: int) -> np.ndarray:
    """Resize the shortest edge to `size` and centre-crop a size x size square, as
    CLIPImageProcessor does; returns uint8 [size, size, 3]."""
    resized = np.asarray(resize_shortest_edge(image, size))
    new_height, new_width = resized.shape[:2]
    top, left = (new_height - size) // 2, (new_width - size) // 2
    return np.ascontiguousarray(resized[top : top + size, left : left + size])
