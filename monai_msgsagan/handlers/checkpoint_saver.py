"""Saving: verified exact-resume checkpoints, and the exported generator with its record.

Files go through :class:`~monai_msgsagan.handlers.integrity.VerifiedDiskSaver` (Ignite's ``DiskSaver`` with SHA-256
sidecars), not through Ignite's ``Checkpoint``: its rotation removes the oldest file before the new one is written
and counts files that fail verification, so it could delete the last good checkpoint.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from monai_msgsagan.artifact import GeneratorRecord, save_record
from monai_msgsagan.distributed import all_gather_object, broadcast_object, get_rank
from monai_msgsagan.engines.trainer import NonFiniteLossError
from monai_msgsagan.files import atomic_torch_save
from monai_msgsagan.handlers.integrity import (
    CHECKPOINT_PREFIX,
    NonFiniteWeightsError,
    VerifiedDiskSaver,
    checkpoints,
    is_generator,
    load_checkpoint,
    newest_intact_checkpoint,
    nonfinite_entries,
    remove_stale_files,
    verify_checkpoint,
    weights_problems,
    write_on_rank,
)

__all__ = ["GanCheckpointSaver", "save_generator"]

logger = logging.getLogger(__name__)


def save_generator(
    network: torch.nn.Module,
    path: str | os.PathLike,
    record: GeneratorRecord | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write ``network``'s flat state dict (on the CPU) to ``path`` atomically, then, with ``record``, its record
    naming the weights' SHA-256 (:func:`~monai_msgsagan.artifact.save_record`, ``extra``: more keys of it): the
    record never describes weights that are not on disk. Check the weights with
    :func:`~monai_msgsagan.handlers.integrity.weights_problems` first."""
    atomic_torch_save({k: v.detach().cpu() for k, v in network.state_dict().items()}, path)
    if record is not None:
        save_record(record, path, extra)


