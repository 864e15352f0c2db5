"""Normalisation, border cleanup, square resize, augmentation, pyramids and the one-line training pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.data import CacheDataset, DataLoader, MetaTensor
from monai.transforms import ScaleIntensityRange, ScaleIntensityRangePercentiles
from xray_files import write_phantom_folder

from monai_msgsagan.transforms import (
    LoadXray,
    MultiScalePyramid,
    MultiScalePyramidd,
    NormalizeXrayIntensity,
    NormalizeXrayIntensityd,
    RandXrayAugment,
    RandXrayAugmentd,
    ResizeXrayToSquare,
    ResizeXrayToSquared,
    XrayBorderCleanup,
    pyramid_sizes,
    xray_train_transforms,
)


def _image(h: int = 120, w: int = 90, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, h, w), generator=g) * 3000.0 + 200.0


# --- normalisation ----------------------------------------------------------------------------------------------


def test_percentile_exact_matches_monai():
    img = _image()
    ours = NormalizeXrayIntensity("percentile", lower=1.0, upper=99.0, max_samples=None)(img)
    ref = ScaleIntensityRangePercentiles(lower=1.0, upper=99.0, b_min=-1.0, b_max=1.0, clip=True)(img)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    assert float(ours.min()) == -1.0 and float(ours.max()) == 1.0


def test_percentile_subsampled_is_close_to_exact():
    img = _image(700, 640)  # 448,000 pixels > the 2**18 default budget, so the estimate is subsampled
    fast = NormalizeXrayIntensity()(img)
    exact = NormalizeXrayIntensity(max_samples=None)(img)
    assert float((fast - exact).abs().max()) < 0.02


def test_window_modes():
    img = _image()
    ours = NormalizeXrayIntensity("window", window=(1000.0, 800.0))(img)
    torch.testing.assert_close(ours, ScaleIntensityRange(600.0, 1400.0, -1.0, 1.0, clip=True)(img))
    meta_img = MetaTensor(torch.tensor([[[0.0, 51.0], [204.0, 255.0]]]), meta={"display_range": np.array([0, 255.0])})
    out = NormalizeXrayIntensity("window")(meta_img)
    torch.testing.assert_close(out.as_tensor(), torch.tensor([[[-1.0, -0.6], [0.6, 1.0]]]))
    minmax = NormalizeXrayIntensity("minmax")(img)
    assert float(minmax.min()) == -1.0 and float(minmax.max()) == 1.0


def test_normalise_rejects_constant_and_bad_args():
    flat = MetaTensor(torch.full((1, 16, 16), 5.0), meta={"filename_or_obj": "/data/flat.png"})
    with pytest.raises(ValueError, match="/data/flat.png: constant image"):
        NormalizeXrayIntensity()(flat)
    with pytest.raises(ValueError, match="mode"):
        NormalizeXrayIntensity("zscore")
    with pytest.raises(ValueError, match="lower < upper"):
        NormalizeXrayIntensity(lower=90, upper=10)
    d = NormalizeXrayIntensityd("image")({"image": _image(), "label": 1})
    assert d["label"] == 1 and float(d["image"].max()) == 1.0


# --- border / text cleanup --------------------------------------------------------------------------------------


def test_border_cleanup_crops_frame_and_removes_text():
    g = torch.Generator().manual_seed(1)
    img = torch.full((1, 100, 80), -1.0)
    img[:, 10:90, 6:76] = torch.rand((1, 80, 70), generator=g) * 1.2 - 0.6  # content in the middle
    img[:, 2:5, 60:78] = 1.0  # a burned-in label in the black border
    out = XrayBorderCleanup()(MetaTensor(img))
    assert tuple(out.shape) == (1, 80, 70)
    torch.testing.assert_close(out.as_tensor(), img[:, 10:90, 6:76])
    assert out.affine[0, 3] == 10 and out.affine[1, 3] == 6  # the crop origin moved with it
    marked = img[:, 10:90, 6:76].clone()
    marked[:, 30:33, 20:26] = 1.0  # a small saturated text mark on the anatomy
    cleaned = XrayBorderCleanup(remove_text=True)(marked)
    assert float(cleaned[:, 30:33, 20:26].max()) < 0.7
    unchanged = (cleaned - marked).abs() > 0
    assert unchanged.float().mean() < 0.05  # only the mark and its rim changed


# --- square resize ----------------------------------------------------------------------------------------------


def test_resize_pad_keeps_aspect_and_pads_black():
    img = torch.ones((1, 100, 50))
    out = ResizeXrayToSquare(64, mode="pad")(img)
    assert tuple(out.shape) == (1, 64, 64)
    assert (
        torch.all(out[:, :, 16:48] == 1.0) and torch.all(out[:, :, :16] == -1.0) and torch.all(out[:, :, 48:] == -1.0)
    )


def test_resize_crop_and_area_downsampling():
    img = torch.rand((1, 256, 512), generator=torch.Generator().manual_seed(0))
    out = ResizeXrayToSquare(64, mode="crop")(img)
    expected = F.interpolate(img[None], size=(64, 128), mode="area")[0][:, :, 32:96]
    torch.testing.assert_close(out.as_tensor() if isinstance(out, MetaTensor) else out, expected)
    up = ResizeXrayToSquare(64)(torch.rand(1, 20, 32))
    assert tuple(up.shape) == (1, 64, 64)
    with pytest.raises(ValueError, match="power of two"):
        ResizeXrayToSquare(100)
    d = ResizeXrayToSquared("image", 32)({"image": torch.rand(1, 40, 60)})
    assert tuple(d["image"].shape) == (1, 32, 32)
    # a dictionary transform takes its array transform's arguments, positional or keyword, then allow_missing_keys
    crop = ResizeXrayToSquared(["image", "mask"], 64, mode="crop", allow_missing_keys=True)({"image": img})
    assert torch.equal(torch.as_tensor(crop["image"]), torch.as_tensor(out)) and "mask" not in crop
    with pytest.raises(KeyError):
        ResizeXrayToSquared(["image", "mask"], 64)({"image": img})


# --- augmentation -----------------------------------------------------------------------------------------------


def test_augment_is_seeded_bounded_and_varies():
    img = NormalizeXrayIntensity()(_image(64, 64))
    a = RandXrayAugment(prob=1.0).set_random_state(seed=3)
    b = RandXrayAugment(prob=1.0).set_random_state(seed=3)
    outs_a = [a(img) for _ in range(3)]
    outs_b = [b(img) for _ in range(3)]
    for x, y in zip(outs_a, outs_b):
        torch.testing.assert_close(x, y)
        assert x.shape == img.shape and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert float((outs_a[0] - outs_a[1]).abs().mean()) > 1e-3
    assert float((outs_a[0] - img).abs().mean()) > 1e-3
    identity = RandXrayAugment(prob=0.0)(img)
    torch.testing.assert_close(torch.as_tensor(identity), torch.as_tensor(img).clamp(-1, 1))


def test_augment_has_no_vertical_flip_by_default():
    img = torch.linspace(-1, 1, 32).view(1, 32, 1).expand(1, 32, 32).clone()  # dark top, bright bottom
    aug = RandXrayAugment(prob=0.0).set_random_state(seed=0)
    for _ in range(20):
        out = aug(img)
        assert float(out[:, :4].mean()) < float(out[:, -4:].mean())
    flipped = RandXrayAugment(prob=0.0, vflip_prob=1.0)(img)
    assert float(flipped[:, :4].mean()) > float(flipped[:, -4:].mean())


def test_augment_dict_applies_same_draw_to_every_key():
    img = NormalizeXrayIntensity()(_image(64, 64))
    out = RandXrayAugmentd(["a", "b"], prob=1.0).set_random_state(seed=1)({"a": img, "b": img.clone()})
    torch.testing.assert_close(out["a"], out["b"])


# --- pyramid ----------------------------------------------------------------------------------------------------


def test_pyramid_sizes_and_area_equivalence():
    assert pyramid_sizes(64) == [4, 8, 16, 32, 64]
    assert pyramid_sizes(256, min_size=8) == [8, 16, 32, 64, 128, 256]
    img = torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    scales = MultiScalePyramid()(MetaTensor(img))
    assert [tuple(s.shape) for s in scales] == [(1, s, s) for s in (4, 8, 16, 32, 64)]
    assert all(type(s) is torch.Tensor for s in scales)
    for s in scales:
        ref = F.interpolate(img[None], size=s.shape[-1], mode="area")[0]
        torch.testing.assert_close(s, ref, atol=1e-6, rtol=1e-6)
    batched = MultiScalePyramid(min_size=8)(img[None].repeat(3, 1, 1, 1))
    assert [tuple(s.shape) for s in batched] == [(3, 1, s, s) for s in (8, 16, 32, 64)]
    with pytest.raises(ValueError, match="square"):
        MultiScalePyramid()(torch.rand(1, 32, 16))
    with pytest.raises(ValueError, match="power of two"):
        MultiScalePyramid()(torch.rand(1, 48, 48))


def test_pyramid_dict_collates_to_list_of_batches():
    data = [{"image": torch.rand(1, 32, 32) * 2 - 1, "label": i} for i in range(5)]
    ds = CacheDataset(data, MultiScalePyramidd("image"), progress=False)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert isinstance(batch["image"], list)
    assert [tuple(t.shape) for t in batch["image"]] == [(4, 1, s, s) for s in (4, 8, 16, 32)]


# --- the one-line pipeline --------------------------------------------------------------------------------------


def test_xray_train_transforms_on_files_with_cache(tmp_path):
    csv_path = write_phantom_folder(tmp_path, 6, size=96, seed=0)
    files = sorted(str(p) for p in csv_path.parent.glob("*.png"))
    data = [{"image": f, "label": i % 2} for i, f in enumerate(files)]
    transform = xray_train_transforms(32, augment=True, seed=0)
    ds = CacheDataset(data, transform, progress=False)
    cached = ds._cache[0]["image"]  # the deterministic prefix: preprocessed image, not yet a pyramid
    assert isinstance(cached, MetaTensor) and tuple(cached.shape) == (1, 32, 32)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert [tuple(t.shape) for t in batch["image"]] == [(3, 1, s, s) for s in (4, 8, 16, 32)]
    fine = batch["image"][-1]
    assert float(fine.min()) >= -1.0 and float(fine.max()) <= 1.0
    assert batch["label"].tolist() == [0, 1, 0]
    # same seed, same augmented output
    again = xray_train_transforms(32, augment=True, seed=0)(data[0])["image"][-1]
    first = xray_train_transforms(32, augment=True, seed=0)(data[0])["image"][-1]
    torch.testing.assert_close(again, first)
    plain = xray_train_transforms(32, augment=False, pyramid=False)(data[0])["image"]
    loaded = LoadXray()(files[0])
    assert tuple(plain.shape) == (1, 32, 32) and loaded.shape[-1] == 96


def test_xray_train_transforms_on_in_memory_images():
    transform = xray_train_transforms(16, augment=False, load=False)
    out = transform({"image": _image(40, 30), "label": 0})
    assert [tuple(t.shape) for t in out["image"]] == [(1, s, s) for s in (4, 8, 16)]
