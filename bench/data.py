"""The data layer at scale: one-pass preprocessing into the store, training reads against MONAI's caches, memory.

Writes a corpus of ``--num`` small radiographs (``--size`` px chest phantoms with per-file noise, half 8-bit PNG,
half 12-bit DICOM, written by ``--processes`` processes, listed in ``all.csv``; the first ``--subset`` files are
also listed in ``subset.csv``), then reports in one table:

- preprocessing (:func:`monai_msgsagan.data.preprocess_store`: decode, check, normalise, resize, quantise, hash)
  images/s at 1 and at ``--processes`` processes on the subset, the scaling efficiency against
  ``processes x`` the 1-process rate, and the 2-process pass over all ``--num`` files;
- store size on disk (bytes per image) at 64 and 256 px;
- training reads (images/s through ``monai.data.DataLoader``, batch 16, random order, after one untimed pass so
  that all three read from a warm page cache) at 64 and 256 px from the store and from MONAI's
  ``PersistentDataset`` and ``LMDBDataset`` holding the same files after the same transforms (their cache fill,
  one decode per file, is timed as their "preprocessing");
- peak RSS of a fresh process that opens a store and reads ``--reads`` random images, for the subset's store and
  for the full store (flat: memory must not grow with the number of images); its read rate is that of a store
  larger than the page cache can keep next to the corpus, so partly read from disk;
- an extrapolation to MIMIC-CXR (377,110 images) with its formula.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=. python bench/data.py [--num 100000] [--subset 10000] [--workdir DIR]``
(``--workdir`` keeps the corpus and stores for a rerun; without it everything is in a temporary folder.)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from monai.data import DataLoader, LMDBDataset, PersistentDataset
from PIL import Image

from monai_msgsagan.data import ClassBalancedSampler, DataSpec, XrayStoreDataset, make_phantom, preprocess_store
from monai_msgsagan.transforms import xray_preprocess_transforms

MIMIC_CXR_IMAGES = 377_110
_BASES = 64  # distinct phantoms per writer process; each file adds its own noise, so every file is different


def _write_files(folder: str, start: int, stop: int, size: int) -> list[tuple[str, int]]:
    """Files ``start .. stop - 1``: even indices 8-bit PNG, odd 12-bit MONOCHROME2 DICOM; ``(path, label)``."""
    import pydicom
    from pydicom.dataset import Dataset as DicomDataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    bases = [(make_phantom(size, b % 2, b)[0] + 1.0) / 2.0 for b in range(_BASES)]
    rows = []
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        label = i % _BASES % 2
        image = np.clip(bases[i % _BASES] + rng.normal(0.0, 0.02, (size, size)), 0.0, 1.0)
        sub = Path(folder) / f"{i // 10000:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        if i % 2 == 0:
            path = sub / f"cxr_{i:06d}.png"
            Image.fromarray(np.rint(image * 255).astype(np.uint8)).save(path, compress_level=1)
        else:
            ds = DicomDataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
            ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
            ds.Modality = "DX"
            ds.set_pixel_data(np.rint(image * 4095).astype(np.uint16), "MONOCHROME2", 12)
            path = sub / f"cxr_{i:06d}.dcm"
            pydicom.dcmwrite(path, ds, enforce_file_format=True)
        rows.append((str(path), label))
    return rows


def write_corpus(folder: Path, num: int, subset: int, size: int, processes: int) -> tuple[Path, Path, float]:
    """The corpus and its two CSVs (``all.csv``, ``subset.csv``: columns ``path``, ``label``); reused when
    ``all.csv`` already lists ``num`` files. Returns the CSVs and the seconds spent writing."""
    all_csv, subset_csv = folder / "all.csv", folder / "subset.csv"
    if all_csv.is_file() and sum(1 for _ in open(all_csv)) == num + 1:
        return all_csv, subset_csv, 0.0
    start = time.perf_counter()
    chunk = 1000
    with ProcessPoolExecutor(processes) as pool:
        tasks = [(str(folder), s, min(s + chunk, num), size) for s in range(0, num, chunk)]
        parts = pool.map(_write_files, *zip(*tasks))
        rows = [row for part in parts for row in part]
    for path, count in ((all_csv, num), (subset_csv, subset)):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("path", "label"))
            writer.writerows(rows[:count])
    return all_csv, subset_csv, time.perf_counter() - start


def read_rate(dataset, num_reads: int, num_workers: int, batch_size: int = 16) -> float:
    """Images/s of random-order batches through ``monai.data.DataLoader`` (first batch, worker start-up, excluded)."""
    labels = [0] * len(dataset)
    sampler = ClassBalancedSampler(dataset, labels, balanced=False, num_replicas=1, rank=0, seed=0)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=True)
    n, start = 0, None
    while True:
        for batch in loader:
            if start is None:
                start = time.perf_counter()
                continue
            n += len(batch["image"])
            if n >= num_reads:
                return n / (time.perf_counter() - start)
        sampler.set_epoch(sampler.epoch + 1)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


_RSS_PROBE = """
import sys
from monai_msgsagan.data import XrayStoreDataset
from data import read_rate  # this file: the probe runs in its folder
rate = read_rate(XrayStoreDataset(sys.argv[1]), int(sys.argv[2]), num_workers=0)
peak = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(int(peak) / 1024.0, rate)
"""


def peak_rss(store: Path, num_reads: int) -> tuple[float, float]:
    """``(peak RSS in MiB, images/s)`` of a fresh process that opens ``store`` and reads ``num_reads`` images
    (``VmHWM`` of Linux's ``/proc/self/status``: unlike ``ru_maxrss`` it does not carry the parent's peak over
    ``exec``)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-c", _RSS_PROBE, str(Path(store).resolve()), str(num_reads)]
    probe = subprocess.run(cmd, env=env, cwd=Path(__file__).parent, capture_output=True, text=True, check=True)
    out = probe.stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=100_000, help="files in the corpus")
    parser.add_argument("--subset", type=int, default=10_000, help="files of the scaling and baseline runs")
    parser.add_argument("--size", type=int, default=256, help="side of the corpus files in pixels")
    parser.add_argument("--processes", type=int, default=2, help="processes of the parallel runs")
    parser.add_argument("--reads", type=int, default=20_000, help="images read per read-rate measurement")
    parser.add_argument("--workdir", default=None, help="keep corpus and stores here (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    subset = min(args.subset, args.num)
    tmp = None if args.workdir else tempfile.mkdtemp(prefix="bench_data_")
    work = Path(args.workdir or tmp)
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.2f} at start, torch threads {torch.get_num_threads()}")
    rows: list[tuple[str, str, str]] = []
    try:
        all_csv, subset_csv, t = write_corpus(work / "corpus", args.num, subset, args.size, args.processes)
        size = folder_bytes(work / "corpus") / 2**30
        written = f"written in {t:.0f} s" if t else "reused (--workdir)"
        rows.append(("corpus", f"{args.num} files ({args.size} px, PNG + DICOM)", f"{size:.1f} GiB, {written}"))
        stores = work / "stores"
        shutil.rmtree(stores, ignore_errors=True)
        p = args.processes

        def preprocess(source: Path, name: str, resolution: int, workers: int):
            spec = DataSpec(source, label_column="label", store_dir=stores / name)
            return preprocess_store(spec, resolution, num_workers=workers)

        one = preprocess(subset_csv, "subset_256_1p", 256, 1)
        many = preprocess(subset_csv, f"subset_256_{p}p", 256, p)
        r1, rp = one.num_images / one.seconds, many.num_images / many.seconds
        rows.append(("preprocess 256 px", f"{subset} files, 1 process", f"{r1:.0f} images/s"))
        rows.append(("preprocess 256 px", f"{subset} files, {p} processes", f"{rp:.0f} images/s"))
        rows.append(("  scaling", f"{p}-process rate / ({p} x 1-process rate)", f"{rp / (p * r1):.1%}"))
        full = preprocess(all_csv, f"all_256_{p}p", 256, p)
        rf = full.num_images / full.seconds
        rows.append(("preprocess 256 px", f"{args.num} files, {p} processes", f"{rf:.0f}/s ({full.seconds:.0f} s)"))
        small = preprocess(subset_csv, "subset_64_1p", 64, 1)
        for store, res in ((stores / f"all_256_{p}p", 256), (stores / "subset_64_1p", 64)):
            n = int(XrayStoreDataset(store).offsets[-1])
            size = folder_bytes(store)
            rows.append((f"store {res} px", f"{n} images, {size / 2**20:.0f} MiB", f"{size / n:.0f} bytes/image"))

        data = [{"image": r["path"], "label": int(r["label"])} for r in csv.DictReader(open(subset_csv))]
        reads = min(args.reads, subset)
        for res, store in ((64, small), (256, one)):
            transform = xray_preprocess_transforms(res)
            start = time.perf_counter()
            persistent = PersistentDataset(data, transform, cache_dir=work / f"persistent_{res}")
            for i in range(len(persistent)):  # fill the cache: one decode per file, as the store's pass
                persistent[i]
            fill_p = len(data) / (time.perf_counter() - start)
            start = time.perf_counter()
            lmdb = LMDBDataset(data, transform, cache_dir=work / f"lmdb_{res}", progress=False,
                               lmdb_kwargs={"map_size": 64 * 2**30})  # fmt: skip
            fill_l = len(data) / (time.perf_counter() - start)
            store_ds = XrayStoreDataset(store.store_dir)
            fill_s = store.num_images / store.seconds
            rows.append((f"fill {res} px", "store / Persistent / LMDB, 1 process",
                         f"{fill_s:.0f} / {fill_p:.0f} / {fill_l:.0f} images/s"))  # fmt: skip
            for ds in (store_ds, persistent, lmdb):  # untimed pass: each read from a warm page cache
                read_rate(ds, reads, 0)
            for workers in (0, p):
                rates = [read_rate(ds, reads, workers) for ds in (store_ds, persistent, lmdb)]
                rows.append((f"read {res} px", f"store / Persistent / LMDB, {workers} workers",
                             " / ".join(f"{r:.0f}" for r in rates) + " images/s"))  # fmt: skip
            sizes = [folder_bytes(Path(store.store_dir)), folder_bytes(work / f"persistent_{res}"),
                     folder_bytes(work / f"lmdb_{res}")]  # fmt: skip
            rows.append((f"disk {res} px", f"store / Persistent / LMDB, {subset} images",
                         " / ".join(f"{s / 2**20:.0f}" for s in sizes) + " MiB"))  # fmt: skip
            shutil.rmtree(work / f"persistent_{res}", ignore_errors=True)
            shutil.rmtree(work / f"lmdb_{res}", ignore_errors=True)

        rss_small, _ = peak_rss(stores / f"subset_256_{p}p", args.reads)
        rss_full, rate_full = peak_rss(stores / f"all_256_{p}p", args.reads)
        rows.append(("peak RSS 256 px", f"{subset} images store, {args.reads} reads", f"{rss_small:.0f} MiB"))
        rows.append(("peak RSS 256 px", f"{args.num} images store, {args.reads} reads",
                     f"{rss_full:.0f} MiB ({rate_full:.0f} images/s)"))  # fmt: skip

        bytes_per_image = folder_bytes(stores / f"all_256_{p}p") / full.num_images
        hours = MIMIC_CXR_IMAGES / rf / 3600
        rows.append(("MIMIC-CXR", "t = 377110 / (preprocess rate at P processes)", f"{hours:.2f} h at {rf:.0f}/s"))
        rows.append(("MIMIC-CXR", "disk = 377110 x bytes/image (256 px)",
                     f"{MIMIC_CXR_IMAGES * bytes_per_image / 2**30:.1f} GiB"))  # fmt: skip
        rows.append(("MIMIC-CXR", "epoch read = 377110 / (100k store's read rate, above)",
                     f"{MIMIC_CXR_IMAGES / rate_full:.0f} s"))  # fmt: skip
        rows.append(("MIMIC-CXR", "RSS = RSS(100k) + 8 B/image labels",
                     f"{rss_full + (MIMIC_CXR_IMAGES - args.num) * 8 / 2**20:.0f} MiB"))  # fmt: skip
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"load average {os.getloadavg()[0]:.2f} at the end; peak RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")  # fmt: skip
    width = max(len(r[1]) for r in rows)
    print(f"\n{'what':<18} {'measured on':<{width}}  result")
    for what, on, result in rows:
        print(f"{what:<18} {on:<{width}}  {result}")
    print(json.dumps({"args": vars(args)}))


if __name__ == "__main__":
    main()
