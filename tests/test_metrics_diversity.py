"""Batched pairwise MS-SSIM against pytorch-msssim, small-size scales, pair sampling, collapse score, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from metrics_helpers import load_xrays
from pytorch_msssim import ms_ssim

from monai_msgsagan.metrics.diversity import (
    MS_SSIM_WEIGHTS,
    collapse_score,
    cross_ms_ssim,
    ms_ssim_weights,
    pairwise_ms_ssim,
    sample_pairs,
)


def _smooth_images(n: int, size: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """(n, C, size, size) in [-1, 1]: smooth random structure, fine noise and a flat black band."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, max(size // 8, 2), max(size // 8, 2), generator=gen)
    x = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    x = (0.9 * x + 0.1 * torch.rand(n, channels, size, size, generator=gen)).clamp(0, 1)
    x[:, :, : size // 6] = 0.0
    return x * 2 - 1


def _reference(x: torch.Tensor, pairs: torch.Tensor, **kwargs) -> torch.Tensor:
    """pytorch-msssim's ms_ssim on each pair, in float64, on images mapped to [0, 1]."""
    u = ((x + 1) / 2).double()
    return torch.stack([ms_ssim(u[i : i + 1], u[j : j + 1], data_range=1.0, **kwargs) for i, j in pairs.tolist()])


def test_identical_images_score_one():
    x = _smooth_images(1, 64).repeat(4, 1, 1, 1)
    r = pairwise_ms_ssim(x)
    assert r.values.shape == (6,)
    assert torch.allclose(r.values, torch.ones(6, dtype=torch.float64), atol=1e-6)
    assert r.mean == pytest.approx(1.0, abs=1e-6) and r.std == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-7), (torch.float32, 1e-5)])
def test_equals_pytorch_msssim_at_256(dtype, tol):
    x = _smooth_images(6, 256)
    r = pairwise_ms_ssim(x, compute_dtype=dtype)
    assert r.settings["levels"] == 5 and tuple(r.settings["weights"]) == MS_SSIM_WEIGHTS
    ref = _reference(x, r.pairs)
    assert (r.values - ref).abs().max() < tol
    # and against the library run in float32, the way it is usually called
    u = (x + 1) / 2
    ref32 = torch.stack([ms_ssim(u[i : i + 1], u[j : j + 1], data_range=1.0) for i, j in r.pairs.tolist()])
    assert (r.values - ref32.double()).abs().max() < 1e-5


@pytest.mark.parametrize("size, win_size", [(64, 3), (128, 7)])
def test_equals_pytorch_msssim_small_window(size, win_size):
    """Where the library's public API accepts these sizes (window small enough for 5 scales)."""
    x = _smooth_images(5, size, seed=size)
    r = pairwise_ms_ssim(x, win_size=win_size, weights=MS_SSIM_WEIGHTS, compute_dtype=torch.float64)
    assert (r.values - _reference(x, r.pairs, win_size=win_size, weights=list(MS_SSIM_WEIGHTS))).abs().max() < 1e-7
    r32 = pairwise_ms_ssim(x, win_size=win_size, weights=MS_SSIM_WEIGHTS)
    assert (r32.values - r.values).abs().max() < 1e-5


def test_multichannel_equals_pytorch_msssim():
    x = _smooth_images(4, 64, channels=3, seed=3)
    r = pairwise_ms_ssim(x, win_size=3, weights=MS_SSIM_WEIGHTS)
    assert (r.values - _reference(x, r.pairs, win_size=3, weights=list(MS_SSIM_WEIGHTS))).abs().max() < 1e-5


def test_small_sizes_default_window_equal_library_without_its_size_assert(tmp_path):
    """At 64 and 128 px the standard 11-px window allows 3 and 4 scales (renormalised weights).

    pytorch-msssim's ms_ssim asserts side > 160 for any number of weights (it assumes 5 scales); its computation
    is otherwise valid for fewer scales, so the reference runs the library itself under ``python -O``, which
    strips that assert.
    """
    results, inputs = {}, {}
    for size, levels in {64: 3, 128: 4}.items():
        x = _smooth_images(4, size, seed=size + 1)
        r = pairwise_ms_ssim(x, compute_dtype=torch.float64)
        w = r.settings["weights"]
        assert r.settings["levels"] == levels
        assert w == pytest.approx([v / sum(MS_SSIM_WEIGHTS[:levels]) for v in MS_SSIM_WEIGHTS[:levels]])
        results[size] = r.values
        inputs[size] = {"x": (x + 1) / 2, "pairs": r.pairs, "w": w}
    torch.save(inputs, tmp_path / "in.pt")
    code = (
        "import sys, torch; from pytorch_msssim import ms_ssim; d = torch.load(sys.argv[1]); out = {}\n"
        "for size, e in d.items():\n"
        "    u = e['x'].double()\n"
        "    out[size] = torch.stack([ms_ssim(u[i:i+1], u[j:j+1], data_range=1.0, weights=e['w'])"
        " for i, j in e['pairs'].tolist()])\n"
        "torch.save(out, sys.argv[2])"
    )
    subprocess.run(
        [sys.executable, "-O", "-c", code, str(tmp_path / "in.pt"), str(tmp_path / "out.pt")], check=True, timeout=120
    )
    ref = torch.load(tmp_path / "out.pt")
    for size, values in results.items():
        assert (values - ref[size]).abs().max() < 1e-7, size


