"""Procedural chest radiograph phantoms: the embedded default training set (no patient data needed).

A phantom is a frontal (PA) chest radiograph drawn from random anatomy: body outline with shoulders and neck,
two lungs with domed hemidiaphragms and tapering apices, heart (on the image right, as in a PA view),
mediastinum and vertebral column, posterior and anterior ribs, clavicles, gastric bubble, lung markings,
exposure gradient, contrast (gamma) and quantum noise. Class 1 adds patchy lung opacities (consolidation)
confined to the lungs. Every draw comes from a ``numpy.random.Generator`` so a phantom is reproducible from
its seed; the anatomy varies enough between draws that a mode-collapsed generator is measurably less diverse
(pairwise MS-SSIM of phantoms is well below 1, see the tests).

Images are float32, channel-first ``(1, size, size)``, values in [-1, 1] (air dark, bone bright).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from monai.data import Dataset
from monai.utils import optional_import

ndimage, _ = optional_import("scipy.ndimage")

__all__ = ["PHANTOM_CLASS_NAMES", "make_phantom", "PhantomDataset"]

#: Class names of the phantom labels (index = label).
PHANTOM_CLASS_NAMES: tuple[str, ...] = ("normal", "lung_opacity")

_RENDER_MIN = 128  # smaller phantoms are drawn at this side and area-averaged down (no aliased ribs at 64 px)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """Band-limited noise on an ``n x n`` grid: white noise on ``cells x cells`` upsampled (linear), unit std."""
    coarse = rng.standard_normal((cells + 3, cells + 3))
    up = ndimage.zoom(coarse, n / cells, order=1, mode="reflect", grid_mode=True)
    off = (up.shape[0] - n) // 2
    up = up[off : off + n, off : off + n]
    return ((up - up.mean()) / (up.std() + 1e-8)).astype(np.float32)


def _nearest_rib(t: np.ndarray, spacing: float, count: int) -> np.ndarray:
    """Distance from ``t`` to the nearest of ``count`` ribs at ``0, spacing, 2 spacing, ...`` (one pass, no loop)."""
    k = np.clip(np.rint(t / spacing), 0, count - 1)
    return t - k * spacing


def _lung(
    xx: np.ndarray, yy: np.ndarray, cx: float, top: float, base: float, half: float, dome: float, edge: float
) -> np.ndarray:
    """Soft lung mask: narrow apex at ``top``, widening to ``half`` at the base, domed diaphragm at ``base``."""
    t = np.clip((yy - top) / (base - top), 0.0, 1.0)
    width = half * (0.35 + 0.65 * np.sqrt(t))
    u = (xx - cx) / half
    floor = base - dome * (1.0 - np.clip(u, -1.0, 1.0) ** 2)  # diaphragm: dome highest mid-lung
    d = np.minimum(np.minimum(yy - top, floor - yy), width - np.abs(xx - cx))
    return _sigmoid(d / edge)


def make_phantom(size: int, label: int = 0, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Draw one chest radiograph phantom.

    Args:
        size: side in pixels (any size >= 16; powers of two for training).
        label: 0 = normal, 1 = lung opacity (patchy consolidation in one or both lungs).
        rng: a ``numpy.random.Generator`` or an integer seed (``None``: fresh entropy).

    Returns:
        ``np.ndarray`` float32 ``(1, size, size)`` in [-1, 1].
    """
    if label not in (0, 1):
        raise ValueError(f"phantom label must be 0 (normal) or 1 (lung opacity), got {label}")
    if size < 16:
        raise ValueError(f"phantom size must be at least 16, got {size}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    factor = max(1, -(-_RENDER_MIN // size))
    n = size * factor
    lin = (np.arange(n, dtype=np.float32) + 0.5) / n * 2.0 - 1.0
    yy, xx = np.meshgrid(lin, lin, indexing="ij")
    u = rng.uniform
    edge = 2.5 / n * 2.0 + 0.01  # soft edges about a pixel wide plus a little anatomical blur

    # patient pose: small rotation and shift of the whole chest
    ang = u(-0.06, 0.06)
    sx, sy = u(-0.05, 0.05), u(-0.05, 0.05)
    ca, sa = np.cos(ang), np.sin(ang)
    x = ca * (xx - sx) - sa * (yy - sy)
    y = sa * (xx - sx) + ca * (yy - sy)
    ax = np.abs(x)

    # body: trunk with shoulders, neck, soft-tissue outline
    bw = u(0.80, 0.97)
    trunk = _sigmoid((1.0 - np.sqrt((x / bw) ** 2 + ((y - 0.45) / u(1.35, 1.55)) ** 2)) / 0.02)
    shoulder_y = u(-0.78, -0.62)
    shoulders = _sigmoid((y - shoulder_y - 0.35 * (ax / bw) ** 2) / 0.03)
    neck = _sigmoid((u(0.16, 0.24) - ax) / 0.02)
    body = np.maximum(trunk * shoulders, neck * trunk)
    atten = (0.55 + u(-0.05, 0.05)) * body
    atten += 0.06 * _sigmoid((ax - bw * 0.82) / 0.04) * body  # thicker soft tissue laterally (arms, breasts)

    # lungs (image left = patient right): right lung a little wider and its dome higher
    top = shoulder_y + u(0.02, 0.10)
    base_r, base_l = u(0.42, 0.62), u(0.46, 0.66)
    half_r, half_l = u(0.29, 0.37), u(0.27, 0.35)
    lx = u(0.38, 0.46)
    lung_r = _lung(x, y, -lx, top, base_r, half_r, u(0.10, 0.22), edge)
    lung_l = _lung(x, y, lx + u(-0.02, 0.04), top + u(0.0, 0.04), base_l, half_l, u(0.08, 0.20), edge)

    # heart on the image right, mediastinum and spine in the middle
    hx, hy = u(0.08, 0.16), u(0.24, 0.36)
    ha, hb = u(0.26, 0.36), u(0.19, 0.27)
    hr = np.sqrt(((x - hx) / ha) ** 2 + ((y - hy) / hb) ** 2)
    heart = _sigmoid((1.0 - hr) / 0.06)
    med_half = u(0.09, 0.13) + 0.06 * np.clip((y - top) / (hy - top + 1e-3), 0.0, 1.0)
    mediastinum = _sigmoid((med_half - np.abs(x - 0.02)) / 0.02) * _sigmoid((y - top + 0.15) / 0.05)
    lungs = np.clip(lung_r + lung_l, 0.0, 1.0) * (1.0 - heart) * (1.0 - mediastinum)

    # lung markings: vessels radiating from the hila, fading to the periphery
    marks = _smooth_noise(rng, n, int(u(14, 22)))
    hila = np.exp(-(((ax - 0.16) / 0.12) ** 2 + ((y + 0.05) / 0.18) ** 2))
    lung_density = 0.05 + 0.06 * hila + 0.035 * marks * (0.5 + hila)
    atten -= u(0.42, 0.52) * lungs
    atten += lung_density * lungs

    # spine: vertebral bodies as periodic bands in a column, visible through the mediastinum
    spine_w = u(0.045, 0.065)
    spine = _sigmoid((spine_w - np.abs(x - 0.0)) / 0.01) * _sigmoid((y - top + 0.3) / 0.05)
    vert_period = u(0.085, 0.11)
    vert = 0.5 + 0.5 * np.cos(2 * np.pi * (y - u(0, 1)) / vert_period)
    atten += spine * (0.05 + 0.035 * vert)
    atten += 0.03 * heart + 0.04 * mediastinum

    # posterior ribs: arcs from the spine sloping down laterally; anterior ribs: fainter, sloping up
    n_ribs = int(rng.integers(9, 12))
    spacing = (base_r - top) / (n_ribs - 1.5)
    start = top - 0.05 + u(-0.02, 0.02)
    curve = u(0.55, 0.85)
    thick = u(0.022, 0.032)
    d_post = _nearest_rib(y - (0.25 * ax + 0.6 * curve * (ax - 0.1) ** 2) - start, spacing, n_ribs)
    post = np.exp(-((d_post / thick) ** 2)) - 0.5 * np.exp(-((d_post / (0.5 * thick)) ** 2))
    thorax = _sigmoid((max(base_r, base_l) + 0.02 - y) / 0.06)  # ribs fade out over the abdomen
    ribs = post * _sigmoid((ax - 0.07) / 0.015) * _sigmoid((bw * 0.92 - ax) / 0.03) * thorax
    d_ant = _nearest_rib(y - (-0.35 * ax + 0.2 * ax**2) - start - 0.5 * spacing, spacing, n_ribs - 3)
    ant = np.exp(-((d_ant / (1.3 * thick)) ** 2)) * _sigmoid((ax - 0.3) / 0.05)
    atten += (u(0.06, 0.10) * ribs + 0.03 * ant * _sigmoid((bw * 0.9 - ax) / 0.03) * thorax) * body

    # clavicles: S-shaped bars from the sternal notch out to the shoulders
    cy = shoulder_y + u(0.05, 0.12)
    y_clav = cy + 0.12 * ax - 0.25 * (ax - 0.35) ** 2 + 0.04 * np.sin(ax * 6.0)
    clav = np.exp(-(((y - y_clav) / u(0.025, 0.035)) ** 2)) * _sigmoid((ax - 0.07) / 0.02)
    clav *= _sigmoid((u(0.55, 0.70) - ax) / 0.02)
    atten += 0.16 * clav

    # gastric bubble under the left hemidiaphragm (sometimes)
    if u() < 0.7:
        gx, gy = lx + u(-0.05, 0.08), base_l + u(0.10, 0.18)
        bubble = np.exp(-(((x - gx) / u(0.06, 0.11)) ** 2 + ((y - gy) / u(0.04, 0.07)) ** 2))
        atten -= 0.18 * bubble * body

    # acquisition parameters are drawn before the class-specific part, so the same seed gives the same
    # anatomy and exposure for both classes and class 1 differs only by its opacities
    grad = 1.0 + u(-0.08, 0.08) * x + u(-0.06, 0.06) * y
    level = max(float(np.percentile(np.clip(atten * grad, 0.0, None), 99.5)), 1e-3) / u(0.80, 0.95)
    gamma, gain, offset = u(0.8, 1.25), u(0.85, 1.05), u(0.0, 0.08)
    noise = rng.normal(0.0, u(0.006, 0.02), atten.shape).astype(np.float32)

    # class 1: patchy consolidation confined to the lungs
    if label == 1:
        lung_any = np.clip(lung_r + lung_l, 0.0, 1.0)
        opac = np.zeros_like(atten)
        patch = 0.6 + 0.4 * _smooth_noise(rng, n, int(u(10, 18)))
        for _ in range(int(rng.integers(1, 4))):
            side = -lx if u() < 0.5 else lx
            cxo = side + u(-0.15, 0.15)
            cyo = u(top + 0.25, min(base_r, base_l) - 0.05)
            rad_x, rad_y = u(0.08, 0.2), u(0.10, 0.28)
            opac += u(0.25, 0.45) * np.exp(-(((x - cxo) / rad_x) ** 2 + ((y - cyo) / rad_y) ** 2))
        atten += np.clip(opac, 0.0, 0.55) * np.clip(patch, 0.0, None) * lung_any * (1.0 - heart)

    # acquisition: exposure gradient, gamma, brightness, quantum noise, detector blur (all monotone in atten)
    img = np.clip(atten * grad / level, 0.0, 1.0) ** gamma
    img = img * gain + offset + noise
    img = ndimage.gaussian_filter(img, sigma=0.6 * n / 256.0 + 0.3)
    if factor > 1:
        img = img.reshape(size, factor, size, factor).mean(axis=(1, 3))
    out = np.clip(img * 2.0 - 1.0, -1.0, 1.0).astype(np.float32)
    return out[None]


class PhantomDataset(Dataset):
    """A MONAI ``Dataset`` of chest radiograph phantoms, drawn on the fly and reproducible per index.

    Item ``i`` is ``{"image": Tensor (1, R, R) float32 in [-1, 1], "label": int, "class_name": str}``, drawn
    from ``SeedSequence([seed, i])``: the same for any worker count or access order. With ``num_classes=1``
    every phantom is normal (label 0); with ``num_classes=2`` a fraction ``class_ratio`` is lung opacity
    (label 1), assigned deterministically (exact counts, shuffled by the seed).

    Args:
        num_images: dataset length.
        resolution: side ``R`` (power of two for training, >= 16).
        num_classes: 1 (normal only) or 2 (normal, lung opacity).
        class_ratio: fraction of label-1 phantoms when ``num_classes=2``.
        seed: dataset seed.
        transform: optional MONAI transform applied to each item dict (e.g. ``MultiScalePyramidd("image")``).
        cache: keep each drawn phantom in memory (before ``transform``), so later epochs skip drawing it
            (``num_images * R * R * 4`` bytes per process, 16 MiB for 1000 images at 64 px).
    """

    def __init__(
        self,
        num_images: int,
        resolution: int = 64,
        num_classes: int = 2,
        class_ratio: float = 0.5,
        seed: int = 0,
        transform: Callable | None = None,
        cache: bool = True,
    ) -> None:
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}")
        if num_classes not in (1, 2):
            raise ValueError(f"num_classes must be 1 or 2 for phantoms, got {num_classes}")
        if not 0.0 <= class_ratio <= 1.0:
            raise ValueError(f"class_ratio must be in [0, 1], got {class_ratio}")
        labels = np.zeros(num_images, dtype=np.int64)
        if num_classes == 2:
            labels[: int(round(class_ratio * num_images))] = 1
            np.random.default_rng(np.random.SeedSequence([int(seed), 2**31 - 1])).shuffle(labels)
        data = [{"index": i, "label": int(lb)} for i, lb in enumerate(labels)]
        super().__init__(data=data, transform=transform)
        self.resolution = int(resolution)
        self.num_classes = num_classes
        self.seed = int(seed)
        self.class_names = list(PHANTOM_CLASS_NAMES[:num_classes])
        self.cache = cache
        self._drawn: dict[int, np.ndarray] = {}

    def item_ids(self) -> list[str]:
        """Identity of every phantom, ``phantom:<seed>:<index>``: a phantom is a function of these two only."""
        return [f"phantom:{self.seed}:{item['index']}" for item in self.data]

    def _transform(self, index: int) -> Any:
        item = self.data[index]
        image = self._drawn.get(item["index"])
        if image is None:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, item["index"]]))
            image = make_phantom(self.resolution, item["label"], rng)
            if self.cache:
                self._drawn[item["index"]] = image
        out = {
            "image": torch.from_numpy(image.copy()),
            "label": item["label"],
            "class_name": PHANTOM_CLASS_NAMES[item["label"]],
        }
        return self.transform(out) if self.transform is not None else out
