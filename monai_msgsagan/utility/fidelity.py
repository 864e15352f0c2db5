"""Does the generator render each class the way real images of the class look? Class fidelity and a radiograph FID.

Both are measured with the study's **reference classifier**: the ``real_oversampled`` arm's classifiers, trained on
the real train split only with class-balanced sampling, one per classifier seed (fixed by the study's design, not
whichever arm scores best):

- **class fidelity** of class ``c``: the share of synthetic class-``c`` images the reference classifier calls ``c``,
  divided by the share of real held-out class-``c`` images it calls ``c`` (its recall of ``c``). 1.0 means the
  synthetic images carry the class as well as real ones do; a generator that renders the finding weakly scores
  well below 1. Averaged over classifier seeds, with a hierarchical bootstrap interval over seeds, synthetic
  images and test images (:func:`~monai_msgsagan.utility.scoring.hierarchical_means`).
- **radiograph FID**: FID between the real held-out images and as many synthetic images of the same classes, in
  the reference classifier's penultimate feature space (a network trained on radiographs, where InceptionV3's
  ImageNet features are a known weakness on medical images); the mean and spread over classifier seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from monai_msgsagan.metrics.fidelity import fid_from_features
from monai_msgsagan.utility.classifier import classifier_features, predict_probabilities
from monai_msgsagan.utility.scoring import hierarchical_means, percentile_interval

__all__ = ["REFERENCE_ARM", "class_fidelity_samples", "summarize_class_fidelity", "radiograph_fid"]

#: The arm whose classifiers are the reference classifier (real train split only, class-balanced).
REFERENCE_ARM = "real_oversampled"


def class_fidelity_samples(
    networks: Sequence[nn.Module],
    synthetic: torch.Tensor,
    class_index: int,
    real_recall: torch.Tensor,
    seed: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Bootstrap samples of the two shares behind the class fidelity of one class.

    Args:
        networks: the ``S`` reference classifiers (one per classifier seed).
        synthetic: ``(P, 1, R, R)`` synthetic images of the class in [-1, 1] (none of them trained on).
        class_index: the class.
        real_recall: ``(S, B)`` each reference classifier's recall of the class on the ``B`` test resamples
            (resample 0 the test split itself), from :func:`~monai_msgsagan.utility.scoring.score_resamples`.
        seed: seed of the resampling of the synthetic images.

    Returns:
        ``(S, B, 2)`` float64: per classifier seed and resample, the share of (resampled) synthetic images called
        the class and the recall of the real class. Resample 0 uses every synthetic image once.
    """
    num_resamples = real_recall.shape[1]
    called = torch.stack(
        [(predict_probabilities(n, synthetic, device=device).argmax(1) == class_index).double() for n in networks]
    )  # (S, P)
    rng = np.random.default_rng(seed)
    draw = torch.from_numpy(rng.integers(0, len(synthetic), size=(num_resamples, len(synthetic))).astype(np.int64))
    draw[0] = torch.arange(len(synthetic))
    synthetic_share = called[:, draw].mean(-1)  # (S, B)
    return torch.stack([synthetic_share, real_recall.double()], -1)


def summarize_class_fidelity(samples: torch.Tensor, seed: int, level: float = 0.95) -> dict[str, Any]:
    """Class fidelity of one class from its samples, ``(S, B, 2)`` for one generator or ``(G, S, B, 2)`` for ``G``
    generators (GAN seeds), with the hierarchical bootstrap interval.

    Returns:
        ``{"fidelity", "ci95", "synthetic_called_class", "real_called_class", "per_seed"}``: the ratio of the two
        seed-mean shares, its interval (over the resamples where the real share is not 0), the two shares, and each
        innermost seed's ratio on the test split itself. The ratio is None (undefined, with a ``note``) when the
        reference classifier calls no real held-out image of the class that class.
    """
    means = hierarchical_means(samples, seed)  # (B, 2)
    real = means[:, 1]
    ratio = means[:, 0] / real  # inf / nan where the real share is 0
    flat = samples.reshape(-1, *samples.shape[-2:])[:, 0]  # (seeds, 2) on the test split itself
    out: dict[str, Any] = {
        "fidelity": None,
        "ci95": None,
        "synthetic_called_class": float(means[0, 0]),
        "real_called_class": float(real[0]),
        "per_seed": [round(float(s / r), 6) if r > 0 else None for s, r in flat.tolist()],
    }
    if float(real[0]) <= 0.0:
        out["note"] = "undefined: the reference classifier calls no real held-out image of the class that class"
        return out
    defined = ratio[1:][real[1:] > 0] if len(ratio) > 1 else ratio
    out["fidelity"] = float(ratio[0])
    out["ci95"] = list(percentile_interval(defined, level))
    return out


def radiograph_fid(
    networks: Sequence[nn.Module], real: torch.Tensor, synthetic: torch.Tensor, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """FID of ``synthetic`` against ``real`` (both ``(N, 1, R, R)`` in [-1, 1], the same classes in the same
    proportions) in each reference classifier's penultimate features: ``{"mean", "std", "per_seed"}``."""
    values = [
        fid_from_features(classifier_features(n, real, device=device), classifier_features(n, synthetic, device=device))
        for n in networks
    ]
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "per_seed": [round(v, 4) for v in values],
    }
