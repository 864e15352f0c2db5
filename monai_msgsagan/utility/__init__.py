"""Downstream utility: does adding synthetic minority-class X-rays make an imbalanced classifier better on real
held-out images than class weights or oversampling? (see :mod:`monai_msgsagan.utility.study`)."""

from __future__ import annotations

from .classifier import (
    ClassifierSettings,
    build_classifier,
    class_balanced_weights,
    class_weights,
    predict_probabilities,
    train_classifier,
)
from .report import utility_table, write_utility_report
from .scoring import metric_names, percentile_interval, score_resamples, stratified_resamples, summarize
from .study import ARMS, BASELINE_ARMS, DEFAULT_ARM, generate_images, run_utility_study

__all__ = [
    "ARMS",
    "BASELINE_ARMS",
    "ClassifierSettings",
    "build_classifier",
    "class_balanced_weights",
    "class_weights",
    "DEFAULT_ARM",
    "generate_images",
    "metric_names",
    "percentile_interval",
    "predict_probabilities",
    "run_utility_study",
    "score_resamples",
    "stratified_resamples",
    "summarize",
    "train_classifier",
    "utility_table",
    "write_utility_report",
]
