"""Data-layer throughput on large radiographs, against plain MONAI ``LoadImage`` + ``Resize`` in the same run.

Writes ``--num`` synthetic radiographs of ``--height`` x ``--width`` pixels per format (16-bit PNG, 8-bit JPEG as in
public chest X-ray sets, 12-bit DICOM; built from upsampled chest phantoms plus noise) into a temporary folder,
then measures images/s for:

- ``msgsagan cold``: ``xray_train_transforms(256, augment=False)`` (load, photometric fix, percentile
  normalisation, area resize with aspect kept, pyramid) over a plain ``Dataset``: every image decoded every epoch
  (JPEGs with libjpeg's DCT-scaled draft decode, the default);
- ``msgsagan cached``: the same with augmentation over a ``CacheDataset``: the fill (one decode per image) and
  then the steady-state epochs, which only augment and build the pyramid (and, without augmentation, only the
  pyramid);
- ``monai cold`` / ``monai cached``: ``LoadImaged`` + ``EnsureChannelFirstd`` + ``Resized((256, 256))`` (the plain
  MONAI baseline: no normalisation, no aspect handling, no pyramid) over ``Dataset`` / ``CacheDataset``.

Also phantom generation (``make_phantom``, ``PhantomDataset`` first and cached epochs) against reading the same
phantoms back from PNG files.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=. python bench/data.py [--num 12] [--epochs 3]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from monai.data import CacheDataset, DataLoader, Dataset
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Resized
from PIL import Image

from monai_msgsagan.data import PhantomDataset, make_phantom, write_phantom_folder
from monai_msgsagan.transforms import LoadXray, xray_train_transforms


def write_large_radiographs(folder: Path, num: int, height: int, width: int, seed: int = 0) -> dict[str, list[str]]:
    """``num`` 16-bit PNGs, 8-bit JPEGs and 12-bit MONOCHROME1 DICOMs of ``height x width`` pixels."""
    import pydicom
    from pydicom.dataset import Dataset as DicomDataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {"png": [], "jpeg": [], "dicom": []}
    for i in range(num):
        base = (make_phantom(512, i % 2, rng)[0] + 1.0) / 2.0
        big = np.asarray(Image.fromarray(base).resize((width, height), Image.BILINEAR))
        big = np.clip(big + rng.normal(0, 0.01, big.shape), 0, 1)
        png = folder / f"cxr_{i:03d}.png"
        Image.fromarray((big * 65535).astype(np.uint16)).save(png)
        out["png"].append(str(png))
        jpg = folder / f"cxr_{i:03d}.jpg"
        Image.fromarray((big * 255).astype(np.uint8)).save(jpg, quality=92)
        out["jpeg"].append(str(jpg))
        ds = DicomDataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality = "DX"
        ds.set_pixel_data(((1.0 - big) * 4095).astype(np.uint16), "MONOCHROME1", 12)
        ds.PixelSpacing = [0.15, 0.15]
        dcm = folder / f"cxr_{i:03d}.dcm"
        pydicom.dcmwrite(dcm, ds, enforce_file_format=True)
        out["dicom"].append(str(dcm))
    return out


def baseline_transforms(resolution: int) -> Compose:
    return Compose(
        [
            LoadImaged("image", image_only=True),
            EnsureChannelFirstd("image"),
            Resized("image", spatial_size=(resolution, resolution), mode="area"),
        ]
    )


def epoch_rate(ds: Dataset, epochs: int) -> float:
    """Images/s over ``epochs`` passes through a single-process ``DataLoader`` (batch 4)."""
    loader = DataLoader(ds, batch_size=4, num_workers=0)
    start = time.perf_counter()
    n = 0
    for _ in range(epochs):
        for batch in loader:
            n += len(batch["label"])
    return n / (time.perf_counter() - start)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=12, help="images per format")
    parser.add_argument("--height", type=int, default=2500)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed for the cached datasets")
    args = parser.parse_args()
    torch.set_num_threads(1)
    r = args.resolution
    print(f"torch threads: {torch.get_num_threads()}, images: {args.num} per format, {args.height}x{args.width} px")

    with tempfile.TemporaryDirectory() as tmp:
        files, t = timed(lambda: write_large_radiographs(Path(tmp), args.num, args.height, args.width))
        print(f"wrote {3 * args.num} files in {t:.1f} s")
        rows = []
        for fmt, paths in files.items():
            data = [{"image": p, "label": i % 2} for i, p in enumerate(paths)]
            ours_cold = epoch_rate(Dataset(data, xray_train_transforms(r, augment=False)), 1)
            base_cold = epoch_rate(Dataset(data, baseline_transforms(r)), 1)
            ours_cache, fill = timed(lambda d=data: CacheDataset(d, xray_train_transforms(r), progress=False))
            ours_plain_cache = CacheDataset(data, xray_train_transforms(r, augment=False), progress=False)
            base_cache, bfill = timed(lambda d=data: CacheDataset(d, baseline_transforms(r), progress=False))
            rows += [
                (fmt, "msgsagan cold (load+norm+resize+pyramid)", ours_cold),
                (fmt, "monai    cold (LoadImage+Resize)", base_cold),
                (fmt, "msgsagan cache fill", len(data) / fill),
                (fmt, "monai    cache fill", len(data) / bfill),
                (fmt, "msgsagan cached epochs (aug+pyramid)", epoch_rate(ours_cache, args.epochs)),
                (fmt, "msgsagan cached epochs (pyramid only)", epoch_rate(ours_plain_cache, args.epochs)),
                (fmt, "monai    cached epochs", epoch_rate(base_cache, args.epochs)),
            ]

        ph_dir = Path(tmp) / "phantoms"
        write_phantom_folder(ph_dir, 32, size=r, seed=0)
        _, gen = timed(lambda: [make_phantom(r, i % 2, i) for i in range(32)])
        loader = LoadXray()
        _, read = timed(lambda: [loader(p) for p in sorted(ph_dir.glob("*.png"))])
        phantoms = PhantomDataset(32, r, seed=0)
        _, first = timed(lambda: [phantoms[i] for i in range(32)])
        _, second = timed(lambda: [phantoms[i] for i in range(32)])
        rows += [
            (f"{r}px", "make_phantom", 32 / gen),
            (f"{r}px", "LoadXray of the same phantoms as PNG", 32 / read),
            (f"{r}px", "PhantomDataset epoch 1 (drawing)", 32 / first),
            (f"{r}px", "PhantomDataset epoch 2 (cached)", 32 / second),
        ]

    print(f"\n{'input':>8}  {'pipeline':<42} {'images/s':>9} {'ms/image':>9}")
    for fmt, name, rate in rows:
        print(f"{fmt:>8}  {name:<42} {rate:9.1f} {1000.0 / rate:9.1f}")


if __name__ == "__main__":
    main()
