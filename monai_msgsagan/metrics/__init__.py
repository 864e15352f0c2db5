"""Diversity and fidelity metrics for synthetic images: pairwise MS-SSIM, FID/KID, PRDC, memorisation, reports."""

from __future__ import annotations

from monai_msgsagan.metrics.diversity import (
    MS_SSIM_WEIGHTS,
    PairwiseMSSSIM,
    collapse_score,
    cross_ms_ssim,
    gaussian_window,
    ms_ssim_weights,
    pairwise_ms_ssim,
    sample_pairs,
)

__all__ = [
    "MS_SSIM_WEIGHTS",
    "PairwiseMSSSIM",
    "collapse_score",
    "cross_ms_ssim",
    "gaussian_window",
    "ms_ssim_weights",
    "pairwise_ms_ssim",
    "sample_pairs",
]
