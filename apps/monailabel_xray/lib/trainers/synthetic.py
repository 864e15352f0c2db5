"""Train task mixins that add the hook's synthetic records to a MONAI Label train split.

Where the hook sits (monailabel 0.8.5):

- ``BasicTrainTask.train`` calls ``partition_datalist(context)`` once per training run, after the datastore's
  datalist is split into train and validation and before the data loaders are built.
  :class:`SyntheticTrainMixin` overrides it and extends only the train list.
- ``BundleTrainTask.__call__`` calls ``_partition_datalist(datalist, request)`` once per run and hands the train
  list to the bundle as ``train#dataset#data`` and the validation list as ``validate#dataset#data``.
  :class:`SyntheticBundleTrainMixin` overrides it the same way.
"""

from __future__ import annotations

import os
from typing import Any

from monai_msgsagan.label import REQUEST_KEY, SyntheticAugmenter, augment_split

__all__ = ["SyntheticBundleTrainMixin", "SyntheticTrainMixin"]


class _AugmenterMixin:
    """Takes the ``augmenter`` keyword and offers the per-run switch (:data:`REQUEST_KEY`) in the train config."""

    def __init__(self, *args: Any, augmenter: SyntheticAugmenter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.augmenter = augmenter

    def config(self) -> dict[str, Any]:
        return {**super().config(), REQUEST_KEY: self.augmenter is not None}  # type: ignore[misc]


class SyntheticTrainMixin(_AugmenterMixin):
    """Mixin for a ``monailabel.tasks.train.basic_train.BasicTrainTask`` subclass (list it first in the bases).

    Example::

        class MyTrain(SyntheticTrainMixin, BasicTrainTask):
            ...

        MyTrain(model_dir, ..., augmenter=SyntheticAugmentSettings.from_conf(conf, cache, classes).build())

    Once per training run, ``partition_datalist`` adds the augmenter's synthetic records to the train split and
    leaves validation real; the split is written to ``<output_dir>/synthetic_split.json`` and the per-class counts
    are returned with the training stats under ``"synthetic"``.
    """

    _synthetic_per_class: dict[str, int] = {}  # the last run's counts (replaced per run, never mutated)

    def partition_datalist(self, context: Any, shuffle: bool = False) -> tuple[list, list]:
        train, val = super().partition_datalist(context, shuffle)  # type: ignore[misc]
        train, val, self._synthetic_per_class = augment_split(
            self.augmenter, train, val, context.request, context.output_dir if context.local_rank == 0 else None
        )
        return train, val

    def train(self, rank: int, world_size: int, request: Any, datalist: Any) -> dict[str, Any]:
        stats = super().train(rank, world_size, request, datalist)  # type: ignore[misc]
        return {**stats, "synthetic": dict(self._synthetic_per_class)}


class SyntheticBundleTrainMixin(_AugmenterMixin):
    """Mixin for a ``monailabel.tasks.train.bundle.BundleTrainTask`` subclass (list it first in the bases).

    Once per training run, ``_partition_datalist`` adds the synthetic records to the list the bundle trains on
    (``train#dataset#data``); the validation list (``validate#dataset#data``) stays real. The bundle's train
    transforms must read a class index label (synthetic records) as well as the datastore's labels, for example with
    :class:`~monai_msgsagan.label.records.ClassIndexd`. The split is written to ``<bundle>/logs/synthetic_split.json``.
    """

    def _partition_datalist(self, datalist: Any, request: Any, shuffle: bool = False) -> tuple[list, list | None]:
        train, val = super()._partition_datalist(datalist, request, shuffle)  # type: ignore[misc]
        split_dir = os.path.join(self.bundle_path, "logs")  # type: ignore[attr-defined]
        train, val, _ = augment_split(self.augmenter, train, val, request, split_dir)
        return train, val
