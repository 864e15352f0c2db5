"""Watch for mode collapse while training: pairwise MS-SSIM (and optionally FID) of fixed generated images."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from torch import nn

from monai_msgsagan.generation import generate_per_class
from monai_msgsagan.metrics import FeatureCache, extract_features, fid_from_features, pairwise_ms_ssim

__all__ = ["DiversityMonitor"]

logger = logging.getLogger(__name__)


def log_record(record: dict, prefix: str, summary_writer=None, log_path: Path | None = None) -> None:
    """Write the numbers of ``record`` (but its ``epoch`` and ``iteration``) to TensorBoard as ``{prefix}/{key}``
    at its ``iteration``, and append ``record`` as a JSON line to ``log_path``."""
    if summary_writer is not None:
        for key, value in record.items():
            if isinstance(value, (int, float)) and key not in ("epoch", "iteration"):
                summary_writer.add_scalar(f"{prefix}/{key}", value, record["iteration"])
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")


class DiversityMonitor:
    """Log the mean pairwise MS-SSIM of a fixed batch of generated images (higher = less diverse).

    Every ``epoch_interval`` epochs the generator (the EMA generator) renders ``num_samples`` images from fixed
    latents (class by class for conditional models); their mean pairwise MS-SSIM is logged, written to
    TensorBoard as ``diversity/ms_ssim_fake`` and appended to ``log_path`` (JSON lines) so the evaluation report
    can plot it. When ``real_images`` are given, their pairwise MS-SSIM is computed once and logged beside it as
    ``diversity/ms_ssim_real`` together with the ratio fake/real (about 1 for a healthy generator; well above 1
    signals collapse). For class-conditional models the MS-SSIM within each class (the fixed latents come class by
    class) is logged too, as ``ms_ssim_fake_class{k}`` and ``ms_ssim_ratio_class{k}`` (against the real value of
    all classes): a single collapsed class hides in the overall value.

    FID (optional, ``fid_interval > 0``): every ``fid_interval`` epochs (and when training completes) the FID
    between ``real_images`` and ``fid_num_samples`` generated images (the same fixed latents) is logged as
    ``diversity/fid`` and ``"fid"`` in the JSON lines. The real features are extracted once (a
    :class:`~monai_msgsagan.metrics.FeatureCache`). With a small real subset this FID is biased upwards and only
    useful as a trend within one run; off by default because InceptionV3 at 299 px costs about 0.1-0.3 s an image
    on one CPU core (turn it on for GPU recipes, for example ``fid_interval`` 5 with 256 samples).

    Args:
        network: generator (coarse-to-fine list or finest image output), images in [-1, 1].
        num_samples: generated images per check (at least 2).
        real_images: optional ``(N, C, R, R)`` real images in [-1, 1] for the reference value.
        seed: seed of the fixed latents.
        epoch_interval: epochs between checks (and once when training completes).
        summary_writer: optional ``SummaryWriter``.
        log_path: optional JSON-lines file receiving ``{"epoch", "iteration", "ms_ssim_fake", ...}``.
        enabled: ``False`` makes the handler a no-op (ranks other than 0).
        fid_interval: epochs between FID checks; 0 = no FID. Needs ``real_images`` (at least 2).
        fid_num_samples: generated images for FID (default ``num_samples``).
        feature_extractor: FID feature network (N, C, H, W) in [-1, 1] -> (N, D); None = InceptionV3 pool3.
        fid_batch_size: images per feature-network pass.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        num_samples: int = 32,
        real_images: torch.Tensor | None = None,
        seed: int = 1234,
        epoch_interval: int = 1,
        summary_writer=None,
        log_path: str | os.PathLike | None = None,
        enabled: bool = True,
        fid_interval: int = 0,
        fid_num_samples: int | None = None,
        feature_extractor: nn.Module | None = None,
        fid_batch_size: int = 32,
    ) -> None:
        if num_samples < 2:
            raise ValueError(f"num_samples must be >= 2 for pairwise MS-SSIM, got {num_samples}.")
        if epoch_interval < 1 or fid_interval < 0:
            raise ValueError(
                f"epoch_interval must be >= 1 and fid_interval >= 0, got {epoch_interval} and {fid_interval}."
            )
        self.fid_num_samples = num_samples if fid_num_samples is None else fid_num_samples
        if fid_interval > 0 and (real_images is None or real_images.shape[0] < 2 or self.fid_num_samples < 2):
            raise ValueError(
                "fid_interval > 0 needs real_images and fid_num_samples with at least 2 images each "
                f"(got {0 if real_images is None else real_images.shape[0]} real, {self.fid_num_samples} generated)."
            )
        self.network = network
        self.num_samples = num_samples
        self.seed = seed
        self.epoch_interval = epoch_interval
        self.summary_writer = summary_writer
        self.log_path = Path(log_path) if log_path is not None else None
        self.enabled = enabled
        self.real_images = real_images
        self.real_ms_ssim = float(pairwise_ms_ssim(real_images).mean) if real_images is not None else None
        self.fid_interval = fid_interval
        self.feature_extractor = feature_extractor
        self.fid_batch_size = fid_batch_size
        self.feature_cache = FeatureCache(max_entries=1)
        self.history: list[dict[str, float]] = []

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.EPOCH_COMPLETED(event_filter=self._due) | Events.COMPLETED, self)

    def _due(self, engine: Engine, epoch: int) -> bool:
        return epoch % self.epoch_interval == 0 or (self.fid_interval > 0 and epoch % self.fid_interval == 0)

    def generate(self, num: int) -> torch.Tensor:
        """The fixed generated batch ``(num, C, R, R)`` in [-1, 1] (CPU, float32): class by class for conditional
        models (:func:`~monai_msgsagan.generation.generate_per_class` of ``seed``), so the ``k``-th block of
        ``num // num_classes`` images is class ``k``."""
        num_classes = max(int(self.network.num_classes), 1)
        return generate_per_class(self.network, -(-num // num_classes), self.seed)[0][:num]

    def measure_fid(self) -> float:
        """FID between ``real_images`` (features cached) and the fixed generated batch."""
        if self.real_images is None:
            raise ValueError("FID needs real_images.")
        fake = self.generate(self.fid_num_samples)
        device = next(self.network.parameters()).device
        kw = {"batch_size": self.fid_batch_size, "device": device}
        real_feats = extract_features(
            self.real_images, self.feature_extractor, cache=self.feature_cache, name="real", **kw
        )
        fake_feats = extract_features(fake, self.feature_extractor, name="fake", **kw)
        return fid_from_features(real_feats, fake_feats)

    def _per_class_ms_ssim(self, images: torch.Tensor) -> list[float]:
        """Conditional models: mean pairwise MS-SSIM within each class block of the fixed batch."""
        num_classes = int(self.network.num_classes)
        per_class = images.shape[0] // max(num_classes, 1)
        if num_classes < 2 or per_class < 2:
            return []
        return [float(pairwise_ms_ssim(images[k * per_class : (k + 1) * per_class]).mean) for k in range(num_classes)]

    def __call__(self, engine: Engine) -> None:
        if self.history and self.history[-1]["iteration"] == engine.state.iteration:
            return  # COMPLETED right after the last EPOCH_COMPLETED check
        epoch = engine.state.epoch
        completed = engine.state.epoch >= (engine.state.max_epochs or 0) or engine.should_terminate
        want_fid = self.fid_interval > 0 and (epoch % self.fid_interval == 0 or completed)
        images = self.generate(self.num_samples)
        record = {
            "epoch": epoch,
            "iteration": engine.state.iteration,
            "ms_ssim_fake": float(pairwise_ms_ssim(images).mean),
        }
        if self.real_ms_ssim is not None:
            record["ms_ssim_real"] = self.real_ms_ssim
            record["ms_ssim_ratio"] = record["ms_ssim_fake"] / max(self.real_ms_ssim, 1e-8)
        per_class = self._per_class_ms_ssim(images)
        for k, value in enumerate(per_class):
            record[f"ms_ssim_fake_class{k}"] = value
            if self.real_ms_ssim is not None:
                record[f"ms_ssim_ratio_class{k}"] = value / max(self.real_ms_ssim, 1e-8)
        if want_fid:
            record["fid"] = self.measure_fid()
        self.history.append(record)
        logger.info("epoch %d diversity: %s", engine.state.epoch, {k: round(v, 4) for k, v in record.items()})
        log_record(record, "diversity", self.summary_writer, self.log_path)
