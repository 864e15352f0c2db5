"""MONAI Label tasks: synthetic minority-class records in the train split, and a "show me a synthetic image" infer.

MONAI Label (``monailabel``) is optional: it is imported through :func:`monai.utils.optional_import`, so this
module imports without it; the infer task then raises ``OptionalImportError`` when it is created.

Where the hook sits (monailabel 0.8.5):

- ``BasicTrainTask.train`` calls ``partition_datalist(context)`` once per training run, after the datastore's
  datalist is split into train and validation and before the data loaders are built.
  :class:`SyntheticTrainMixin` overrides it and extends only the train list.
- ``BundleTrainTask.__call__`` calls ``_partition_datalist(datalist, request)`` once per run and hands the train
  list to the bundle as ``train#dataset#data`` and the validation list as ``validate#dataset#data``.
  :class:`SyntheticBundleTrainMixin` overrides it the same way.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.utils import optional_import

from monai_msgsagan.label.augment import SyntheticAugmenter
from monai_msgsagan.label.files import atomic_write_text, write_png
from monai_msgsagan.label.generator import SyntheticGenerator, image_seed
from monai_msgsagan.label.records import SYNTHETIC_KEY, read_class_index

InferTask, _ = optional_import("monailabel.interfaces.tasks.infer_v2", name="InferTask", as_type="base")
InferType, has_monailabel = optional_import("monailabel.interfaces.tasks.infer_v2", name="InferType")

__all__ = [
    "SPLIT_FILENAME",
    "SyntheticBundleTrainMixin",
    "SyntheticImageInfer",
    "SyntheticTrainMixin",
    "augment_split",
    "has_monailabel",
]

logger = logging.getLogger(__name__)

#: File the train tasks write next to their checkpoints: the train and validation records of the last run.
SPLIT_FILENAME = "synthetic_split.json"

#: Train request key that turns the augmentation off for one run (``{"synthetic_augment": false}``).
REQUEST_KEY = "synthetic_augment"


def augment_split(
    augmenter: SyntheticAugmenter | None,
    train: Sequence[Mapping[str, Any]],
    val: Sequence[Mapping[str, Any]] | None,
    request: Mapping[str, Any],
    split_dir: str | Path | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, int]]:
    """Add synthetic records to the train split only.

    Validation keeps real records only: any record marked ``"synthetic"`` is dropped from it. With
    ``augmenter=None`` or ``request["synthetic_augment"]`` false the train split is left as it is.

    Args:
        augmenter: makes (or takes from its cache) the synthetic records.
        train, val: the real train and validation records (``val`` may be ``None``: a bundle then uses its own).
        request: the MONAI Label train request.
        split_dir: where to write :data:`SPLIT_FILENAME` (both lists and the per-class synthetic counts).

    Returns:
        ``(train + synthetic, validation, synthetic images per class name)``.
    """
    train = [dict(r) for r in train]
    real_val = None if val is None else [dict(r) for r in val if not r.get(SYNTHETIC_KEY)]
    if val is not None and len(real_val) != len(val):
        logger.warning(f"dropped {len(val) - len(real_val)} synthetic records from the validation split")
    per_class: dict[str, int] = {}
    if augmenter is not None and _enabled(request.get(REQUEST_KEY, True)):
        per_class = augmenter.plan(train)
        synthetic = augmenter(train)
        train = train + synthetic
        logger.info(
            f"synthetic augmentation: {len(synthetic)} records added to the train split {per_class}; "
            f"cache {augmenter.cache_folder}"
        )
    if split_dir is not None:
        Path(split_dir).mkdir(parents=True, exist_ok=True)
        split = {"train": train, "validation": real_val, "synthetic_per_class": per_class}
        atomic_write_text(Path(split_dir) / SPLIT_FILENAME, json.dumps(split, indent=2, default=str))
    return train, real_val, per_class


def _enabled(value: Any) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on") if isinstance(value, str) else bool(value)


class SyntheticTrainMixin:
    """Mixin for a ``monailabel.tasks.train.basic_train.BasicTrainTask`` subclass (list it first in the bases).

    Example::

        class MyTrain(SyntheticTrainMixin, BasicTrainTask):
            ...

        MyTrain(model_dir, ..., augmenter=SyntheticAugmentSettings.from_conf(conf, classes, cache).build())

    Once per training run, ``partition_datalist`` adds the augmenter's synthetic records to the train split and
    leaves validation real; the split is written to ``<output_dir>/synthetic_split.json`` and the per-class counts
    are returned with the training stats under ``"synthetic"``.
    """

    def __init__(self, *args: Any, augmenter: SyntheticAugmenter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.augmenter = augmenter
        self._synthetic_per_class: dict[str, int] = {}

    def config(self) -> dict[str, Any]:
        return {**super().config(), REQUEST_KEY: self.augmenter is not None}  # type: ignore[misc]

    def partition_datalist(self, context: Any, shuffle: bool = False) -> tuple[list, list]:
        train, val = super().partition_datalist(context, shuffle)  # type: ignore[misc]
        train, val, self._synthetic_per_class = augment_split(
            self.augmenter, train, val, context.request, context.output_dir if context.local_rank == 0 else None
        )
        return train, val

    def train(self, rank: int, world_size: int, request: Any, datalist: Any) -> dict[str, Any]:
        stats = super().train(rank, world_size, request, datalist)  # type: ignore[misc]
        return {**stats, "synthetic": dict(self._synthetic_per_class)}


class SyntheticBundleTrainMixin:
    """Mixin for a ``monailabel.tasks.train.bundle.BundleTrainTask`` subclass (list it first in the bases).

    Once per training run, ``_partition_datalist`` adds the synthetic records to the list the bundle trains on
    (``train#dataset#data``); the validation list (``validate#dataset#data``) stays real. The bundle's train
    transforms must read a class index label (synthetic records) as well as the datastore's labels, for example with
    :class:`~monai_msgsagan.label.records.ClassIndexd`. The split is written to ``<bundle>/logs/synthetic_split.json``.
    """

    def __init__(self, *args: Any, augmenter: SyntheticAugmenter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.augmenter = augmenter

    def config(self) -> dict[str, Any]:
        return {**super().config(), REQUEST_KEY: self.augmenter is not None}  # type: ignore[misc]

    def _partition_datalist(self, datalist: Any, request: Any, shuffle: bool = False) -> tuple[list, list | None]:
        train, val = super()._partition_datalist(datalist, request, shuffle)  # type: ignore[misc]
        split_dir = os.path.join(self.bundle_path, "logs")  # type: ignore[attr-defined]
        train, val, _ = augment_split(self.augmenter, train, val, request, split_dir)
        return train, val


class SyntheticImageInfer(InferTask):  # type: ignore[misc, valid-type]
    """MONAI Label infer task (type ``others``): one synthetic image of a class, reproducible from a seed.

    Request params: ``class`` (name or index, default the first class) and ``seed`` (int, default 0). Returns a
    PNG of the generator's resolution (the ``image`` a viewer shows; MONAI Label deletes it after sending) and
    ``{"class", "class_index", "seed", "synthetic": true, "generator_sha256"}``. The image is never saved into
    the datastore as a label.

    Args:
        generator: the loaded class-conditional generator.
        classes: class names in the generator's index order.
        description: shown by MONAI Label clients.
    """

    def __init__(
        self,
        generator: SyntheticGenerator,
        classes: Sequence[str],
        description: str = "Synthetic X-ray of a class from the MSG-SAGAN generator",
    ) -> None:
        if generator.num_classes != len(classes):
            raise ValueError(
                f"{generator.source}: the generator has {generator.num_classes} classes, got names {list(classes)}."
            )
        super().__init__(
            type=InferType.OTHERS,
            labels=list(classes),
            dimension=2,
            description=description,
            config={"class": list(classes), "seed": 0},
        )
        self.generator = generator
        self.classes = list(classes)

    def is_valid(self) -> bool:
        return True

    def __call__(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        requested = request.get("class", self.classes[0])
        if isinstance(requested, list):  # the config default offers all classes; take the first
            requested = requested[0]
        class_index = read_class_index(requested, self.classes, where="infer param 'class'")
        try:
            seed = int(request.get("seed", 0))
        except (TypeError, ValueError):
            raise ValueError(f"infer param 'seed': expected an integer, got {request.get('seed')!r}.") from None
        # the synthetic image must never be stored as a label of the (real) image named in the request
        request["save_label"] = False
        image = self.generator(class_index, [image_seed(seed, class_index, 0)])[0]
        fd, name = tempfile.mkstemp(suffix=".png", prefix="synthetic_")
        os.close(fd)
        write_png(image.numpy(), name)
        return name, {
            "class": self.classes[class_index],
            "class_index": class_index,
            "seed": seed,
            "synthetic": True,
            "generator_sha256": self.generator.sha256,
        }
