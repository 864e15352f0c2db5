"""The training data a bundle asks for: a user's folder or CSV of X-rays, a preprocessed store of them, or the
embedded phantoms."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import torch
from monai.data import Dataset

from monai_msgsagan.data.datalist import DatalistReport, make_dataset
from monai_msgsagan.data.phantoms import PhantomDataset
from monai_msgsagan.data.spec import SELECTION_FIELDS, DataSpec
from monai_msgsagan.data.store import REPORT, XrayStoreDataset
from monai_msgsagan.files import atomic_write_text, file_sha256
from monai_msgsagan.transforms import RandXrayAugmentd, xray_train_transforms

__all__ = ["TrainingData", "training_data", "real_image_sample"]

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """A training dataset of ``{"image": (1, R, R) float32 in [-1, 1], "label": int}`` items and its classes.

    ``num_classes`` is what the networks are built with: 0 (unconditional) when the data has fewer than two
    classes, else the number of classes. ``spec`` says which images these are (kept in the generator record, so an
    evaluation finds the same data without overrides); for a store, it names the files the store was made from.
    """

    dataset: Dataset
    class_names: list[str]
    spec: DataSpec
    report: DatalistReport | None = None
    files: list[str] | None = None

    @property
    def source(self) -> str:
        """The folder or CSV of the images, or ``"phantoms"``."""
        return self.spec.dataset_dir or "phantoms"

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if len(self.class_names) > 1 else 0

    @property
    def labels(self) -> list[int]:
        """Class index of every image, in dataset order (no image is decoded)."""
        if isinstance(self.dataset, XrayStoreDataset):
            return self.dataset.labels
        return [int(item["label"]) for item in self.dataset.data]

    def identities(self) -> tuple[list[str], list[str]]:
        """``(ids, names)`` of every image in dataset order: ``sha256:<hex>`` of each file's bytes and its path
        (for a store, as hashed when it was made), or ``phantom:<seed>:<index>`` for phantoms (see
        :mod:`monai_msgsagan.artifact`)."""
        if isinstance(self.dataset, XrayStoreDataset):
            return self.dataset.identities()
        if self.files is None:
            if not isinstance(self.dataset, PhantomDataset):
                raise TypeError(f"no image identities for a {type(self.dataset).__name__} without files")
            seed = self.dataset.seed
            return self.dataset.item_ids(), [f"phantom {i} (seed {seed})" for i in range(len(self.dataset))]
        with ThreadPoolExecutor(max_workers=8) as pool:  # hashlib releases the GIL: reading dominates
            digests = list(pool.map(file_sha256, self.files))
        return [f"sha256:{d}" for d in digests], list(self.files)


def training_data(
    spec: DataSpec,
    resolution: int,
    cache: str = "memory",
    cache_dir: str | os.PathLike | None = None,
    augment: bool = False,
    report_path: str | os.PathLike | None = None,
) -> TrainingData:
    """Build the training set a data specification names.

    Args:
        spec: which images: the store ``spec.store_dir`` when set (made by
            :func:`~monai_msgsagan.data.preprocess_store`, the bundle's ``preprocess`` workflow, at the same
            ``resolution`` and, when ``spec.dataset_dir`` is set too, from it with the same datalist settings;
            ``cache`` does not apply and its report is copied to ``report_path``), else the files of
            ``spec.dataset_dir``, else the embedded procedural chest phantoms.
        resolution: square power-of-two side of the training images.
        cache: ``"memory"`` (``CacheDataset``), ``"disk"`` (``PersistentDataset`` in ``cache_dir``) or ``"none"``.
        augment: add radiograph-safe random augmentation (seeded with ``spec.seed``) in the data pipeline (the
            trainer's on-device differentiable augmentation is usually the better choice for small sets).
        report_path: where to write the datalist report (skipped rows, unreadable files) as JSON.

    Raises:
        FileNotFoundError: ``spec.dataset_dir`` does not exist.
        StoreError: an unusable store (:class:`~monai_msgsagan.data.StoreSettingsError`: one made from other
            files, settings or resolution).
    """
    if spec.store_dir is not None:
        return _store_data(spec, resolution, augment, report_path)
    if spec.dataset_dir is None:
        dataset = PhantomDataset(
            spec.num_phantoms, resolution, spec.phantom_classes, spec.phantom_class_ratio, seed=spec.seed
        )
        logger.info("training on %d procedural chest phantoms at %d px", spec.num_phantoms, resolution)
        return TrainingData(dataset, list(dataset.class_names), spec)
    datalist = spec.datalist(report_path=report_path)
    logger.info(datalist.report.summary())
    transform = xray_train_transforms(resolution, augment=augment, pyramid=False, seed=spec.seed)
    dataset = make_dataset(datalist.train, transform, cache=cache, cache_dir=cache_dir)
    files = [item["image"] for item in datalist.train]
    return TrainingData(dataset, list(datalist.class_names), spec, datalist.report, files)


def _store_data(spec: DataSpec, resolution: int, augment: bool, report_path: str | os.PathLike | None) -> TrainingData:
    """The store ``spec.store_dir``, checked against ``spec``; its spec names the files the store was made from."""
    transform = None
    if augment:
        transform = RandXrayAugmentd("image")
        transform.set_random_state(seed=spec.seed)
    dataset = XrayStoreDataset(spec.store_dir, transform=transform, resolution=resolution)
    if spec.dataset_dir is not None:
        dataset.check_datalist(spec)
    if report_path is not None:
        atomic_write_text(report_path, (dataset.folder / REPORT).read_text(encoding="utf-8"))
    made_from = dataset.manifest["datalist"]
    spec = replace(spec, dataset_dir=made_from["source"], **{k: made_from[k] for k in SELECTION_FIELDS})
    logger.info(
        "training on %d images of the store %s (from %s) at %d px", len(dataset), spec.store_dir, spec.dataset_dir,
        resolution,
    )  # fmt: skip
    return TrainingData(dataset, dataset.class_names, spec)


def real_image_sample(dataset: Dataset, num: int, seed: int = 0) -> torch.Tensor:
    """``num`` images ``(num, C, R, R)`` drawn without replacement (seeded) from a training dataset."""
    if len(dataset) < 2:
        raise ValueError(f"need at least 2 real images for a reference sample, the dataset has {len(dataset)}.")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:num]
    return torch.stack([torch.as_tensor(dataset[int(i)]["image"]).float() for i in order])
