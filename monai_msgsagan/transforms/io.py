"""Loading radiographs (DICOM, PNG/JPEG/TIFF, NIfTI) into one float image with metadata.

Every reader returns a 2D float32 array in *display* orientation and polarity (rows first, bone bright) and a
metadata dictionary; :class:`LoadXray` wraps it into a channel-first ``MetaTensor`` of shape ``(1, H, W)``.
Values are not normalised here (see :mod:`monai_msgsagan.transforms.intensity`): they are in the units of the
source after its Modality LUT and VOI LUT / window (DICOM), or its stored pixel values (PNG, JPEG, NIfTI).

A file that cannot be used raises :class:`XrayReadError`, which names the file and the reason, never a bare
decoder stack trace.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import optional_import

pydicom, _ = optional_import("pydicom")
nib, _ = optional_import("nibabel")
Image, _ = optional_import("PIL.Image")
ImageOps, _ = optional_import("PIL.ImageOps")

__all__ = ["XrayReadError", "read_xray", "LoadXray", "LoadXrayd", "XRAY_EXTENSIONS", "XRAY_META_KEYS"]

#: File name endings recognised as radiographs when scanning folders (lower case).
XRAY_EXTENSIONS: tuple[str, ...] = (
    ".dcm",
    ".dicom",
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".nii",
    ".nii.gz",
)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_GZIP_MAGIC = b"\x1f\x8b"

#: Metadata keys that every image from :class:`LoadXray` carries, whatever its format (values are never ``None``,
#: so batches of mixed formats collate).
XRAY_META_KEYS: tuple[str, ...] = (
    "filename_or_obj",
    "source_format",
    "original_size",
    "pixel_spacing",
    "photometric_interpretation",
    "display_range",
    "transfer_syntax",
    "modality",
    "source_mode",
    "label",
)


class XrayReadError(ValueError):
    """A radiograph file that cannot be loaded.

    Args:
        path: the offending file.
        reason: what is wrong with it, in words (for example ``"truncated PNG data"``).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keeps the two-argument signature through pickling (DataLoader workers)
        return (self.__class__, (self.path, self.reason))


def _sniff_format(path: Path, head: bytes) -> str:
    """Return ``dicom``, ``png``, ``jpeg``, ``tiff`` or ``nifti`` from magic bytes, then from the file name."""
    name = path.name.lower()
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(_PNG_MAGIC):
        return "png"
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if head[:4] in _TIFF_MAGIC:
        return "tiff"
    if name.endswith((".nii", ".nii.gz")) or (len(head) >= 348 and head[344:347] in (b"n+1", b"ni1")):
        return "nifti"
    if name.endswith((".dcm", ".dicom")) or "." not in name:
        return "dicom"  # DICOM without preamble: the parser decides
    if name.endswith((".png", ".jpg", ".jpeg", ".tif", ".tiff")):
        return "raster"  # claims to be an image but has no image signature
    return "unknown"


def _spacing_or_nan(values: Sequence[float] | None) -> np.ndarray:
    if values is None or len(values) < 2:
        return np.array([np.nan, np.nan], dtype=np.float64)
    return np.asarray([float(values[0]), float(values[1])], dtype=np.float64)


