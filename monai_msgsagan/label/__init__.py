"""MONAI Label augmentation hook: class-conditional synthetic X-rays of the minority classes in a train split.

The core pieces (:class:`SyntheticGenerator`, :class:`SyntheticAugmenter`, :class:`SyntheticAugmentedDataset`,
:class:`ClassIndexd`) need only MONAI; the MONAI Label tasks import ``monailabel`` through
:func:`monai.utils.optional_import`.
"""

from monai_msgsagan.label.augment import SyntheticAugmenter, plan_synthetic_counts
from monai_msgsagan.label.config import SyntheticAugmentSettings
from monai_msgsagan.label.dataset import SyntheticAugmentedDataset
from monai_msgsagan.label.generator import SyntheticGenerator, file_sha256, image_seed
from monai_msgsagan.label.records import SYNTHETIC_KEY, ClassIndexd, class_counts, read_class_index
from monai_msgsagan.label.tasks import (
    SPLIT_FILENAME,
    SyntheticBundleTrainMixin,
    SyntheticImageInfer,
    SyntheticTrainMixin,
    augment_split,
    has_monailabel,
)

__all__ = [
    "SPLIT_FILENAME",
    "SYNTHETIC_KEY",
    "ClassIndexd",
    "SyntheticAugmentSettings",
    "SyntheticAugmentedDataset",
    "SyntheticAugmenter",
    "SyntheticBundleTrainMixin",
    "SyntheticGenerator",
    "SyntheticImageInfer",
    "SyntheticTrainMixin",
    "augment_split",
    "class_counts",
    "file_sha256",
    "has_monailabel",
    "image_seed",
    "plan_synthetic_counts",
    "read_class_index",
]