def test_scale_weights_by_size():
    assert ms_ssim_weights(256) == MS_SSIM_WEIGHTS
    assert len(ms_ssim_weights(161)) == 5 and len(ms_ssim_weights(160)) == 4
    assert len(ms_ssim_weights(81)) == 4 and len(ms_ssim_weights(80)) == 3
    assert len(ms_ssim_weights(128)) == 4 and len(ms_ssim_weights(64)) == 3 and len(ms_ssim_weights(16)) == 1
    assert sum(ms_ssim_weights(64)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 161 px"):
        ms_ssim_weights(128, weights=MS_SSIM_WEIGHTS)
    with pytest.raises(ValueError, match="smaller than the 11-px SSIM window"):
        ms_ssim_weights(8)


def test_invariant_to_chunk_size():
    x = _smooth_images(7, 64, seed=5)
    base = pairwise_ms_ssim(x, chunk_size=64)
    for chunk in (1, 4, 5):
        other = pairwise_ms_ssim(x, chunk_size=chunk)
        assert torch.equal(other.pairs, base.pairs)
        assert (other.values - base.values).abs().max() < 1e-6


def test_sampled_pairs_are_distinct_seeded_subsets():
    all_pairs = sample_pairs(30)
    assert torch.equal(all_pairs, torch.triu_indices(30, 30, 1).T)
    s = sample_pairs(30, num_pairs=50, seed=1)
    assert s.shape == (50, 2) and (s[:, 0] < s[:, 1]).all()
    assert len({tuple(p) for p in s.tolist()}) == 50
    assert torch.equal(s, sample_pairs(30, num_pairs=50, seed=1))
    assert not torch.equal(s, sample_pairs(30, num_pairs=50, seed=2))
    assert sample_pairs(30, num_pairs=10_000).shape == (435, 2)
    # large sets: drawn without building every pair; pairs must still be valid and distinct
    big = sample_pairs(10_000, num_pairs=2000, seed=0)
    assert (big[:, 0] < big[:, 1]).all() and big.min() >= 0 and big.max() < 10_000
    assert len({tuple(p) for p in big.tolist()}) == 2000
    x = _smooth_images(12, 32)
    r = pairwise_ms_ssim(x, num_pairs=20, seed=3)
    assert r.values.shape == (20,) and r.settings["pair_sampling"] == "random, seed 3"
    full = pairwise_ms_ssim(x)
    lookup = {tuple(p): v for p, v in zip(full.pairs.tolist(), full.values.tolist())}
    assert all(abs(lookup[tuple(p)] - v) < 1e-6 for p, v in zip(r.pairs.tolist(), r.values.tolist()))


def test_cross_ms_ssim_matches_pairwise():
    x = _smooth_images(5, 32, seed=9)
    m = cross_ms_ssim(x[:2], x)
    assert m.shape == (2, 5)
    assert torch.allclose(m[0, 0], torch.tensor(1.0, dtype=torch.float64), atol=1e-6)
    full = pairwise_ms_ssim(x)
    lookup = {tuple(p): v for p, v in zip(full.pairs.tolist(), full.values.tolist())}
    assert abs(m[1, 3].item() - lookup[(1, 3)]) < 1e-6 and abs(m[0, 4].item() - lookup[(0, 4)]) < 1e-6


def test_copies_of_one_image_score_as_collapsed():
    varied = _smooth_images(8, 64, seed=11)
    copies = varied[:1].repeat(8, 1, 1, 1)
    # nearly identical copies (tiny noise) are just as collapsed
    copies = (copies + 0.01 * torch.randn(copies.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    c = collapse_score(varied, copies)
    assert c["score"] > 1.5 and c["difference"] > 0.3
    assert c["fake"]["mean"] > 0.9
    assert collapse_score(varied, varied)["score"] == pytest.approx(1.0)


def test_real_halves_closer_to_each_other_than_to_noise_or_collapse(figure1_dir):
    xr = load_xrays(figure1_dir, 64)
    half_a, half_b = xr[0::2], xr[1::2]
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(half_a.shape, generator=gen) * 2 - 1
    collapsed = (half_a[:1] + 0.02 * torch.randn(half_a.shape, generator=gen)).clamp(-1, 1)
    gap_real = abs(collapse_score(half_a, half_b)["score"] - 1)
    gap_noise = abs(collapse_score(half_a, noise)["score"] - 1)
    gap_collapsed = abs(collapse_score(half_a, collapsed)["score"] - 1)
    assert gap_real < 0.25
    assert gap_real < gap_noise and gap_real < gap_collapsed


def test_errors_are_clear():
    x = _smooth_images(3, 32)
    with pytest.raises(ValueError, match="at least 2 images, got 1"):
        pairwise_ms_ssim(x[:1])
    bad = x.clone()
    bad[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf values in image\(s\) \[1\]"):
        pairwise_ms_ssim(bad)
    with pytest.raises(ValueError, match=r"values must lie in \[-1, 1\]"):
        pairwise_ms_ssim(x * 3)
    with pytest.raises(ValueError, match=r"expected shape \(N, C, H, W\)"):
        pairwise_ms_ssim(x[:, 0])
    with pytest.raises(TypeError, match="mixed sizes must be resized"):
        pairwise_ms_ssim([x[0], x[1]])
    with pytest.raises(ValueError, match="mixed sizes"):
        collapse_score(x, _smooth_images(3, 64))
    with pytest.raises(ValueError, match="MS-SSIM scales need images of at least"):
        pairwise_ms_ssim(x, weights=MS_SSIM_WEIGHTS)
    with pytest.raises(ValueError, match="num_pairs must be a positive"):
        pairwise_ms_ssim(x, num_pairs=0)
    with pytest.raises(ValueError, match="chunk_size must be positive"):
        pairwise_ms_ssim(x, chunk_size=0)
    with pytest.raises(TypeError, match="window"):  # not an MSSSIMSettings field
        cross_ms_ssim(x, x, window=7)