@dataclass(eq=False)
class GanCheckpointSaver:
    """Save a verified exact-resume checkpoint and the exported generator every ``epoch_interval`` epochs.

    The resume checkpoint ``{save_dir}/checkpoint_{iteration}.pt`` holds every object of ``save_dict`` (G, D, EMA
    G, optimizers, the trainer with its RNG and augmentation state,
    :class:`~monai_msgsagan.handlers.GlobalRandomState`), with its SHA-256 sidecar
    (:mod:`~monai_msgsagan.handlers.integrity`). Then ``model_path`` receives ``model`` (the EMA generator, loadable
    into :class:`~monai_msgsagan.networks.InferenceGenerator`) and its record (:func:`save_generator`).

    Guarantees:

    - **No diverged weights on disk**: before writing, every tensor (and float) of the checkpoint must be finite and
      every generator in it (``model`` and any module with ``latent_dim``) must render a fixed check batch
      ``(4, C, R, R)`` with finite values; otherwise nothing is written and
      :class:`~monai_msgsagan.handlers.NonFiniteWeightsError` names the offending entries and the newest intact
      checkpoint.
    - **Only trained weights are exported**: with a trainer that counts its applied generator updates
      (:attr:`~monai_msgsagan.engines.MultiScaleGanTrainer.generator_updates`), nothing is written (no checkpoint,
      no ``model_path``, no record) when no update was applied since the last export, e.g. a new run whose first
      epoch skipped every step as non-finite: the run stops with :class:`NonFiniteLossError` and the previous
      model and its record stay as they were.
    - **The last good checkpoint survives**: after each write, rotation keeps the newest ``n_saved`` checkpoints
      that pass verification (of this run and earlier ones); files that fail it never count towards ``n_saved``.
    - **A current export**: when training completes and the newest intact checkpoint already holds the final
      iteration (a rerun of a finished run, or one killed between the checkpoint and ``model_path``) and this run's
      model was restored from it, ``model_path`` and its record are written again from the model.
    - Temporary files of writes interrupted by a kill are removed when the next run starts.

    Multi-process runs: attach on every rank (like Ignite's ``Checkpoint``); state dicts are built on every rank
    (per-rank random states are gathered), only rank 0 writes, and an error on one rank is raised on all of them.

    Args:
        save_dir: folder of the resume checkpoints.
        save_dict: name -> object with ``state_dict``/``load_state_dict``.
        model: the module exported to ``model_path`` (usually the EMA generator).
        model_path: e.g. ``{bundle_root}/models/model.pt``.
        epoch_interval: save every this many epochs (and always when training completes).
        n_saved: verified resume checkpoints to keep.
        engine_key: name under which the engine itself (its state, trainer RNG, augmentation) is saved when the
            handler is attached; ``None`` leaves it out.
        enabled: ``False`` makes the handler a no-op.
        record: the run's :class:`~monai_msgsagan.artifact.GeneratorRecord`, written beside ``model_path`` each
            time the weights are (``None``: weights only).
    """

    save_dir: str | os.PathLike
    save_dict: dict[str, Any]
    model: torch.nn.Module
    model_path: str | os.PathLike
    epoch_interval: int = 1
    n_saved: int = 2
    engine_key: str | None = "trainer"
    enabled: bool = True
    record: GeneratorRecord | None = None
    last_saved_iteration: int | None = field(default=None, init=False)
    _exported_updates: int = field(default=0, init=False)  # the engine's generator_updates at this run's last export

    def __post_init__(self) -> None:
        if self.epoch_interval < 1 or self.n_saved < 1:
            raise ValueError("epoch_interval and n_saved must be >= 1.")
        self.save_dir = Path(self.save_dir)
        self.model_path = Path(self.model_path)

    def attach(self, engine: Engine) -> None:
        if not self.enabled:
            return
        if self.engine_key is not None:
            self.save_dict = {**self.save_dict, self.engine_key: engine}
        self._disk = VerifiedDiskSaver(self.save_dir)
        engine.add_event_handler(Events.STARTED, self._on_started)
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.epoch_interval), self)
        engine.add_event_handler(Events.COMPLETED, self._on_completed)

    def _on_started(self, _engine: Engine) -> None:
        if get_rank() == 0 and (removed := remove_stale_files(self.save_dir, self.model_path)):
            logger.info("removed %d leftover file(s) of interrupted writes: %s", len(removed), list(map(str, removed)))

    def _problems(self, checkpoint: dict[str, Any]) -> list[str]:
        """This rank's reasons not to write ``checkpoint`` and ``model``: non-finite values in the checkpoint, else
        the :func:`~monai_msgsagan.handlers.integrity.weights_problems` of ``model`` and of every generator in it."""
        problems = nonfinite_entries(checkpoint)
        if not problems:
            networks = {id(obj): (name, obj) for name, obj in self.save_dict.items() if is_generator(obj)}
            networks.setdefault(id(self.model), (self.model_path.name, self.model))
            problems = [p for name, net in networks.values() for p in weights_problems(name, net)]
        return problems

    def __call__(self, engine: Engine) -> None:
        """Write ``checkpoint_{iteration}.pt``, then ``model_path`` and its record, then rotate; or refuse (every
        rank raises) and write nothing."""
        iteration = engine.state.iteration
        name = f"{CHECKPOINT_PREFIX}_{iteration}.pt"
        checkpoint = {key: obj.state_dict() for key, obj in self.save_dict.items()}  # collective when distributed
        problems = next((p for p in all_gather_object(self._problems(checkpoint)) if p), [])
        if problems:
            raise NonFiniteWeightsError(self._refusal(engine, name, problems))
        updates = getattr(engine, "generator_updates", None)
        if updates is not None and int(updates) <= self._exported_updates:
            raise NonFiniteLossError(
                f"epoch {engine.state.epoch}, iteration {iteration}: no generator update was applied since the last "
                f"export (every training step was skipped as non-finite), so there is nothing to export: not writing "
                f"{name} or {self.model_path}; {self.model_path} and its record are left as they were. Lower the "
                "learning rates, enable a gradient penalty or check the data for NaN."
            )
        self._disk(checkpoint, name)
        write_on_rank(lambda: save_generator(self.model, self.model_path, self.record))
        self.last_saved_iteration = iteration
        self._exported_updates = int(updates or 0)
        if get_rank() == 0:
            self._rotate()
        logger.info("epoch %d: checkpoint %s, model %s", engine.state.epoch, self.save_dir / name, self.model_path)

    def _refusal(self, engine: Engine, name: str, problems: list[str]) -> str:
        good = newest_intact_checkpoint(self.save_dir)
        where = (
            f"the newest intact checkpoint is {good} (SHA-256 verified)"
            if good is not None
            else f"no intact checkpoint exists in {self.save_dir} yet"
        )
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        return (
            f"epoch {engine.state.epoch}, iteration {engine.state.iteration}: not saving {name} or "
            f"{self.model_path}: the weights diverged ({shown}). Nothing was written: {where}, and "
            f"{self.model_path} was left as it was. Lower the learning rates, enable a gradient penalty or check the "
            "data for NaN."
        )

    def _rotate(self) -> None:
        """Keep the newest ``n_saved`` verified checkpoints; older files go, whether they verify or not."""
        good = 0
        for path in checkpoints(self.save_dir):
            if good >= self.n_saved:
                self._disk.remove(path.name)
            elif verify_checkpoint(path) is None:
                good += 1

    def _on_completed(self, engine: Engine) -> None:
        iteration = engine.state.iteration
        if iteration == 0 or self.last_saved_iteration == iteration:
            return
        newest = newest_intact_checkpoint(self.save_dir) if get_rank() == 0 else None
        newest = broadcast_object(str(newest) if newest is not None else None)
        if newest is None or Path(newest).name != f"{CHECKPOINT_PREFIX}_{iteration}.pt":
            self(engine)  # training ended between checkpoint intervals
        elif get_rank() == 0:
            self._export_from(Path(newest))

    def _export_from(self, path: Path) -> None:
        """Write ``model_path`` and its record again when this run's model holds the weights of the checkpoint
        ``path``; nothing (a warning) when it does not (a checkpoint of another run, left in ``save_dir``)."""
        key = next((name for name, obj in self.save_dict.items() if obj is self.model), None)
        if key is not None:
            saved = load_checkpoint(path)[key]
            held = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            if held.keys() != saved.keys() or not all(torch.equal(held[k], saved[k].cpu()) for k in saved):
                logger.warning("%s does not hold this run's model; %s left as it is.", path, self.model_path)
                return
        problems = weights_problems(self.model_path.name, self.model)
        if problems:
            raise NonFiniteWeightsError(f"{path}: not exporting {self.model_path}: {'; '.join(problems[:5])}")
        save_generator(self.model, self.model_path, self.record)
        logger.info("training was complete at %s; %s and its record written from it.", path, self.model_path)