def _read_dicom(path: Path, apply_voi: bool) -> tuple[np.ndarray, dict[str, Any]]:
    from pydicom.datadict import dictionary_has_tag
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    source: Any = str(path)
    with open(path, "rb") as f:
        head = f.read(132)
    if head[128:132] != b"DICM" and head[:2] == b"\x02\x00" and head[3:4] == b"\x00":
        # file meta group without the 128-byte preamble: pydicom only reads file meta after a preamble
        source = io.BytesIO(b"\x00" * 128 + b"DICM" + path.read_bytes())
    try:
        ds = pydicom.dcmread(source, force=True)
    except InvalidDicomError as e:
        raise XrayReadError(path, f"not a DICOM file ({e})") from None
    except Exception as e:  # pydicom raises many types on garbage input
        raise XrayReadError(path, f"not a readable DICOM file ({type(e).__name__}: {e})") from None
    if not any(dictionary_has_tag(tag) for tag in ds.keys()):  # a forced parse of non-DICOM bytes finds none
        raise XrayReadError(path, "not a DICOM file (no DICOM preamble and no recognisable DICOM elements)")
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise XrayReadError(path, "DICOM has no pixel data (PixelData element missing)")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise XrayReadError(path, f"multi-frame DICOM ({frames} frames) is not supported; export one frame per file")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if "TransferSyntaxUID" not in ds.file_meta:  # bare dataset (no file meta): use the encoding the parser found
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )
    tsyntax = ds.file_meta.TransferSyntaxUID
    syntax_name = getattr(tsyntax, "name", str(tsyntax))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except (NotImplementedError, RuntimeError) as e:
        msg = str(e).splitlines()[0]
        if "decod" in msg.lower() or "plugin" in msg.lower() or "support" in msg.lower():
            raise XrayReadError(path, f"unsupported or undecodable transfer syntax '{syntax_name}' ({msg})") from None
        raise XrayReadError(path, f"pixel data cannot be decoded ({type(e).__name__}: {msg})") from None
    except AttributeError as e:  # pydicom: a required Image Pixel module element is missing
        raise XrayReadError(path, f"incomplete DICOM image description ({e})") from None
    except Exception as e:
        raise XrayReadError(path, f"truncated or corrupt pixel data ({type(e).__name__}: {e})") from None

    if photometric == "PALETTE COLOR":
        raise XrayReadError(path, "colour image (DICOM PALETTE COLOR); expected a grayscale radiograph")
    if arr.ndim == 3 and photometric not in ("MONOCHROME1", "MONOCHROME2"):
        arr = _gray_from_rgb(path, arr, what=f"DICOM {photometric}")  # pydicom returns YBR as RGB
    elif arr.ndim != 2 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise XrayReadError(
            path, f"unsupported DICOM pixel layout (photometric {photometric}, array shape {arr.shape})"
        )
    arr = np.asarray(arr)
    display_range = np.array([np.nan, np.nan])
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        arr = apply_modality_lut(arr, ds)
        has_voi = "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds)
        if apply_voi and has_voi:
            try:
                arr = apply_voi_lut(arr, ds, index=0)  # a VOI LUT is preferred over a window, as in pydicom
                if "VOILUTSequence" in ds:  # output range: the LUT Descriptor's bit depth (PS3.3 C.11.2.1.1)
                    bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
                    display_range = np.array([0.0, float(2**bits - 1)])
                else:  # window output range: map the extremes of any input through it
                    ends = apply_voi_lut(np.array([-1e12, 1e12]), ds, index=0).astype(np.float64)
                    display_range = np.array([ends.min(), ends.max()])
            except Exception as e:
                raise XrayReadError(path, f"invalid VOI LUT / window ({type(e).__name__}: {e})") from None
        arr = arr.astype(np.float32, copy=False)
        # MONOCHROME1 (minimum is white) or an INVERSE Presentation LUT Shape: invert so that bone is bright.
        # In image IODs INVERSE is the Presentation LUT Shape that goes with MONOCHROME1 (the same inversion,
        # not a second one: PS3.3 General Image Module, C.11.6.1.2); on MONOCHROME2 it is taken as an inversion.
        inverse_shape = str(ds.get("PresentationLUTShape", "")).strip().upper() == "INVERSE"
        if photometric == "MONOCHROME1" or inverse_shape:
            lo, hi = display_range if np.isfinite(display_range).all() else (float(arr.min()), float(arr.max()))
            arr = np.float32(lo + hi) - arr
    spacing = ds.get("PixelSpacing", None) or ds.get("ImagerPixelSpacing", None)
    meta = {
        "source_format": "dicom",
        "pixel_spacing": _spacing_or_nan(spacing),
        "photometric_interpretation": photometric,
        "display_range": display_range,
        "transfer_syntax": syntax_name,
        "modality": str(ds.get("Modality", "")),
    }
    return arr.astype(np.float32, copy=False), meta


