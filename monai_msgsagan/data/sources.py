"""The training data a bundle asks for: a user's folder or CSV of X-rays, or the embedded phantoms."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.data import Dataset

from monai_msgsagan.data.datalist import DatalistReport, build_datalist, make_dataset
from monai_msgsagan.data.phantoms import PhantomDataset
from monai_msgsagan.files import file_sha256
from monai_msgsagan.transforms import xray_train_transforms

__all__ = ["TrainingData", "training_data", "real_image_sample"]

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """A training dataset of ``{"image": (1, R, R) float32 in [-1, 1], "label": int}`` items and its classes.

    ``num_classes`` is what the networks are built with: 0 (unconditional) when the data has fewer than two
    classes, else the number of classes. ``settings`` are the :func:`training_data` arguments that define which
    images these are (kept in the generator record, so an evaluation finds the same data without overrides).
    """

    dataset: Dataset
    class_names: list[str]
    report: DatalistReport | None = None
    source: str = "phantoms"
    files: list[str] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if len(self.class_names) > 1 else 0

    @property
    def labels(self) -> list[int]:
        """Class index of every image, in dataset order (no image is decoded)."""
        return [int(item["label"]) for item in self.dataset.data]

    def identities(self) -> tuple[list[str], list[str]]:
        """``(ids, names)`` of every image in dataset order: ``sha256:<hex>`` of each file's bytes and its path,
        or ``phantom:<seed>:<index>`` for phantoms (see :mod:`monai_msgsagan.artifact`)."""
        if self.files is None:
            if not isinstance(self.dataset, PhantomDataset):
                raise TypeError(f"no image identities for a {type(self.dataset).__name__} without files")
            seed = self.dataset.seed
            return self.dataset.item_ids(), [f"phantom {i} (seed {seed})" for i in range(len(self.dataset))]
        with ThreadPoolExecutor(max_workers=8) as pool:  # hashlib releases the GIL: reading dominates
            digests = list(pool.map(file_sha256, self.files))
        return [f"sha256:{d}" for d in digests], list(self.files)


def training_data(
    dataset_dir: str | os.PathLike | None,
    resolution: int,
    label_column: str | None = None,
    path_column: str | None = None,
    classes: Sequence[str] | None = None,
    labels_from_subfolders: bool = False,
    cache: str = "memory",
    cache_dir: str | os.PathLike | None = None,
    augment: bool = False,
    num_phantoms: int = 512,
    phantom_classes: int = 2,
    phantom_class_ratio: float = 0.5,
    seed: int = 0,
    report_path: str | os.PathLike | None = None,
) -> TrainingData:
    """Build the training set a bundle config names.

    Args:
        dataset_dir: a folder of images (DICOM, PNG, JPEG, NIfTI; searched recursively), a CSV of paths and
            labels, or empty / ``None`` for the embedded procedural chest phantoms.
        resolution: square power-of-two side of the training images.
        label_column, path_column, classes, labels_from_subfolders: passed to
            :func:`~monai_msgsagan.data.build_datalist` (class filter and where the labels are).
        cache: ``"memory"`` (``CacheDataset``), ``"disk"`` (``PersistentDataset`` in ``cache_dir``) or ``"none"``.
        augment: add radiograph-safe random augmentation in the data pipeline (the trainer's on-device
            differentiable augmentation is usually the better choice for small sets).
        num_phantoms, phantom_classes: size and classes (1 or 2) of the phantom set.
        phantom_class_ratio: fraction of lung-opacity phantoms (label 1) when ``phantom_classes=2``: 0.5 is
            balanced, ``1 / 11`` is a 10:1 imbalance (the utility benchmark).
        seed: seed of the phantoms and of the augmentation.
        report_path: where to write the datalist report (skipped rows, unreadable files) as JSON.
    """
    if dataset_dir is None or str(dataset_dir).strip() == "":
        settings = {
            "dataset_dir": "",
            "num_phantoms": num_phantoms,
            "phantom_classes": phantom_classes,
            "phantom_class_ratio": phantom_class_ratio,
            "seed": seed,
        }
        dataset = PhantomDataset(
            num_phantoms, resolution, num_classes=phantom_classes, class_ratio=phantom_class_ratio, seed=seed
        )
        logger.info("training on %d procedural chest phantoms at %d px", num_phantoms, resolution)
        return TrainingData(dataset, list(dataset.class_names), settings=settings)
    source = Path(dataset_dir)
    if not source.exists():
        raise FileNotFoundError(f"dataset_dir {source} does not exist (give a folder or a CSV of images).")
    settings = {
        "dataset_dir": str(source.resolve()),
        "label_column": label_column,
        "path_column": path_column,
        "classes": None if classes is None else list(classes),
        "labels_from_subfolders": labels_from_subfolders,
        "seed": seed,
    }
    datalist = build_datalist(
        source, report_path=report_path, **{k: v for k, v in settings.items() if k != "dataset_dir"}
    )
    logger.info(datalist.report.summary())
    transform = xray_train_transforms(resolution, augment=augment, pyramid=False, seed=seed)
    dataset = make_dataset(datalist.train, transform, cache=cache, cache_dir=cache_dir)
    files = [item["image"] for item in datalist.train]
    return TrainingData(dataset, list(datalist.class_names), datalist.report, str(source), files, settings)


def real_image_sample(dataset: Dataset, num: int, seed: int = 0) -> torch.Tensor:
    """``num`` images ``(num, C, R, R)`` drawn without replacement (seeded) from a training dataset."""
    if len(dataset) < 2:
        raise ValueError(f"need at least 2 real images for a reference sample, the dataset has {len(dataset)}.")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:num]
    return torch.stack([torch.as_tensor(dataset[int(i)]["image"]).float() for i in order])
