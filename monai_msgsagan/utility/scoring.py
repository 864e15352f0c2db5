"""Scores of a classifier on real held-out images, their spread over seeds and bootstrap intervals over images.

The metric code is torchmetrics': balanced accuracy is the macro-averaged recall (``multiclass_recall``,
``average="macro"``), per-class recall (sensitivity) and precision, macro F1 and AUROC (``binary_auroc`` of the
positive class for two classes, macro ``multiclass_auroc`` otherwise). The bootstrap resamples test images
*within each true class* (a stratified bootstrap), so every resample has the test split's class counts and
every metric that the test split defines stays defined. The classifier seeds are resampled too (a two-level,
hierarchical bootstrap): each resample draws ``S`` of the ``S`` seeds with replacement and scores the mean of their
classifiers on the resampled test images, so an interval holds the spread over classifier seeds as well as over
test images. With several generators (GAN seeds) the generators are drawn first (:func:`hierarchical_means`). A
difference between two arms is taken on the same resamples, test images and seeds alike (paired). Intervals are
percentile intervals. Every class must be in the test split (else recall, AUROC and macro F1 are undefined), and a
class's precision is undefined (NaN, reported as ``None``) where no test image is predicted as that class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    multiclass_auroc,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

__all__ = [
    "defined",
    "hierarchical_means",
    "metric_names",
    "percentile_interval",
    "score_resamples",
    "stratified_resamples",
    "summarize",
]


def defined(value: float) -> float | None:
    """``value``, or ``None`` when it is undefined (NaN or infinite): what a report shows for an undefined metric."""
    return float(value) if np.isfinite(value) else None


def metric_names(class_names: Sequence[str]) -> list[str]:
    """Names of the metrics :func:`score_resamples` returns, in order."""
    return [
        "balanced_accuracy",
        "macro_f1",
        "auroc",
        *(f"recall/{c}" for c in class_names),
        *(f"precision/{c}" for c in class_names),
    ]


def stratified_resamples(labels: torch.Tensor, num_resamples: int, seed: int) -> torch.Tensor:
    """Bootstrap resamples of test image indices, drawn with replacement within each true class.

    Args:
        labels: ``(n,)`` true classes of the test images.
        num_resamples: ``B``.
        seed: numpy seed of the draw.

    Returns:
        ``(B, n)`` int64 indices; row 0 is the identity (the test split itself) so ``B = 1`` scores it as it is.
    """
    rng = np.random.default_rng(seed)
    y = labels.numpy()
    out = np.empty((num_resamples, len(y)), dtype=np.int64)
    out[0] = np.arange(len(y))
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        out[1:, members] = rng.choice(members, size=(num_resamples - 1, len(members)), replace=True)
    return torch.from_numpy(out)


def score_resamples(probabilities: torch.Tensor, labels: torch.Tensor, resamples: torch.Tensor) -> torch.Tensor:
    """Every metric of every seed's classifier on every resample.

    Args:
        probabilities: ``(S, n, K)`` class probabilities of ``S`` classifiers (seeds) on the ``n`` test images.
        labels: ``(n,)`` true classes in ``[0, K)``.
        resamples: ``(B, n)`` test image indices (:func:`stratified_resamples`).

    Returns:
        ``(S, B, M)`` float64 with the metrics in :func:`metric_names` order; a class's precision is NaN in a
        resample where no image is predicted as that class (0 / 0).

    Raises:
        ValueError: a class with no test image (its recall, the AUROC and the macro F1 would be undefined).
    """
    num_seeds, _, k = probabilities.shape
    missing = [c for c in range(k) if not bool((labels == c).any())]
    if missing:
        raise ValueError(f"classes {missing} have no test image: recall, AUROC and macro F1 would be undefined.")
    target = labels[resamples]
    rows = []
    for s in range(num_seeds):
        probs = probabilities[s][resamples]  # (B, n, K)
        preds = probs.argmax(-1)
        recall = multiclass_recall(preds, target, k, average=None, multidim_average="samplewise")
        precision = multiclass_precision(preds, target, k, average=None, multidim_average="samplewise")
        predicted = torch.nn.functional.one_hot(preds, k).sum(1)  # (B, K): images predicted as each class
        precision = torch.where(predicted > 0, precision, torch.full_like(precision, float("nan")))
        f1 = multiclass_f1_score(preds, target, k, average="macro", multidim_average="samplewise")
        if k == 2:
            auroc = torch.stack([binary_auroc(p[:, 1], t, validate_args=False) for p, t in zip(probs, target)])
        else:
            auroc = torch.stack(
                [multiclass_auroc(p, t, k, average="macro", validate_args=False) for p, t in zip(probs, target)]
            )
        rows.append(torch.cat([recall.mean(1, keepdim=True), f1[:, None], auroc[:, None], recall, precision], 1))
    return torch.stack(rows).double()


def hierarchical_means(scores: torch.Tensor, seed: int) -> torch.Tensor:
    """Resampled means of nested seeds: ``scores`` ``(G_1, ..., G_L, B, M)`` (levels of seeds, outermost first,
    for example GAN seeds then classifier seeds; then test-image resamples and metrics) -> ``(B, M)``.

    Resample ``b`` draws each level's seeds with replacement (one draw per level and resample: the levels are
    crossed, classifier seed ``s`` of every drawn generator is drawn together) and averages ``scores[..., b, :]``
    over the drawn seeds; resample 0 uses every seed once, so row 0 is the plain mean. The same ``seed`` gives the
    same draws for every array of the same shape, so two arms resampled with it are paired.
    """
    *levels, num_resamples, _ = scores.shape
    rng = np.random.default_rng(seed)
    index = torch.arange(num_resamples)
    values = scores.movedim(-2, 0)  # (B, G_1, ..., G_L, M)
    for size in levels:
        draw = torch.from_numpy(rng.integers(0, size, size=(num_resamples, size)).astype(np.int64))
        draw[0] = torch.arange(size)
        # values: (B, size, *rest) -> the drawn seeds of each resample, averaged
        picked = values[index[:, None], draw]  # (B, size, *rest)
        values = picked.mean(1)
    return values


def percentile_interval(values: torch.Tensor | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` percentile interval (``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles, linear) of
    bootstrap values ``(B,)``."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def summarize(scores: torch.Tensor, names: Sequence[str], level: float = 0.95, seed: int = 0) -> dict[str, dict]:
    """Per metric: the mean over seeds and its spread on the test split, and the hierarchical bootstrap interval
    (classifier seeds and test images, :func:`hierarchical_means`) of that mean.

    Args:
        scores: ``(S, B, M)`` from :func:`score_resamples` (resample 0 is the test split itself).
        names: the ``M`` metric names.
        level: interval level.
        seed: seed of the seed draws (the same for every arm, so differences are paired).

    Returns:
        ``{name: {"mean", "std" (over seeds, 0 for one seed), "per_seed": [...], "ci95": [lo, hi]}}``; an
        undefined value (a seed's precision of a class it never predicts, and so the mean and spread over seeds)
        is ``None``, and the interval covers the resamples where the mean is defined (``None`` when none is).
    """
    out = {}
    seed_mean = hierarchical_means(scores, seed)  # (B, M)
    for m, name in enumerate(names):
        per_seed = scores[:, 0, m]
        resampled = seed_mean[1:, m] if len(seed_mean) > 1 else seed_mean[:, m]
        out[name] = {
            "mean": defined(float(per_seed.mean())),
            "std": defined(float(per_seed.std()) if len(per_seed) > 1 else 0.0),
            "per_seed": [None if (v := defined(float(x))) is None else round(v, 6) for x in per_seed],
            "ci95": [defined(v) for v in percentile_interval(resampled[torch.isfinite(resampled)], level)],
        }
    return out
