"""Live diagnosis of the three GAN failure modes (mode collapse, non-convergence, vanishing gradients) while training,
and the best model by a stated criterion."""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.utils.enums import StrEnum

from monai_msgsagan.artifact import GeneratorRecord
from monai_msgsagan.files import atomic_write_bytes
from monai_msgsagan.handlers.checkpoint_saver import save_generator
from monai_msgsagan.handlers.diversity import DiversityMonitor, log_record
from monai_msgsagan.handlers.integrity import weights_problems

__all__ = ["Diagnosis", "HealthThresholds", "TrainingHealthMonitor", "diagnose", "diversity_retained"]

logger = logging.getLogger(__name__)


class Diagnosis(StrEnum):
    """The state of a GAN run, from the health signals."""

    HEALTHY = "healthy"
    MODE_COLLAPSE = "mode_collapse"
    NON_CONVERGENCE = "non_convergence"
    VANISHING_GRADIENTS = "vanishing_gradients"


@dataclass(frozen=True)
class HealthThresholds:
    """Where :func:`diagnose` draws its lines.

    Attributes:
        collapse_diversity: ``mode_collapse`` when the generated images (overall, or of any class) keep at most this
            fraction of the real images' diversity, measured as ``(1 - MS-SSIM generated) / (1 - MS-SSIM real)``
            (a plain MS-SSIM ratio cannot exceed ``1 / MS-SSIM real``, which is small for alike real images).
        d_accuracy: ``vanishing_gradients`` needs D's accuracy on real and on fake both at least this ...
        gradient_drop: ... and the gradient reaching G's finest scale below this fraction of its first value.
        loss_variation: ``non_convergence`` when the relative standard deviation of the G or D loss over the window
            (std / max(|mean|, 0.1)) is at least this: the losses swing instead of settling ...
        loss_rise: ... or the G loss rose by at least this fraction of its mean over the window while D's accuracy
            stayed above ``d_accuracy`` (D wins and keeps winning), ...
        skipped_fraction: ... or at least this fraction of the window's steps were skipped as non-finite.
    """

    collapse_diversity: float = 0.35
    d_accuracy: float = 0.95
    gradient_drop: float = 0.05
    loss_variation: float = 0.5
    loss_rise: float = 0.5
    skipped_fraction: float = 0.1


def diagnose(signals: dict[str, Any], thresholds: HealthThresholds | None = None) -> tuple[Diagnosis, str]:
    """Name the failure mode that ``signals`` (a :class:`TrainingHealthMonitor` record) show, with the evidence.

    Checked in order: mode collapse (diversity), vanishing gradients (D separates perfectly and G's gradient has
    faded), non-convergence (the losses swing or G keeps losing, or steps are skipped); else ``healthy``.
    Missing signals (no diversity check yet, no gradient measured yet) never trigger a diagnosis.
    """
    t = thresholds or HealthThresholds()
    retained = diversity_retained(signals)
    if retained:
        where, worst = min(retained.items(), key=lambda kv: kv[1])
        if worst <= t.collapse_diversity:
            return Diagnosis.MODE_COLLAPSE, (
                f"generated images{'' if where == 'all' else f' of {where}'} keep {worst:.0%} of the real images' "
                f"diversity (1 - MS-SSIM) <= {t.collapse_diversity:.0%}"
            )
    real_acc, fake_acc = signals.get("d_real_acc"), signals.get("d_fake_acc")
    drop = signals.get("grad_finest_relative")
    d_wins = real_acc is not None and fake_acc is not None and min(real_acc, fake_acc) >= t.d_accuracy
    if d_wins and drop is not None and drop < t.gradient_drop:
        return Diagnosis.VANISHING_GRADIENTS, (
            f"D accuracy real {real_acc:.2f} / fake {fake_acc:.2f} >= {t.d_accuracy}, logit margin "
            f"{signals.get('logit_margin', float('nan')):.2f}, gradient reaching G's finest scale at {drop:.3g} of its "
            f"first value (< {t.gradient_drop})"
        )
    reasons = []
    for name in ("g_loss", "d_loss"):
        variation = signals.get(f"{name}_variation")
        if variation is not None and variation >= t.loss_variation:
            reasons.append(f"{name} relative std {variation:.2f} >= {t.loss_variation}")
    rise = signals.get("g_loss_rise")
    if d_wins and rise is not None and rise >= t.loss_rise:
        reasons.append(
            f"g_loss rose by {rise:.2f} of its mean while D accuracy stayed >= {t.d_accuracy} "
            f"(real {real_acc:.2f} / fake {fake_acc:.2f})"
        )
    skipped = signals.get("skipped_fraction")
    if skipped is not None and skipped >= t.skipped_fraction:
        reasons.append(f"{skipped:.0%} of steps skipped as non-finite")
    if reasons:
        return Diagnosis.NON_CONVERGENCE, "; ".join(reasons)
    return Diagnosis.HEALTHY, "no failure signal"


