"""Training samplers: class-balanced drawing for imbalanced data, with the exact-resume and multi-rank behaviour of
``torch.utils.data.DistributedSampler``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset, DistributedSampler

__all__ = ["ClassBalancedSampler"]


class ClassBalancedSampler(DistributedSampler):
    """A ``DistributedSampler`` that can draw every class equally often.

    With ``balanced=False`` it is exactly ``DistributedSampler`` (a seeded permutation per epoch, split across
    ranks). With ``balanced=True`` an epoch is ``len(dataset)`` draws with replacement, image ``i`` drawn with
    probability proportional to ``1 / n_{label_i}``, from ``torch.Generator().manual_seed(seed + epoch)``; draw
    ``j`` goes to rank ``j % num_replicas``. From epoch ``minority_from_epoch`` on (fine-tuning toward the
    minority classes) draws are made the same way with image ``i`` drawn with probability proportional to
    ``1 / n_{label_i}^2``: class ``c`` is drawn with probability proportional to ``1 / n_c``, so at 10:1 the
    minority class gets about 91% of the draws. So, as with ``DistributedSampler``, the order depends only on
    ``(seed, epoch)``: a run resumed at an epoch boundary draws what the uninterrupted run drew, and ranks never
    share a draw. MONAI's workflows call :meth:`set_epoch` every epoch.

    Args:
        dataset: the training dataset (only its length is used).
        labels: class index of every dataset item ``(len(dataset),)``.
        balanced: draw classes equally often (True) or behave as ``DistributedSampler`` (False).
        minority_from_epoch: first epoch (as :meth:`set_epoch` receives it: MONAI's workflows count from 1) of
            the minority fine-tuning; ``0`` or an epoch after the last: none.
        num_replicas, rank, shuffle, seed, drop_last: as ``DistributedSampler`` (``shuffle`` only when not
            balanced; balanced drawing is always random).
    """

    def __init__(
        self,
        dataset: Dataset,
        labels: Sequence[int],
        balanced: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        minority_from_epoch: int = 0,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        labels_t = torch.as_tensor(list(labels), dtype=torch.long)
        if len(labels_t) != len(dataset):  # type: ignore[arg-type]
            raise ValueError(f"labels has {len(labels_t)} entries for a dataset of {len(dataset)} items.")  # type: ignore[arg-type]
        counts = torch.bincount(labels_t).double()
        if not isinstance(balanced, bool):  # "--class_balanced true" arrives as the string "true"
            raise TypeError(f"balanced must be True or False, got {balanced!r} (command line: --class_balanced True).")
        self.balanced, self.minority_from_epoch = balanced, minority_from_epoch
        self.weights = (1.0 / counts.clamp(min=1))[labels_t]

    def __iter__(self) -> Iterator[int]:
        minority = 0 < self.minority_from_epoch <= self.epoch
        if not self.balanced and not minority:
            return super().__iter__()
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        total = self.num_samples * self.num_replicas
        weights = self.weights**2 if minority else self.weights
        draws = torch.multinomial(weights, total, replacement=True, generator=generator).tolist()
        return iter(draws[self.rank : total : self.num_replicas])
