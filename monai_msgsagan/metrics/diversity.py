"""Pairwise MS-SSIM over a set of images, batched, and the collapse score of a synthetic set against real data.

The mean MS-SSIM over pairs of distinct images of one set is the usual mode-collapse measure for GANs (Odena et
al. 2017; the MSG-SAGAN paper, Saad et al. 2022): the higher it is, the more alike the images are, the less
diverse the set. Each value equals :func:`pytorch_msssim.ms_ssim` on that pair (``data_range=1`` on images mapped
from [-1, 1] to [0, 1] by ``(x + 1) / 2``), but the work is shared: each image's per-scale blurred mean and
variance are computed once, so a pair costs only its cross term (the blur of ``x * y``), computed for many pairs
at once in memory-bounded chunks.

Image size and scales: pytorch-msssim's standard MS-SSIM has 5 scales and an 11-px window, so it needs a side
greater than ``(11 - 1) * 2**4 = 160`` px (after 4 halvings, rounding up, the coarsest scale must be at least as
wide as the window). For smaller images this module uses the largest number of scales whose coarsest scale is
still at least ``win_size`` wide and keeps the first (finest) weights of the standard set, renormalised to sum
to 1:

========  ======  ==========================================================
side      scales  weights (finest first)
========  ======  ==========================================================
>= 161    5       0.0448, 0.2856, 0.3001, 0.2363, 0.1333 (the standard set, as is)
81..160   4       the first 4 standard weights / 0.8668
41..80    3       the first 3 standard weights / 0.6305
21..40    2       the first 2 standard weights / 0.3304
11..20    1       1.0 (plain SSIM, clipped at 0 as ``ms_ssim`` does)
========  ======  ==========================================================

So 64 px uses 3 scales (64, 32, 16) and 128 px uses 4 (128, 64, 32, 16). Passing ``weights`` explicitly fixes
the number of scales (an error says when they do not fit); a smaller ``win_size`` allows more scales.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from monai_msgsagan.metrics.utils import check_images, check_same_size

__all__ = [
    "MS_SSIM_WEIGHTS",
    "MSSSIMSettings",
    "PairwiseMSSSIM",
    "collapse_score",
    "cross_ms_ssim",
    "gaussian_window",
    "ms_ssim_weights",
    "pairwise_ms_ssim",
    "sample_pairs",
]

#: pytorch-msssim's (and Wang et al. 2003's) five scale weights, finest scale first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# above this many possible pairs, sampling draws pairs at random instead of permuting all pair indices
_MAX_PERMUTED_PAIRS = 2**24


@dataclass(frozen=True)
class MSSSIMSettings:
    """How MS-SSIM is computed; its fields are the keyword arguments of :func:`pairwise_ms_ssim`,
    :func:`cross_ms_ssim` and :func:`collapse_score`.

    Attributes:
        win_size: Gaussian window size (odd). win_sigma: its standard deviation.
        weights: scale weights, finest first; None = the standard weights cut to the scales that fit.
        k: SSIM constants (K1, K2).
        chunk_size: pairs per batched step; bounds memory to about ``chunk_size * C * H * W * 8 * 4`` bytes.
            The values do not depend on it.
        compute_dtype: dtype of the per-pair cross term (per-image statistics are always computed in float64).
            float32 (default) matches pytorch-msssim run in float64 to better than 1e-5; float64 to about 1e-8,
            and is slower on CPU.
        device: where to compute (default: the images' device).
    """

    win_size: int = 11
    win_sigma: float = 1.5
    weights: Sequence[float] | None = None
    k: Sequence[float] = (0.01, 0.03)
    chunk_size: int = 32
    compute_dtype: torch.dtype = torch.float32
    device: torch.device | str | None = None


@dataclass
class PairwiseMSSSIM:
    """Result of :func:`pairwise_ms_ssim`.

    Attributes:
        mean: mean MS-SSIM over the pairs (1 = all pairs identical; higher = less diverse).
        std: standard deviation over the pairs (0 for a single pair).
        values: (P,) float64 MS-SSIM of each pair.
        pairs: (P, 2) int64 image indices ``(i, j)`` with ``i < j`` of each pair, in the order of ``values``.
        num_images: N, the size of the set.
        settings: everything that fixes the numbers: scales, weights, window, constants, range mapping, pairs.
    """

    mean: float
    std: float
    values: torch.Tensor
    pairs: torch.Tensor
    num_images: int
    settings: dict = field(default_factory=dict)

    def as_dict(self, with_values: bool = False) -> dict:
        """JSON-ready summary (per-pair values and indices only when ``with_values``)."""
        out = {
            "mean": self.mean,
            "std": self.std,
            "num_pairs": int(self.values.numel()),
            "num_images": self.num_images,
            "settings": dict(self.settings),
        }
        if with_values:
            out["values"] = self.values.tolist()
            out["pairs"] = self.pairs.tolist()
        return out


def gaussian_window(win_size: int = 11, win_sigma: float = 1.5) -> torch.Tensor:
    """1-D Gaussian window of length ``win_size``, float32, summing to 1, built as pytorch-msssim builds it.

    The values are computed in float32 exactly as ``pytorch_msssim.ssim._fspecial_gauss_1d`` does, so that the
    float64 computation here reproduces the library's numbers (the tests check this).
    """
    if win_size < 1 or win_size % 2 != 1:
        raise ValueError(f"win_size must be a positive odd number, got {win_size}")
    coords = torch.arange(win_size, dtype=torch.float)
    coords -= win_size // 2
    g = torch.exp(-(coords**2) / (2 * win_sigma**2))
    return g / g.sum()


def _pooled_size(size: int) -> int:
    """Side after pytorch-msssim's 2x average pooling (padding ``size % 2``)."""
    return (size + 2 * (size % 2) - 2) // 2 + 1


def ms_ssim_weights(size: int, win_size: int = 11, weights: Sequence[float] | None = None) -> tuple[float, ...]:
    """Scale weights (finest first) used for images whose smaller side is ``size``.

    With ``weights=None`` the standard five weights are cut to the scales that fit (the coarsest scale at least
    ``win_size`` wide) and renormalised to sum to 1; explicit ``weights`` are used as given and must fit.

    Raises:
        ValueError: the image is narrower than the window, or the explicit weights need more scales than fit.
    """
    if size < win_size:
        raise ValueError(
            f"images of side {size} px are smaller than the {win_size}-px SSIM window; use a smaller "
            f"win_size or images of at least {win_size} px"
        )
    fit, side = 1, _pooled_size(size)
    while side >= win_size:
        fit, side = fit + 1, _pooled_size(side)
    if weights is not None:
        weights = tuple(float(w) for w in weights)
        if len(weights) == 0:
            raise ValueError("weights must hold at least one scale weight")
        if len(weights) > fit:
            need = (win_size - 1) * 2 ** (len(weights) - 1) + 1
            raise ValueError(
                f"{len(weights)} MS-SSIM scales need images of at least {need} px with a {win_size}-px window, "
                f"but the images are {size} px (at most {fit} scales fit); pass fewer weights or leave weights=None"
            )
        return weights
    if fit >= len(MS_SSIM_WEIGHTS):
        return MS_SSIM_WEIGHTS  # as pytorch-msssim uses them (they sum to 1.0001)
    cut = MS_SSIM_WEIGHTS[:fit]
    total = sum(cut)
    return tuple(w / total for w in cut)


def sample_pairs(num_images: int, num_pairs: int | None = None, seed: int = 0) -> torch.Tensor:
    """Distinct unordered pairs ``(i, j)``, ``i < j``, of ``num_images`` images: all of them, or a seeded sample.

    Returns:
        (P, 2) int64, sorted by ``i`` then ``j``. ``P = N (N - 1) / 2`` when ``num_pairs`` is None or not smaller.
    """
    if num_images < 2:
        raise ValueError(f"pairwise MS-SSIM needs at least 2 images, got {num_images}")
    total = num_images * (num_images - 1) // 2
    if num_pairs is not None and num_pairs < 1:
        raise ValueError(f"num_pairs must be a positive number or None (all pairs), got {num_pairs}")
    if num_pairs is None or num_pairs >= total:
        return torch.triu_indices(num_images, num_images, offset=1).T.contiguous()
    gen = torch.Generator().manual_seed(seed)
    if total <= _MAX_PERMUTED_PAIRS:
        linear = torch.randperm(total, generator=gen)[:num_pairs]
    else:  # draw with replacement and keep distinct ones until there are enough (num_pairs << total here)
        linear = torch.empty(0, dtype=torch.int64)
        while linear.numel() < num_pairs:
            draw = torch.randint(0, total, (2 * num_pairs,), generator=gen)
            linear = torch.cat([linear, draw[~torch.isin(draw, linear)]]).unique(sorted=False)
        linear = linear[:num_pairs]
    linear = linear.sort().values
    # invert the row-major upper-triangle numbering t(i, j) = starts[i] + (j - i - 1), exactly in integers
    rows = torch.arange(num_images - 1)
    starts = rows * (2 * num_images - rows - 1) // 2
    i = torch.searchsorted(starts, linear, right=True) - 1
    return torch.stack([i, linear - starts[i] + i + 1], dim=1)


class _ScaleStats:
    """Per-image statistics of one set at every MS-SSIM scale, computed once.

    For scale ``s``: ``x[s]`` (N, C, H_s, W_s) each image minus its own per-channel mean ``m[s]`` (N, C)
    (centring keeps the cross term's product small in float32; the covariance is unchanged), ``mu[s]``
    (N, C, H_s - k + 1, W_s - k + 1) the blurred image minus ``m[s]``, ``half_den[s] = sigma^2 + C2 / 2``
    (blurred variance as pytorch-msssim computes it) and, at the last scale, the blurred image ``mu0``. All are
    computed in float64; ``x``, ``mu``, ``half_den`` and ``mu0`` are stored in ``dtype``.
    """

    def __init__(
        self,
        images01: torch.Tensor,
        levels: int,
        win: torch.Tensor,
        c2: float,
        dtype: torch.dtype,
        block: int = 8,
    ):
        win64 = win.to(torch.float64)
        parts: list[list[tuple[torch.Tensor, ...]]] = [[] for _ in range(levels)]
        # a few images at a time keeps the float64 working set in cache
        for start in range(0, images01.shape[0], block):
            x = images01[start : start + block].to(torch.float64)
            for level in range(levels):
                m = x.mean(dim=(2, 3))
                mu = _blur(x, win64)
                var = _blur(x * x, win64) - mu * mu
                parts[level].append(
                    (
                        (x - m[..., None, None]).to(dtype),
                        m,
                        (mu - m[..., None, None]).to(dtype),
                        (var + c2 / 2).to(dtype),
                        mu.to(dtype) if level == levels - 1 else None,
                    )
                )
                if level < levels - 1:
                    x = F.avg_pool2d(x, kernel_size=2, padding=[s % 2 for s in x.shape[2:]])
        stacked = [
            [torch.cat(field) if field[0] is not None else None for field in zip(*level_parts)] for level_parts in parts
        ]
        self.x = [level[0] for level in stacked]
        self.m = [level[1] for level in stacked]
        self.mu = [level[2] for level in stacked]
        self.half_den = [level[3] for level in stacked]
        self.mu0 = stacked[-1][4]
        self._last: tuple | None = None

    def images_last(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """``x``, ``mu``, ``half_den`` and ``mu0`` laid out (H, W, N * C), built on first use.

        In this layout the images of a run of consecutive indices are a view, their product is already in the
        channels-last order oneDNN's depthwise convolution is fastest with, and no gather is needed.
        """
        if self._last is None:

            def last(t: torch.Tensor) -> torch.Tensor:
                n, c, h, w = t.shape
                return t.permute(2, 3, 0, 1).reshape(h, w, n * c).contiguous()

            self._last = (
                [last(t) for t in self.x],
                [last(t) for t in self.mu],
                [last(t) for t in self.half_den],
                last(self.mu0),
            )
        return self._last


def _blur(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian blur of every (H, W) slice of ``x`` (..., H, W) -> (..., H - k + 1, W - k + 1).

    The same filter as pytorch-msssim's ``gaussian_filter``. The batch is folded into the channel dimension of
    one depthwise convolution, which oneDNN runs much faster on CPU than a batch of single-channel convolutions;
    float64 on CPU has no oneDNN kernel (the fallback loops over groups), so there the k shifted slices are
    summed instead.
    """
    lead, k = x.shape[:-2], win.numel()
    x = x.reshape(-1, *x.shape[-2:])
    r = x.shape[0]
    w = win.to(x.dtype)
    if x.dtype == torch.float64 and x.device.type == "cpu":
        taps = w.tolist()
        h, wd = x.shape[-2] - k + 1, x.shape[-1] - k + 1
        rows = x[..., 0:wd] * taps[0]
        for a in range(1, k):
            rows.add_(x[..., a : a + wd], alpha=taps[a])
        out = rows[..., 0:h, :] * taps[0]
        for a in range(1, k):
            out.add_(rows[..., a : a + h, :], alpha=taps[a])
        return out.reshape(*lead, *out.shape[-2:])
    out = F.conv2d(x.unsqueeze(0), w.view(1, 1, 1, k).expand(r, 1, 1, k), groups=r)
    out = F.conv2d(out, w.view(1, 1, k, 1).expand(r, 1, k, 1), groups=r)
    return out.reshape(*lead, *out.shape[-2:])


def _blur_last(z: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """'Valid' Gaussian blur of (H, W, R) laid-out slices -> (H - k + 1, W - k + 1, R), as channels-last conv."""
    r, k = z.shape[-1], win.numel()
    w = win.to(z.dtype)
    out = F.conv2d(z.unsqueeze(0).permute(0, 3, 1, 2), w.view(1, 1, 1, k).expand(r, 1, 1, k), groups=r)
    out = F.conv2d(out, w.view(1, 1, k, 1).expand(r, 1, k, 1), groups=r)
    return out[0].permute(1, 2, 0)


def _pair_values(
    sa: _ScaleStats,
    sb: _ScaleStats,
    pairs: torch.Tensor,
    weights: tuple[float, ...],
    win: torch.Tensor,
    c1: float,
    c2: float,
    chunk_size: int,
) -> torch.Tensor:
    """MS-SSIM of image ``pairs[p, 0]`` of set a with image ``pairs[p, 1]`` of set b -> (P,) float64.

    Pairs are taken in runs sharing the first image (``pairs`` sorted by it, as :func:`sample_pairs` returns
    them, is fastest); the order of ``pairs`` is kept. A run whose second images are consecutive (all pairs,
    every image against a set) uses the images-last layout: views, no gathers, fast depthwise convolution.
    Other runs (sampled pairs) gather their second images.

    Per pair and scale: ``2 sigma_xy + C2 = blur(2 x' y' + o) - 2 mu_x' mu_y'`` with centred ``x'``, ``y'``
    (see :class:`_ScaleStats`) and ``o = 2 m_x m_y (1 - S) + C2`` (``S`` the window's sum, 1 up to float32
    rounding, so that the identity ``blur(x y) - mu_x mu_y = blur(x' y') - mu_x' mu_y' + m_x m_y (1 - S)`` is
    exact); ``cs = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)`` and, at the last scale, times the luminance
    term; then the spatial mean, clipped at 0, raised to the scale weight and multiplied over scales.
    """
    device = sa.x[0].device
    levels = len(weights)
    channels = sa.x[0].shape[1]
    w_tensor = torch.tensor(weights, dtype=torch.float64, device=device).view(-1, 1, 1)
    win_sum = float(win.to(torch.float64).sum() ** 2)
    corr = 2.0 * (1.0 - win_sum)
    pairs = pairs.to(device)
    firsts, counts = torch.unique_consecutive(pairs[:, 0], return_counts=True)
    out = []
    start = 0
    for i, count in zip(firsts.tolist(), counts.tolist()):
        for lo in range(start, start + count, chunk_size):
            js = pairs[lo : min(lo + chunk_size, start + count), 1]
            j0, n_js = int(js[0]), js.numel()
            consecutive = int(js[-1]) - j0 + 1 == n_js and bool((js.diff() == 1).all())
            per_level = []
            for level in range(levels):
                # per-pair constant added before the blur (blur of a constant o is o * S)
                off = (corr * sa.m[level][i] * sb.m[level][js] + c2) / win_sum  # (P, C) float64
                if consecutive:
                    xs, mus, hds, mu0s = sb.images_last()
                    xa, mua, hda, mu0a = sa.images_last()
                    cols_a = slice(i * channels, (i + 1) * channels)
                    cols_b = slice(j0 * channels, (j0 + n_js) * channels)

                    def a_side(t: torch.Tensor, cols: slice = cols_a) -> torch.Tensor:
                        return t[..., cols].unsqueeze(-2)  # (H, W, 1, C): broadcast over the pairs

                    def b_side(t: torch.Tensor, cols: slice = cols_b, n: int = n_js) -> torch.Tensor:
                        return t[..., cols].unflatten(-1, (n, channels))  # (H, W, P, C), a view

                    prod = torch.addcmul(off.to(xs[level].dtype), b_side(xs[level]), 2 * a_side(xa[level]))
                    cross = _blur_last(prod.flatten(-2), win).unflatten(-1, (n_js, channels))
                    num = cross.addcmul_(b_side(mus[level]), 2 * a_side(mua[level]), value=-1)
                    cs_map = num.div_(b_side(hds[level]) + a_side(hda[level]))
                    if level == levels - 1:
                        m0a, m0b = a_side(mu0a), b_side(mu0s)
                        cs_map = cs_map.mul_((m0b * (2 * m0a) + c1).div_(m0b * m0b + (m0a * m0a + c1)))
                    spatial = cs_map.sum(dim=(0, 1), dtype=torch.float64) / (cs_map.shape[0] * cs_map.shape[1])
                else:
                    xb = sb.x[level].index_select(0, js)
                    prod = torch.addcmul(off[..., None, None].to(xb.dtype), xb, 2 * sa.x[level][i])
                    num = _blur(prod, win).addcmul_(sb.mu[level].index_select(0, js), 2 * sa.mu[level][i], value=-1)
                    cs_map = num.div_(sb.half_den[level].index_select(0, js).add_(sa.half_den[level][i]))
                    if level == levels - 1:
                        m0a, m0b = sa.mu0[i], sb.mu0.index_select(0, js)
                        cs_map = cs_map.mul_((m0b * (2 * m0a) + c1).div_(m0b * m0b + (m0a * m0a + c1)))
                    spatial = cs_map.sum(dim=(-2, -1), dtype=torch.float64) / (cs_map.shape[-2] * cs_map.shape[-1])
                per_level.append(spatial)
            stacked = torch.relu(torch.stack(per_level, dim=0))  # (levels, P, C)
            out.append(torch.prod(stacked**w_tensor, dim=0).mean(dim=1).cpu())
        start += count
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


def _settings(images: torch.Tensor, weights: tuple[float, ...], s: MSSSIMSettings) -> dict:
    return {
        "image_size": list(images.shape[1:]),
        "levels": len(weights),
        "weights": list(weights),
        "win_size": s.win_size,
        "win_sigma": s.win_sigma,
        "k": list(s.k),
        "range_mapping": "[-1, 1] -> [0, 1] by (x + 1) / 2, data_range = 1",
        "cross_term_dtype": str(s.compute_dtype).replace("torch.", ""),
    }


def _prepare(
    images: torch.Tensor, s: MSSSIMSettings
) -> tuple[_ScaleStats, tuple[float, ...], torch.Tensor, float, float]:
    w = ms_ssim_weights(min(images.shape[-2:]), s.win_size, s.weights)
    win = gaussian_window(s.win_size, s.win_sigma)
    c1, c2 = (float(s.k[0]) * 1.0) ** 2, (float(s.k[1]) * 1.0) ** 2
    dev = torch.device(s.device) if s.device is not None else images.device
    win = win.to(dev)
    stats = _ScaleStats((images.detach().to(dev) + 1.0) / 2.0, len(w), win, c2, s.compute_dtype)  # to [0, 1]
    return stats, w, win, c1, c2


def pairwise_ms_ssim(
    images: torch.Tensor, num_pairs: int | None = None, seed: int = 0, **settings: Any
) -> PairwiseMSSSIM:
    """Mean and spread of MS-SSIM over all, or ``num_pairs`` seeded random, distinct pairs of a set.

    Each pair's value equals ``pytorch_msssim.ms_ssim(x, y, data_range=1, win_size=win_size,
    win_sigma=win_sigma, weights=weights, K=k)`` on the images mapped from [-1, 1] to [0, 1] (multi-channel
    images: the mean over channels, as ``ms_ssim`` does). Small images use fewer scales, see the module docstring.

    Args:
        images: (N, C, H, W) float in [-1, 1], N >= 2.
        num_pairs: number of distinct pairs to sample; None (default) uses all N (N - 1) / 2 pairs.
        seed: seed of the pair sampling (ignored when all pairs are used).
        settings: the fields of :class:`MSSSIMSettings` as keywords (``win_size``, ``win_sigma``, ``weights``,
            ``k``, ``chunk_size``, ``compute_dtype``, ``device``).

    Returns:
        :class:`PairwiseMSSSIM` with ``mean``, ``std``, per-pair ``values`` and ``pairs`` and the ``settings``.

    Raises:
        ValueError: fewer than 2 images, wrong shape, NaN/inf or values outside [-1, 1], images too small for the
            window or the requested scales.
        TypeError: a keyword that is not a field of :class:`MSSSIMSettings`.
    """
    s = MSSSIMSettings(**settings)
    check_images(images, "images", min_count=2, what="pairwise MS-SSIM")
    if s.chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {s.chunk_size}")
    pairs = sample_pairs(images.shape[0], num_pairs, seed)
    stats, w, win, c1, c2 = _prepare(images, s)
    values = _pair_values(stats, stats, pairs, w, win, c1, c2, s.chunk_size)
    described = _settings(images, w, s)
    all_pairs = pairs.shape[0] == images.shape[0] * (images.shape[0] - 1) // 2
    described.update(
        {"num_pairs": int(pairs.shape[0]), "pair_sampling": "all" if all_pairs else f"random, seed {seed}"}
    )
    std = float(values.std()) if values.numel() > 1 else 0.0
    return PairwiseMSSSIM(float(values.mean()), std, values, pairs, int(images.shape[0]), described)


def cross_ms_ssim(a: torch.Tensor, b: torch.Tensor, **settings: Any) -> torch.Tensor:
    """MS-SSIM of every image of ``a`` with every image of ``b`` (same definition as :func:`pairwise_ms_ssim`).

    Args:
        a: (Na, C, H, W) in [-1, 1]. b: (Nb, C, H, W) in [-1, 1], same C, H, W.
        settings: the fields of :class:`MSSSIMSettings` as keywords.

    Returns:
        (Na, Nb) float64 matrix of MS-SSIM values.
    """
    s = MSSSIMSettings(**settings)
    check_images(a, "a", what="MS-SSIM")
    check_images(b, "b", what="MS-SSIM")
    check_same_size(a, b, "a", "b")
    sa, w, win, c1, c2 = _prepare(a, s)
    sb, _, _, _, _ = _prepare(b, s)
    grid = torch.cartesian_prod(torch.arange(a.shape[0]), torch.arange(b.shape[0]))
    values = _pair_values(sa, sb, grid, w, win, c1, c2, s.chunk_size)
    return values.view(a.shape[0], b.shape[0])


def collapse_score(
    real: torch.Tensor,
    fake: torch.Tensor,
    num_pairs: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> dict:
    """How much less diverse the synthetic set is than the real one.

    ``score = mean pairwise MS-SSIM(fake) / mean pairwise MS-SSIM(real)``: 1 means as diverse as the real data,
    > 1 less diverse (towards mode collapse), < 1 more varied than the real data (often noise-like samples).
    ``difference = fake mean - real mean`` is reported too.

    Args:
        real, fake: (N, C, H, W) in [-1, 1], same C, H, W, at least 2 images each (real first, as in every
            metric of this package: :func:`~monai_msgsagan.metrics.compute_fid`, ``memorization``, ...).
        num_pairs, seed: pair sampling per set, as in :func:`pairwise_ms_ssim`.
        kwargs: passed to :func:`pairwise_ms_ssim` (window, weights, chunk size, dtype, device).

    Returns:
        dict with ``score``, ``difference``, ``fake`` and ``real`` (each :meth:`PairwiseMSSSIM.as_dict`).
    """
    check_images(fake, "fake", min_count=2, what="collapse_score")
    check_images(real, "real", min_count=2, what="collapse_score")
    check_same_size(real, fake)
    f = pairwise_ms_ssim(fake, num_pairs, seed, **kwargs)
    r = pairwise_ms_ssim(real, num_pairs, seed, **kwargs)
    score = f.mean / r.mean if r.mean > 0 else math.inf
    return {"score": score, "difference": f.mean - r.mean, "fake": f.as_dict(), "real": r.as_dict()}
