"""The image pyramid, coarse to fine, as the MSG-SAGAN discriminator takes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import Transform

from monai_msgsagan.networks.blocks import check_resolution
from monai_msgsagan.transforms.intensity import _ForEachKey

__all__ = ["MultiScalePyramid", "MultiScalePyramidd", "image_pyramid", "pyramid_sizes"]


def pyramid_sizes(resolution: int, min_size: int = 4) -> list[int]:
    """Sides of the pyramid for ``resolution``, coarse to fine: ``[min_size, 2 * min_size, ..., resolution]``."""
    low = check_resolution(int(min_size), "min_size", minimum=1)
    high = check_resolution(int(resolution), "resolution", minimum=1)
    if low > high:
        raise ValueError(f"min_size {min_size} is larger than resolution {resolution}.")
    return [1 << k for k in range(low, high + 1)]


def image_pyramid(
    images: torch.Tensor | Sequence[torch.Tensor], num_scales: int | None = None, min_size: int = 4
) -> list[torch.Tensor]:
    """The coarse-to-fine pyramid of a batch, on the batch's device: the one pyramid of the package.

    Args:
        images: real images ``(B, C, R, R)`` in [-1, 1], ``R`` a power of two; or a pyramid already made (a list
            or tuple of ``num_scales`` tensors, coarse to fine), returned as a list unchanged.
        num_scales: number of scales the caller expects (the networks' ``log2(R) - 1`` for ``min_size`` 4);
            ``None`` takes every scale from ``min_size`` to ``R``.
        min_size: side of the coarsest scale.

    Returns:
        ``[min_size x min_size, ..., R x R]``: item ``i`` is ``(B, C, min_size * 2**i, min_size * 2**i)``, the
        area (box) average of ``images`` (repeated 2x2 averaging, identical to ``F.interpolate(mode="area")``
        for power-of-two sides), values keep their range.
    """
    if isinstance(images, (list, tuple)):
        if num_scales is not None and len(images) != num_scales:
            raise ValueError(f"expected a pyramid of {num_scales} scales, got {len(images)}.")
        return list(images)
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"expected a square batch (B, C, R, R), got shape {tuple(images.shape)}.")
    sizes = pyramid_sizes(int(images.shape[-1]), min_size)
    if num_scales is not None and len(sizes) != num_scales:
        side = min_size * 2 ** (num_scales - 1)
        raise ValueError(f"expected real images of shape (B, C, {side}, {side}), got {list(images.shape)}.")
    pyramid = [images]
    for _ in sizes[:-1]:
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    return pyramid[::-1]


class MultiScalePyramid(Transform):
    """Turn one image ``(C, R, R)`` (or a batch ``(B, C, R, R)``) into the list ``[4x4, 8x8, ..., RxR]``.

    A transform around :func:`image_pyramid` for data pipelines: each coarser scale is the area (box) average of
    the finest image, the downsampling the generator's coarse outputs are matched against. Values keep their
    range ([-1, 1] in, [-1, 1] out). Training builds the pyramid of the whole batch on the training device
    instead (:class:`~monai_msgsagan.engines.MultiScaleGanTrainer` calls :func:`image_pyramid`).

    Args:
        min_size: side of the coarsest scale (power of two, default 4).

    Returns:
        ``list[torch.Tensor]`` coarse to fine, plain float32 tensors (metadata is dropped), index 0 is
        ``min_size x min_size``, the last is the input itself.
    """

    def __init__(self, min_size: int = 4) -> None:
        self.min_size = int(min_size)

    def __call__(self, img: Any) -> list[torch.Tensor]:
        x = (img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)).float()
        if x.ndim not in (3, 4) or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"expected a square (C, R, R) or (B, C, R, R) image, got shape {tuple(x.shape)}")
        if x.ndim == 4:
            return image_pyramid(x, min_size=self.min_size)
        return [t.squeeze(0) for t in image_pyramid(x.unsqueeze(0), min_size=self.min_size)]


class MultiScalePyramidd(_ForEachKey):
    """Dictionary version of :class:`MultiScalePyramid` (same arguments after ``keys``): replaces each image
    ``(C, R, R)`` by its list of scales. With MONAI's default collate a batch then holds ``list[Tensor(B, C, s, s)]``
    under the key, coarse to fine."""

    transform_type = MultiScalePyramid
