"""Input checks shared by the metrics: clear errors for bad image sets."""

from __future__ import annotations

import torch

__all__ = ["check_images", "check_same_size"]

# float rounding only: real images are normalised into [-1, 1] and generate() clamps its output to it
_RANGE_TOLERANCE = 1e-5


def check_images(images: torch.Tensor, name: str = "images", min_count: int = 1, what: str = "this metric") -> None:
    """Validate an image set for the metrics.

    Args:
        images: tensor of shape (N, C, H, W), float, values in [-1, 1].
        name: how the set is named in error messages (for example ``"fake"``).
        min_count: the smallest N the calling metric can work with.
        what: the calling metric, named in the too-few-images error.

    Raises:
        TypeError: ``images`` is not a floating-point tensor.
        ValueError: wrong number of dimensions (a list of differently sized images must be resized first),
            fewer than ``min_count`` images, NaN/inf values, or values outside [-1, 1].
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor of shape (N, C, H, W), got {type(images).__name__}; "
            "images of mixed sizes must be resized to one size and stacked first"
        )
    if not torch.is_floating_point(images):
        raise TypeError(f"{name}: expected a floating-point tensor with values in [-1, 1], got dtype {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"{name}: expected shape (N, C, H, W), got {tuple(images.shape)}")
    if images.shape[0] < min_count:
        raise ValueError(f"{name}: {what} needs at least {min_count} images, got {images.shape[0]}")
    if images.numel() == 0:
        raise ValueError(f"{name}: empty images of shape {tuple(images.shape)}")
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        bad = (~finite).flatten(1).any(1).nonzero().flatten().tolist()
        raise ValueError(f"{name}: NaN or inf values in image(s) {bad[:10]}{' ...' if len(bad) > 10 else ''}")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1.0 - _RANGE_TOLERANCE or hi > 1.0 + _RANGE_TOLERANCE:
        raise ValueError(
            f"{name}: values must lie in [-1, 1] (the generator's tanh range), got min {lo:.4g} and max {hi:.4g}; "
            "normalise the images (for example with ScaleIntensityRange to [-1, 1]) first"
        )


def check_same_size(a: torch.Tensor, b: torch.Tensor, name_a: str = "real", name_b: str = "fake") -> None:
    """Raise ValueError when two image sets differ in channels or spatial size."""
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"mixed sizes: {name_a} images are {tuple(a.shape[1:])} (C, H, W) but {name_b} images are "
            f"{tuple(b.shape[1:])}; resize both sets to one size first"
        )
