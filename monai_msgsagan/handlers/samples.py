"""Sample grids of a fixed latent batch, written as PNG and to TensorBoard while training."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from PIL import Image

from monai_msgsagan.generation import generate_per_class

__all__ = ["SampleGridSaver", "image_grid"]


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images in [-1, 1] into one ``uint8`` array ``(rows*(H+p)+p, nrow*(W+p)+p[, C])``.

    Images are clipped to [-1, 1] and mapped linearly to [0, 255]; one channel gives a 2-D grayscale grid.
    """
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {list(images.shape)}.")
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    grid = np.zeros((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, y : y + h, x : x + w] = pixels[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


@dataclass(eq=False)
class SampleGridSaver:
    """Every ``epoch_interval`` epochs, render the same images with ``network`` (the EMA generator).

    Writes ``{output_dir}/samples_epoch{epoch:04d}.png`` and, when a ``summary_writer`` is given, the image
    ``samples`` at the current iteration. The images are :func:`~monai_msgsagan.generation.generate_per_class`
    of ``seed`` (class by class, ``num_samples`` in all), so grids of successive epochs show how the same latents
    evolve, and they are the images inference makes with that seed.

    Args:
        network: generator returning a coarse-to-fine list (``MultiScaleGenerator``) or the finest image.
        output_dir: folder for the PNG files.
        num_samples: images in the grid (divided evenly among the classes).
        seed: seed of the fixed latents.
        epoch_interval: epochs between grids (and one when training completes).
        summary_writer: optional ``torch.utils.tensorboard.SummaryWriter``.
        enabled: ``False`` makes the handler a no-op (ranks other than 0).
    """

    network: torch.nn.Module
    output_dir: str | os.PathLike
    num_samples: int = 16
    seed: int = 0
    epoch_interval: int = 1
    summary_writer: Any = None
    enabled: bool = True

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.epoch_interval) | Events.COMPLETED, self)

    def generate(self) -> torch.Tensor:
        """The grid's images ``(N, C, R, R)`` in [-1, 1], class by class."""
        per_class = max(1, self.num_samples // max(int(self.network.num_classes), 1))
        return generate_per_class(self.network, per_class, self.seed)[0]

    def __call__(self, engine: Engine) -> None:
        grid = image_grid(self.generate())
        self.output_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(self.output_dir / f"samples_epoch{engine.state.epoch:04d}.png")
        if self.summary_writer is not None:
            self.summary_writer.add_image("samples", grid, engine.state.iteration, dataformats="HW")
