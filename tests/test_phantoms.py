"""Procedural chest phantoms: range, seeding, class structure, diversity (MS-SSIM) and the dataset / folder APIs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from monai.data import DataLoader
from pytorch_msssim import ms_ssim
from xray_files import write_phantom_folder

from monai_msgsagan.data import PHANTOM_CLASS_NAMES, PhantomDataset, make_phantom
from monai_msgsagan.transforms import LoadXray, MultiScalePyramidd


def _pairwise_msssim(images: torch.Tensor, **kwargs) -> torch.Tensor:
    """MS-SSIM of every pair of ``images`` (N, 1, R, R) in [-1, 1]."""
    i, j = torch.triu_indices(len(images), len(images), 1)
    x = (images + 1.0) / 2.0
    return ms_ssim(x[i], x[j], data_range=1.0, size_average=False, **kwargs)


@pytest.mark.parametrize("size", [32, 64, 256])
def test_range_shape_and_seeding(size):
    a = make_phantom(size, 0, np.random.default_rng(7))
    assert a.shape == (1, size, size) and a.dtype == np.float32
    assert a.min() >= -1.0 and a.max() <= 1.0 and a.std() > 0.2
    np.testing.assert_array_equal(a, make_phantom(size, 0, 7))
    assert np.abs(a - make_phantom(size, 0, 8)).mean() > 0.02


def test_anatomy_layout():
    """Averaged over draws: dark air at the sides, dark lungs, a bright spine/mediastinum, a bright abdomen."""
    mean = np.mean([make_phantom(64, 0, s)[0] for s in range(16)], axis=0)
    corner, lung_r, lung_l = mean[:6, :4].mean(), mean[22:36, 12:20].mean(), mean[22:36, 44:52].mean()
    spine, abdomen = mean[22:36, 30:34].mean(), mean[56:62, 16:48].mean()
    assert corner < lung_r - 0.2 and corner < lung_l - 0.2
    assert spine > lung_r + 0.3 and spine > lung_l + 0.3
    assert abdomen > lung_r + 0.3


def test_class_one_only_adds_opacity():
    for seed in range(4):
        normal, opacity = make_phantom(64, 0, seed), make_phantom(64, 1, seed)
        diff = opacity - normal
        assert diff.min() >= -1e-5  # same anatomy and exposure; the opacity only brightens
        assert diff.max() > 0.1 and 0.005 < (diff > 0.05).mean() < 0.4
    with pytest.raises(ValueError, match="label"):
        make_phantom(64, 2, 0)


def test_diversity_measured_with_msssim():
    phantoms = torch.from_numpy(np.stack([make_phantom(256, i % 2, 100 + i) for i in range(8)]))
    diverse = _pairwise_msssim(phantoms)
    collapsed = phantoms[:1].repeat(8, 1, 1, 1) + 0.02 * torch.randn(
        8, 1, 256, 256, generator=torch.Generator().manual_seed(0)
    )
    same = _pairwise_msssim(collapsed.clamp(-1, 1))
    assert float(diverse.mean()) < 0.8 and float(diverse.max()) < 0.9
    assert float(same.mean()) > 0.95
    small = torch.from_numpy(np.stack([make_phantom(64, i % 2, 200 + i) for i in range(8)]))
    small_div = _pairwise_msssim(small, win_size=3, weights=[0.2, 0.3, 0.5])
    assert float(small_div.mean()) < 0.85


def test_phantom_dataset_is_reproducible_and_balanced():
    ds = PhantomDataset(20, resolution=32, num_classes=2, class_ratio=0.25, seed=3)
    labels = [ds[i]["label"] for i in range(20)]
    assert sum(labels) == 5 and ds.class_names == list(PHANTOM_CLASS_NAMES)
    item = ds[4]
    assert tuple(item["image"].shape) == (1, 32, 32) and item["image"].dtype == torch.float32
    assert item["class_name"] == PHANTOM_CLASS_NAMES[item["label"]]
    torch.testing.assert_close(PhantomDataset(20, 32, 2, 0.25, seed=3)[4]["image"], item["image"])
    assert not torch.equal(PhantomDataset(20, 32, 2, 0.25, seed=4)[4]["image"], item["image"])
    assert {PhantomDataset(6, 32, num_classes=1)[i]["label"] for i in range(6)} == {0}
    first = ds[4]["image"]
    first.fill_(0.0)  # a caller writing into its item must not change the cached phantom
    torch.testing.assert_close(ds[4]["image"], PhantomDataset(20, 32, 2, 0.25, seed=3, cache=False)[4]["image"])
    with pytest.raises(ValueError, match="num_classes"):
        PhantomDataset(4, 32, num_classes=3)


def test_phantom_dataset_with_pyramid_collates():
    ds = PhantomDataset(6, resolution=32, seed=0, transform=MultiScalePyramidd("image"))
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert [tuple(t.shape) for t in batch["image"]] == [(3, 1, s, s) for s in (4, 8, 16, 32)]
    assert batch["label"].dtype == torch.int64


def test_write_phantom_folder(tmp_path):
    csv_path = write_phantom_folder(tmp_path, 4, size=64, seed=1, bit_depth=16)
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    ds = PhantomDataset(4, 64, seed=1)
    assert [int(r["label"]) for r in rows] == [ds[i]["label"] for i in range(4)]
    img = LoadXray()(tmp_path / rows[0]["path"])
    assert tuple(img.shape) == (1, 64, 64)
    back = img[0].numpy() / 65535.0 * 2.0 - 1.0
    np.testing.assert_allclose(back, ds[0]["image"][0].numpy(), atol=1e-4)
