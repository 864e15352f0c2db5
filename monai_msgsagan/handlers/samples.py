"""Sample grids of a fixed latent batch, written as PNG and to TensorBoard while training."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine, Events
from PIL import Image

from monai_msgsagan.networks.generator import sample_latent

__all__ = ["SampleGridSaver", "image_grid", "fixed_latents"]


def fixed_latents(
    num: int, latent_dim: int, num_classes: int, seed: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A reproducible latent batch ``(num, latent_dim)`` and, for conditional models, labels cycling the classes."""
    z = sample_latent(num, latent_dim, torch.Generator().manual_seed(seed), device)
    labels = torch.arange(num, device=z.device) % num_classes if num_classes > 0 else None
    return z, labels


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


class SampleGridSaver:
    """Every ``epoch_interval`` epochs, render a fixed latent batch with ``network`` (the EMA generator).

    Writes ``{output_dir}/samples_epoch{epoch:04d}.png`` and, when a ``summary_writer`` is given, the image
    ``samples`` at the current iteration. The latents are fixed by ``seed``, so grids of successive epochs show
    how the same latents evolve.

    Args:
        network: generator returning a coarse-to-fine list (``MultiScaleGenerator``) or the finest image.
        output_dir: folder for the PNG files.
        num_samples: images in the grid.
        seed: seed of the fixed latents.
        epoch_interval: epochs between grids (and one when training completes).
        summary_writer: optional ``torch.utils.tensorboard.SummaryWriter``.
        enabled: ``False`` makes the handler a no-op (ranks other than 0).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        output_dir: str | os.PathLike,
        num_samples: int = 16,
        seed: int = 0,
        epoch_interval: int = 1,
        summary_writer=None,
        enabled: bool = True,
    ) -> None:
        self.network = network
        self.output_dir = Path(output_dir)
        self.num_samples = num_samples
        self.seed = seed
        self.epoch_interval = epoch_interval
        self.summary_writer = summary_writer
        self.enabled = enabled

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.epoch_interval) | Events.COMPLETED, self)

    @torch.no_grad()
    def generate(self) -> torch.Tensor:
        """The fixed batch ``(num_samples, C, R, R)`` in [-1, 1]."""
        device = next(self.network.parameters()).device
        z, labels = fixed_latents(
            self.num_samples, self.network.latent_dim, self.network.num_classes, self.seed, device
        )
        was_training = self.network.training
        self.network.eval()
        out = self.network(z, labels)
        self.network.train(was_training)
        return out[-1] if isinstance(out, (list, tuple)) else out

    def __call__(self, engine: Engine) -> None:
        grid = image_grid(self.generate())
        self.output_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(self.output_dir / f"samples_epoch{engine.state.epoch:04d}.png")
        if self.summary_writer is not None:
            self.summary_writer.add_image("samples", grid, engine.state.iteration, dataformats="HW")
