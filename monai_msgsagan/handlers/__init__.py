"""Ignite handlers for MSG-SAGAN training: EMA, checkpoints and resume, samples, diversity, progress, health.

Checkpointing is split by concern: ``integrity`` (SHA-256-bound atomic files, verified loads, finite weights),
``checkpoint_saver``, ``checkpoint_loader`` and ``random_state``.
"""

from monai_msgsagan.handlers.checkpoint_loader import ResumeFromLatest
from monai_msgsagan.handlers.checkpoint_saver import GanCheckpointSaver
from monai_msgsagan.handlers.diversity import DiversityMonitor
from monai_msgsagan.handlers.ema import GeneratorEMA
from monai_msgsagan.handlers.health import Diagnosis, HealthThresholds, TrainingHealthMonitor, diagnose
from monai_msgsagan.handlers.integrity import CheckpointIntegrityError, NonFiniteWeightsError
from monai_msgsagan.handlers.progress import TrainingProgress
from monai_msgsagan.handlers.random_state import GlobalRandomState
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
    "diagnose",
    "image_grid",
]
