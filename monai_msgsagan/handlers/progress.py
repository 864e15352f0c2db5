"""Training progress: Ignite's ``ProgressBar`` on an interactive terminal and a one-line summary of every epoch."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar

__all__ = ["TrainingProgress"]

logger = logging.getLogger(__name__)


class TrainingProgress:
    """Show a live progress bar when the run is watched, and log a summary line at the end of every epoch.

    The bar is Ignite's :class:`~ignite.handlers.ProgressBar` (tqdm) with the chosen output values; it is drawn
    only when ``stream`` is an interactive terminal (so log files and CI output stay free of bar redraws), unless
    ``interactive`` forces it. The epoch summary is always logged (``INFO``): the epoch, its iterations and
    seconds, the mean of every numeric output value over the epoch and the number of skipped (non-finite) steps,
    e.g. ``epoch 3/50: 32 iterations in 12.1 s; d_loss 1.2345, g_loss 0.9876, ...; skipped 0``. Output values that
    are tensors on the training device are summed there and read once at the end of the epoch (the bar, when
    drawn, reads its keys every iteration).

    Args:
        keys: output keys shown on the bar (the summary averages every numeric output value).
        interactive: ``None``: the bar when ``stream.isatty()``; ``True``/``False`` force it on/off.
        stream: where the bar is drawn (default ``sys.stderr``).
        enabled: ``False`` makes the handler a no-op (ranks other than 0).
    """

    def __init__(
        self,
        keys: Sequence[str] = ("d_loss", "g_loss", "augment_p"),
        interactive: bool | None = None,
        stream: IO[str] | None = None,
        enabled: bool = True,
    ) -> None:
        self.keys = [str(k) for k in keys]
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = interactive
        self.enabled = enabled
        self.bar: ProgressBar | None = None
        self._sums: dict[str, float | torch.Tensor] = {}
        self._count = 0
        self._start = 0.0

    def _is_terminal(self) -> bool:
        if self.interactive is not None:
            return self.interactive
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def attach(self, engine: Engine) -> None:
        if not self.enabled:
            return
        if self._is_terminal():
            self.bar = ProgressBar(persist=False, file=self.stream, dynamic_ncols=True)
            self.bar.attach(engine, output_transform=self._shown)
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._summary)

    def _shown(self, output: Any) -> dict[str, float]:
        if not isinstance(output, dict):
            return {}
        return {str(k): float(v) for k, v in output.items() if str(k) in self.keys}

    def _reset(self, _engine: Engine) -> None:
        self._sums, self._count, self._start = {}, 0, time.perf_counter()

    def _accumulate(self, engine: Engine) -> None:
        output = engine.state.output
        if not isinstance(output, dict):
            return
        self._count += 1
        for key, value in output.items():
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.detach().reshape(()).float()
            elif not isinstance(value, (int, float)):
                continue
            self._sums[str(key)] = self._sums.get(str(key), 0.0) + value

    def _summary(self, engine: Engine) -> None:
        n = max(self._count, 1)
        sums = {k: float(v) for k, v in self._sums.items()}
        skipped = int(round(sums.get("skipped", 0.0)))
        means = ", ".join(
            f"{k} {v / n:.4f}" if math.isfinite(v) else f"{k} {v}" for k, v in sums.items() if k != "skipped"
        )
        logger.info(
            "epoch %d/%s: %d iterations in %.1f s; %s; skipped %d",
            engine.state.epoch,
            engine.state.max_epochs,
            self._count,
            time.perf_counter() - self._start,
            means or "no numeric outputs",
            skipped,
        )
