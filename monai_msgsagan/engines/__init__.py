"""Training engine for MSG-SAGAN."""

from monai_msgsagan.engines.augment import PyramidDiffAugment
from monai_msgsagan.engines.events import GanIterationEvents, GanOutputKeys
from monai_msgsagan.engines.trainer import MultiScaleGanTrainer, NonFiniteLossError, cpu_has_native_bf16

__all__ = [
    "GanIterationEvents",
    "GanOutputKeys",
    "MultiScaleGanTrainer",
    "NonFiniteLossError",
    "PyramidDiffAugment",
    "cpu_has_native_bf16",
]
