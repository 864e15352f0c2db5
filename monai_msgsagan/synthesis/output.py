"""Writing a run's outputs all or nothing: the DICOM series folder and report.json."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch

from monai_msgsagan.dicom import write_synthetic_dicom_series

__all__ = ["REPORT_FILENAME", "OutputError", "check_output_dir", "write_series_atomically", "write_report"]

REPORT_FILENAME = "report.json"


class OutputError(OSError):
    """The output folder cannot take the run's files; the message names the folder and the reason."""


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


def write_series_atomically(
    images: torch.Tensor, output_dir: str | Path, model_name: str, model_version: str, **kwargs: Any
) -> list[Path]:
    """Write one synthetic DICOM series into a new sub-folder of ``output_dir``, all or nothing.

    The files are written into a hidden temporary folder inside ``output_dir`` that is renamed to
    ``synthetic_<UTC time>_<random>`` only when every file is written; on any error it is removed.

    Args:
        images: (N, 1, H, W) float in [-1, 1].
        kwargs: passed to :func:`monai_msgsagan.dicom.write_synthetic_dicom_series`.

    Returns:
        the written files, in image order, inside the final folder.
    """
    output_dir = Path(output_dir)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    final = output_dir / f"synthetic_{stamp}_{uuid.uuid4().hex[:8]}"
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=output_dir))
    try:
        paths = write_synthetic_dicom_series(images, partial, model_name, model_version, **kwargs)
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return [final / p.name for p in paths]


def write_report(report: dict[str, Any], output_dir: str | Path) -> Path:
    """Write ``report`` as ``output_dir/report.json`` through a temporary file and an atomic rename."""
    target = Path(output_dir) / REPORT_FILENAME
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".json", dir=output_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
