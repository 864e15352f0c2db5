"""Real image -> multi-scale pyramid, coarse to fine, as the MSG-SAGAN discriminator takes it."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

__all__ = ["MultiScalePyramid", "MultiScalePyramidd", "pyramid_sizes"]


def pyramid_sizes(resolution: int, min_size: int = 4) -> list[int]:
    """Sides of the pyramid for ``resolution``, coarse to fine: ``[4, 8, ..., resolution]``."""
    resolution, min_size = int(resolution), int(min_size)
    for name, v in (("resolution", resolution), ("min_size", min_size)):
        if v < 1 or v & (v - 1):
            raise ValueError(f"{name} must be a power of two, got {v}")
    if min_size > resolution:
        raise ValueError(f"min_size {min_size} is larger than resolution {resolution}")
    return [1 << k for k in range(min_size.bit_length() - 1, resolution.bit_length())]


class MultiScalePyramid(Transform):
    """Turn one image ``(C, R, R)`` (or a batch ``(B, C, R, R)``) into the list ``[4x4, 8x8, ..., RxR]``.

    Each coarser scale is the area (box) average of the finest image over ``R/s x R/s`` blocks, i.e. exactly
    ``F.interpolate(img, size=s, mode="area")`` of the finest image (computed by repeated 2x2 average pooling,
    which is identical for power-of-two sides). This is the downsampling the generator's coarse outputs are
    matched against. Values keep their range ([-1, 1] in, [-1, 1] out).

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
        sizes = pyramid_sizes(int(x.shape[-1]), self.min_size)
        batched = x.ndim == 4
        cur = x if batched else x.unsqueeze(0)
        out = [cur]
        for _ in sizes[:-1]:
            cur = F.avg_pool2d(cur, kernel_size=2)
            out.append(cur)
        out.reverse()
        return out if batched else [t.squeeze(0) for t in out]


class MultiScalePyramidd(MapTransform):
    """Dictionary version of :class:`MultiScalePyramid`: replaces each image by its list of scales.

    With MONAI's default collate a batch then holds ``list[Tensor(B, C, s, s)]`` under the key, coarse to fine.

    Args:
        keys: keys of square images ``(C, R, R)``.
        min_size: side of the coarsest scale.
    """

    def __init__(self, keys: KeysCollection, min_size: int = 4, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.pyramid = MultiScalePyramid(min_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.pyramid(d[key])
        return d
