"""Radiograph preprocessing: intensity normalisation to [-1, 1], border/text cleanup, square resize, light augmentation.

All array transforms take a channel-first image ``(C, H, W)`` (a ``MetaTensor`` from
:class:`~monai_msgsagan.transforms.LoadXray` or any tensor / array) and return a float32 tensor of the same kind.
After :class:`NormalizeXrayIntensity` values are in [-1, 1] (-1 = black/air, 1 = white/bone); after
:class:`ResizeXrayToSquare` the side is a power of two.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import (
    CenterSpatialCrop,
    MapTransform,
    RandAdjustContrast,
    RandAffine,
    RandFlip,
    Randomizable,
    Resize,
    ScaleIntensityRange,
    SpatialCrop,
    SpatialPad,
    Transform,
)
from monai.transforms.utils_pytorch_numpy_unification import percentile
from monai.utils import optional_import

from monai_msgsagan.networks.blocks import check_resolution

ndimage, _ = optional_import("scipy.ndimage")

__all__ = [
    "NormalizeXrayIntensity",
    "NormalizeXrayIntensityd",
    "XrayBorderCleanup",
    "XrayBorderCleanupd",
    "ResizeXrayToSquare",
    "ResizeXrayToSquared",
    "RandXrayAugment",
    "RandXrayAugmentd",
]


def _as_tensor(img: Any) -> torch.Tensor:
    return img if isinstance(img, torch.Tensor) else torch.as_tensor(np.asarray(img))


def _source_name(img: Any) -> str:
    return str(img.meta.get("filename_or_obj", "<image>")) if isinstance(img, MetaTensor) else "<image>"


class _ForEachKey(MapTransform):
    """Dictionary version of the array transform ``transform_type``: ``keys``, then that transform's arguments
    (positional or keyword), then ``allow_missing_keys`` (keyword); the transform is applied to every key."""

    transform_type: type[Transform]

    def __init__(self, keys: KeysCollection, *args: Any, allow_missing_keys: bool = False, **kwargs: Any) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = self.transform_type(*args, **kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d


class NormalizeXrayIntensity(Transform):
    """Map radiograph intensities into [-1, 1] (-1 = darkest, 1 = brightest), clipping outside the range.

    Modes:
        - ``"percentile"`` (default): the ``lower`` and ``upper`` percentiles of the image map to -1 and 1. Robust to
          burned-in text and collimator edges. On big images the percentiles are estimated on a regular sub-grid
          of at most ``max_samples`` pixels; ``max_samples=None`` computes them exactly, matching MONAI's
          ``ScaleIntensityRangePercentiles``.
        - ``"window"``: a fixed ``window=(centre, width)`` in source units, or, when ``window`` is ``None``, the
          source's full display range from the metadata (``display_range``: DICOM VOI output, 0-255 for 8-bit,
          0-65535 for 16-bit files), falling back to percentiles when the metadata has none.
        - ``"minmax"``: image minimum and maximum.

    Args:
        mode: ``"percentile"``, ``"window"`` or ``"minmax"``.
        lower, upper: percentiles (0-100) for ``"percentile"`` mode.
        window: ``(centre, width)`` for ``"window"`` mode.
        max_samples: pixel budget for percentile estimation (``None``: exact).

    Raises:
        ValueError: when the image has no intensity range (constant), naming the source file.
    """

    def __init__(
        self,
        mode: str = "percentile",
        lower: float = 0.5,
        upper: float = 99.5,
        window: Sequence[float] | None = None,
        max_samples: int | None = 1 << 18,
    ) -> None:
        if mode not in ("percentile", "window", "minmax"):
            raise ValueError(f"mode must be 'percentile', 'window' or 'minmax', got {mode!r}")
        if not 0.0 <= lower < upper <= 100.0:
            raise ValueError(f"need 0 <= lower < upper <= 100, got lower={lower}, upper={upper}")
        if window is not None and (len(window) != 2 or float(window[1]) <= 0):
            raise ValueError(f"window must be (centre, width) with width > 0, got {window}")
        self.mode = mode
        self.lower = lower
        self.upper = upper
        self.window = None if window is None else (float(window[0]), float(window[1]))
        self.max_samples = max_samples

    def intensity_range(self, img: torch.Tensor) -> tuple[float, float]:
        """The source intensities ``(a_min, a_max)`` that map to -1 and 1 for this image."""
        if self.mode == "minmax":
            return float(img.min()), float(img.max())
        if self.mode == "window":
            if self.window is not None:
                c, w = self.window
                return c - w / 2.0, c + w / 2.0
            rng = img.meta.get("display_range") if isinstance(img, MetaTensor) else None
            if rng is not None:
                rng = np.asarray(rng, dtype=np.float64).reshape(-1)
                if rng.size == 2 and np.isfinite(rng).all() and rng[1] > rng[0]:
                    return float(rng[0]), float(rng[1])
        x = img.as_tensor() if isinstance(img, MetaTensor) else img
        if self.max_samples is not None and x.shape[-1] * x.shape[-2] > self.max_samples:
            step = math.ceil(math.sqrt(x.shape[-1] * x.shape[-2] / self.max_samples))
            x = x[..., ::step, ::step]
        # numpy's partition-based percentile: torch.quantile sorts, ~10x slower at this size
        lo, hi = percentile(x.reshape(-1).float().cpu().numpy(), [self.lower, self.upper])
        return float(lo), float(hi)

    def __call__(self, img: Any) -> torch.Tensor:
        img = _as_tensor(img).float()
        a_min, a_max = self.intensity_range(img)
        if not a_max > a_min:  # e.g. a mostly constant image whose percentiles coincide
            a_min, a_max = float(img.min()), float(img.max())
        if not a_max > a_min:
            raise ValueError(f"{_source_name(img)}: constant image (value {a_min:g}), cannot normalise to [-1, 1]")
        return ScaleIntensityRange(a_min=a_min, a_max=a_max, b_min=-1.0, b_max=1.0, clip=True)(img)


class NormalizeXrayIntensityd(_ForEachKey):
    """Dictionary version of :class:`NormalizeXrayIntensity` (same arguments after ``keys``)."""

    transform_type = NormalizeXrayIntensity


@dataclass(eq=False)
class XrayBorderCleanup(Transform):
    """Crop uniform borders (black padding, white frames, collimator shutters) and optionally erase burned-in text.

    Expects a normalised image ``(C, H, W)`` in [-1, 1]. A row or column belongs to the border when fewer than
    ``content_fraction`` of its pixels lie strictly inside ``(-1 + tol, 1 - tol)``; the crop keeps the bounding
    box of the remaining rows and columns (small labels inside a black border do not stop the crop).

    With ``remove_text=True``, small saturated bright marks (lead markers, burned-in annotations) are replaced
    by a grey-scale morphological opening of the image: pixels above ``1 - tol`` that stand more than
    ``text_contrast`` above the opening with a square of ``text_size`` (fraction of the shorter side).
    Bright anatomy larger than that square (bone, devices wider than the square) is left alone.

    Args:
        content_fraction: minimum fraction of content pixels for a row/column to be kept.
        tol: distance from -1 / 1 that counts as saturated.
        remove_text: also erase small saturated marks.
        text_size: structuring element side for text removal, as a fraction of the shorter image side.
        text_contrast: minimum height of a mark above its surroundings (in [-1, 1] units).
        min_keep: never crop below this fraction of the original side.
    """

    content_fraction: float = 0.05
    tol: float = 0.02
    remove_text: bool = False
    text_size: float = 0.05
    text_contrast: float = 0.3
    min_keep: float = 0.5

    def _bounds(self, profile: np.ndarray, n: int) -> tuple[int, int]:
        keep = np.nonzero(profile >= self.content_fraction)[0]
        if keep.size == 0:
            return 0, n
        lo, hi = int(keep[0]), int(keep[-1]) + 1
        if hi - lo < self.min_keep * n:
            return 0, n
        return lo, hi

    def __call__(self, img: Any) -> torch.Tensor:
        img = _as_tensor(img)
        x = img.detach().cpu().numpy()
        gray = x.mean(axis=0)
        content = (gray > -1.0 + self.tol) & (gray < 1.0 - self.tol)
        r0, r1 = self._bounds(content.mean(axis=1), gray.shape[0])
        c0, c1 = self._bounds(content.mean(axis=0), gray.shape[1])
        out = SpatialCrop(roi_start=(r0, c0), roi_end=(r1, c1))(img)  # MetaTensor affine follows the crop
        if self.remove_text:
            crop = x[:, r0:r1, c0:c1]
            k = max(3, int(round(self.text_size * min(crop.shape[-2:]))) | 1)
            cleaned = crop.copy()
            for c in range(crop.shape[0]):
                opened = ndimage.grey_opening(crop[c], size=(k, k))
                marks = (crop[c] > 1.0 - self.tol) & (crop[c] - opened > self.text_contrast)
                marks = ndimage.binary_dilation(marks, iterations=1)
                cleaned[c][marks] = opened[marks]
            out = out.clone()
            out[...] = torch.as_tensor(cleaned, dtype=out.dtype)
        return out


class XrayBorderCleanupd(_ForEachKey):
    """Dictionary version of :class:`XrayBorderCleanup` (same arguments after ``keys``)."""

    transform_type = XrayBorderCleanup


class ResizeXrayToSquare(Transform):
    """Resize ``(C, H, W)`` to ``(C, size, size)`` with ``size`` a power of two, keeping the aspect ratio.

    ``mode="pad"`` scales the longer side to ``size`` and pads the shorter one with ``pad_value`` (default -1,
    black, which is air on a normalised radiograph); ``mode="crop"`` scales the shorter side to ``size`` and
    centre-crops the longer one. Downsampling uses area averaging (no aliasing of rib edges), upsampling bilinear.
    Built on MONAI ``Resize``, ``SpatialPad`` and ``CenterSpatialCrop`` so ``MetaTensor`` affines stay right.

    Args:
        size: output side, a power of two (4, 8, ..., 1024).
        mode: ``"pad"`` (whole image kept) or ``"crop"`` (no padding, edges lost).
        pad_value: fill value for ``"pad"`` mode (in the image's units; -1 after normalisation).
    """

    def __init__(self, size: int, mode: str = "pad", pad_value: float = -1.0) -> None:
        if mode not in ("pad", "crop"):
            raise ValueError(f"mode must be 'pad' or 'crop', got {mode!r}")
        self.size = int(size)
        check_resolution(self.size, "image size")
        self.mode = mode
        self.pad = SpatialPad((self.size, self.size), method="symmetric", mode="constant", value=pad_value)
        self.crop = CenterSpatialCrop((self.size, self.size))

    def __call__(self, img: Any) -> torch.Tensor:
        img = _as_tensor(img).float()
        h, w = int(img.shape[-2]), int(img.shape[-1])
        scale = self.size / (max(h, w) if self.mode == "pad" else min(h, w))
        new_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
        if self.mode == "pad":
            new_hw = (min(new_hw[0], self.size), min(new_hw[1], self.size))
        if new_hw != (h, w):
            interp = "area" if scale < 1 else "bilinear"
            img = Resize(new_hw, mode=interp, align_corners=None if interp == "area" else False)(img)
        return self.pad(img) if self.mode == "pad" else self.crop(img)


class ResizeXrayToSquared(_ForEachKey):
    """Dictionary version of :class:`ResizeXrayToSquare` (same arguments after ``keys``)."""

    transform_type = ResizeXrayToSquare


class RandXrayAugment(Randomizable, Transform):
    """Light, radiograph-safe augmentation of a normalised image ``(C, R, R)`` in [-1, 1]; output in [-1, 1].

    Each call, with probability ``prob``, applies a small affine (rotation up to ``rotate_deg``, isotropic scale
    within ``1 +- scale``, shift up to ``shift`` of the side; borders replicated) and, independently with
    probability ``prob``, a gamma contrast change within ``gamma``. Horizontal flips (``hflip_prob``) are off by
    default because they move the heart to the wrong side; vertical flips (``vflip_prob``) are off by default
    because upside-down chests do not occur. Seed with ``set_random_state(seed)``.

    Args:
        prob: probability of the geometric and of the contrast change, each.
        rotate_deg: maximum rotation in degrees.
        scale: maximum relative zoom change.
        shift: maximum translation as a fraction of the side.
        gamma: ``(low, high)`` range of the contrast gamma.
        hflip_prob: probability of a left-right flip.
        vflip_prob: probability of an up-down flip.
    """

    def __init__(
        self,
        prob: float = 0.5,
        rotate_deg: float = 5.0,
        scale: float = 0.05,
        shift: float = 0.03,
        gamma: tuple[float, float] = (0.85, 1.15),
        hflip_prob: float = 0.0,
        vflip_prob: float = 0.0,
    ) -> None:
        self.shift = shift
        self.affine = RandAffine(
            prob=prob,
            rotate_range=(math.radians(rotate_deg),),
            scale_range=(scale, scale),
            translate_range=(0.0, 0.0),
            padding_mode="border",
            mode="bilinear",
        )
        self.contrast = RandAdjustContrast(prob=prob, gamma=gamma)
        self.hflip = RandFlip(prob=hflip_prob, spatial_axis=1)
        self.vflip = RandFlip(prob=vflip_prob, spatial_axis=0)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandXrayAugment:
        super().set_random_state(seed, state)
        for t in (self.affine, self.contrast, self.hflip, self.vflip):
            t.set_random_state(state=self.R)
        return self

    def randomize(self, data: Any = None) -> None:
        side = float(data.shape[-1]) if data is not None else 0.0
        shift = self.shift * side
        self.affine.rand_affine_grid.translate_range = ((-shift, shift), (-shift, shift))
        self.affine.randomize()
        self.contrast.randomize()
        self.hflip.randomize(None)
        self.vflip.randomize(None)

    def __call__(self, img: Any, randomize: bool = True) -> torch.Tensor:
        img = _as_tensor(img).float()
        if randomize:
            self.randomize(img)
        out = self.affine(img, randomize=False)
        out = self.contrast(out, randomize=False)
        out = self.hflip(out, randomize=False)
        out = self.vflip(out, randomize=False)
        return torch.clamp(out, -1.0, 1.0)


class RandXrayAugmentd(Randomizable, _ForEachKey):
    """Dictionary version of :class:`RandXrayAugment` (same arguments after ``keys``): the same random draw is
    applied to every key."""

    transform_type = RandXrayAugment
    transform: RandXrayAugment

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandXrayAugmentd:
        super().set_random_state(seed, state)
        self.transform.set_random_state(state=self.R)
        return self

    def randomize(self, data: Any = None) -> None:
        self.transform.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        if keys:
            self.randomize(d[keys[0]])
        for key in keys:
            d[key] = self.transform(d[key], randomize=False)
        return d