def _gray_from_rgb(path: Path, arr: np.ndarray, what: str, tolerance: float = 3.0) -> np.ndarray:
    """Collapse an (H, W, 3) array that stores a grayscale picture; refuse a real colour image."""
    rgb = arr[..., :3].astype(np.float32)
    # subsample for the test on big images: colour, if present, is never confined to a few pixels
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))
    sub = rgb[::step, ::step]
    diff = np.maximum(np.abs(sub[..., 0] - sub[..., 1]), np.abs(sub[..., 0] - sub[..., 2]))
    if float(np.percentile(diff, 99)) > tolerance * (1.0 if rgb.max() <= 255 else 257.0):
        raise XrayReadError(
            path,
            f"colour image ({what}, channels differ by up to {float(diff.max()):.0f}); expected a grayscale radiograph",
        )
    return rgb.mean(axis=-1)


def _read_raster(path: Path, draft_size: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    try:
        with Image.open(str(path)) as im:
            fmt = str(im.format or "").lower()
            full_w, full_h = im.size
            if draft_size is not None and fmt == "jpeg" and im.mode in ("L", "RGB"):
                im.draft(im.mode, (draft_size, draft_size))  # libjpeg DCT scaling; both sides stay >= draft_size
            try:
                frames = int(getattr(im, "n_frames", 1))
            except Exception:
                frames = 1
            if frames > 1:
                raise XrayReadError(path, f"multi-frame {fmt.upper()} ({frames} frames) is not supported")
            im.load()
            if im.getexif().get(0x0112, 1) != 1:  # EXIF orientation (phone photos of films)
                im = ImageOps.exif_transpose(im)
            mode = im.mode
            dpi = im.info.get("dpi")
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode == "1":
                im = im.convert("L")
            elif mode == "CMYK":
                im = im.convert("RGB")
            arr = np.asarray(im)
    except XrayReadError:
        raise
    except OSError as e:
        msg = str(e)
        if "truncated" in msg.lower() or "broken" in msg.lower() or "end of" in msg.lower():
            raise XrayReadError(path, f"truncated image data ({msg})") from None
        raise XrayReadError(path, f"not a readable image ({msg})") from None
    except Exception as e:
        raise XrayReadError(path, f"corrupt image data ({type(e).__name__}: {e})") from None
    if arr.ndim == 3:
        if arr.shape[-1] in (2, 4):  # drop alpha
            arr = arr[..., :-1] if arr.shape[-1] == 4 else arr[..., 0]
        if arr.ndim == 3:
            arr = _gray_from_rgb(path, arr, what=f"{fmt.upper()} mode {mode}")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        display_range = np.array([0.0, 65535.0])
    elif arr.dtype == np.uint8 or mode in ("L", "LA", "RGB", "RGBA", "P", "1"):
        display_range = np.array([0.0, 255.0])
    else:
        display_range = np.array([np.nan, np.nan])
    spacing = None
    if dpi and all(float(d) > 0 for d in dpi[:2]):
        scale = (full_h / arr.shape[0], full_w / arr.shape[1])  # > 1 after a JPEG draft decode
        spacing = [25.4 / float(dpi[1]) * scale[0], 25.4 / float(dpi[0]) * scale[1]]  # (row, column) in mm
    meta = {
        "original_size": np.asarray((full_h, full_w), dtype=np.int64),
        "source_format": fmt or "image",
        "pixel_spacing": _spacing_or_nan(spacing),
        "photometric_interpretation": "MONOCHROME2",
        "display_range": display_range,
        "source_mode": mode,
    }
    return np.asarray(arr, dtype=np.float32), meta


def _read_nifti(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as e:
        reason = "truncated" if "EOF" in str(e) or "truncat" in str(e).lower() else "not a readable NIfTI"
        raise XrayReadError(path, f"{reason} ({type(e).__name__}: {e})") from None
    shape = data.shape
    squeezed = data.reshape([s for s in shape if s != 1]) if data.ndim > 2 else data
    if squeezed.ndim != 2:
        raise XrayReadError(path, f"NIfTI of shape {shape} is not 2D (nor 3D with a singleton axis)")
    # NIfTI axis 0 is x (image columns), axis 1 is y (rows): the layout MONAI's readers and writers round-trip
    zooms = img.header.get_zooms()
    kept = [i for i, s in enumerate(shape) if s != 1][:2]
    spacing = [float(zooms[kept[1]]), float(zooms[kept[0]])] if len(zooms) > max(kept) else None
    meta = {
        "source_format": "nifti",
        "pixel_spacing": _spacing_or_nan(spacing),
        "photometric_interpretation": "MONOCHROME2",
        "display_range": np.array([np.nan, np.nan]),
    }
    return np.ascontiguousarray(squeezed.T), meta


def read_xray(
    path: str | Path,
    apply_voi: bool = True,
    min_size: int = 8,
    allow_constant: bool = False,
    draft_size: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one radiograph as a 2D float32 array ``(H, W)`` (bone bright) plus metadata.

    Args:
        path: DICOM (with or without preamble, any transfer syntax with an installed pydicom decoder), PNG, JPEG,
            TIFF (8/16 bit; grayscale or RGB-stored grayscale) or NIfTI (2D, or 3D with a singleton axis).
        apply_voi: apply the DICOM VOI LUT or window centre/width when present.
        min_size: the smallest accepted side length in pixels.
        allow_constant: accept an image whose pixels are all equal (refused by default: it has no content).
        draft_size: JPEG only: let libjpeg decode at 1/2, 1/4 or 1/8 scale (DCT-domain, anti-aliased) as long
            as both sides stay >= ``draft_size``; several times faster for 2000+ px files that are resized to
            a small training size anyway. ``None`` decodes at full size.

    Returns:
        ``(array, meta)``: the array in source display units, and a dict with ``filename_or_obj``,
        ``source_format``, ``original_size`` ``(H, W)`` of the file, ``pixel_spacing`` (mm per pixel of the
        returned array, ``(row, column)``, NaN when
        unknown), ``photometric_interpretation`` (of the source), ``display_range`` (the source's full display
        range, NaN when unknown), ``transfer_syntax`` and ``modality`` (DICOM) and ``source_mode`` (Pillow mode),
        empty strings where they do not apply.

    Raises:
        XrayReadError: naming the file and the reason (missing, empty, truncated, not an image, no pixel data,
            unsupported syntax, colour image, multi-frame, too small, non-finite values, constant).
    """
    path = Path(path)
    if not path.is_file():
        raise XrayReadError(path, "file not found" if not path.exists() else "not a regular file")
    if path.stat().st_size == 0:
        raise XrayReadError(path, "empty file (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(352)
    fmt = _sniff_format(path, head)
    try:
        if fmt == "dicom":
            arr, meta = _read_dicom(path, apply_voi=apply_voi)
        elif fmt in ("png", "jpeg", "tiff"):
            arr, meta = _read_raster(path, draft_size)
        elif fmt == "nifti":
            if not (head.startswith(_GZIP_MAGIC) or path.name.lower().endswith(".nii")):
                raise XrayReadError(path, "not a NIfTI file (neither gzip nor NIfTI header)")
            arr, meta = _read_nifti(path)
        elif fmt == "raster":
            raise XrayReadError(path, f"not an image: '{path.suffix}' file without a PNG/JPEG/TIFF signature")
        else:
            raise XrayReadError(
                path, f"not a recognised radiograph format (DICOM, PNG, JPEG, TIFF, NIfTI): '{path.name}'"
            )
    except XrayReadError:
        raise
    except Exception as e:  # anything a decoder or parser throws on malformed input (e.g. an invalid IS value)
        raise XrayReadError(path, f"malformed {fmt} file ({type(e).__name__}: {e})") from None
    if arr.ndim != 2:
        raise XrayReadError(path, f"expected a 2D image, got array of shape {arr.shape}")
    if min(arr.shape) < min_size:
        raise XrayReadError(path, f"image too small ({arr.shape[0]}x{arr.shape[1]} pixels; minimum side {min_size})")
    if not np.isfinite(arr).all():
        raise XrayReadError(path, f"image contains {int((~np.isfinite(arr)).sum())} non-finite values (NaN/Inf)")
    if not allow_constant and float(arr.max()) == float(arr.min()):
        raise XrayReadError(path, f"constant image (every pixel is {float(arr.min()):g}); no content to learn from")
    meta["filename_or_obj"] = str(path)
    meta.setdefault("original_size", np.asarray(arr.shape, dtype=np.int64))
    for key in ("transfer_syntax", "modality", "source_mode"):  # same keys for every format: batches collate
        meta.setdefault(key, "")
    return arr, meta


class LoadXray(Transform):
    """Load a radiograph file into a channel-first float32 ``MetaTensor`` of shape ``(1, H, W)``.

    Intensities are in source display units (after DICOM Modality LUT, VOI LUT / window and MONOCHROME1
    inversion), not yet normalised; follow with :class:`~monai_msgsagan.transforms.NormalizeXrayIntensity`.
    The metadata carries ``filename_or_obj``, ``source_format``, ``original_size`` ``(H, W)``, ``pixel_spacing``
    (mm, NaN when unknown), ``photometric_interpretation``, ``display_range`` and ``label`` (-1 when not given).

    Args:
        apply_voi: apply the DICOM VOI LUT / window centre and width when present.
        min_size: smallest accepted side in pixels (smaller images raise :class:`XrayReadError`).
        allow_constant: accept images whose pixels are all equal.
        draft_size: JPEG only: decode at a reduced DCT scale while both sides stay >= ``draft_size`` (see
            :func:`read_xray`); the image is then smaller than ``original_size``.

    Example::

        img = LoadXray()("chest.dcm")   # MetaTensor (1, H, W), img.meta["pixel_spacing"]
    """

    def __init__(
        self, apply_voi: bool = True, min_size: int = 8, allow_constant: bool = False, draft_size: int | None = None
    ) -> None:
        self.apply_voi = apply_voi
        self.min_size = min_size
        self.allow_constant = allow_constant
        self.draft_size = draft_size

    def __call__(self, filename: str | Path, label: int | None = None) -> MetaTensor:
        arr, meta = read_xray(filename, self.apply_voi, self.min_size, self.allow_constant, self.draft_size)
        meta["label"] = -1 if label is None else int(label)
        return MetaTensor(torch.from_numpy(np.ascontiguousarray(arr[None])), meta=meta)


class LoadXrayd(MapTransform):
    """Dictionary version of :class:`LoadXray`: replaces each path under ``keys`` by its ``(1, H, W)`` image.

    Args:
        keys: keys holding file paths.
        label_key: key of an integer class label to copy into the image metadata (``None`` to skip).
        apply_voi, min_size, allow_constant, draft_size: see :class:`LoadXray`.
        allow_missing_keys: do not raise when a key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_key: str | None = "label",
        apply_voi: bool = True,
        min_size: int = 8,
        allow_constant: bool = False,
        draft_size: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.label_key = label_key
        self.loader = LoadXray(apply_voi, min_size, allow_constant, draft_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        label = d.get(self.label_key) if self.label_key is not None else None
        try:
            label = None if label is None else int(label)
        except (TypeError, ValueError):
            raise ValueError(f"{self.label_key!r} must be an integer class index, got {label!r}") from None
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key], label=label)
        return d
