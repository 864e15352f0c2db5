"""The synthetic class balancing as a plain MONAI dataset, without MONAI Label."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monai.data import Dataset

from monai_msgsagan.label.augment import SyntheticAugmenter

__all__ = ["SyntheticAugmentedDataset"]


class SyntheticAugmentedDataset(Dataset):
    """A :class:`monai.data.Dataset` over a real datalist plus the records its augmenter adds.

    The synthetic images are generated (or taken from the augmenter's cache) once, when the dataset is built;
    items are the real records first, then the added ones (the synthetic records, ``"synthetic": True``, and in
    the every-class mix the repeats of real records, ``"repeat": True``), each passed through ``transform``. For a
    cached or persistent dataset, build the list with :meth:`SyntheticAugmenter.augment_datalist` and hand it to
    that dataset class instead.

    Args:
        data: real records with an image and a class label (see :class:`SyntheticAugmenter`).
        augmenter: makes and caches the synthetic records.
        transform: MONAI transform applied to every item (the same for real and synthetic records).
    """

    def __init__(
        self,
        data: Sequence[Mapping[str, Any]],
        augmenter: SyntheticAugmenter,
        transform: Sequence[Callable] | Callable | None = None,
    ) -> None:
        self.real_data = [dict(r) for r in data]
        self.added_data = augmenter(self.real_data)
        super().__init__(self.real_data + self.added_data, transform)
