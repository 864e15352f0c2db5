"""Is a synthetic image a copy of a training image? Nearest training image by features and by MS-SSIM.

A synthetic X-ray that reproduces a training patient's image is a privacy leak, not a success. For each
synthetic image this module finds its nearest training image in feature space (Euclidean distance on the same
features as FID, or a user's feature network) and by MS-SSIM (highest value, same definition as
:func:`~monai_msgsagan.metrics.diversity.pairwise_ms_ssim`), and flags likely copies, with thresholds taken from
the training set itself, per nearest training image ``r`` (the "authenticity" idea of Alaa et al. 2022, made
conservative by ``copy_ratio``, default 0.5):

- feature copy: ``d(fake, r) < copy_ratio * d(r, nearest other real)``: the synthetic image is at least twice
  as close to ``r`` as any other training image is.
- MS-SSIM copy: ``1 - MS-SSIM(fake, r) < copy_ratio * (1 - MS-SSIM(r, its most alike other real))``, the same
  rule on the MS-SSIM dissimilarity; or, when ``ssim_threshold`` is given, ``MS-SSIM(fake, r) >= ssim_threshold``.

``likely_copy`` is either flag. Near-duplicate training images (for example follow-up images of one patient)
make the rule stricter for their neighbours, so it errs towards not flagging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from monai_msgsagan.metrics.diversity import cross_ms_ssim, pairwise_ms_ssim
from monai_msgsagan.metrics.fidelity import ExtractionOptions, extract_features
from monai_msgsagan.metrics.utils import check_images, check_same_size

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["memorization"]


def _nearest_other(d: torch.Tensor) -> torch.Tensor:
    """Row-wise minimum of a square distance matrix, ignoring the diagonal."""
    d = d.clone()
    d.fill_diagonal_(float("inf"))
    return d.min(dim=1).values


def memorization(
    real: torch.Tensor,
    fake: torch.Tensor,
    feature_extractor: nn.Module | None = None,
    *,
    copy_ratio: float = 0.5,
    ssim_threshold: float | None = None,
    use_features: bool = True,
    ms_ssim_kwargs: dict | None = None,
    **extraction: Unpack[ExtractionOptions],
) -> dict:
    """Nearest training image of each synthetic image, the distances, and likely-copy flags.

    Args:
        real: (Nr, C, H, W) training images in [-1, 1], Nr >= 2 (the thresholds need real-real neighbours).
        fake: (Nf, C, H, W) synthetic images in [-1, 1], same C, H, W.
        feature_extractor: feature network (default InceptionV3 pool3, see :mod:`.fidelity`).
        copy_ratio: feature-space copy threshold as a fraction of the nearest training image's own
            nearest-neighbour distance.
        ssim_threshold: absolute MS-SSIM copy threshold; None = relative to the training set (module docstring).
        use_features: False skips the feature network (MS-SSIM only).
        ms_ssim_kwargs: passed to the MS-SSIM functions (window, weights, chunk size, dtype).
        extraction: ``batch_size``, ``device``, ``cache`` (keywords), see :func:`~.fidelity.extract_features`.

    Returns:
        dict with per-synthetic-image lists (``nearest_ssim_index``, ``ms_ssim``, ``ssim_copy``, and with
        features ``nearest_feature_index``, ``feature_distance``, ``feature_threshold``, ``feature_copy``),
        ``likely_copy`` (list of bool), ``num_likely_copies``, ``fraction_likely_copies`` and ``settings``.
    """
    check_images(real, "real", min_count=2, what="memorisation (real-real nearest neighbours)")
    check_images(fake, "fake", min_count=1, what="memorisation")
    check_same_size(real, fake)
    if copy_ratio <= 0:
        raise ValueError(f"copy_ratio must be positive, got {copy_ratio}")
    kw = dict(ms_ssim_kwargs or {})

    ssim_fr = cross_ms_ssim(fake, real, **kw)  # (Nf, Nr)
    ssim_best, ssim_idx = ssim_fr.max(dim=1)
    rr = pairwise_ms_ssim(real, **kw)
    real_nn_ssim = torch.full((real.shape[0],), -float("inf"), dtype=torch.float64)
    for col in (0, 1):
        real_nn_ssim.scatter_reduce_(0, rr.pairs[:, col], rr.values, reduce="amax")
    if ssim_threshold is None:
        threshold = 1.0 - copy_ratio * (1.0 - real_nn_ssim[ssim_idx])  # per synthetic image
    else:
        threshold = torch.full_like(ssim_best, float(ssim_threshold))
    ssim_copy = ssim_best >= threshold
    out: dict = {
        "nearest_ssim_index": ssim_idx.tolist(),
        "ms_ssim": ssim_best.tolist(),
        "ssim_threshold": threshold.tolist(),
        "ssim_copy": ssim_copy.tolist(),
    }
    likely = ssim_copy.clone()
    settings = {
        "copy_ratio": copy_ratio,
        "ssim_threshold_rule": f"MS-SSIM >= {float(ssim_threshold)} (given)"
        if ssim_threshold is not None
        else "1 - MS-SSIM < copy_ratio * (1 - MS-SSIM of the nearest real image to its most alike other real)",
        "real_nn_ms_ssim_median": float(real_nn_ssim.median()),
        "ms_ssim": rr.settings,
        "num_real": int(real.shape[0]),
        "num_fake": int(fake.shape[0]),
    }
    if use_features:
        fr = extract_features(real, feature_extractor, name="real", **extraction)
        ff = extract_features(fake, feature_extractor, name="fake", **extraction)
        real_nn = _nearest_other(torch.cdist(fr, fr))
        d_fr = torch.cdist(ff, fr)
        dist, idx = d_fr.min(dim=1)
        feat_threshold = copy_ratio * real_nn[idx]
        feature_copy = dist < feat_threshold
        likely |= feature_copy
        out.update(
            {
                "nearest_feature_index": idx.tolist(),
                "feature_distance": dist.tolist(),
                "feature_threshold": feat_threshold.tolist(),
                "feature_copy": feature_copy.tolist(),
            }
        )
        settings["features"] = (
            type(feature_extractor).__name__ if feature_extractor is not None else ("InceptionV3 pool3")
        )
        settings["real_nn_feature_distance_median"] = float(real_nn.median())
    out["likely_copy"] = likely.tolist()
    out["num_likely_copies"] = int(likely.sum())
    out["fraction_likely_copies"] = float(likely.double().mean())
    out["settings"] = settings
    return out
