"""Ignite handlers for MSG-SAGAN training: EMA, checkpoints and resume, sample grids, diversity monitor, progress."""

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
from monai_msgsagan.handlers.progress import TrainingProgress
from monai_msgsagan.handlers.samples import SampleGridSaver, fixed_latents, image_grid

__all__ = [
    "CheckpointIntegrityError",
    "DiversityMonitor",
    "GanCheckpointSaver",
    "GeneratorEMA",
    "GlobalRandomState",
    "NonFiniteWeightsError",
    "ResumeFromLatest",
    "SampleGridSaver",
    "TrainingProgress",
    "atomic_torch_save",
    "fixed_latents",
    "image_grid",
    "latest_checkpoint",
    "load_checkpoint",
    "newest_intact_checkpoint",
    "save_checkpoint",
    "verify_checkpoint",
]
