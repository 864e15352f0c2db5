"""Files that are never seen half-written, and file identities.

Every file the package writes (weights, checkpoints, records, reports, synthetic PNG images) goes through
:func:`atomic_write_bytes`: a temporary file in the target folder, ``fsync``, then a rename, so a reader (another
rank, a second run, a crash) sees the old file or the new one, never a part of either.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["atomic_torch_save", "atomic_write_bytes", "atomic_write_text", "file_sha256", "write_png"]


def _write_error(err: OSError, path: Path, size: int) -> OSError:
    """An ``OSError`` that names ``path`` and, for a full disk or quota, says so plainly."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free"
        except OSError:
            free = "free space unknown"
        what = "no space left on device" if err.errno == errno.ENOSPC else "disk quota exceeded"
        return OSError(
            err.errno,
            f"{what}: cannot write {path} ({size / 2**20:.1f} MiB needed, {free} on its file system); the "
            "previous file of that name, if any, is unchanged. Free some space or move the output folder.",
        )
    return OSError(err.errno, f"cannot write {path}: {err.strerror or err}")


def atomic_write_bytes(data: bytes | memoryview, path: str | os.PathLike) -> Path:
    """Write ``data`` to a temporary file in ``path``'s folder, ``fsync`` it, then rename it to ``path``.

    Raises:
        OSError: naming ``path`` (and, for a full disk, the space needed and free); the previous file is unchanged
            and no temporary file is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        raise _write_error(e, path, len(data)) from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def atomic_torch_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically (see :func:`atomic_write_bytes`); returns the path.

    The object is serialised in memory first, so a failed write (a full disk, say) raises an ``OSError`` that
    names ``path`` and its reason, and leaves no temporary file behind.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(buffer.getbuffer(), path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`); returns the path."""
    return atomic_write_bytes(text.encode("utf-8"), path)


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes: the identity of a model file or of a training image."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_png(image: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Write a ``(1, H, W)`` float image in [-1, 1] as an 8-bit grayscale PNG, row ``h`` of the array as row ``h``.

    The orientation is that of :class:`~monai_msgsagan.transforms.LoadXray` (rows top to bottom), the loader the
    generator's training data went through, so a synthetic PNG reads back as the tensor it came from (to 8-bit
    rounding). MONAI's ``PILWriter`` is not used on purpose: it swaps the two spatial axes, to match
    ``LoadImage``'s ``PILReader``, which would store the synthetic radiographs transposed.
    """
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[0] != 1:
        raise ValueError(f"{path}: expected a (1, H, W) image, got shape {arr.shape}.")
    pixels = np.rint((np.clip(arr[0], -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return atomic_write_bytes(buffer.getbuffer(), path)
