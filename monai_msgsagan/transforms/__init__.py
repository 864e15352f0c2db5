"""MONAI transforms for radiographs: loading, normalisation to [-1, 1], square resize, augmentation, pyramids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monai.transforms import Compose

from .intensity import (
    NormalizeXrayIntensity,
    NormalizeXrayIntensityd,
    RandXrayAugment,
    RandXrayAugmentd,
    ResizeXrayToSquare,
    ResizeXrayToSquared,
    XrayBorderCleanup,
    XrayBorderCleanupd,
)
from .io import XRAY_EXTENSIONS, XRAY_META_KEYS, LoadXray, LoadXrayd, XrayReadError, read_xray
from .pyramid import MultiScalePyramid, MultiScalePyramidd, image_pyramid, pyramid_sizes

__all__ = [
    "XRAY_EXTENSIONS",
    "XRAY_META_KEYS",
    "LoadXray",
    "LoadXrayd",
    "MultiScalePyramid",
    "MultiScalePyramidd",
    "NormalizeXrayIntensity",
    "NormalizeXrayIntensityd",
    "RandXrayAugment",
    "RandXrayAugmentd",
    "ResizeXrayToSquare",
    "ResizeXrayToSquared",
    "XrayBorderCleanup",
    "XrayBorderCleanupd",
    "XrayPreprocessSettings",
    "XrayReadError",
    "image_pyramid",
    "pyramid_sizes",
    "read_xray",
    "xray_preprocess_transforms",
    "xray_train_transforms",
]


@dataclass(frozen=True)
class XrayPreprocessSettings:
    """How :func:`xray_preprocess_transforms` prepares a radiograph (a preprocessed store records them).

    Attributes:
        normalize_mode, lower, upper, window: see :class:`NormalizeXrayIntensity`.
        resize_mode: ``"pad"`` or ``"crop"``, see :class:`ResizeXrayToSquare`.
        border_cleanup: crop uniform borders; ``remove_text`` also erases small burned-in marks.
        jpeg_draft: decode large JPEGs at a reduced DCT scale (sides kept >= 2 x ``resolution``), a several-fold
            speed-up on 2000+ px files; the area resize to ``resolution`` follows either way.
    """

    normalize_mode: str = "percentile"
    lower: float = 0.5
    upper: float = 99.5
    window: Sequence[float] | None = None
    resize_mode: str = "pad"
    border_cleanup: bool = False
    remove_text: bool = False
    jpeg_draft: bool = True


def xray_preprocess_transforms(
    resolution: int,
    keys: Sequence[str] = ("image",),
    load: bool = True,
    label_key: str | None = "label",
    settings: XrayPreprocessSettings | None = None,
) -> Compose:
    """The deterministic part: load -> normalise to [-1, 1] -> (border cleanup) -> square ``resolution`` side.

    Output under each key: ``MetaTensor (1, resolution, resolution)`` float32 in [-1, 1]. Everything here is
    deterministic, so ``CacheDataset`` / ``PersistentDataset`` can cache its result.

    Args:
        resolution: output side, a power of two.
        keys: keys holding file paths (or, with ``load=False``, channel-first images).
        load: start with :class:`LoadXrayd` (file paths in); ``False`` for in-memory images.
        label_key: key of the class label copied into the image metadata by the loader.
        settings: normalisation, border cleanup, resize mode and JPEG draft decoding (``None``: the defaults).
    """
    keys, s = list(keys), settings or XrayPreprocessSettings()
    draft = 2 * int(resolution) if s.jpeg_draft else None
    chain = [LoadXrayd(keys, label_key=label_key, draft_size=draft)] if load else []
    chain.append(NormalizeXrayIntensityd(keys, mode=s.normalize_mode, lower=s.lower, upper=s.upper, window=s.window))
    if s.border_cleanup or s.remove_text:
        chain.append(XrayBorderCleanupd(keys, remove_text=s.remove_text))
    chain.append(ResizeXrayToSquared(keys, size=resolution, mode=s.resize_mode, pad_value=-1.0))
    return Compose(chain)


def xray_train_transforms(
    resolution: int,
    keys: Sequence[str] = ("image",),
    augment: bool = True,
    pyramid: bool = True,
    min_size: int = 4,
    seed: int | None = 0,
    augment_kwargs: dict | None = None,
    **preprocess_kwargs,
) -> Compose:
    """One-line training pipeline: load -> normalise -> square resize -> optional augmentation -> pyramid.

    With ``pyramid=True`` each key holds ``list[Tensor(1, s, s)]`` for ``s = 4, 8, ..., resolution`` (coarse to
    fine, values in [-1, 1]); the default collate turns that into ``list[Tensor(B, 1, s, s)]``, which is what the
    multi-scale discriminator takes. The deterministic prefix stops before the first random transform, so a
    ``CacheDataset`` caches the preprocessed images and re-runs only augmentation and pyramid each epoch.

    Args:
        resolution: output side, a power of two.
        keys: keys holding file paths (or images, with ``load=False`` in ``preprocess_kwargs``).
        augment: add :class:`RandXrayAugmentd` (radiograph-safe, no vertical flips).
        pyramid: end with :class:`MultiScalePyramidd`; ``False`` leaves one ``(1, R, R)`` image.
        min_size: coarsest pyramid side.
        seed: seed of the augmentation's random state (``None``: MONAI default).
        augment_kwargs: arguments of :class:`RandXrayAugment`.
        preprocess_kwargs: arguments of :func:`xray_preprocess_transforms` (``load``, ``settings``, ...).

    Example::

        train_ds = CacheDataset(build_datalist("cxr/metadata.csv", label_column="finding").train,
                                xray_train_transforms(64))
    """
    keys = list(keys)
    chain = list(xray_preprocess_transforms(resolution, keys, **preprocess_kwargs).transforms)
    if augment:
        chain.append(RandXrayAugmentd(keys, **(augment_kwargs or {})))
    if pyramid:
        chain.append(MultiScalePyramidd(keys, min_size=min_size))
    compose = Compose(chain)
    if seed is not None:
        compose.set_random_state(seed=seed)
    return compose
