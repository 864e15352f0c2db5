"""Atomic resume checkpoints, the exported EMA generator and exact resume."""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

__all__ = ["GlobalRandomState", "GanCheckpointSaver", "ResumeFromLatest", "latest_checkpoint", "atomic_torch_save"]

logger = logging.getLogger(__name__)
CHECKPOINT_PREFIX = "checkpoint"


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: a reader never sees a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


class GlobalRandomState:
    """The process-wide random states (torch CPU and CUDA, numpy, Python) as a checkpointable object.

    The state dict holds only tensors and plain numbers, so it loads with ``torch.load(weights_only=True)``.
    Data order is not part of it: samplers should derive their order from (seed, epoch), like
    ``DistributedSampler`` (which MONAI workflows ``set_epoch`` every epoch), so that it does not depend on when
    an iterator was created.
    """

    def state_dict(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        py_version, py_internal, py_gauss = random.getstate()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "numpy_pos": int(np_state[2]),
            "numpy_has_gauss": int(np_state[3]),
            "numpy_gauss": float(np_state[4]),
            "python_version": py_version,
            "python_internal": torch.tensor(py_internal, dtype=torch.int64),
            "python_gauss": py_gauss,
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        keys = state["numpy_keys"].numpy().astype(np.uint32)
        np.random.set_state(("MT19937", keys, state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"]))
        random.setstate((state["python_version"], tuple(state["python_internal"].tolist()), state["python_gauss"]))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class GanCheckpointSaver:
    """Save an exact-resume checkpoint and the exported generator every ``epoch_interval`` epochs.

    The resume checkpoint ``{save_dir}/checkpoint_{iteration}.pt`` holds every object of ``save_dict`` (G, D, EMA
    G, optimizers, the trainer with its RNG and augmentation state, :class:`GlobalRandomState`); the newest
    ``n_saved`` are kept. Both files are written atomically (temporary file, then rename), so a run killed at any
    moment leaves the previous checkpoint intact. ``model_path`` receives the flat state dict of ``model``
    (the EMA generator), loadable into :class:`~monai_msgsagan.networks.InferenceGenerator`.

    Args:
        save_dir: folder of the resume checkpoints.
        save_dict: name -> object with ``state_dict``/``load_state_dict``.
        model: the module exported to ``model_path`` (usually the EMA generator).
        model_path: e.g. ``{bundle_root}/models/model.pt``.
        epoch_interval: save every this many epochs (and always when training completes).
        n_saved: resume checkpoints to keep.
        engine_key: name under which the engine itself (its state, trainer RNG, augmentation) is saved when the
            handler is attached; ``None`` leaves it out.
        enabled: ``False`` makes the handler a no-op (ranks other than 0 in multi-GPU runs).
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        save_dict: dict[str, Any],
        model: torch.nn.Module,
        model_path: str | os.PathLike,
        epoch_interval: int = 1,
        n_saved: int = 2,
        engine_key: str | None = "trainer",
        enabled: bool = True,
    ) -> None:
        if epoch_interval < 1 or n_saved < 1:
            raise ValueError("epoch_interval and n_saved must be >= 1.")
        self.save_dir = Path(save_dir)
        self.save_dict = save_dict
        self.model = model
        self.model_path = Path(model_path)
        self.epoch_interval = epoch_interval
        self.n_saved = n_saved
        self.engine_key = engine_key
        self.enabled = enabled

    def attach(self, engine: Engine) -> None:
        if not self.enabled:
            return
        if self.engine_key is not None:
            self.save_dict = {**self.save_dict, self.engine_key: engine}
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.epoch_interval), self)
        engine.add_event_handler(Events.COMPLETED, self._on_completed)

    def _on_completed(self, engine: Engine) -> None:
        if engine.state.epoch % self.epoch_interval != 0:
            self(engine)

    def __call__(self, engine: Engine) -> None:
        checkpoint = {name: obj.state_dict() for name, obj in self.save_dict.items()}
        path = atomic_torch_save(checkpoint, self.save_dir / f"{CHECKPOINT_PREFIX}_{engine.state.iteration}.pt")
        atomic_torch_save(self.model.state_dict(), self.model_path)
        for old in sorted(_checkpoints(self.save_dir))[: -self.n_saved]:
            old[1].unlink(missing_ok=True)
        logger.info("epoch %d: checkpoint %s, model %s", engine.state.epoch, path, self.model_path)


def _checkpoints(save_dir: Path) -> list[tuple[int, Path]]:
    pattern = re.compile(rf"{CHECKPOINT_PREFIX}_(\d+)\.pt$")
    return [
        (int(m.group(1)), p) for p in Path(save_dir).glob(f"{CHECKPOINT_PREFIX}_*.pt") if (m := pattern.search(p.name))
    ]


def latest_checkpoint(save_dir: str | os.PathLike) -> Path | None:
    """The resume checkpoint with the highest iteration in ``save_dir``, or ``None``."""
    found = _checkpoints(Path(save_dir))
    return max(found)[1] if found else None


class ResumeFromLatest:
    """At ``STARTED``, load the newest checkpoint of ``save_dir`` (if any) into ``load_dict``: exact resume.

    Loading uses ``torch.load(weights_only=True)``. A checkpoint that cannot be read raises a ``RuntimeError``
    naming the file rather than silently starting over.

    Args:
        save_dir: folder of :class:`GanCheckpointSaver` checkpoints.
        load_dict: name -> object, the same names as the saver's ``save_dict``.
        map_location: ``torch.load`` map location.
        engine_key: name under which the engine's own state was saved (added when attached), or ``None``.
        enabled: ``False`` disables resuming (always start fresh).
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        load_dict: dict[str, Any],
        map_location: str | torch.device | None = "cpu",
        engine_key: str | None = "trainer",
        enabled: bool = True,
    ) -> None:
        self.save_dir = Path(save_dir)
        self.load_dict = dict(load_dict)
        self.engine_key = engine_key
        self.map_location = map_location
        self.enabled = enabled
        self.loaded_from: Path | None = None

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            if self.engine_key is not None:
                self.load_dict[self.engine_key] = engine
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        path = latest_checkpoint(self.save_dir)
        if path is None:
            return
        try:
            checkpoint = torch.load(path, map_location=self.map_location, weights_only=True)
        except Exception as e:
            raise RuntimeError(f"cannot resume from checkpoint {path}: {e}") from e
        missing = sorted(set(self.load_dict) - set(checkpoint))
        if missing:
            raise RuntimeError(f"cannot resume from checkpoint {path}: it holds no {missing}.")
        max_epochs = engine.state.max_epochs
        for name, obj in self.load_dict.items():
            obj.load_state_dict(checkpoint[name])
        if max_epochs is not None and engine.state.epoch >= max_epochs:
            logger.info("checkpoint %s is already at epoch %d of %d.", path, engine.state.epoch, max_epochs)
        engine.state.max_epochs = max_epochs
        self.loaded_from = path
        logger.info("resumed from %s at epoch %d, iteration %d", path, engine.state.epoch, engine.state.iteration)
