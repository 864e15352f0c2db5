"""MONAI Label augmentation hook: class-conditional synthetic X-rays of the minority classes in a train split.

Everything here needs only MONAI. The MONAI Label task classes that use it (train mixins, the synthesis infer
task) live with the app that needs MONAI Label installed: ``apps/monailabel_xray/lib``.
"""

from monai_msgsagan.label.augment import (
    REQUEST_KEY,
    SPLIT_FILENAME,
    SyntheticAugmenter,
    augment_split,
    plan_synthetic_counts,
)
from monai_msgsagan.label.config import SyntheticAugmentSettings
from monai_msgsagan.label.dataset import SyntheticAugmentedDataset
from monai_msgsagan.label.records import SYNTHETIC_KEY, ClassIndexd, class_counts, read_class_index

__all__ = [
    "REQUEST_KEY",
    "SPLIT_FILENAME",
    "SYNTHETIC_KEY",
    "ClassIndexd",
    "SyntheticAugmentSettings",
    "SyntheticAugmentedDataset",
    "SyntheticAugmenter",
    "augment_split",
    "class_counts",
    "plan_synthetic_counts",
    "read_class_index",
]
