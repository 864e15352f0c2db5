"""Nearest training images of synthetic images and likely-copy flags."""

from __future__ import annotations

import pytest
import torch
from metrics_helpers import TinyFeatures, load_xrays

from monai_msgsagan.metrics.memorization import memorization


def test_copies_of_training_images_are_flagged_and_new_images_are_not(figure1_dir):
    xr = load_xrays(figure1_dir, 64, limit=14)
    train, held_out = xr[:10], xr[10:]
    gen = torch.Generator().manual_seed(0)
    # two near-exact copies of training images (tiny noise), plus held-out real radiographs (new patients)
    copies = (train[[3, 7]] + 0.005 * torch.randn(2, 1, 64, 64, generator=gen)).clamp(-1, 1)
    fake = torch.cat([copies, held_out])
    r = memorization(train, fake, TinyFeatures())
    assert r["nearest_ssim_index"][:2] == [3, 7] and r["nearest_feature_index"][:2] == [3, 7]
    assert r["likely_copy"] == [True, True, False, False, False, False]
    assert r["ssim_copy"][:2] == [True, True] and r["feature_copy"][:2] == [True, True]
    assert r["num_likely_copies"] == 2 and r["fraction_likely_copies"] == pytest.approx(2 / 6)
    assert all(m > 0.99 for m in r["ms_ssim"][:2])
    assert all(m < t for m, t in zip(r["ms_ssim"][2:], r["ssim_threshold"][2:]))
    assert r["feature_distance"][0] < r["feature_threshold"][0]
    assert r["settings"]["copy_ratio"] == 0.5 and r["settings"]["num_real"] == 10


def test_ms_ssim_only_and_given_threshold():
    gen = torch.Generator().manual_seed(1)
    real = torch.rand(5, 1, 32, 32, generator=gen) * 2 - 1
    fake = torch.cat([real[:1], torch.rand(2, 1, 32, 32, generator=gen) * 2 - 1])
    r = memorization(real, fake, use_features=False, ssim_threshold=0.9)
    assert "feature_distance" not in r and r["ssim_threshold"] == [0.9, 0.9, 0.9]
    assert r["likely_copy"] == [True, False, False] and r["ms_ssim"][0] == pytest.approx(1.0, abs=1e-6)


def test_errors_are_clear():
    x = torch.zeros(3, 1, 32, 32)
    with pytest.raises(ValueError, match="needs at least 2 images, got 1"):
        memorization(x[:1], x, use_features=False)
    with pytest.raises(ValueError, match="mixed sizes"):
        memorization(x, torch.zeros(3, 1, 16, 16), use_features=False)
    with pytest.raises(ValueError, match="copy_ratio must be positive"):
        memorization(x, x, use_features=False, copy_ratio=0)
