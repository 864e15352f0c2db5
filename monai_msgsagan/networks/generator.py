"""MSG-SAGAN generator: one image per scale, 4x4 to RxR, with SAGAN self-attention at chosen scales."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from monai_msgsagan.networks.blocks import GeneratorBlock, PixelNorm, resolve_scales

__all__ = [
    "MultiScaleGenerator",
    "InferenceGenerator",
    "check_labels",
]


def check_labels(labels: torch.Tensor, num_classes: int) -> None:
    """Raise ``ValueError`` unless every class index in ``labels`` lies in ``[0, num_classes)``.

    Reads ``labels`` on the host: call it where labels enter (the trainer checks each batch on the CPU before
    moving it to the device; :class:`InferenceGenerator` checks its input), not in a network's forward pass, where
    it would stall the GPU and break ``torch.compile``'s graph.
    """
    if labels.numel() > 0 and (bool((labels < 0).any()) or bool((labels >= num_classes).any())):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values from {int(labels.min())} to {int(labels.max())}."
        )


class MultiScaleGenerator(nn.Module):
    """MSG-GAN generator (Karnewar & Wang 2020) with SAGAN self-attention (Zhang et al. 2019): MSG-SAGAN.

    Every scale ``s = 4, 8, ..., resolution`` has a block (two 3x3 convolutions, LeakyReLU, pixel norm) and a 1x1
    head that emits an image at that scale, so the discriminator sees the generator at every scale. With
    ``attention_resolutions=()`` the network is exactly an MSG-GAN generator.

    Args:
        resolution: side of the finest image, a power of two in [16, 1024].
        latent_dim: size ``L`` of the latent vector ``z``.
        image_channels: channels ``C`` of the emitted images (1 for X-rays).
        channels: feature width of each scale, coarse to fine (``len == log2(resolution) - 1``); default
            :func:`~monai_msgsagan.networks.blocks.default_channels`.
        attention_resolutions: scales that get a self-attention layer after their convolutions; ``None``:
            :data:`~monai_msgsagan.networks.DEFAULT_ATTENTION_RESOLUTIONS` that the network has, ``()``: none (MSG-GAN).
        num_classes: ``> 0`` makes the generator class-conditional: a learned class embedding of size ``L`` is
            concatenated to the (pixel-normalised) latent.

    Forward:
        ``z``: ``(B, L)`` float latent; ``labels``: ``(B,)`` int64 class indices in ``[0, num_classes)``, required
        when ``num_classes > 0`` and ignored otherwise; ``truncation``: ``psi`` in ``(0, 1]`` scales the
        pixel-normalised latent before the first (linear) layer, whose pre-activation is then
        ``mean + psi * (pre - mean)`` with ``mean`` the class's average over latents (the truncation trick of
        StyleGAN/BigGAN, here without a mapping network): ``psi < 1`` trades diversity for typical images of the
        class, ``1`` (default) is the trained distribution. Their values are not read here (no host sync in the
        training step): check them where they enter with :func:`check_labels`, as the trainer and
        :class:`InferenceGenerator` do; an out-of-range index fails in the class embedding.
        Returns a list of ``log2(resolution) - 1`` tensors, coarse to fine, item ``i`` of shape
        ``(B, C, 2**(i+2), 2**(i+2))`` with values in [-1, 1].
    """

    def __init__(
        self,
        resolution: int,
        latent_dim: int = 128,
        image_channels: int = 1,
        channels: Sequence[int] | None = None,
        attention_resolutions: Sequence[int] | None = None,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}.")
        sides, widths, attention = resolve_scales(
            resolution, channels, attention_resolutions, image_channels, num_classes
        )
        self.resolution, self.latent_dim, self.image_channels = resolution, latent_dim, image_channels
        self.num_classes, self.attention_resolutions = num_classes, sorted(attention)
        self.latent_norm = PixelNorm()
        self.class_embedding = nn.Embedding(num_classes, latent_dim) if num_classes > 0 else None
        in_width = latent_dim * 2 if num_classes > 0 else latent_dim
        blocks = []
        for i, (side, width) in enumerate(zip(sides, widths)):
            blocks.append(GeneratorBlock(in_width, width, image_channels, first=i == 0, attention=side in attention))
            in_width = width
        self.blocks = nn.ModuleList(blocks)

    def _input(self, z: torch.Tensor, labels: torch.Tensor | None, truncation: float = 1.0) -> torch.Tensor:
        """Check ``z`` (and ``labels``) and build the ``(B, L)`` or ``(B, 2L)`` input of the first block."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {list(z.shape)}.")
        if not 0.0 < truncation <= 1.0:
            raise ValueError(f"truncation must lie in (0, 1], got {truncation}.")
        x = self.latent_norm(z)
        if truncation != 1.0:
            x = x * truncation
        if self.class_embedding is not None:
            if labels is None:
                raise ValueError(f"this generator is class-conditional ({self.num_classes} classes): pass labels.")
            if labels.dim() != 1 or labels.shape[0] != z.shape[0]:
                raise ValueError(f"labels must have shape ({z.shape[0]},), got {list(labels.shape)}.")
            x = torch.cat([x, self.class_embedding(labels.long())], dim=1)
        return x

    def forward(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float = 1.0
    ) -> list[torch.Tensor]:
        x = self._input(z, labels, truncation)
        images: list[torch.Tensor] = []
        for block in self.blocks:
            x = block(x)
            images.append(block.to_image(x))
        return images


class InferenceGenerator(MultiScaleGenerator):
    """The MSG-SAGAN generator for inference and export: returns only the finest image.

    Same arguments and the same flat state dict as :class:`MultiScaleGenerator` (load ``models/model.pt``
    directly), skips the coarse image heads, and compiles with both ``torch.jit.script`` and ``torch.jit.trace``;
    it is the bundle's ``network_def``.

    Args:
        default_class: class generated when a class-conditional model is called without ``labels`` (the bundle's
            ``verify_net_in_out`` and TorchScript callers pass only the latent).
        other arguments: see :class:`MultiScaleGenerator`.

    Forward:
        ``z``: ``(B, L)``; ``labels``: optional ``(B,)`` int64 in ``[0, num_classes)`` (checked, ``ValueError``
        otherwise); ``truncation``: as :class:`MultiScaleGenerator`. Returns ``(B, C, resolution, resolution)`` in
        [-1, 1].
    """

    def __init__(self, *args: Any, default_class: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.num_classes > 0 and not 0 <= default_class < self.num_classes:
            raise ValueError(f"default_class must lie in [0, {self.num_classes}), got {default_class}.")
        self.default_class = default_class

    def forward(  # type: ignore[override]
        self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float = 1.0
    ) -> torch.Tensor:
        if self.num_classes > 0 and labels is None:
            labels = torch.full((z.shape[0],), self.default_class, dtype=torch.long, device=z.device)
        if labels is not None and self.num_classes > 0:
            check_labels(labels, self.num_classes)
        x = self._input(z, labels, truncation)
        for block in self.blocks:
            x = block(x)
        return self.blocks[-1].to_image(x)
