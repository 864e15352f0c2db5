"""Ignite handlers for MSG-SAGAN training: EMA, checkpoints and resume, samples, diversity, progress, health."""

from monai_msgsagan.handlers.checkpoint import (
    CheckpointIntegrityError,
    GanCheckpointSaver,
    GlobalRandomState,
    NonFiniteWeightsError,
    ResumeFromLatest,
    atomic_torch_save,
    latest_checkpoint,
    load_checkpoint,
    newest_intact_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from monai_msgsagan.handlers.diversity import DiversityMonitor
from monai_msgsagan.handlers.ema import GeneratorEMA
from monai_msgsagan.handlers.health import Diagnosis, HealthThresholds, TrainingHealthMonitor, diagnose
from monai_msgsagan.handlers.progress import TrainingProgress
from monai_msgsagan.handlers.samples import SampleGridSaver, image_grid

__all__ = [
    "CheckpointIntegrityError",
    "Diagnosis",
    "DiversityMonitor",
    "GanCheckpointSaver",
    "GeneratorEMA",
    "GlobalRandomState",
    "HealthThresholds",
    "NonFiniteWeightsError",
    "ResumeFromLatest",
    "SampleGridSaver",
    "TrainingHealthMonitor",
    "TrainingProgress",
    "atomic_torch_save",
    "diagnose",
    "image_grid",
    "latest_checkpoint",
    "load_checkpoint",
    "newest_intact_checkpoint",
    "save_checkpoint",
    "verify_checkpoint",
]
