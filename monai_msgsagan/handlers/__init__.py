"""Ignite handlers for MSG-SAGAN training: EMA, checkpoints and resume, sample grids, diversity monitor."""

from monai_msgsagan.handlers.checkpoint import (
    GanCheckpointSaver,
    GlobalRandomState,
    ResumeFromLatest,
    atomic_torch_save,
    latest_checkpoint,
)
from monai_msgsagan.handlers.diversity import DiversityMonitor
from monai_msgsagan.handlers.ema import GeneratorEMA
from monai_msgsagan.handlers.samples import SampleGridSaver, fixed_latents, image_grid

__all__ = [
    "DiversityMonitor",
    "GanCheckpointSaver",
    "GeneratorEMA",
    "GlobalRandomState",
    "ResumeFromLatest",
    "SampleGridSaver",
    "atomic_torch_save",
    "fixed_latents",
    "image_grid",
    "latest_checkpoint",
]
