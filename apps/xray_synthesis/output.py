"""Writing a run's outputs all or nothing: the DICOM series folder and the run's report.

Several runs may share one output folder, so every run has an id (:func:`new_run_id`): its series goes into
``synthetic_<run id>/`` and its report into ``report_<run id>.json``; ``report.json`` is a copy of the latest run's
report. A run killed while writing (SIGKILL, power loss) leaves a hidden ``.partial-*`` folder behind; the writer
holds an exclusive ``flock`` on a ``.partial-*.lock`` file beside it for as long as it writes, so a later run can
tell a dead writer's folder (lock free) from a live one's (lock held) and removes only the former
(:func:`remove_stale_partials`).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch

from monai_msgsagan.dicom import write_synthetic_dicom_series
from monai_msgsagan.files import atomic_write_text

__all__ = [
    "REPORT_FILENAME",
    "OutputError",
    "check_output_dir",
    "new_run_id",
    "remove_stale_partials",
    "write_series_atomically",
    "write_run_report",
]

REPORT_FILENAME = "report.json"
_PARTIAL_PREFIX = ".partial-"
_LOCK_SUFFIX = ".lock"


class OutputError(OSError):
    """The output folder cannot take the run's files; the message names the folder and the reason."""


def new_run_id() -> str:
    """``<UTC time>_<random>``: sorts by start time, unique across processes and machines."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}_{uuid.uuid4().hex[:8]}"


def check_output_dir(output_dir: str | Path) -> Path:
    """Make sure ``output_dir`` exists (creating it) and files can be created in it.

    Raises:
        OutputError: it is not a folder, cannot be created, or is not writable.
    """
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output path {path} is not a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"output folder {path} cannot be created ({e.strerror}).") from e
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise OutputError(f"output folder {path} is not writable ({e.strerror}).") from e
    return path


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive ``flock`` on ``path``, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_stale_partials(output_dir: str | Path) -> list[str]:
    """Remove the hidden ``.partial-*`` folders (and their lock files) that no live writer holds.

    A folder whose lock file is locked belongs to a run still writing and is kept; a folder without a lock file, or
    whose lock is free, was left by a killed run.

    Returns:
        names of the removed folders, sorted.

    Raises:
        OutputError: a stale folder that cannot be removed (the message names it).
    """
    output_dir = Path(output_dir)
    removed = []
    # by name, folders and lock files alike: a lock file without its folder was left by a writer killed between
    # the rename and the unlink
    for name in sorted({p.name.removesuffix(_LOCK_SUFFIX) for p in output_dir.glob(_PARTIAL_PREFIX + "*")}):
        partial, lock = output_dir / name, output_dir / (name + _LOCK_SUFFIX)
        if partial.is_symlink() or (partial.exists() and not partial.is_dir()):
            continue
        try:
            fd = _try_lock(lock)
        except FileNotFoundError:  # never locked (older writer), or its writer finished and renamed it just now
            fd = -1
        if fd is None:  # a live writer holds it
            continue
        try:
            if partial.exists():
                try:
                    shutil.rmtree(partial)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    raise OutputError(f"stale temporary folder {partial} cannot be removed ({e.strerror}).") from e
                removed.append(name)
            lock.unlink(missing_ok=True)
        finally:
            if fd >= 0:
                os.close(fd)
    return removed


def write_series_atomically(
    images: torch.Tensor,
    output_dir: str | Path,
    model_name: str,
    model_version: str,
    run_id: str | None = None,
    **kwargs: Any,
) -> list[Path]:
    """Write one synthetic DICOM series into a new sub-folder of ``output_dir``, all or nothing.

    The files are written into a hidden ``.partial-*`` folder inside ``output_dir``, locked by this process
    (see the module docstring), that is renamed to ``synthetic_<run id>`` only when every file is written; on any
    error it is removed.

    Args:
        images: (N, 1, H, W) float in [-1, 1].
        run_id: names the folder (default: a new :func:`new_run_id`).
        kwargs: passed to :func:`monai_msgsagan.dicom.write_synthetic_dicom_series`.

    Returns:
        the written files, in image order, inside the final folder.
    """
    output_dir = Path(output_dir)
    final = output_dir / f"synthetic_{run_id or new_run_id()}"
    fd, lock_name = tempfile.mkstemp(prefix=_PARTIAL_PREFIX, suffix=_LOCK_SUFFIX, dir=output_dir)
    lock = Path(lock_name)
    partial = lock.with_name(lock.name[: -len(_LOCK_SUFFIX)])
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        partial.mkdir()
        try:
            paths = write_synthetic_dicom_series(images, partial, model_name, model_version, **kwargs)
            if final.exists():
                raise OutputError(f"series folder {final} already exists.")
            os.replace(partial, final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
    return [final / p.name for p in paths]


def write_run_report(report: dict[str, Any], output_dir: str | Path, run_id: str) -> Path:
    """Write the run's report as ``output_dir/report_<run id>.json``, which no later run touches, then as
    ``report.json`` (the latest run's report, replaced by every run), each through an atomic rename.

    Returns:
        the run's own report file.
    """
    output_dir = Path(output_dir)
    own = output_dir / f"report_{run_id}.json"
    if own.exists():
        raise OutputError(f"report {own} already exists (run ids must be unique).")
    for path in (own, output_dir / REPORT_FILENAME):
        atomic_write_text(path, json.dumps(report, indent=2))
    return own