def diversity_retained(signals: dict[str, Any]) -> dict[str, float]:
    """``{"all" | "class{k}": (1 - MS-SSIM generated) / (1 - MS-SSIM real)}`` from a diversity record: the
    fraction of the real images' diversity the generated ones keep (1 = as diverse, 0 = all identical)."""
    real = signals.get("ms_ssim_real")
    if real is None or not real < 1:
        return {}
    found = {}
    for key, value in signals.items():
        if key.startswith("ms_ssim_fake") and value is not None:
            name = key.removeprefix("ms_ssim_fake").lstrip("_") or "all"
            found[name] = max(0.0, 1.0 - value) / (1.0 - real)
    return found


def _trend(values: list[float]) -> float:
    """Least-squares change over the whole window (slope x (n - 1)), 0 for fewer than 2 values."""
    if len(values) < 2:
        return 0.0
    return statistics.linear_regression(range(len(values)), values).slope * (len(values) - 1)


def _finite_mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else None


class TrainingHealthMonitor:
    """Every ``interval`` iterations, measure the health signals of a GAN run, log them and name its state.

    Signals (a record written to ``log_path`` as a JSON line and to TensorBoard under ``health/``), over the last
    ``window`` iterations unless said otherwise:

    - ``d_real_acc`` / ``d_fake_acc``: D's accuracy on real and fake (see ``GanOutputKeys``); ``logit_margin``:
      mean real logit minus mean fake logit; ``penalty``: mean R1 / gradient penalty.
    - ``d_loss_mean`` / ``g_loss_mean``, their ``*_trend`` (least-squares change over the window) and
      ``*_variation`` (std / max(|mean|, 0.1)); ``g_loss_rise``: the G trend as a fraction of its mean.
    - ``grad_scale{R}``: norm of the adversarial gradient reaching each scale ``R`` of G's output (measured on the
      iteration of the check, one extra backward through D); ``grad_finest_relative``: the finest scale's value
      over its first value (measured on the first iteration of this process's run).
    - ``ms_ssim_fake`` / ``ms_ssim_real`` / ``ms_ssim_ratio`` (and per class): the latest :class:`DiversityMonitor`
      check; ``diversity_retained_all`` (and ``_class{k}``): ``(1 - MS-SSIM generated) / (1 - MS-SSIM real)``.
    - ``skipped_fraction``: steps skipped as non-finite.

    The diagnosis (:func:`diagnose`: ``mode_collapse``, ``non_convergence``, ``vanishing_gradients`` or
    ``healthy``) and its evidence go into the record; a change is logged as a warning (as info when it becomes
    ``healthy``). With ``stop_after_collapsed`` > 0 the run stops (``engine.terminate()``, so the last checkpoint
    and ``model.pt`` are written as usual) after that many consecutive ``mode_collapse`` checks.

    Best model: when ``best_model_path`` is given, after every diversity check the EMA generator
    (``diversity_monitor.network``) is saved there if it beats the best so far by the criterion **FID, lower is
    better, when the check has one; else |log(diversity retained)|, i.e. generated images as diverse as real
    ones**.
    A check diagnosed ``mode_collapse``, or weights that are not finite or render non-finite images, never count,
    nor do weights no generator update was applied to since the last best (a trainer's ``generator_updates``).
    A resumed run starts from the best that the ``.json`` below records (when saved at or before the iteration it
    resumes from), so it never replaces an earlier, better model with a worse one.
    ``best_model_path`` with ``.json`` instead of ``.pt`` records the epoch, iteration, criterion and value and,
    with ``record``, is the best weights' generator record (written after the weights, naming their SHA-256:
    :func:`~monai_msgsagan.handlers.checkpoint_saver.save_generator`), which
    :func:`~monai_msgsagan.artifact.load_generator` reads.

    Attach after the :class:`DiversityMonitor` (same ``EPOCH_COMPLETED``), or let this handler attach it
    (``attach_diversity_monitor``; what the bundle does, as MONAI's bundle checks expect every item of
    ``train#handlers`` to be a dict). Rank 0 only.

    The trainer's outputs (0-dim tensors on the training device) are kept as they are every iteration and read
    back together at each check (one host sync per ``interval`` iterations), so the training step stays
    asynchronous.

    Args:
        interval: iterations between checks.
        window: iterations the loss and accuracy statistics cover.
        diversity_monitor: the run's :class:`DiversityMonitor` (for the MS-SSIM ratio and the best model), or None.
        summary_writer: optional ``SummaryWriter``.
        log_path: optional JSON-lines file (e.g. ``logs/health.jsonl``).
        thresholds: :class:`HealthThresholds`.
        stop_after_collapsed: consecutive ``mode_collapse`` checks after which the run stops; 0 never stops.
        best_model_path: where to keep the best EMA generator (e.g. ``models/model_best.pt``), or None.
        record: the run's :class:`~monai_msgsagan.artifact.GeneratorRecord`, written with the best weights.
        attach_diversity_monitor: attach ``diversity_monitor`` to the engine too (just before this handler).
        enabled: ``False`` makes the handler a no-op (ranks other than 0).
    """

    def __init__(
        self,
        interval: int = 50,
        window: int = 200,
        diversity_monitor: DiversityMonitor | None = None,
        summary_writer=None,
        log_path: str | os.PathLike | None = None,
        thresholds: HealthThresholds | None = None,
        stop_after_collapsed: int = 0,
        best_model_path: str | os.PathLike | None = None,
        attach_diversity_monitor: bool = False,
        enabled: bool = True,
        record: GeneratorRecord | None = None,
    ) -> None:
        if interval < 1 or window < 2 or stop_after_collapsed < 0:
            raise ValueError(
                f"interval must be >= 1, window >= 2 and stop_after_collapsed >= 0, got {interval}, {window}, "
                f"{stop_after_collapsed}."
            )
        if best_model_path is not None and diversity_monitor is None:
            raise ValueError("best_model_path needs a diversity_monitor (the criterion comes from its checks).")
        self.interval = interval
        self.diversity_monitor = diversity_monitor
        self.summary_writer = summary_writer
        self.log_path = Path(log_path) if log_path is not None else None
        self.thresholds = thresholds or HealthThresholds()
        self.stop_after_collapsed = stop_after_collapsed
        self.best_model_path = Path(best_model_path) if best_model_path is not None else None
        self.attach_diversity_monitor = attach_diversity_monitor
        self.enabled = enabled
        self.outputs: deque[dict[str, float | torch.Tensor]] = deque(maxlen=window)
        self.first_finest_gradient: float | None = None
        self.last_gradients: list[float] | None = None
        self.diagnosis: Diagnosis | None = None
        self.collapsed_checks = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self._best_seen_iteration: int | None = None
        self.record = record
        self._best_updates = 0  # the engine's generator_updates when the best model was last saved

    def attach(self, engine: Engine) -> None:
        if not self.enabled:
            return
        if self.attach_diversity_monitor and self.diversity_monitor is not None:
            self.diversity_monitor.attach(engine)  # first, so its checks precede this handler's
        engine.add_event_handler(Events.ITERATION_STARTED, self._request_gradients)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.interval), self.check)
        if self.best_model_path is not None:
            engine.add_event_handler(Events.STARTED, self._restore_best)
            engine.add_event_handler(Events.EPOCH_COMPLETED | Events.COMPLETED, self._keep_best)

    def _request_gradients(self, engine: Engine) -> None:
        """Measure on check iterations, and on the run's first iteration for the baseline of the gradient drop."""
        if hasattr(engine, "measure_scale_gradients"):
            due = engine.state.iteration % self.interval == 0
            engine.measure_scale_gradients = due or self.first_finest_gradient is None

    def _collect(self, engine: Engine) -> None:
        if isinstance(engine.state.output, dict):
            self.outputs.append(
                {
                    str(k): v.detach() if isinstance(v, torch.Tensor) else float(v)
                    for k, v in engine.state.output.items()
                }
            )
        measured = getattr(engine, "scale_gradient_norms", None)
        if measured is None:
            return
        norms = [float(v) for v in measured]  # measured on check iterations (and until a baseline is found) only
        if self.first_finest_gradient is None and math.isfinite(norms[-1]) and norms[-1] > 0:
            self.first_finest_gradient = norms[-1]
        if engine.state.iteration % self.interval == 0:
            self.last_gradients = list(norms)

    def _read_outputs(self) -> list[dict[str, float]]:
        """The window's outputs as floats: the values still on the device are read in one transfer."""
        pending = [(row, key) for row in self.outputs for key, v in row.items() if isinstance(v, torch.Tensor)]
        if pending:
            values = torch.stack([row[key].float().reshape(()) for row, key in pending]).tolist()
            for (row, key), value in zip(pending, values):
                row[key] = value
        return list(self.outputs)  # type: ignore[arg-type]

    def signals(self, engine: Engine) -> dict[str, Any]:
        """The record of the current iteration (see the class docstring)."""
        rows = self._read_outputs()
        column = {key: [r[key] for r in rows if key in r] for key in (rows[-1] if rows else {})}
        record: dict[str, Any] = {"epoch": engine.state.epoch, "iteration": engine.state.iteration}
        for key in ("d_real_acc", "d_fake_acc", "penalty"):
            record[key] = _finite_mean(column.get(key, []))
        margins = [r["real_logit"] - r["fake_logit"] for r in rows if "real_logit" in r and "fake_logit" in r]
        record["logit_margin"] = _finite_mean(margins)
        for name in ("d_loss", "g_loss"):
            values = [v for v in column.get(name, []) if math.isfinite(v)]
            mean = record[f"{name}_mean"] = _finite_mean(values)
            record[f"{name}_trend"] = _trend(values) if values else None
            if mean is not None:
                record[f"{name}_variation"] = statistics.pstdev(values, mean) / max(abs(mean), 0.1)
        if record.get("g_loss_trend") is not None and record.get("g_loss_mean") is not None:
            record["g_loss_rise"] = record["g_loss_trend"] / max(abs(record["g_loss_mean"]), 0.1)
        record["skipped_fraction"] = sum(column.get("skipped", [])) / max(len(rows), 1)
        if self.last_gradients:
            for i, value in enumerate(self.last_gradients):  # coarse to fine: 4x4, 8x8, ...
                record[f"grad_scale{4 * 2**i}"] = value
            if self.first_finest_gradient:
                record["grad_finest_relative"] = self.last_gradients[-1] / self.first_finest_gradient
        if self.diversity_monitor is not None and self.diversity_monitor.history:
            latest = self.diversity_monitor.history[-1]
            record.update({k: v for k, v in latest.items() if k.startswith("ms_ssim")})
            record.update({f"diversity_retained_{k}": v for k, v in diversity_retained(latest).items()})
        return record

    def check(self, engine: Engine) -> None:
        """Measure, diagnose, log; stop the run after ``stop_after_collapsed`` collapsed checks in a row."""
        record = self.signals(engine)
        diagnosis, evidence = diagnose(record, self.thresholds)
        record["diagnosis"], record["evidence"] = str(diagnosis), evidence
        self.history.append(record)
        if diagnosis != self.diagnosis:
            level = logging.INFO if diagnosis == Diagnosis.HEALTHY else logging.WARNING
            logger.log(level, "iteration %d: training health %s: %s", engine.state.iteration, diagnosis, evidence)
            self.diagnosis = diagnosis
        log_record(record, "health", self.summary_writer, self.log_path)
        if self.summary_writer is not None:
            self.summary_writer.add_text("health/diagnosis", f"{diagnosis}: {evidence}", engine.state.iteration)
        self.collapsed_checks = self.collapsed_checks + 1 if diagnosis == Diagnosis.MODE_COLLAPSE else 0
        if self.stop_after_collapsed and self.collapsed_checks >= self.stop_after_collapsed:
            logger.error(
                "stopping: mode_collapse in %d consecutive health checks (%s); the last checkpoint is written as "
                "training ends.",
                self.collapsed_checks,
                evidence,
            )
            engine.terminate()

    def _restore_best(self, engine: Engine) -> None:
        """On a resumed run, the best so far is the one ``best_model_path``'s ``.json`` records, when it was saved
        at or before the iteration the run resumes from (attach after the resume handler)."""
        path = self.best_model_path.with_suffix(".json")
        if engine.state.iteration == 0 or not (path.is_file() and self.best_model_path.is_file()):
            return
        try:
            saved = json.loads(path.read_text())
            best = {"epoch": int(saved["epoch"]), "iteration": int(saved["iteration"]),
                    "criterion": str(saved["criterion"]), "value": float(saved["value"])}  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.warning("%s: no best model so far read from it (%s); the resumed run keeps its own.", path, e)
            return
        if best["iteration"] <= engine.state.iteration:
            self.best = best

    def _keep_best(self, engine: Engine) -> None:
        monitor = self.diversity_monitor
        if monitor is None or not monitor.history or self.best_model_path is None:
            return
        updates = getattr(engine, "generator_updates", None)
        if updates is not None and int(updates) <= self._best_updates:
            return  # no generator update since the last best: untrained (or unchanged) weights
        latest = monitor.history[-1]
        if latest["iteration"] == self._best_seen_iteration:
            return
        self._best_seen_iteration = latest["iteration"]
        collapsed, _ = diagnose({k: v for k, v in latest.items() if k.startswith("ms_ssim")}, self.thresholds)
        if collapsed == Diagnosis.MODE_COLLAPSE:
            return
        retained = diversity_retained(latest).get("all")
        if "fid" in latest:
            criterion, value = "fid", float(latest["fid"])
        elif retained is not None:
            criterion, value = "abs_log_diversity_retained", abs(math.log(max(retained, 1e-8)))
        else:
            return
        if not math.isfinite(value):
            return
        if self.best is not None:  # lower wins; a FID-based best is never replaced by a diversity-based one
            same = self.best["criterion"] == criterion
            if (same and value >= self.best["value"]) or (not same and criterion != "fid"):
                return
        if weights_problems("generator", monitor.network):
            return
        best = {"epoch": latest["epoch"], "iteration": latest["iteration"], "criterion": criterion, "value": value}
        save_generator(monitor.network, self.best_model_path, self.record, extra=best)
        self.best = best
        self._best_updates = int(updates) if updates is not None else 0
        if self.record is None:
            atomic_write_bytes(json.dumps(self.best, indent=2).encode(), self.best_model_path.with_suffix(".json"))
        logger.info("best model so far (%s %.4f) saved to %s", criterion, value, self.best_model_path)
