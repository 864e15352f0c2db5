"""Verified resume checkpoints, the exported EMA generator, and exact (multi-process) resume.

Every checkpoint ``checkpoint_{iteration}.pt`` has a sidecar ``checkpoint_{iteration}.pt.sha256`` (``sha256sum``
format, so ``sha256sum -c`` checks it too) holding the SHA-256 of the file's bytes. Files are written atomically
(temporary file, ``fsync``, rename), the sidecar first, so a kill at any moment leaves every earlier checkpoint
intact and a half-written one fails verification. Nothing is written whose tensors are not all finite or whose
generator renders non-finite images on a fixed check batch.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import pickle
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from monai_msgsagan.artifact import GeneratorRecord, save_record
from monai_msgsagan.distributed import all_gather_object, broadcast_object, get_rank, is_distributed, select_rank_state
from monai_msgsagan.engines.trainer import NonFiniteLossError
from monai_msgsagan.files import atomic_write_bytes
from monai_msgsagan.generation import GenerationError, generate

__all__ = [
    "CheckpointIntegrityError",
    "GanCheckpointSaver",
    "GlobalRandomState",
    "NonFiniteWeightsError",
    "ResumeFromLatest",
    "atomic_torch_save",
    "generator_output_problem",
    "latest_checkpoint",
    "load_checkpoint",
    "newest_intact_checkpoint",
    "nonfinite_entries",
    "save_checkpoint",
    "verify_checkpoint",
]

logger = logging.getLogger(__name__)
CHECKPOINT_PREFIX = "checkpoint"
HASH_SUFFIX = ".sha256"
_CHECKPOINT_NAME = re.compile(rf"^{CHECKPOINT_PREFIX}_(\d+)\.pt$")
#: images of the fixed batch every saved generator must render finitely
CHECK_BATCH_SIZE = 4
CHECK_BATCH_SEED = 20240601


class NonFiniteWeightsError(NonFiniteLossError):
    """Raised instead of saving a checkpoint whose tensors or generated images are not all finite."""


class CheckpointIntegrityError(RuntimeError):
    """A checkpoint file is missing its integrity hash, fails it, or cannot be unpickled."""


# ---------------------------------------------------------------------------------------------------- files
def _serialize(obj: Any) -> memoryview:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically: a reader never sees a partial file.

    The object is serialised in memory first, so a failed write (a full disk, say) raises an ``OSError`` that
    names ``path`` and its reason, and leaves no temporary file behind.
    """
    return atomic_write_bytes(_serialize(obj), path)


def _hash_path(path: Path) -> Path:
    return path.with_name(path.name + HASH_SUFFIX)


def save_checkpoint(obj: Any, path: str | os.PathLike) -> str:
    """Save ``obj`` to ``path`` with its SHA-256 in ``path + ".sha256"``; returns the hex digest.

    The sidecar is written first: a kill between the two writes leaves a checkpoint that fails verification (or
    none at all), never an unverified one. When the checkpoint's own write fails (a full disk), the sidecar is put
    back as it was (removed, when there was none), so no orphan hash file is left.

    Raises:
        OSError: naming the file that could not be written and why (see
            :func:`~monai_msgsagan.files.atomic_write_bytes`).
    """
    path = Path(path)
    data = _serialize(obj)
    digest = hashlib.sha256(data).hexdigest()
    sidecar = _hash_path(path)
    previous = sidecar.read_bytes() if sidecar.is_file() else None
    atomic_write_bytes(f"{digest}  {path.name}\n".encode(), sidecar)
    try:
        atomic_write_bytes(data, path)
    except OSError:
        try:
            if previous is None:
                sidecar.unlink(missing_ok=True)
            else:
                atomic_write_bytes(previous, sidecar)
        except OSError:  # the checkpoint's own error is the one to report; a stale sidecar fails verification
            pass
        raise
    return digest


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _check_bytes(path: Path, data: bytes, require_hash: bool = True) -> str | None:
    """Why the bytes ``data`` of ``path`` fail verification against the sidecar, or ``None`` when they pass."""
    sidecar = _hash_path(path)
    if not sidecar.is_file():
        if not require_hash:
            return None
        return f"no integrity file {sidecar.name} (written before integrity hashes, or its write was interrupted)"
    try:
        expected = sidecar.read_text().split()[0].lower()
    except (OSError, UnicodeDecodeError) as e:
        return f"unreadable integrity file {sidecar.name} ({_first_line(e)})"
    except IndexError:
        return f"empty integrity file {sidecar.name}"
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        return (
            f"SHA-256 mismatch (expected {expected[:16]}..., found {actual[:16]}...): the file was changed or "
            "damaged after it was written"
        )
    return None


