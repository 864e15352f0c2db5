"""The one way to make images with a generator: :func:`generate`, with one seeding policy.

Image ``i`` of class ``c`` for run seed ``s`` is made from its own latent vector, drawn on the CPU from
``torch.Generator().manual_seed(image_seed(s, c, i))``. So the same model, seed and class give the same images
in bundle inference and evaluation, the MONAI Deploy app, the MONAI Label hook and the training monitors, on any
device and whatever the batch size or the number of images asked for (a larger request only adds images).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "RANGE_TOLERANCE",
    "GenerationError",
    "generate",
    "generate_per_class",
    "image_latents",
    "image_seed",
    "sample_latent",
]

#: How far outside [-1, 1] a generated pixel may be before the output is refused (half precision overshoots
#: ``tanh``'s range by a few ulp); within it, outputs are clamped to [-1, 1].
RANGE_TOLERANCE = 1e-2


class GenerationError(ValueError):
    """A generator produced output of the wrong shape, non-finite values or values outside [-1, 1]."""


def sample_latent(
    num: int,
    latent_dim: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Standard normal latent vectors ``(num, latent_dim)``; pass a seeded ``torch.Generator`` to reproduce them.

    The vectors are drawn on the generator's device (CPU for a CPU generator) and moved to ``device``, so the
    same seed gives the same latents on CPU and GPU.
    """
    if num < 1 or latent_dim < 1:
        raise ValueError(f"num and latent_dim must be positive, got num={num}, latent_dim={latent_dim}.")
    gen_device = generator.device if generator is not None else "cpu"
    z = torch.randn(num, latent_dim, generator=generator, device=gen_device)
    return z.to(device) if device is not None else z


def image_seed(seed: int, class_index: int, index: int) -> int:
    """Seed of the ``index``-th image of a class: independent streams from one run seed.

    numpy's ``SeedSequence`` mixes the three integers (plain ``seed + index`` would make neighbouring run seeds
    share images); the result is a non-negative 63-bit integer.
    """
    return int(np.random.SeedSequence([seed, class_index, index]).generate_state(1, dtype=np.uint64)[0]) >> 1


def image_latents(latent_dim: int, seed: int, class_index: int, indices: Sequence[int]) -> torch.Tensor:
    """The latent vectors ``(len(indices), latent_dim)`` float32 (CPU) of images ``indices`` (at least one) of a
    class."""
    return torch.cat(
        [sample_latent(1, latent_dim, torch.Generator().manual_seed(image_seed(seed, class_index, i))) for i in indices]
    )


@torch.no_grad()
def generate(
    network: nn.Module,
    num_images: int,
    seed: int = 0,
    class_index: int = 0,
    *,
    start: int = 0,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    half_precision: bool = False,
    truncation: float = 1.0,
) -> torch.Tensor:
    """Images ``start .. start + num_images - 1`` of one class of a generator.

    Args:
        network: a generator with integer attributes ``latent_dim``, ``num_classes`` and ``resolution`` (and
            ``image_channels``, default 1), called as
            ``network(z (B, latent_dim), labels (B,) int64 or None)`` and returning ``(B, C, R, R)`` (an
            :class:`~monai_msgsagan.networks.InferenceGenerator`, its TorchScript export, the network of a
            :class:`~monai_msgsagan.artifact.GeneratorArtifact`) or a coarse-to-fine list of scales (a
            :class:`~monai_msgsagan.networks.MultiScaleGenerator` while training; the finest is kept). It runs in
            eval mode on ``device``; its mode, device and float32 dtype are restored.
        num_images: how many images, at least 1.
        seed: run seed (see the module docstring).
        class_index: class of a class-conditional generator, in ``[0, num_classes)`` (resolve a class name or the
            default class with :func:`~monai_msgsagan.artifact.resolve_class`); 0 for an unconditional one.
        start: index of the first image.
        batch_size: images per forward pass.
        device: where to run the network (default: where its parameters are).
        half_precision: run a CUDA network in float16 (outputs are float32); ignored on the CPU.
        truncation: ``psi`` in ``(0, 1]``, the truncation trick (see
            :class:`~monai_msgsagan.networks.MultiScaleGenerator`): ``1`` (default) samples the trained
            distribution and calls ``network(z, labels)``; below 1 the network must take it as a third argument.

    Returns:
        ``(num_images, C, R, R)`` float32 CPU tensor in [-1, 1].

    Raises:
        ValueError: bad counts or class; GenerationError: output of the wrong shape, non-finite, or outside
            [-1, 1] by more than :data:`RANGE_TOLERANCE`.
    """
    if num_images < 1 or batch_size < 1 or start < 0:
        raise ValueError(
            f"num_images and batch_size must be >= 1 and start >= 0, got {num_images}, {batch_size}, {start}."
        )
    num_classes = int(network.num_classes)
    if not 0 <= class_index < max(num_classes, 1):
        raise ValueError(f"class index {class_index} is outside [0, {max(num_classes, 1)}) (0 when unconditional).")
    if not 0.0 < truncation <= 1.0:
        raise ValueError(f"truncation must lie in (0, 1], got {truncation}.")
    params = next(iter(network.parameters()), None)
    home = params.device if params is not None else torch.device("cpu")
    dev = torch.device(device) if device is not None else home
    dtype = torch.float16 if half_precision and dev.type == "cuda" else torch.float32
    z_all = image_latents(int(network.latent_dim), seed, class_index, range(start, start + num_images))
    channels, resolution = int(getattr(network, "image_channels", 1)), int(network.resolution)
    was_training = network.training
    network.eval()
    moved = device is not None or dtype != torch.float32
    if moved:
        network.to(device=dev, dtype=dtype)
    out = []
    try:
        for first in range(0, num_images, batch_size):
            z = z_all[first : first + batch_size].to(device=dev, dtype=dtype)
            labels = None if num_classes == 0 else torch.full((z.shape[0],), class_index, dtype=torch.long, device=dev)
            images = network(z, labels) if truncation == 1.0 else network(z, labels, truncation)
            images = images[-1] if isinstance(images, (list, tuple)) else images
            out.append(_checked(images, (z.shape[0], channels, resolution, resolution)))
    finally:
        network.train(was_training)
        if moved:
            network.to(device=home, dtype=torch.float32)
    return torch.cat(out)


def _checked(images: torch.Tensor, shape: tuple[int, int, int, int]) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or tuple(images.shape) != shape:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise GenerationError(f"generator output is {got}, expected {shape}.")
    images = images.float().cpu()
    if not bool(torch.isfinite(images).all()):
        raise GenerationError("generator output contains NaN or infinite values (a diverged model?).")
    peak = float(images.abs().max())
    if peak > 1 + RANGE_TOLERANCE:
        raise GenerationError(f"generator output leaves [-1, 1] (max |x| = {peak:.3f}).")
    return images.clamp_(-1, 1)


def generate_per_class(
    network: nn.Module,
    num_per_class: int,
    seed: int = 0,
    *,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    truncation: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`generate` ``num_per_class`` images of every class, class by class.

    Returns:
        ``(images, labels)``: images ``(num_classes * num_per_class, C, R, R)`` float32 CPU in [-1, 1] (class
        ``k`` is the ``k``-th block), labels ``(N,)`` int64; for an unconditional generator ``num_per_class``
        images and ``None``.
    """
    num_classes = int(network.num_classes)
    images = [
        generate(network, num_per_class, seed, k, batch_size=batch_size, device=device, truncation=truncation)
        for k in range(max(num_classes, 1))
    ]
    return torch.cat(images), torch.arange(num_classes).repeat_interleave(num_per_class) if num_classes else None
