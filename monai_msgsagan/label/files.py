"""Writing the augmentation's files: synthetic PNG images and small JSON side files, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["atomic_write_text", "write_png"]


def write_png(image: torch.Tensor | np.ndarray, path: str | Path) -> None:
    """Write a ``(1, H, W)`` float image in [-1, 1] as an 8-bit grayscale PNG, row ``h`` of the array as row ``h``.

    The orientation is that of :class:`~monai_msgsagan.transforms.LoadXray` (rows top to bottom), the loader the
    generator's training data went through, so a synthetic PNG reads back as the tensor it came from (to 8-bit
    rounding). MONAI's ``PILWriter`` is not used on purpose: it swaps the two spatial axes, to match
    ``LoadImage``'s ``PILReader``, which would store the synthetic radiographs transposed.
    The file is written under a temporary name and renamed, so a concurrent reader (another rank, a second run)
    never sees half a file.
    """
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[0] != 1:
        raise ValueError(f"{path}: expected a (1, H, W) image, got shape {arr.shape}.")
    pixels = np.rint((np.clip(arr[0], -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    Image.fromarray(pixels, mode="L").save(tmp, format="PNG")
    os.replace(tmp, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file under a temporary name and rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
