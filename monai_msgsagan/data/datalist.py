"""Datalists of radiographs from a folder tree or a CSV, with class filtering, a deterministic stratified split and
a report of every skipped row or unreadable file; plus cached MONAI datasets for repeated epochs."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import CacheDataset, Dataset, PersistentDataset

from monai_msgsagan.files import atomic_write_text
from monai_msgsagan.transforms.io import XRAY_EXTENSIONS, XrayReadError, read_xray

__all__ = ["SkippedItem", "DatalistReport", "Datalist", "NoUsableImagesError", "build_datalist", "make_dataset"]

_CSV_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")  # public CSVs are often Windows-1252 (curly quotes, degrees)


@dataclass
class SkippedItem:
    """One candidate left out: ``row`` (1-based CSV data row, ``None`` for folder scans), ``path`` and ``reason``."""

    path: str
    reason: str
    row: int | None = None


@dataclass
class DatalistReport:
    """What :func:`build_datalist` did: candidates seen, images kept, and every skipped item with its reason."""

    source: str
    num_candidates: int = 0
    num_used: int = 0
    skipped: list[SkippedItem] = field(default_factory=list)

    def reason_counts(self) -> dict[str, int]:
        """Number of skipped items per kind of reason (the text before the first ``(``/``:``)."""
        return dict(Counter(s.reason.split(" (")[0].split(":")[0] for s in self.skipped))

    def summary(self) -> str:
        """One line: ``<source>: N candidates, M used, K skipped (reason: count, ...)``."""
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.reason_counts().items()))
        return f"{self.source}: {self.num_candidates} candidates, {self.num_used} used, {len(self.skipped)} skipped" + (
            f" ({counts})" if counts else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reason_counts": self.reason_counts()}

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the report as JSON (atomically, creating the folder) and return its path."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2))


class NoUsableImagesError(ValueError):
    """No candidate of a datalist source was usable; ``report`` says why for each one."""

    def __init__(self, message: str, report: DatalistReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class Datalist:
    """Result of :func:`build_datalist`.

    ``train`` and ``val`` are lists of ``{"image": path, "label": int, "class_name": str}`` (MONAI datalist
    items); ``label`` indexes ``class_names`` (``class_names`` is empty and ``label`` 0 when unlabelled).
    """

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    class_names: list[str]
    report: DatalistReport

    @property
    def num_classes(self) -> int:
        """Number of classes (0 when the datalist is unlabelled)."""
        return len(self.class_names)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    raw = path.read_bytes()
    for enc in _CSV_ENCODINGS:
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise ValueError(f"{path}: CSV file has no header row")
    return header, rows


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # free-text cells: names too long, NUL bytes
        return False


def _resolve(value: str, bases: Sequence[Path], extensions: Sequence[str]) -> Path | None:
    """File for a CSV cell: the value itself, relative to each base, or with each known extension added."""
    if not value or "\n" in value or len(value) > 1024:
        return None
    p = Path(value).expanduser()
    candidates = [p] if p.is_absolute() else [b / p for b in bases]
    for c in candidates:
        if _is_file(c):
            return c
    for c in candidates:
        for ext in (*extensions, *(e.upper() for e in extensions)):
            e = c.with_name(c.name + ext)
            if _is_file(e):
                return e
    return None


def _is_dicom_without_extension(path: Path) -> bool:
    if path.suffix:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def _broken_link(path: Path) -> str | None:
    """Why the symbolic link ``path`` leads nowhere usable (dangling, or a loop), or ``None``.

    A link to a folder that contains the link (``sub/up -> ..``) counts as a loop: following it would never end.
    """
    if not path.is_symlink():
        return None
    try:
        target = os.readlink(path)
    except OSError as e:
        return f"unreadable symbolic link ({e.strerror})"
    try:
        resolved = path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return f"symbolic link loop (-> {target})"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return f"symbolic link loop (-> {target})"
        if e.errno == errno.ENOENT:
            return f"dangling symbolic link (target {target} does not exist)"
        return f"unusable symbolic link (-> {target}: {e.strerror})"
    parent = path.parent.resolve()
    if resolved.is_dir() and (resolved == parent or resolved in parent.parents):
        return f"symbolic link loop (folder link -> {target}, an ancestor of itself)"
    return None


def _read_error(path: Path) -> str | None:
    """Why ``path`` cannot be used as a radiograph, or ``None`` when it loads."""
    try:
        read_xray(path)
    except XrayReadError as e:
        return e.reason
    return None


def _natural_sorted(names: set[str]) -> list[str]:
    if names and all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def _split(items: list[dict[str, Any]], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Stratified split by ``label``: per class, a seeded permutation of the path-sorted items."""
    rng = np.random.default_rng(seed)
    train: list[dict] = []
    val: list[dict] = []
    for label in sorted({it["label"] for it in items}):
        group = sorted((it for it in items if it["label"] == label), key=lambda it: it["image"])
        order = rng.permutation(len(group))
        n_val = int(round(len(group) * val_fraction))
        if val_fraction > 0 and len(group) >= 2:
            n_val = min(max(n_val, 1), len(group) - 1)
        elif len(group) < 2:
            n_val = 0
        val_idx = set(order[:n_val].tolist())
        for i, it in enumerate(group):
            (val if i in val_idx else train).append(it)
    key = lambda it: it["image"]  # noqa: E731
    return sorted(train, key=key), sorted(val, key=key)


def build_datalist(
    source: str | Path,
    label_column: str | None = None,
    path_column: str | None = None,
    classes: Sequence[str] | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
    image_dir: str | Path | None = None,
    check_readable: bool = True,
    labels_from_subfolders: bool = False,
    extensions: Sequence[str] = XRAY_EXTENSIONS,
    num_workers: int = 1,
    report_path: str | Path | None = None,
) -> Datalist:
    """Find radiographs in a folder tree or a CSV and split them into train / validation datalists.

    CSV sources: ``path_column`` holds file paths, absolute or relative to ``image_dir`` (default: the CSV's
    folder and its ``images/`` subfolder); values without an extension are completed with each known one
    (so ``patientid`` = ``COVID-00001`` finds ``images/COVID-00001.jpg``). When ``path_column`` is ``None`` the
    column whose values resolve to the most files is used. The CSV may be UTF-8 or Windows-1252.

    Folder sources: every file with a radiograph extension (and extension-less DICOM files) below the folder;
    with ``labels_from_subfolders`` (implied by ``classes``) the first-level subfolder name is the class.

    Rows with a blank path or label, a missing file, a class not in ``classes``, a duplicate path, or (with
    ``check_readable``) a file that fails :func:`~monai_msgsagan.transforms.read_xray` are skipped and listed in
    ``report`` with the reason; the good ones are kept. In folders, dangling symbolic links and link loops
    (including a folder link to its own ancestor) are listed too.

    Args:
        source: a folder, or a CSV file.
        label_column: CSV column of class names (``None``: unlabelled, every label 0).
        path_column: CSV column of image paths (``None``: detected).
        classes: class names to keep, in label order (``None``: every class found, sorted).
        val_fraction: fraction of each class put into ``val`` (stratified, at least one image per class with 2+).
        seed: split seed; the split depends only on the seed and the set of paths.
        image_dir: base folder for relative CSV paths.
        check_readable: decode every file once and skip the ones that cannot be used (costs one full read).
        labels_from_subfolders: folder sources: class = first-level subfolder.
        extensions: file endings considered images (lower case).
        num_workers: threads decoding files for ``check_readable``.
        report_path: also write ``report`` there as JSON, before raising when no image is usable.

    Returns:
        :class:`Datalist` with ``train``, ``val``, ``class_names`` and ``report``.

    Raises:
        ValueError: the source does not exist, a named column is missing, or no path column can be found.
        NoUsableImagesError: (a ``ValueError``) no image is left; the message gives the counts of skip reasons and
            its ``report`` every skipped item.
    """
    source = Path(source)
    if not (0.0 <= val_fraction < 1.0):
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not source.exists():
        raise ValueError(f"datalist source not found: {source}")
    report = DatalistReport(source=str(source))
    wanted = list(classes) if classes is not None else None
    if wanted is not None and len(set(wanted)) != len(wanted):
        raise ValueError(f"classes has duplicates: {wanted}")
    candidates: list[tuple[int | None, Path, str, str]] = []  # (row, path, raw path, class name)

    if source.is_dir():
        use_sub = labels_from_subfolders or wanted is not None
        entries = sorted(
            p for p in source.rglob("*") if not any(part.startswith(".") for part in p.relative_to(source).parts)
        )
        files = []
        for p in entries:
            broken = _broken_link(p)
            if broken is not None:
                report.skipped.append(SkippedItem(str(p), broken))
            elif _is_file(p) and (p.name.lower().endswith(tuple(extensions)) or _is_dicom_without_extension(p)):
                files.append(p)
        for p in files:
            rel = p.relative_to(source)
            name = rel.parts[0] if use_sub and len(rel.parts) > 1 else ""
            if use_sub and not name:
                report.skipped.append(SkippedItem(str(p), "not in a class subfolder"))
                continue
            candidates.append((None, p, str(p), name))
    else:
        header, rows = _read_csv(source)
        bases = [Path(image_dir)] if image_dir is not None else [source.parent, source.parent / "images"]
        for col in (label_column, path_column):
            if col is not None and col not in header:
                raise ValueError(f"{source}: column {col!r} not found; columns are {header}")
        if path_column is None:
            probe = rows[:50]
            hits = {c: sum(_resolve(r.get(c, ""), bases, extensions) is not None for r in probe) for c in header}
            best = max(header, key=lambda c: hits[c])
            if hits[best] == 0:
                raise ValueError(
                    f"{source}: no column holds paths of existing image files (looked in {[str(b) for b in bases]}); "
                    f"columns are {header}; pass path_column= and image_dir="
                )
            path_column = best
        for i, r in enumerate(rows, start=1):
            raw = r.get(path_column, "")
            name = r.get(label_column, "") if label_column is not None else ""
            if not raw:
                reason = f"blank path in column {path_column!r}"
            elif label_column is not None and not name:
                reason = f"blank label in column {label_column!r}"
            elif (p := _resolve(raw, bases, extensions)) is not None:
                candidates.append((i, p, raw, name))
                continue
            else:
                tried = ", ".join(str(b / raw) for b in bases)
                reason = f"file not found (tried {tried} with and without extensions)"
            report.skipped.append(SkippedItem(raw, reason, i))

    report.num_candidates = len(report.skipped) + len(candidates)
    seen: dict[str, int | str] = {}
    chosen: list[tuple[int | None, Path, str]] = []
    for row, p, raw, name in candidates:
        key = str(p.resolve())
        if key in seen:
            report.skipped.append(SkippedItem(raw, f"duplicate of {seen[key]}", row))
            continue
        seen[key] = f"row {row}" if row is not None else str(p)
        if wanted is not None and name not in wanted:
            report.skipped.append(SkippedItem(raw, f"class {name!r} not in requested classes {wanted}", row))
            continue
        chosen.append((row, p, name))

    if check_readable:
        with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:  # decoders release the GIL
            errors = list(pool.map(_read_error, [p for _, p, _ in chosen]))
        for (row, p, _), error in zip(chosen, errors):
            if error is not None:
                report.skipped.append(SkippedItem(str(p), f"unreadable: {error}", row))
        chosen = [c for c, error in zip(chosen, errors) if error is None]

    labelled = label_column is not None or (source.is_dir() and (labels_from_subfolders or wanted is not None))
    class_names = (wanted if wanted is not None else _natural_sorted({n for _, _, n in chosen})) if labelled else []
    index = {n: i for i, n in enumerate(class_names)}
    items = [{"image": str(p), "label": index.get(n, 0), "class_name": n} for _, p, n in chosen]
    report.num_used = len(items)
    if report_path is not None:
        report.to_json(report_path)
    if not items:
        where = f"; every file and its reason are in {report_path}" if report_path is not None else ""
        raise NoUsableImagesError(f"no usable images: {report.summary()}{where}", report)
    train, val = _split(items, val_fraction, seed)
    return Datalist(train=train, val=val, class_names=list(class_names), report=report)


def make_dataset(
    data: Sequence[dict[str, Any]],
    transform: Callable | None,
    cache: str = "memory",
    cache_dir: str | Path | None = None,
    cache_rate: float = 1.0,
    num_workers: int = 1,
) -> Dataset:
    """A MONAI dataset over a datalist that caches the deterministic part of ``transform`` across epochs.

    Args:
        data: datalist items (``Datalist.train`` / ``.val``).
        transform: e.g. :func:`~monai_msgsagan.transforms.xray_train_transforms`; caching stops before its first
            random transform, so augmentation and the pyramid are recomputed every epoch.
        cache: ``"memory"`` (``CacheDataset``: preprocessed images held in RAM, filled up front),
            ``"disk"`` (``PersistentDataset`` under ``cache_dir``: survives restarts), or ``"none"``.
        cache_dir: folder for ``"disk"`` caching.
        cache_rate: fraction of items held in memory for ``"memory"``.
        num_workers: threads that fill the memory cache.
    """
    if cache == "memory":
        return CacheDataset(list(data), transform, cache_rate=cache_rate, num_workers=num_workers, progress=False)
    if cache == "disk":
        if cache_dir is None:
            raise ValueError("cache='disk' needs cache_dir")
        return PersistentDataset(list(data), transform, cache_dir=cache_dir)
    if cache == "none":
        return Dataset(list(data), transform)
    raise ValueError(f"cache must be 'memory', 'disk' or 'none', got {cache!r}")
