"""Checkpoint integrity: files bound to their SHA-256, loaded only when intact, and weights that are all finite.

Every checkpoint ``checkpoint_{iteration}.pt`` has a sidecar ``checkpoint_{iteration}.pt.sha256`` (``sha256sum``
format, so ``sha256sum -c`` checks it too) holding the SHA-256 of the file's bytes. Files are written atomically
(:func:`~monai_msgsagan.files.atomic_write_bytes`: temporary file, ``fsync``, rename), the sidecar first, so a kill
at any moment leaves every earlier checkpoint intact and a half-written one fails verification. Checkpoints are
read only after verification, with ``torch.load(weights_only=True)``. Every refusal names the file and the reason.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.handlers import DiskSaver

from monai_msgsagan.distributed import broadcast_object, get_rank
from monai_msgsagan.engines.trainer import NonFiniteLossError
from monai_msgsagan.files import atomic_write_bytes
from monai_msgsagan.generation import GenerationError, generate

__all__ = [
    "CheckpointIntegrityError",
    "NonFiniteWeightsError",
    "VerifiedDiskSaver",
    "checkpoints",
    "is_generator",
    "load_checkpoint",
    "newest_intact_checkpoint",
    "nonfinite_entries",
    "remove_stale_files",
    "save_checkpoint",
    "verify_checkpoint",
    "weights_problems",
    "write_on_rank",
]

CHECKPOINT_PREFIX = "checkpoint"
HASH_SUFFIX = ".sha256"
_CHECKPOINT_NAME = re.compile(rf"^{CHECKPOINT_PREFIX}_(\d+)\.pt$")
#: images of the fixed batch every saved generator must render finitely
CHECK_BATCH_SIZE = 4
CHECK_BATCH_SEED = 20240601


class NonFiniteWeightsError(NonFiniteLossError):
    """Raised instead of saving weights whose tensors or generated images are not all finite."""


class CheckpointIntegrityError(RuntimeError):
    """A checkpoint file is missing its integrity hash, fails it, or cannot be unpickled."""


# ---------------------------------------------------------------------------------------------------- writing
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
    path, buffer = Path(path), io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getbuffer()
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


def write_on_rank(write: Callable[[], object], rank: int = 0) -> None:
    """Call ``write`` on ``rank`` only; an ``OSError`` it raises is raised on every rank (collective when
    distributed), so no rank goes on as if the file had been written."""
    error: OSError | None = None
    if get_rank() == rank:
        try:
            write()
        except OSError as e:
            error = e
    message = broadcast_object(str(error) if error is not None else None, src=rank)
    if error is not None:
        raise error
    if message is not None:
        raise OSError(f"rank {rank} could not write: {message}")


class VerifiedDiskSaver(DiskSaver):
    """Ignite's ``DiskSaver`` writing with :func:`save_checkpoint`: atomic, the SHA-256 sidecar first.

    Ignite's own atomic write is not used: it neither ``fsync``s nor hashes the bytes it writes, and a full disk
    surfaces from ``torch.save`` without the file's name. Called on every rank, like Ignite's ``Checkpoint`` calls
    it; only ``save_on_rank`` writes, and its ``OSError`` (naming the file) is raised on every rank. ``remove``
    deletes a checkpoint together with its sidecar.
    """

    def __init__(self, dirname: str | os.PathLike, save_on_rank: int = 0) -> None:
        super().__init__(dirname, atomic=True, create_dir=True, require_empty=False, save_on_rank=save_on_rank)

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        write_on_rank(lambda: save_checkpoint(checkpoint, self.dirname / filename), self.save_on_rank)

    def remove(self, filename: str) -> None:
        if get_rank() == self.save_on_rank:
            path = self.dirname / filename
            path.unlink(missing_ok=True)
            _hash_path(path).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------- reading
def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _read_verified(path: Path, require_hash: bool) -> bytes:
    """The bytes of ``path`` once they pass its SHA-256 sidecar; :class:`CheckpointIntegrityError` otherwise."""

    def refuse(reason: str) -> CheckpointIntegrityError:
        return CheckpointIntegrityError(f"{path}: {reason}")

    try:
        data = path.read_bytes()
    except OSError as e:
        raise refuse(f"unreadable ({e.strerror or _first_line(e)})") from e
    sidecar = _hash_path(path)
    if not sidecar.is_file():
        if not require_hash:
            return data
        raise refuse(
            f"no integrity file {sidecar.name} (written before integrity hashes, or its write was interrupted)"
        )
    try:
        expected = sidecar.read_text().split()[0].lower()
    except (OSError, UnicodeDecodeError) as e:
        raise refuse(f"unreadable integrity file {sidecar.name} ({_first_line(e)})") from e
    except IndexError as e:
        raise refuse(f"empty integrity file {sidecar.name}") from e
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise refuse(
            f"SHA-256 mismatch (expected {expected[:16]}..., found {actual[:16]}...): the file was changed or "
            "damaged after it was written"
        )
    return data


def verify_checkpoint(path: str | os.PathLike) -> str | None:
    """Why the checkpoint ``path`` fails its SHA-256 check (``"{path}: {reason}"``), or ``None`` when it passes."""
    try:
        _read_verified(Path(path), require_hash=True)
    except CheckpointIntegrityError as e:
        return str(e)
    return None


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device | None = "cpu", require_hash: bool = True
) -> dict[str, Any]:
    """Verify ``path`` against its SHA-256 sidecar, then ``torch.load(weights_only=True)`` it.

    Raises:
        CheckpointIntegrityError: the file is unreadable, has no (or a wrong) hash, or does not unpickle; the
            message names the file and the reason.
    """
    path = Path(path)
    data = _read_verified(path, require_hash)
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, KeyError, AttributeError) as e:
        raise CheckpointIntegrityError(f"{path}: not a weights-only checkpoint ({_first_line(e)})") from e
    if not isinstance(checkpoint, dict):
        raise CheckpointIntegrityError(f"{path}: expected a dict of state dicts, got {type(checkpoint).__name__}")
    return checkpoint


def checkpoints(save_dir: str | os.PathLike) -> list[Path]:
    """The files ``checkpoint_{iteration}.pt`` of ``save_dir``, newest (highest iteration) first, verified or not."""
    if not Path(save_dir).is_dir():
        return []
    found = [(int(m.group(1)), p) for p in Path(save_dir).iterdir() if (m := _CHECKPOINT_NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def newest_intact_checkpoint(save_dir: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest iteration in ``save_dir`` that passes :func:`verify_checkpoint`."""
    return next((p for p in checkpoints(save_dir) if verify_checkpoint(p) is None), None)


def remove_stale_files(save_dir: str | os.PathLike, model_path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of interrupted writes (ours only) and hash files whose checkpoint is gone."""
    save_dir, model_path = Path(save_dir), Path(model_path)
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


# ---------------------------------------------------------------------------------------------------- values
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


def is_generator(obj: Any) -> bool:
    """Whether ``obj`` is a generator network (a module with ``latent_dim`` and ``num_classes``)."""
    return isinstance(obj, torch.nn.Module) and hasattr(obj, "latent_dim") and hasattr(obj, "num_classes")


def weights_problems(name: str, network: torch.nn.Module) -> list[str]:
    """Why ``network``'s weights must not be saved: its non-finite entries or, when all are finite and it is a
    generator, its failure to render a fixed check batch ``(4, C, R, R)`` with finite values
    (:func:`~monai_msgsagan.generation.generate`); ``[]`` when they may be."""
    problems = nonfinite_entries(network.state_dict(), name)
    if problems or not is_generator(network):
        return problems
    try:
        generate(network, CHECK_BATCH_SIZE, CHECK_BATCH_SEED)
    except GenerationError as e:
        return [f"{name}: {e}"]
    return []
