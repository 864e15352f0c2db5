"""Helpers of the metrics tests: the real radiographs of the ``figure1_dir`` fixture, a small feature network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn


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


class TinyFeatures(nn.Module):
    """A small real feature network standing in for a user's own (e.g. radiograph-trained) one: (N,1,H,W)->(N,16).

    Seeded weights; counts its forward calls so tests can check that cached features are not recomputed.
    """

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.body(x)
