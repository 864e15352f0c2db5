"""MONAI Label augmentation hook: class-conditional synthetic X-rays in a train split (the every-class mix by
default, or the minority fill).

Everything here needs only MONAI. The MONAI Label task classes that use it (train mixins, the synthesis infer
task) live with the app that needs MONAI Label installed: ``apps/monailabel_xray/lib``.
"""

from monai_msgsagan.label.augment import (
    DEFAULT_MIX,
    MIXES,
    REQUEST_KEY,
    SPLIT_FILENAME,
    SyntheticAugmenter,
    augment_split,
    plan_real_repeats,
    plan_synthetic_counts,
)
from monai_msgsagan.label.config import SyntheticAugmentSettings
from monai_msgsagan.label.dataset import SyntheticAugmentedDataset
from monai_msgsagan.label.records import REPEAT_KEY, SYNTHETIC_KEY, ClassIndexd, class_counts, read_class_index

__all__ = [
    "DEFAULT_MIX",
    "MIXES",
    "REPEAT_KEY",
    "REQUEST_KEY",
    "SPLIT_FILENAME",
    "SYNTHETIC_KEY",
    "ClassIndexd",
    "SyntheticAugmentSettings",
    "SyntheticAugmentedDataset",
    "SyntheticAugmenter",
    "augment_split",
    "class_counts",
    "plan_real_repeats",
    "plan_synthetic_counts",
    "read_class_index",
]
