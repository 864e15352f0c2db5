"""The diversity gate: refuse a mode-collapsed batch before anything is written."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from monai_msgsagan.metrics.diversity import pairwise_ms_ssim

__all__ = ["GateResult", "diversity_gate"]


@dataclass(frozen=True)
class GateResult:
    """Outcome of the gate.

    Attributes:
        metric: what was measured.
        mean, std, max: mean, spread and largest pairwise MS-SSIM over the compared pairs (1.0: identical images).
        pairs: number of image pairs compared.
        settings: what fixes the numbers (scales, window, pair sampling), from the metric.
        threshold: largest mean pairwise MS-SSIM accepted.
        passed: ``mean <= threshold``.
        reason: why the batch was refused (None when it passed).
    """

    metric: str
    mean: float
    std: float
    max: float
    pairs: int
    threshold: float
    passed: bool
    reason: str | None
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diversity_gate(images: torch.Tensor, threshold: float, max_pairs: int | None = None, seed: int = 0) -> GateResult:
    """Compare the batch's mean pairwise MS-SSIM with ``threshold``.

    Real chest radiographs of different patients have a mean pairwise MS-SSIM well below 1; a collapsed generator
    repeats (nearly) the same image, and the mean goes to 1.

    Args:
        images: (N, 1, H, W) float in [-1, 1], N >= 2.
        threshold: in (0, 1]; a batch whose mean pairwise MS-SSIM exceeds it is refused.
        max_pairs: compare at most this many seeded random distinct pairs (None: all N (N - 1) / 2 pairs).
        seed: seed of the pair sampling.

    Raises:
        ValueError: fewer than two images or a threshold outside (0, 1].
    """
    if images.ndim != 4 or images.shape[0] < 2:
        raise ValueError(f"the diversity gate needs (N, C, H, W) images with N >= 2, got {tuple(images.shape)}.")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"diversity threshold must be in (0, 1], got {threshold}.")
    scores = pairwise_ms_ssim(images, num_pairs=max_pairs, seed=seed)  # max_pairs >= N (N - 1) / 2: all pairs
    mean, largest, pairs = float(scores.mean), float(scores.values.max()), int(scores.values.numel())
    passed = mean <= threshold
    reason = None
    if not passed:
        reason = (
            f"mode collapse suspected: mean pairwise MS-SSIM {mean:.4f} over {pairs} pairs exceeds the "
            f"threshold {threshold:.4f}; no DICOM was written."
        )
    return GateResult(
        "pairwise MS-SSIM", mean, float(scores.std), largest, pairs, threshold, passed, reason, dict(scores.settings)
    )
