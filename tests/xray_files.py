"""Writers of real radiograph test files (DICOM via pydicom, PNG/JPEG via Pillow, NIfTI via nibabel).

Used by the data-layer tests: good files of every supported kind, a corpus of bad files with the reason
each one must be refused for, and a folder of phantoms as PNG files with a CSV of labels.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    generate_uid,
)

from monai_msgsagan.data import PhantomDataset

DX_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


def ramp(h: int = 40, w: int = 48, top: int = 4095, seed: int = 0) -> np.ndarray:
    """A structured test image: diagonal ramp plus seeded noise, uint16 in [0, top] (uint8 when top <= 255)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx / (w - 1) * 0.6 + yy / (h - 1) * 0.3) * top
    arr = np.clip(base + rng.normal(0, top * 0.03, (h, w)), 0, top)
    return arr.astype(np.uint8 if top <= 255 else np.uint16)


def dicom_dataset(arr: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int = 12, **elements) -> Dataset:
    """A DX DICOM dataset holding ``arr`` uncompressed (explicit VR little endian), plus ``elements``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = DX_SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = DX_SOP_CLASS
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientName = "Test^Phantom"
    ds.set_pixel_data(arr, photometric_interpretation=photometric, bits_stored=bits_stored)
    for key, value in elements.items():
        setattr(ds, key, value)
    return ds


def write_dicom(path: Path, ds: Dataset, syntax: str | None = None, preamble: bool = True) -> Path:
    """Save ``ds`` (compressed to ``syntax`` with pydicom's encoders when given), optionally without preamble."""
    if syntax == ImplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    elif syntax == JPEGBaseline8Bit:  # pydicom has no JPEG baseline encoder: Pillow encodes, pydicom encapsulates
        buf = io.BytesIO()
        Image.fromarray(ds.pixel_array).save(buf, format="JPEG", quality=95)
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    elif syntax == JPEGLosslessSV1:  # no installed encoder: the T.81 writer below, pydicom encapsulates
        bits = int(ds.BitsStored)
        ds.PixelData = encapsulate([encode_jpeg_lossless_sv1(ds.pixel_array, bits)])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    elif syntax is not None:
        ds.compress(syntax)
    ds.save_as(path, enforce_file_format=True)
    if not preamble:
        path.write_bytes(path.read_bytes()[132:])
    return path


def write_png(path: Path, arr: np.ndarray, dpi: float | None = None) -> Path:
    kwargs = {"dpi": (dpi, dpi)} if dpi else {}
    Image.fromarray(arr).save(path, **kwargs)
    return path


def write_good_corpus(folder: Path) -> dict[str, Path]:
    """One good file of each kind: 8-bit PNG, 16-bit PNG, RGB-stored gray JPEG, DICOM M1, NIfTI 2D."""
    folder.mkdir(parents=True, exist_ok=True)
    g8 = ramp(48, 64, 255)
    rgb = np.repeat(ramp(48, 64, 255, seed=1)[..., None], 3, axis=2)
    files = {
        "png8": write_png(folder / "gray8.png", g8),
        "png16": write_png(folder / "gray16.png", ramp(48, 64, 65535, seed=2)),
        "rgbgray": folder / "rgb_gray.jpg",
        "dicom": write_dicom(folder / "m1.dcm", dicom_dataset(ramp(48, 64, 4095, seed=3), "MONOCHROME1")),
        "nifti": folder / "slice.nii.gz",
    }
    Image.fromarray(rgb).save(files["rgbgray"], quality=95)
    nib.save(nib.Nifti1Image(ramp(48, 64, 4095, seed=4).T.astype(np.float32), np.eye(4)), files["nifti"])
    return files


def write_bad_corpus(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad files, each with a fragment of the reason :class:`XrayReadError` must give for it."""
    folder.mkdir(parents=True, exist_ok=True)
    bad: dict[str, tuple[Path, str]] = {}

    full = write_png(folder / "full.png", ramp(64, 64, 255))
    data = full.read_bytes()
    full.unlink()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    bad["truncated_png"] = (folder / "truncated.png", "truncated")

    (folder / "empty.png").write_bytes(b"")
    bad["zero_byte"] = (folder / "empty.png", "empty file")

    (folder / "notes.dcm").write_text("Radiology notes: this is a text file, not a DICOM image.\n" * 8)
    bad["text_as_dicom"] = (folder / "notes.dcm", "not a DICOM file")

    ds = dicom_dataset(ramp())
    del ds.PixelData
    bad["dicom_no_pixels"] = (write_dicom(folder / "no_pixels.dcm", ds), "no pixel data")

    yy, xx = np.mgrid[0:64, 0:64]
    photo = np.stack([xx * 4, yy * 4, 255 - xx * 2], axis=-1).astype(np.uint8)
    Image.fromarray(photo).save(folder / "holiday_photo.jpg", quality=95)
    bad["colour_photo"] = (folder / "holiday_photo.jpg", "colour image")

    bad["one_pixel"] = (write_png(folder / "one_pixel.png", np.array([[128]], dtype=np.uint8)), "too small")

    vol = ramp(32, 32, 4095).astype(np.float32)
    vol[3, 5] = np.nan
    nib.save(nib.Nifti1Image(vol, np.eye(4)), folder / "nan.nii.gz")
    bad["nan_nifti"] = (folder / "nan.nii.gz", "non-finite")

    frames = np.stack([ramp(seed=0), ramp(seed=1)])
    bad["multi_frame"] = (write_dicom(folder / "cine.dcm", dicom_dataset(frames)), "multi-frame")

    path = write_dicom(folder / "cut.dcm", dicom_dataset(ramp()))
    path.write_bytes(path.read_bytes()[:-700])
    bad["truncated_dicom"] = (path, "truncated")

    ds = dicom_dataset(ramp(), bits_stored=12)
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML
    bad["unsupported_syntax"] = (write_dicom(folder / "mpeg.dcm", ds), "unsupported")
    return bad


def encode_jpeg_lossless_sv1(arr: np.ndarray, precision: int) -> bytes:
    """Encode a 2D unsigned array as a JPEG Lossless, Process 14, Selection Value 1 codestream (ITU T.81 H).

    No installed library encodes this syntax (the usual one of CR/DX archives), so the tests write it here to
    check that pydicom's decoder plugin reads it through :class:`LoadXray`. One Huffman table with the 17
    difference categories as 5-bit codes; predictor 1 (left), first row/column per T.81 H.1.2.1.
    """
    h, w = arr.shape
    x = arr.astype(np.int64)
    pred = np.empty_like(x)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = x[0, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[1:, 1:] = x[1:, :-1]
    diff = (x - pred + 32768) % 65536 - 32768  # modulo 2**16, T.81 H.1.2.1
    bits: list[str] = []
    for d in diff.ravel().tolist():
        ssss = 16 if d == -32768 else abs(d).bit_length()
        bits.append(format(ssss, "05b"))
        if 0 < ssss < 16:
            bits.append(format(d if d > 0 else d + (1 << ssss) - 1, f"0{ssss}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)  # pad with ones
    data = bytearray()
    for i in range(0, len(stream), 8):
        byte = int(stream[i : i + 8], 2)
        data.append(byte)
        if byte == 0xFF:
            data.append(0x00)  # byte stuffing

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload

    counts = bytes(16)
    counts = counts[:4] + bytes([17]) + counts[5:]  # 17 codes of length 5
    sof3 = bytes([precision]) + h.to_bytes(2, "big") + w.to_bytes(2, "big") + bytes([1, 1, 0x11, 0])
    dht = bytes([0x00]) + counts + bytes(range(17))
    sos = bytes([1, 1, 0x00, 1, 0, 0])  # one component, table 0, Ss = predictor 1, Se = 0, Ah/Al = 0
    return b"\xff\xd8" + segment(0xC3, sof3) + segment(0xC4, dht) + segment(0xDA, sos) + bytes(data) + b"\xff\xd9"


def write_phantom_folder(
    directory: Path,
    num_images: int,
    size: int = 256,
    seed: int = 0,
    num_classes: int = 2,
    class_ratio: float = 0.5,
    bit_depth: int = 8,
) -> Path:
    """Write phantoms as grayscale PNG files plus ``labels.csv`` (columns ``path``, ``label``, ``class_name``).

    The CSV holds paths relative to ``directory``, so ``build_datalist(directory / "labels.csv",
    label_column="class_name")`` reads them back as files.

    Args:
        directory: output folder (created).
        num_images, size, seed, num_classes, class_ratio: as :class:`PhantomDataset`.
        bit_depth: 8 or 16 bits per pixel.

    Returns:
        Path of ``labels.csv``.
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ds = PhantomDataset(num_images, size, num_classes, class_ratio, seed, cache=False)
    rows: list[tuple] = []
    top = 255 if bit_depth == 8 else 65535
    for i in range(len(ds)):
        item = ds[i]
        arr = np.round((item["image"][0].numpy() + 1.0) * 0.5 * top).astype(np.uint8 if bit_depth == 8 else np.uint16)
        name = f"phantom_{i:05d}.png"
        Image.fromarray(arr).save(directory / name)
        rows.append((name, item["label"], item["class_name"]))
    csv_path = directory / "labels.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("path", "label", "class_name"))
        writer.writerows(rows)
    return csv_path
