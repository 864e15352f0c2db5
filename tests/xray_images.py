"""Load the real chest radiographs of the ``figure1_dir`` fixture for the metrics tests (Pillow only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def load_xrays(figure1_dir: Path, size: int, limit: int | None = None) -> torch.Tensor:
    """Grayscale radiographs resized to ``size`` px (bilinear), as (N, 1, size, size) float32 in [-1, 1]."""
    files = sorted(p for p in (Path(figure1_dir) / "images").iterdir() if p.suffix.lower() in {".jpg", ".png"})
    files = files[:limit] if limit else files
    arrays = []
    for f in files:
        with Image.open(f) as im:
            arrays.append(np.asarray(im.convert("L").resize((size, size), Image.BILINEAR), dtype=np.float32))
    x = torch.from_numpy(np.stack(arrays))[:, None] / 255.0
    return x * 2.0 - 1.0