def verify_checkpoint(path: str | os.PathLike, require_hash: bool = True) -> str | None:
    """Why the checkpoint ``path`` fails its SHA-256 check, or ``None`` when it passes.

    ``require_hash=False`` accepts a checkpoint without a sidecar (written by an older version).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"unreadable ({e.strerror or _first_line(e)})"
    return _check_bytes(path, data, require_hash)


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device | None = "cpu", require_hash: bool = True
) -> dict[str, Any]:
    """Verify ``path`` against its SHA-256 sidecar, then ``torch.load(weights_only=True)`` it.

    Raises:
        CheckpointIntegrityError: the file is unreadable, has no (or a wrong) hash, or does not unpickle; the
            message names the file and the reason.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointIntegrityError(f"{path}: unreadable ({e.strerror or _first_line(e)})") from e
    reason = _check_bytes(path, data, require_hash)
    if reason is not None:
        raise CheckpointIntegrityError(f"{path}: {reason}")
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, KeyError, AttributeError) as e:
        raise CheckpointIntegrityError(f"{path}: not a weights-only checkpoint ({_first_line(e)})") from e
    if not isinstance(checkpoint, dict):
        raise CheckpointIntegrityError(f"{path}: expected a dict of state dicts, got {type(checkpoint).__name__}")
    return checkpoint


def _checkpoints(save_dir: Path) -> list[tuple[int, Path]]:
    if not Path(save_dir).is_dir():
        return []
    return [(int(m.group(1)), p) for p in Path(save_dir).iterdir() if (m := _CHECKPOINT_NAME.match(p.name))]


def latest_checkpoint(save_dir: str | os.PathLike) -> Path | None:
    """The resume checkpoint with the highest iteration in ``save_dir`` (verified or not), or ``None``."""
    found = _checkpoints(Path(save_dir))
    return max(found)[1] if found else None


