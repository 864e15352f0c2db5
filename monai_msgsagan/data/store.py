"""A preprocessed image store: every radiograph decoded, checked, normalised and resized once, then read by
training from ``.npy`` shards.

Layout of a store folder::

    store.json              settings, datalist identity, class names, shard size and count (written first)
    shard_00000.npy         (n, 1, R, R) uint8 or uint16: quantised images in [-1, 1] (a complete shard)
    shard_00000.json        the shard's labels, files, ``sha256:<hex>`` identities and unreadable files, the
                            SHA-256 of its .npy (``npy_sha256``) and of its own content (``record_sha256``);
                            its presence marks the shard complete
    datalist_report.json    the datalist report, once every shard is complete

Every file is written atomically, so a killed :func:`preprocess_store` leaves only complete shards and a rerun
continues with the missing ones. A shard is ``uint8`` when every image in it comes from an 8-bit source (display
range 0-255: 8-bit PNG/JPEG, DICOM with an 8-bit VOI LUT), else ``uint16``; values ``q`` map back to
``q * 2 / (2**bits - 1) - 1``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import Dataset
from monai.transforms import apply_transform

from monai_msgsagan.data.datalist import DatalistReport, SkippedItem
from monai_msgsagan.data.spec import SELECTION_FIELDS, DataSpec
from monai_msgsagan.files import atomic_write_bytes, atomic_write_text, file_sha256
from monai_msgsagan.transforms import XrayPreprocessSettings, XrayReadError, xray_preprocess_transforms

__all__ = [
    "preprocess_store",
    "XrayStoreDataset",
    "PreprocessSummary",
    "StoreError",
    "StoreSettingsError",
    "StoreIncompleteError",
    "STORE_FORMAT",
]

logger = logging.getLogger(__name__)

#: Version of the store layout (2: shard content hashes); a store of another format is refused.
STORE_FORMAT = 2
MANIFEST = "store.json"
REPORT = "datalist_report.json"
_SHARD_BYTES = 1 << 24  # default shard: 16 MiB of uint16 images


class StoreError(ValueError):
    """A store that cannot be used; the message names the file and the reason."""


class StoreSettingsError(StoreError):
    """A store made with other settings or from another list of files than the ones asked for.

    ``mismatches`` maps each differing setting to ``(value in the store, value asked for)``.
    """

    def __init__(self, path: str | Path, mismatches: dict[str, tuple[Any, Any]]) -> None:
        self.path = str(path)
        self.mismatches = mismatches
        what = "; ".join(f"{k}: store has {a!r}, asked for {b!r}" for k, (a, b) in mismatches.items())
        super().__init__(
            f"{self.path}: this store was made with other settings ({what}). Use another store folder for these "
            "settings, or the store's own settings."
        )


class StoreIncompleteError(StoreError):
    """A store whose preprocessing has not finished (a run was stopped); running it again completes it."""


def _shard_name(index: int) -> str:
    return f"shard_{index:05d}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(value, dict):
            return value
        reason = f"a JSON object was expected, not {type(value).__name__}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        reason = str(e)
    raise StoreError(f"{path}: unreadable store file ({reason}).")


def _transform_settings(resolution: int, transform_settings: XrayPreprocessSettings | None) -> dict[str, Any]:
    """The resolution and every pipeline setting (``None``: the defaults), as JSON values, so a store made with a
    default and one made with the same value given explicitly compare equal."""
    return json.loads(
        json.dumps({"resolution": int(resolution), **asdict(transform_settings or XrayPreprocessSettings())})
    )


def _datalist_settings(spec: DataSpec) -> dict[str, Any]:
    """How a store's manifest names the files it holds: ``spec.dataset_dir`` (as ``source``) and the fields that
    select files out of it, as JSON values."""
    fields = asdict(spec)
    return json.loads(json.dumps({"source": spec.dataset_dir, **{k: fields[k] for k in SELECTION_FIELDS}}))


def _is_8bit(image: Any) -> bool:
    """Whether a preprocessed image comes from an 8-bit source (display range 0-255 in its metadata)."""
    rng = getattr(image, "meta", {}).get("display_range")
    if rng is None:
        return False
    rng = np.asarray(rng, dtype=np.float64).reshape(-1)
    return rng.size == 2 and bool(np.all(rng == (0.0, 255.0)))


def _write_shard(
    store_dir: str, index: int, items: list[tuple[str, int]], settings: dict[str, Any]
) -> tuple[int, int, int]:
    """Decode, check, normalise and resize the files of one shard and write its ``.npy``, then its record (whose
    presence marks the shard complete); returns ``(index, kept, skipped)``. Runs in a worker process."""
    torch.set_num_threads(1)
    side = settings["resolution"]
    chosen = XrayPreprocessSettings(**{k: v for k, v in settings.items() if k != "resolution"})
    pipeline = xray_preprocess_transforms(side, settings=chosen)
    images = np.empty((len(items), 1, side, side), dtype=np.float32)
    labels: list[int] = []
    files: list[str] = []
    ids: list[str] = []
    skipped: list[dict[str, str]] = []
    all_8bit = True
    for path, label in items:
        try:
            image = pipeline({"image": path, "label": label})["image"]
        except Exception as e:  # MONAI's Compose wraps a transform's error in a RuntimeError: find the cause
            cause: BaseException | None = e
            while cause is not None and not isinstance(cause, ValueError):
                cause = cause.__cause__
            if cause is None:
                raise
            # XrayReadError: the file cannot be decoded; other ValueErrors name the file (e.g. a constant image)
            reason = f"unreadable: {cause.reason}" if isinstance(cause, XrayReadError) else f"unusable: {cause}"
            skipped.append({"path": path, "reason": reason})
            continue
        images[len(labels)] = np.asarray(image, dtype=np.float32)
        all_8bit = all_8bit and _is_8bit(image)
        labels.append(int(label))
        files.append(path)
        ids.append(f"sha256:{file_sha256(path)}")
    dtype = np.uint8 if all_8bit else np.uint16
    top = float(np.iinfo(dtype).max)
    kept = images[: len(labels)]
    quantised = np.rint((np.clip(kept, -1.0, 1.0) + 1.0) * (top / 2.0)).astype(dtype)
    buffer = io.BytesIO()
    np.save(buffer, quantised)
    data_offset = buffer.tell() - quantised.nbytes  # the .npy header's length
    folder = Path(store_dir)
    atomic_write_bytes(buffer.getbuffer(), folder / f"{_shard_name(index)}.npy")
    record: dict[str, Any] = {
        "shard": index,
        "count": len(labels),
        "dtype": np.dtype(dtype).name,
        "data_offset": data_offset,
        "labels": labels,
        "files": files,
        "ids": ids,
        "skipped": skipped,
        "npy_sha256": hashlib.sha256(buffer.getbuffer()).hexdigest(),
    }
    record["record_sha256"] = _record_digest(record)
    atomic_write_text(folder / f"{_shard_name(index)}.json", json.dumps(record))
    return index, len(labels), len(skipped)


def _record_digest(record: Mapping[str, Any]) -> str:
    """SHA-256 of a shard record's content (every key but ``record_sha256``, canonical JSON)."""
    content = {k: v for k, v in record.items() if k != "record_sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _held(record: Mapping[str, Any]) -> str:
    """The files a shard holds, for an error message (the first three and how many)."""
    files = list(record.get("files", []))
    return f"{len(files)} image(s): {', '.join(map(str, files[:3]))}{' ...' if len(files) > 3 else ''}"


def _check_shard(folder: Path, index: int, record: Mapping[str, Any], resolution: int) -> None:
    """Refuse a shard whose record was edited, or whose ``.npy`` does not have the size, shape and dtype of its
    record (:class:`StoreError` naming the shard and its files). Reads the ``.npy`` header only."""
    name = _shard_name(index)
    redo = "preprocess the images again into a new store folder"
    if record.get("record_sha256") != _record_digest(record):
        raise StoreError(
            f"{folder / (name + '.json')}: the shard record was changed after it was written (its content hash does "
            f"not match: labels, files or identities edited?); it holds {_held(record)}. {redo}."
        )
    npy = folder / f"{name}.npy"
    count, dtype = int(record["count"]), np.dtype(record["dtype"])
    expected_shape = (count, 1, resolution, resolution)
    try:
        with open(npy, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, found_dtype = read_header(f)
            size = os.fstat(f.fileno()).st_size
    except (OSError, ValueError) as e:
        raise StoreError(f"{npy}: unreadable store shard ({e}); it holds {_held(record)}. {redo}.") from None
    expected_size = int(record["data_offset"]) + count * resolution * resolution * dtype.itemsize
    if tuple(shape) != expected_shape or found_dtype != dtype or size != expected_size:
        raise StoreError(
            f"{npy}: the shard is {tuple(shape)} {found_dtype.name}, {size} bytes; its record says {expected_shape} "
            f"{dtype.name}, {expected_size} bytes (truncated or replaced after it was written); it holds "
            f"{_held(record)}. {redo}."
        )


def _shard_done(folder: Path, index: int) -> bool:
    name = _shard_name(index)
    try:
        return (folder / f"{name}.npy").is_file() and isinstance(_read_json(folder / f"{name}.json").get("count"), int)
    except StoreError:  # no record, or a damaged one (the writes are atomic, so not a stopped run's): (re)done
        return False


def _compare(path: Path, stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    mismatches = {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}
    if mismatches:
        raise StoreSettingsError(path, mismatches)


@dataclass
class PreprocessSummary:
    """What :func:`preprocess_store` did: shards written now and found complete, images kept, time taken."""

    store_dir: str
    num_shards: int
    shards_written: int
    shards_reused: int
    num_images: int
    num_skipped: int
    seconds: float
    report: DatalistReport

    def summary(self) -> str:
        return (
            f"{self.store_dir}: {self.num_images} images in {self.num_shards} shards ({self.shards_written} written "
            f"now, {self.shards_reused} already complete), {self.num_skipped} unreadable, {self.seconds:.1f} s"
        )


def preprocess_store(
    spec: DataSpec,
    resolution: int,
    num_workers: int = 1,
    shard_size: int | None = None,
    transform_settings: XrayPreprocessSettings | None = None,
    report_path: str | os.PathLike | None = None,
) -> PreprocessSummary:
    """Decode, check, normalise and resize every file of a datalist once, into a store at training resolution.

    The datalist is built without decoding (``build_datalist(check_readable=False)``); the one decode here checks
    each file, and the unreadable ones go to the report with their reason. Items keep the datalist's order
    (sorted by path); shard ``k`` holds items ``k * shard_size`` up to the next shard, less the unreadable ones.
    Shards are independent tasks for ``num_workers`` processes; a rerun after a kill writes only the shards that
    are missing. Each stored image is the pipeline's ``(1, R, R)`` float32 in [-1, 1], quantised to uint8
    (8-bit sources) or uint16.

    Args:
        spec: the images: ``spec.dataset_dir`` (a folder of radiographs or a CSV of paths and labels) with its
            datalist settings, and the store folder ``spec.store_dir`` (created; an existing store must have been
            made with the same settings).
        resolution: square power-of-two training side ``R``.
        num_workers: worker processes (1: decode in this process).
        shard_size: images per shard (``None``: 16 MiB of uint16 images, ``2**23 // R**2``).
        transform_settings: the pipeline's :class:`~monai_msgsagan.transforms.XrayPreprocessSettings`; the
            training pipeline's defaults when ``None``.
        report_path: also write the datalist report there (the store keeps its own copy).

    Returns:
        :class:`PreprocessSummary`.

    Raises:
        ValueError: ``spec.dataset_dir`` or ``spec.store_dir`` is empty.
        FileNotFoundError: ``spec.dataset_dir`` does not exist.
        StoreSettingsError: ``spec.store_dir`` holds a store made with other settings or from other files.
        NoUsableImagesError: the source has no candidate file at all (before any decode).
        StoreError: every file was unreadable (the report says why for each).
    """
    start = time.perf_counter()
    if spec.dataset_dir is None or spec.store_dir is None:
        raise ValueError("preprocess_store: dataset_dir or store_dir is empty; name the images and the store folder.")
    folder = Path(spec.store_dir)
    settings = _transform_settings(resolution, transform_settings)
    datalist = spec.datalist(check_readable=False)
    items = [(str(it["image"]), int(it["label"])) for it in datalist.train]
    digest = hashlib.sha256("\n".join(f"{p}\t{lb}" for p, lb in items).encode()).hexdigest()
    size = int(shard_size) if shard_size else max(1, (_SHARD_BYTES // 2) // (int(resolution) ** 2))
    manifest = {
        "format": STORE_FORMAT,
        "settings": settings,
        "datalist": {
            **_datalist_settings(spec),
            "num_files": len(items),
            "files_sha256": digest,
        },
        "class_names": list(datalist.class_names),
        "shard_size": size,
        "num_shards": (len(items) + size - 1) // size,
    }
    manifest_path = folder / MANIFEST
    if manifest_path.is_file():
        stored = _read_json(manifest_path)
        _compare(manifest_path, stored, {"format": STORE_FORMAT})
        _compare(manifest_path, stored["settings"], settings)
        _compare(manifest_path, stored["datalist"], manifest["datalist"])
        _compare(manifest_path, stored, {"shard_size": size})
    else:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1))

    num_shards = manifest["num_shards"]
    pending = [k for k in range(num_shards) if not _shard_done(folder, k)]
    logger.info(
        "%s: %d files, %d shards of %d, %d to write with %d process(es)",
        folder, len(items), num_shards, size, len(pending), num_workers,
    )  # fmt: skip
    tasks = [(str(folder), k, items[k * size : (k + 1) * size], settings) for k in pending]
    if num_workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            _log_shard(_write_shard(*task), num_shards)
    else:
        # fork where the platform has it, as DataLoader workers do: no re-import of the caller's main module
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=min(num_workers, len(tasks)), mp_context=context) as pool:
            for result in pool.map(_write_shard, *zip(*tasks)):  # a failed shard cancels the ones not started
                _log_shard(result, num_shards)

    report = DatalistReport(
        source=spec.dataset_dir, num_candidates=datalist.report.num_candidates, skipped=list(datalist.report.skipped)
    )
    num_images = 0
    for k in range(num_shards):
        record = _read_json(folder / f"{_shard_name(k)}.json")
        num_images += int(record["count"])
        report.skipped += [SkippedItem(s["path"], s["reason"]) for s in record["skipped"]]
    report.num_used = num_images
    report.to_json(folder / REPORT)
    if report_path is not None:
        report.to_json(report_path)
    if num_images == 0:
        raise StoreError(f"{folder}: no usable images: {report.summary()}; each file and its reason: {folder / REPORT}")
    summary = PreprocessSummary(
        store_dir=str(folder),
        num_shards=num_shards,
        shards_written=len(pending),
        shards_reused=num_shards - len(pending),
        num_images=num_images,
        num_skipped=len(report.skipped),
        seconds=time.perf_counter() - start,
        report=report,
    )
    logger.info(summary.summary())
    return summary


def _log_shard(result: tuple[int, int, int], num_shards: int) -> None:
    index, kept, skipped = result
    logger.info("shard %d/%d written: %d images, %d unreadable", index + 1, num_shards, kept, skipped)


class XrayStoreDataset(Dataset):
    """A MONAI ``Dataset`` over a store written by :func:`preprocess_store`.

    Item ``i`` is ``{"image": Tensor (1, R, R) float32 in [-1, 1], "label": int}`` (then ``transform``, if any),
    read from the shard that holds it with one positioned read: random access, no image kept in memory (nor
    mapped pages counted against the process), so memory does not grow with the number of images. Under
    ``torchrun`` a ``DistributedSampler`` (or :class:`~monai_msgsagan.data.ClassBalancedSampler`) gives each
    rank its own indices; any rank or machine that sees the store folder can read any shard.

    Args:
        store_dir: the store folder.
        transform: optional MONAI transform applied to each item dict (e.g. ``RandXrayAugmentd("image")``).
        resolution: when given, refuse a store of another resolution.

    Raises:
        StoreError: no store there or an unreadable one, a shard record edited or a shard of the wrong size or
        shape (when opened), a shard whose pixels were changed (when first read); each names the shard and the
        files it holds. StoreIncompleteError: preprocessing has not finished; StoreSettingsError: another
        resolution or store format.
    """

    def __init__(
        self, store_dir: str | os.PathLike, transform: Callable | None = None, resolution: int | None = None
    ) -> None:
        folder = Path(store_dir)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise StoreError(f"{manifest_path}: no store here (run the bundle's preprocess workflow first).")
        self.manifest = _read_json(manifest_path)
        _compare(manifest_path, self.manifest, {"format": STORE_FORMAT})
        if resolution is not None:
            _compare(manifest_path, self.manifest["settings"], {"resolution": int(resolution)})
        num_shards = int(self.manifest["num_shards"])
        missing = [k for k in range(num_shards) if not _shard_done(folder, k)]
        if missing:
            names = ", ".join(_shard_name(k) for k in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise StoreIncompleteError(
                f"{folder}: preprocessing has not finished ({len(missing)} of {num_shards} shards missing: {names}); "
                "run the preprocess workflow again, it continues where it stopped."
            )
        counts, dtypes, data_offsets, labels, hashes = [], [], [], [], []
        self.resolution = int(self.manifest["settings"]["resolution"])
        for k in range(num_shards):  # one shard record at a time: only the labels and the .npy hash are kept
            record = _read_json(folder / f"{_shard_name(k)}.json")
            _check_shard(folder, k, record, self.resolution)
            hashes.append(str(record["npy_sha256"]))
            counts.append(int(record["count"]))
            dtypes.append(np.dtype(record["dtype"]))
            data_offsets.append(int(record["data_offset"]))
            labels.append(np.asarray(record["labels"], dtype=np.int64))
        self.folder = folder
        self.class_names: list[str] = list(self.manifest["class_names"])
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.dtypes = dtypes
        self.data_offsets = data_offsets
        self.label_array = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
        self.npy_sha256 = hashes
        self._verified: set[int] = set()  # shards whose .npy hash this process has checked
        super().__init__(data=range(int(self.offsets[-1])), transform=transform)

    def _verify(self, shard: int) -> None:
        """Check a shard's ``.npy`` against its SHA-256 the first time this process reads it."""
        if shard in self._verified:
            return
        path = self.folder / f"{_shard_name(shard)}.npy"
        try:
            found = file_sha256(path)
        except OSError as e:
            raise StoreError(f"{path}: unreadable store shard ({e.strerror or e}).") from None
        if found != self.npy_sha256[shard]:
            record = _read_json(self.folder / f"{_shard_name(shard)}.json")
            raise StoreError(
                f"{path}: the shard's pixels were changed after it was written (SHA-256 {found[:16]}..., its record "
                f"says {self.npy_sha256[shard][:16]}...); it holds {_held(record)}. Preprocess the images again into "
                "a new store folder."
            )
        self._verified.add(shard)

    def check_datalist(self, spec: DataSpec) -> None:
        """Refuse, with :class:`StoreSettingsError`, a store made from another source or datalist settings than
        ``spec``'s."""
        _compare(self.folder / MANIFEST, self.manifest["datalist"], _datalist_settings(spec))

    @property
    def labels(self) -> list[int]:
        """Class index of every image, in store order."""
        return self.label_array.tolist()

    def identities(self) -> tuple[list[str], list[str]]:
        """``(ids, names)`` of every image in store order: ``sha256:<hex>`` of each source file's bytes (hashed
        at preprocessing time) and its path, as :meth:`~monai_msgsagan.data.TrainingData.identities` gives."""
        ids: list[str] = []
        files: list[str] = []
        for k in range(len(self.dtypes)):
            record = _read_json(self.folder / f"{_shard_name(k)}.json")
            ids += record["ids"]
            files += record["files"]
        return ids, files

    def _transform(self, index: int) -> dict[str, Any]:
        shard = int(np.searchsorted(self.offsets, index, side="right")) - 1
        self._verify(shard)
        dtype = self.dtypes[shard]
        pixels = np.empty((1, self.resolution, self.resolution), dtype=dtype)
        path = self.folder / f"{_shard_name(shard)}.npy"
        # one positioned read of the image's bytes (what a memory map of the .npy would hold at that row): the
        # page cache is shared by every worker and rank, and no process keeps pages it has read
        try:
            with open(path, "rb") as f:
                f.seek(self.data_offsets[shard] + (index - int(self.offsets[shard])) * pixels.nbytes)
                read = f.readinto(pixels)
        except OSError as e:
            raise StoreError(f"{path}: unreadable store shard ({e.strerror or e}).") from None
        if read != pixels.nbytes:
            raise StoreError(f"{path}: truncated store shard (image {index} ends past the end of the file).")
        scale = 2.0 / float(np.iinfo(dtype).max)
        item = {"image": torch.from_numpy(pixels).float().mul_(scale).sub_(1.0), "label": int(self.label_array[index])}
        return apply_transform(self.transform, item) if self.transform is not None else item
