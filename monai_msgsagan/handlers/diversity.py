"""Watch for mode collapse while training: pairwise MS-SSIM of a fixed batch of generated images."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from ignite.engine import Engine, Events

from monai_msgsagan.handlers.samples import fixed_latents
from monai_msgsagan.metrics import pairwise_ms_ssim

__all__ = ["DiversityMonitor"]

logger = logging.getLogger(__name__)


class DiversityMonitor:
    """Log the mean pairwise MS-SSIM of a fixed batch of generated images (higher = less diverse).

    Every ``epoch_interval`` epochs the generator (the EMA generator) renders ``num_samples`` images from fixed
    latents (classes cycled for conditional models); their mean pairwise MS-SSIM is logged, written to
    TensorBoard as ``diversity/ms_ssim_fake`` and appended to ``log_path`` (JSON lines) so the evaluation report
    can plot it. When ``real_images`` are given, their pairwise MS-SSIM is computed once and logged beside it as
    ``diversity/ms_ssim_real`` together with the ratio fake/real (about 1 for a healthy generator; well above 1
    signals collapse).

    Args:
        network: generator (coarse-to-fine list or finest image output), images in [-1, 1].
        num_samples: generated images per check (at least 2).
        real_images: optional ``(N, C, R, R)`` real images in [-1, 1] for the reference value.
        seed: seed of the fixed latents.
        epoch_interval: epochs between checks (and once when training completes).
        summary_writer: optional ``SummaryWriter``.
        log_path: optional JSON-lines file receiving ``{"epoch", "iteration", "ms_ssim_fake", ...}``.
        enabled: ``False`` makes the handler a no-op (ranks other than 0).
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
    ) -> None:
        if num_samples < 2:
            raise ValueError(f"num_samples must be >= 2 for pairwise MS-SSIM, got {num_samples}.")
        self.network = network
        self.num_samples = num_samples
        self.seed = seed
        self.epoch_interval = epoch_interval
        self.summary_writer = summary_writer
        self.log_path = Path(log_path) if log_path is not None else None
        self.enabled = enabled
        self.real_ms_ssim = float(pairwise_ms_ssim(real_images).mean) if real_images is not None else None
        self.history: list[dict[str, float]] = []

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.epoch_interval) | Events.COMPLETED, self)

    @torch.no_grad()
    def measure(self) -> float:
        """Mean pairwise MS-SSIM of the fixed generated batch."""
        device = next(self.network.parameters()).device
        z, labels = fixed_latents(
            self.num_samples, self.network.latent_dim, self.network.num_classes, self.seed, device
        )
        was_training = self.network.training
        self.network.eval()
        out = self.network(z, labels)
        self.network.train(was_training)
        images = out[-1] if isinstance(out, (list, tuple)) else out
        return float(pairwise_ms_ssim(images.float().cpu()).mean)

    def __call__(self, engine: Engine) -> None:
        if self.history and self.history[-1]["iteration"] == engine.state.iteration:
            return  # COMPLETED right after the last EPOCH_COMPLETED check
        record = {"epoch": engine.state.epoch, "iteration": engine.state.iteration, "ms_ssim_fake": self.measure()}
        if self.real_ms_ssim is not None:
            record["ms_ssim_real"] = self.real_ms_ssim
            record["ms_ssim_ratio"] = record["ms_ssim_fake"] / max(self.real_ms_ssim, 1e-8)
        self.history.append(record)
        logger.info("epoch %d diversity: %s", engine.state.epoch, {k: round(v, 4) for k, v in record.items()})
        if self.summary_writer is not None:
            for key in ("ms_ssim_fake", "ms_ssim_real", "ms_ssim_ratio"):
                if key in record:
                    self.summary_writer.add_scalar(f"diversity/{key}", record[key], engine.state.iteration)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
