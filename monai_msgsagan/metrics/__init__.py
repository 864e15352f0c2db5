"""Diversity and fidelity metrics for synthetic images: pairwise MS-SSIM, FID/KID, PRDC, memorisation, reports."""

from __future__ import annotations

from monai_msgsagan.metrics.card import write_model_card
from monai_msgsagan.metrics.diversity import (
    MS_SSIM_WEIGHTS,
    MSSSIMSettings,
    PairwiseMSSSIM,
    collapse_score,
    cross_ms_ssim,
    gaussian_window,
    ms_ssim_weights,
    pairwise_ms_ssim,
    sample_pairs,
)
from monai_msgsagan.metrics.evaluation import evaluate_generator
from monai_msgsagan.metrics.fidelity import (
    ExtractionOptions,
    FeatureCache,
    InceptionV3Features,
    compute_fid,
    compute_kid,
    compute_prdc,
    extract_features,
    fid_from_features,
    fidelity_metrics,
    kid_from_features,
    prdc_from_features,
)
from monai_msgsagan.metrics.memorization import memorization
from monai_msgsagan.metrics.report import evaluate_synthesis, load_training_log, write_evaluation_report

__all__ = [
    "MS_SSIM_WEIGHTS",
    "ExtractionOptions",
    "FeatureCache",
    "MSSSIMSettings",
    "InceptionV3Features",
    "PairwiseMSSSIM",
    "collapse_score",
    "compute_fid",
    "compute_kid",
    "compute_prdc",
    "evaluate_generator",
    "cross_ms_ssim",
    "evaluate_synthesis",
    "extract_features",
    "fid_from_features",
    "fidelity_metrics",
    "gaussian_window",
    "kid_from_features",
    "load_training_log",
    "memorization",
    "ms_ssim_weights",
    "pairwise_ms_ssim",
    "prdc_from_features",
    "sample_pairs",
    "write_model_card",
    "write_evaluation_report",
]
