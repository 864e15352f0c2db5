"""Loading: exact resume from the newest intact checkpoint, on 1 and N processes."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint

from monai_msgsagan.distributed import broadcast_object, get_rank
from monai_msgsagan.handlers.integrity import (
    CheckpointIntegrityError,
    checkpoints,
    load_checkpoint,
    nonfinite_entries,
)

__all__ = ["ResumeFromLatest"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class ResumeFromLatest:
    """At ``STARTED``, load the newest intact checkpoint of ``save_dir`` (if any) into ``load_dict``: exact resume.

    Each candidate, newest first, is verified against its SHA-256 sidecar, loaded with
    ``torch.load(weights_only=True)`` and checked for non-finite values. One that fails is reported in a single
    warning line (file and reason) and the next older one is tried; when no candidate passes, a ``RuntimeError``
    lists every file with its reason (move them away to start afresh). A checkpoint that lacks an entry of
    ``load_dict`` (a different configuration) is an error, not a fallback. The objects are restored with Ignite's
    ``Checkpoint.load_objects``, and the engine keeps its ``max_epochs``.

    Multi-process runs: attach on every rank. Rank 0 chooses the checkpoint and every rank loads it, so all ranks
    restore the same networks, optimizers, EMA, iteration counters and their own random states.

    Args:
        save_dir: folder of :class:`~monai_msgsagan.handlers.GanCheckpointSaver` checkpoints.
        load_dict: name -> object, the same names as the saver's ``save_dict``.
        map_location: ``torch.load`` map location.
        engine_key: name under which the engine's own state was saved (added when attached), or ``None``.
        enabled: ``False`` disables resuming (always start fresh).
        require_hash: ``False`` also accepts checkpoints without a ``.sha256`` sidecar (older versions).
    """

    save_dir: str | os.PathLike
    load_dict: dict[str, Any]
    map_location: str | torch.device | None = "cpu"
    engine_key: str | None = "trainer"
    enabled: bool = True
    require_hash: bool = True
    loaded_from: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.save_dir = Path(self.save_dir)
        self.load_dict = dict(self.load_dict)

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            if self.engine_key is not None:
                self.load_dict[self.engine_key] = engine
            engine.add_event_handler(Events.STARTED, self)

    def _choose(self) -> tuple[Path | None, dict[str, Any] | None, str | None]:
        """(the newest usable checkpoint and its content, or ``None``s; an error message when there are checkpoints
        but none is usable)."""
        rejected: list[str] = []
        for path in checkpoints(self.save_dir):
            try:
                checkpoint = load_checkpoint(path, self.map_location, self.require_hash)
            except CheckpointIntegrityError as e:
                reason = str(e)
            else:
                missing = sorted(set(self.load_dict) - set(checkpoint))
                if missing:
                    error = f"cannot resume from checkpoint {path}: it holds no {missing} (another configuration?)"
                    return None, None, error
                bad = nonfinite_entries({k: checkpoint[k] for k in self.load_dict})
                if not bad:
                    if rejected:
                        logger.warning("resuming from %s, the newest intact checkpoint.", path)
                    return path, checkpoint, None
                reason = f"{path}: non-finite values ({'; '.join(bad[:3])})"
            logger.warning("cannot resume from %s; trying the next older checkpoint.", reason)
            rejected.append(reason)
        if not rejected:
            return None, None, None
        error = f"cannot resume: no intact checkpoint in {self.save_dir} ({'; '.join(rejected)}). Move these files "
        return None, None, error + "away to start afresh."

    def __call__(self, engine: Engine) -> None:
        chosen, checkpoint, error = self._choose() if get_rank() == 0 else (None, None, None)
        chosen, error = broadcast_object((str(chosen) if chosen is not None else None, error))
        if error is not None:
            raise RuntimeError(error)
        if chosen is None:
            return
        path = Path(chosen)
        if checkpoint is None:  # ranks other than 0 read (and verify) the file rank 0 chose
            checkpoint = load_checkpoint(path, self.map_location, self.require_hash)
        max_epochs = engine.state.max_epochs
        Checkpoint.load_objects(to_load=self.load_dict, checkpoint=checkpoint)
        if max_epochs is not None and engine.state.epoch >= max_epochs:
            logger.info("checkpoint %s is already at epoch %d of %d.", path, engine.state.epoch, max_epochs)
        engine.state.max_epochs = max_epochs
        self.loaded_from = path
        logger.info("resumed from %s at epoch %d, iteration %d", path, engine.state.epoch, engine.state.iteration)
