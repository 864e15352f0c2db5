"""Writing the augmentation's files: synthetic PNG images and small JSON side files, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from monai.data import PILWriter

__all__ = ["atomic_write_text", "write_png"]


def write_png(image: np.ndarray, path: str | Path) -> None:
    """Write a ``(C, R, R)`` float image in [-1, 1] (``C == 1``) as an 8-bit grayscale PNG.

    Uses MONAI's :class:`~monai.data.PILWriter`, so :class:`~monai.transforms.LoadImage` reads the file back in the
    same orientation. The file is written under a temporary name and renamed, so a concurrent reader (another rank,
    a second run) never sees half a file.
    """
    path = Path(path)
    writer = PILWriter(output_dtype=np.uint8, scale=255)
    writer.set_data_array((np.asarray(image, dtype=np.float32) + 1.0) / 2.0, channel_dim=0)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    writer.write(str(tmp))
    os.replace(tmp, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file under a temporary name and rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