def newest_intact_checkpoint(save_dir: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest iteration in ``save_dir`` that passes :func:`verify_checkpoint`."""
    for _, path in sorted(_checkpoints(Path(save_dir)), reverse=True):
        if verify_checkpoint(path) is None:
            return path
    return None


def _remove_stale_files(save_dir: Path, model_path: Path) -> list[Path]:
    """Temporary files of interrupted writes (ours only) and hash files whose checkpoint is gone."""
    patterns = [
        re.compile(rf"^\.{CHECKPOINT_PREFIX}_\d+\.pt(\{HASH_SUFFIX})?\.[A-Za-z0-9_]+\.tmp$"),
        re.compile(rf"^\.{re.escape(model_path.name)}\.[A-Za-z0-9_]+\.tmp$"),
    ]
    orphan = re.compile(rf"^({CHECKPOINT_PREFIX}_\d+\.pt)\{HASH_SUFFIX}$")
    removed = []
    for folder in {save_dir, model_path.parent}:
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            m = orphan.match(p.name) if folder == save_dir else None
            if any(pat.match(p.name) for pat in patterns) or (m and not (folder / m.group(1)).exists()):
                p.unlink(missing_ok=True)
                removed.append(p)
    return sorted(removed)


# ---------------------------------------------------------------------------------------------------- checks
def nonfinite_entries(state: Any, prefix: str = "") -> list[str]:
    """``"name: k of n values not finite"`` for every floating tensor or float in a nested state dict."""
    found: list[str] = []
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() or state.is_complex():
            bad = int((~torch.isfinite(state)).sum())
            if bad:
                found.append(f"{prefix}: {bad} of {state.numel()} values not finite")
    elif isinstance(state, float):
        if not math.isfinite(state):
            found.append(f"{prefix}: {state}")
    elif isinstance(state, dict):
        for key, value in state.items():
            found += nonfinite_entries(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            found += nonfinite_entries(value, f"{prefix}[{i}]")
    return found


def _is_generator(obj: Any) -> bool:
    return isinstance(obj, torch.nn.Module) and hasattr(obj, "latent_dim") and hasattr(obj, "num_classes")


def generator_output_problem(name: str, network: torch.nn.Module) -> str | None:
    """Why ``network`` fails to render a fixed check batch (:func:`~monai_msgsagan.generation.generate`), or
    ``None``."""
    try:
        generate(network, CHECK_BATCH_SIZE, CHECK_BATCH_SEED)
    except GenerationError as e:
        return f"{name}: {e}"
    return None


# ---------------------------------------------------------------------------------------------------- random states
class GlobalRandomState:
    """The process-wide random states (torch CPU and CUDA, numpy, Python) as a checkpointable object.

    The state dict holds only tensors and plain numbers, so it loads with ``torch.load(weights_only=True)``.
    In a multi-process run ``state_dict`` is collective: it gathers every rank's states into ``"per_rank"``, and
    ``load_state_dict`` restores each rank's own (so a resumed ``torchrun`` draws what an uninterrupted one would).
    Data order is not part of it: samplers should derive their order from (seed, epoch), like
    ``DistributedSampler`` (which MONAI workflows ``set_epoch`` every epoch), so that it does not depend on when
    an iterator was created.
    """

    @staticmethod
    def _local_state() -> dict[str, Any]:
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

    def state_dict(self) -> dict[str, Any]:
        state = self._local_state()
        if is_distributed():
            state["per_rank"] = all_gather_object(state)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = select_rank_state(state, "random states")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        keys = state["numpy_keys"].numpy().astype(np.uint32)
        np.random.set_state(("MT19937", keys, state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"]))
        random.setstate((state["python_version"], tuple(state["python_internal"].tolist()), state["python_gauss"]))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------------- saver
class GanCheckpointSaver:
    """Save a verified exact-resume checkpoint and the exported generator every ``epoch_interval`` epochs.

    The resume checkpoint ``{save_dir}/checkpoint_{iteration}.pt`` holds every object of ``save_dict`` (G, D, EMA
    G, optimizers, the trainer with its RNG and augmentation state, :class:`GlobalRandomState`) and has its SHA-256
    in ``checkpoint_{iteration}.pt.sha256``. ``model_path`` receives the flat state dict of ``model`` (the EMA
    generator), loadable into :class:`~monai_msgsagan.networks.InferenceGenerator`, and then, with ``record``, its
    record (``model.json``) naming the weights' SHA-256 (:func:`~monai_msgsagan.artifact.save_record`): the two
    are written together, after the weights exist. All files are written atomically, so a run killed at any moment
    leaves the previous checkpoint intact.

    Guarantees:

    - **No diverged weights on disk**: before writing, every tensor (and float) of the checkpoint must be finite and
      every generator in it (``model`` and any module with ``latent_dim``) must render a fixed check batch
      ``(4, C, R, R)`` with finite values; otherwise nothing is written and :class:`NonFiniteWeightsError` names
      the offending entries and the newest intact checkpoint.
    - **Only trained weights are exported**: with a trainer that counts its applied generator updates
      (:attr:`~monai_msgsagan.engines.MultiScaleGanTrainer.generator_updates`), nothing is written (no checkpoint,
      no ``model_path``, no record) when no update was applied since the last export, e.g. a new run whose first
      epoch skipped every step as non-finite: the run stops with :class:`NonFiniteLossError` and the previous
      model and its record stay as they were.
    - **The last good checkpoint survives**: rotation keeps the newest ``n_saved`` checkpoints that pass
      verification; files that fail it never count towards ``n_saved``.
    - **A current export**: when training completes and the newest checkpoint already holds the final iteration
      (a rerun of a finished run, or one killed between the checkpoint and ``model_path``) and this run's model
      was restored from it, ``model_path`` is rewritten from that checkpoint if it differs, and its record written.
    - Temporary files of writes interrupted by a kill are removed when the next run starts.

    Multi-process runs: attach on every rank (like Ignite's ``Checkpoint``); state dicts are built on every rank
    (per-rank random states are gathered), only rank 0 writes, and an error on one rank is raised on all of them.

    Args:
        save_dir: folder of the resume checkpoints.
        save_dict: name -> object with ``state_dict``/``load_state_dict``.
        model: the module exported to ``model_path`` (usually the EMA generator).
        model_path: e.g. ``{bundle_root}/models/model.pt``.
        record: the run's :class:`~monai_msgsagan.artifact.GeneratorRecord`, written beside ``model_path`` each
            time the weights are (``None``: weights only).
        epoch_interval: save every this many epochs (and always when training completes).
        n_saved: verified resume checkpoints to keep.
        engine_key: name under which the engine itself (its state, trainer RNG, augmentation) is saved when the
            handler is attached; ``None`` leaves it out.
        enabled: ``False`` makes the handler a no-op.
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
        record: GeneratorRecord | None = None,
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
        self.record = record
        self.last_saved_iteration: int | None = None
        self._exported_updates = 0  # the engine's generator_updates at the last export of this process

    @staticmethod
    def _updates(engine: Engine) -> int | None:
        """The engine's count of applied generator updates, or ``None`` when it keeps none."""
        updates = getattr(engine, "generator_updates", None)
        return None if updates is None else int(updates)

    def attach(self, engine: Engine) -> None:
        if not self.enabled:
            return
        if self.engine_key is not None:
            self.save_dict = {**self.save_dict, self.engine_key: engine}
        engine.add_event_handler(Events.STARTED, self._on_started)
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.epoch_interval), self)
        engine.add_event_handler(Events.COMPLETED, self._on_completed)

    def _on_started(self, _engine: Engine) -> None:
        if get_rank() != 0:
            return
        removed = _remove_stale_files(self.save_dir, self.model_path)
        if removed:
            names = [str(p) for p in removed]
            logger.info("removed %d leftover file(s) of interrupted writes: %s", len(removed), names)

    def _generators(self) -> list[tuple[str, torch.nn.Module]]:
        found = [(name, obj) for name, obj in self.save_dict.items() if _is_generator(obj)]
        if _is_generator(self.model) and all(obj is not self.model for _, obj in found):
            found.append((str(self.model_path.name), self.model))
        return found

    def _problems(self, checkpoint: dict[str, Any], model_state: dict[str, Any]) -> list[str]:
        problems = nonfinite_entries(checkpoint) + nonfinite_entries(model_state, self.model_path.name)
        if not problems:
            problems = [p for name, net in self._generators() if (p := generator_output_problem(name, net)) is not None]
        return problems

    def __call__(self, engine: Engine) -> None:
        iteration = engine.state.iteration
        path = self.save_dir / f"{CHECKPOINT_PREFIX}_{iteration}.pt"
        checkpoint = {name: obj.state_dict() for name, obj in self.save_dict.items()}  # collective when distributed
        model_state = self.model.state_dict()
        problems = next((p for p in all_gather_object(self._problems(checkpoint, model_state)) if p), [])
        if problems:
            raise NonFiniteWeightsError(self._refusal(engine, path, problems))
        updates = self._updates(engine)
        if updates is not None and updates <= self._exported_updates:
            raise NonFiniteLossError(
                f"epoch {engine.state.epoch}, iteration {iteration}: no generator update was applied since the last "
                f"export (every training step was skipped as non-finite), so there is nothing to export: not writing "
                f"{path.name} or {self.model_path}; {self.model_path} and its record are left as they were. Lower the "
                "learning rates, enable a gradient penalty or check the data for NaN."
            )
        error: OSError | None = None
        if get_rank() == 0:
            try:
                save_checkpoint(checkpoint, path)
                atomic_torch_save(model_state, self.model_path)
                if self.record is not None:
                    save_record(self.record, self.model_path)
            except OSError as e:
                error = e
        message = broadcast_object(str(error) if error is not None else None)
        if error is not None:
            raise error
        if message is not None:
            raise OSError(f"rank 0 could not write the checkpoint: {message}")
        self.last_saved_iteration = iteration
        self._exported_updates = updates or 0
        if get_rank() == 0:
            self._rotate()
        logger.info("epoch %d: checkpoint %s, model %s", engine.state.epoch, path, self.model_path)

    def _refusal(self, engine: Engine, path: Path, problems: list[str]) -> str:
        good = newest_intact_checkpoint(self.save_dir)
        where = (
            f"the newest intact checkpoint is {good} (SHA-256 verified)"
            if good is not None
            else f"no intact checkpoint exists in {self.save_dir} yet"
        )
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        return (
            f"epoch {engine.state.epoch}, iteration {engine.state.iteration}: not saving {path.name} or "
            f"{self.model_path}: the weights diverged ({shown}). Nothing was written: {where}, and "
            f"{self.model_path} was left as it was. Lower the learning rates, enable a gradient penalty or check the "
            "data for NaN."
        )

    def _rotate(self) -> None:
        """Keep the newest ``n_saved`` verified checkpoints; older files go, whether they verify or not."""
        good = 0
        for _, p in sorted(_checkpoints(self.save_dir), reverse=True):
            if good >= self.n_saved:
                p.unlink(missing_ok=True)
                _hash_path(p).unlink(missing_ok=True)
            elif verify_checkpoint(p) is None:
                good += 1

    def _on_completed(self, engine: Engine) -> None:
        iteration = engine.state.iteration
        if iteration == 0 or self.last_saved_iteration == iteration:
            return
        newest = None
        if get_rank() == 0:
            newest = newest_intact_checkpoint(self.save_dir)
        newest = broadcast_object(str(newest) if newest is not None else None)
        if newest is None or _CHECKPOINT_NAME.match(Path(newest).name).group(1) != str(iteration):
            self(engine)  # training ended between checkpoint intervals
        elif get_rank() == 0:
            self._export_from(Path(newest))

    def _export_from(self, path: Path) -> None:
        """Rewrite ``model_path`` from the checkpoint ``path`` when it is missing, unreadable or different, and
        write its record; nothing when this run's model does not hold that checkpoint's weights (a checkpoint of
        another run, left in ``save_dir``)."""
        key = next((name for name, obj in self.save_dict.items() if obj is self.model), None)
        expected = load_checkpoint(path)[key] if key is not None else self.model.state_dict()
        expected = {k: v.cpu() for k, v in expected.items()}
        held = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        if held.keys() != expected.keys() or not all(torch.equal(held[k], expected[k]) for k in expected):
            logger.warning(
                "%s is not the checkpoint this run's model was restored from; %s not rewritten from it.",
                path,
                self.model_path,
            )
            return
        reason = None
        try:
            current = torch.load(self.model_path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            reason = "is missing"
        except Exception as e:  # noqa: BLE001 - any unreadable export is rewritten
            reason = f"is unreadable ({_first_line(e)})"
        else:
            same = isinstance(current, dict) and current.keys() == expected.keys()
            if not (same and all(torch.equal(current[k], expected[k]) for k in expected)):
                reason = "holds other weights (a run stopped between the checkpoint and the export)"
        if reason is not None:
            problems = nonfinite_entries(expected, self.model_path.name)
            if problems:
                raise NonFiniteWeightsError(f"{path}: not exporting {self.model_path}: {'; '.join(problems[:5])}")
            atomic_torch_save(expected, self.model_path)
            logger.warning("%s %s; rewritten from the newest checkpoint %s.", self.model_path, reason, path)
        if self.record is not None:
            save_record(self.record, self.model_path)


# ---------------------------------------------------------------------------------------------------- resume
@dataclass(eq=False)
class ResumeFromLatest:
    """At ``STARTED``, load the newest intact checkpoint of ``save_dir`` (if any) into ``load_dict``: exact resume.

    Each candidate, newest first, is verified against its SHA-256 sidecar, loaded with
    ``torch.load(weights_only=True)`` and checked for non-finite values. One that fails is reported in a single
    warning line (file and reason) and the next older one is tried; when no candidate passes, a ``RuntimeError``
    lists every file with its reason (move them away to start afresh). A checkpoint that lacks an entry of
    ``load_dict`` (a different configuration) is an error, not a fallback.

    Multi-process runs: attach on every rank. Rank 0 chooses the checkpoint and every rank loads it, so all ranks
    restore the same networks, optimizers, EMA, iteration counters and their own random states.

    Args:
        save_dir: folder of :class:`GanCheckpointSaver` checkpoints.
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

    def _candidates(self) -> Iterable[Path]:
        return [p for _, p in sorted(_checkpoints(self.save_dir), reverse=True)]

    def _choose(self) -> tuple[Path | None, dict[str, Any] | None, str | None]:
        """(the newest usable checkpoint and its content, or ``None``s; an error message when there are checkpoints
        but none is usable)."""
        rejected: list[str] = []
        for path in self._candidates():
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
        for name, obj in self.load_dict.items():
            obj.load_state_dict(checkpoint[name])
        if max_epochs is not None and engine.state.epoch >= max_epochs:
            logger.info("checkpoint %s is already at epoch %d of %d.", path, engine.state.epoch, max_epochs)
        engine.state.max_epochs = max_epochs
        self.loaded_from = path
        logger.info("resumed from %s at epoch %d, iteration %d", path, engine.state.epoch, engine.state.iteration)
