"""ClassBalancedSampler: DistributedSampler's order when not balanced; balanced draws that depend only on
(seed, epoch) and split across ranks."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DistributedSampler

from monai_msgsagan.data import ClassBalancedSampler

LABELS = [0] * 90 + [1] * 10


def test_unbalanced_is_exactly_distributed_sampler():
    data = list(range(len(LABELS)))
    for epoch in (0, 3):
        ours = ClassBalancedSampler(data, LABELS, balanced=False, num_replicas=1, rank=0, seed=5)
        torchs = DistributedSampler(data, num_replicas=1, rank=0, seed=5)
        ours.set_epoch(epoch)
        torchs.set_epoch(epoch)
        assert list(ours) == list(torchs)


def test_balanced_draws_classes_equally_and_resumes_from_seed_and_epoch():
    data = list(range(len(LABELS)))
    sampler = ClassBalancedSampler(data, LABELS, num_replicas=1, rank=0, seed=1)
    draws = []
    for epoch in range(40):
        sampler.set_epoch(epoch)
        draws += list(sampler)
    minority = sum(LABELS[i] for i in draws) / len(draws)
    assert minority == pytest.approx(0.5, abs=0.02)
    assert len(set(draws[i] for i in range(len(draws)) if LABELS[draws[i]] == 1)) == 10  # every minority image
    fresh = ClassBalancedSampler(data, LABELS, num_replicas=1, rank=0, seed=1)
    fresh.set_epoch(7)  # a run resumed at epoch 7 draws what the uninterrupted run drew
    assert list(fresh) == draws[7 * 100 : 8 * 100]


def test_balanced_ranks_split_one_draw_sequence():
    data = list(range(len(LABELS)))
    single = ClassBalancedSampler(data, LABELS, num_replicas=1, rank=0, seed=2)
    ranks = [ClassBalancedSampler(data, LABELS, num_replicas=2, rank=r, seed=2) for r in (0, 1)]
    for s in (single, *ranks):
        s.set_epoch(4)
    assert len(ranks[0]) == len(ranks[1]) == 50
    generator = torch.Generator().manual_seed(2 + 4)
    weights = torch.tensor([1 / 90] * 90 + [1 / 10] * 10, dtype=torch.float64)
    expected = torch.multinomial(weights, 100, replacement=True, generator=generator).tolist()
    assert list(single) == expected
    assert list(ranks[0]) == expected[0::2] and list(ranks[1]) == expected[1::2]


def test_labels_must_match_the_dataset():
    with pytest.raises(ValueError, match="labels has 3 entries for a dataset of 4 items"):
        ClassBalancedSampler([0, 1, 2, 3], [0, 1, 1], num_replicas=1, rank=0)


def test_balanced_must_be_a_bool():
    with pytest.raises(TypeError, match="--class_balanced True"):
        ClassBalancedSampler([0, 1], [0, 1], balanced="false", num_replicas=1, rank=0)


def test_minority_fine_tuning_draws_classes_by_inverse_frequency_from_its_epoch():
    data = list(range(len(LABELS)))
    sampler = ClassBalancedSampler(data, LABELS, balanced=False, num_replicas=1, rank=0, seed=3, minority_from_epoch=5)
    plain = DistributedSampler(data, num_replicas=1, rank=0, seed=3)
    sampler.set_epoch(4)
    plain.set_epoch(4)
    assert list(sampler) == list(plain)  # before its epoch: the sampler it was
    draws = []
    for epoch in range(5, 45):
        sampler.set_epoch(epoch)
        draws += list(sampler)
    # class c is drawn with probability proportional to 1 / n_c: 10 images of 1 against 90 of 0 -> 0.9
    assert sum(LABELS[i] for i in draws) / len(draws) == pytest.approx(0.9, abs=0.02)
    fresh = ClassBalancedSampler(data, LABELS, balanced=True, num_replicas=1, rank=0, seed=3, minority_from_epoch=5)
    fresh.set_epoch(9)  # it depends only on (seed, epoch), balanced or not before it: exact resume
    assert list(fresh) == draws[4 * 100 : 5 * 100]
