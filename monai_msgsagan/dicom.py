"""Writing synthetic images as DICOM that no system or person can mistake for a real patient's image.

Each image becomes one **Secondary Capture** instance (SOP class 1.2.840.10008.5.1.4.1.1.7, modality ``OT``)
written with :class:`highdicom.sc.SCImage`.

Why Secondary Capture and not DX (Digital X-Ray, for presentation):

* SC is the IOD DICOM defines for images that were not acquired by the equipment that stores them, and its
  SC Equipment module has a defined term for exactly this case: ``ConversionType`` = ``SYN`` (synthetic image).
* The DX IOD describes an exposure: DX Detector, X-Ray Acquisition Dose, positioner and exposure attributes
  (detector type, imager pixel spacing, KVP, exposure ...). A generated image has none of these; filling them in
  would fabricate an acquisition and make the file look *more* like a real radiograph, which is what we must avoid.
  Archives and AI pipelines that route on ``Modality`` = ``DX``/``CR`` will not pick an ``OT`` SC by accident.

Every instance carries ``SyntheticData`` YES, ``ConversionType`` SYN, ``ImageType`` DERIVED\\SECONDARY,
``BurnedInAnnotation`` NO, a patient name and ID that say SYNTHETIC, fresh random (``2.25.``) Study / Series / SOP
Instance UIDs, a series description that starts with SYNTHETIC, and a Contributing Equipment item (purpose
"Processing Equipment") naming this application and the model name, version and SHA-256. Nothing is ever copied
from another DICOM file: there is no "reference dataset" argument.

Why 16 bits by default: the generator produces float values in [-1, 1]; 16-bit storage with the Modality LUT
(``RescaleSlope`` 2/65535, ``RescaleIntercept`` -1) keeps them to within 1.6e-5, finer than the half-precision
arithmetic the generator may run in, so DICOM storage adds no visible quantisation (8 bits would add a 2/255 step
that bands smooth lung fields), and downstream X-ray pipelines see the same bit depth as real 12-16 bit
radiographs. ``bits_allocated=8`` is available when file size matters more (half the size).
"""

from __future__ import annotations

import datetime
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils import optional_import
from pydicom.uid import generate_uid

from monai_msgsagan._version import __version__
from monai_msgsagan.generation import RANGE_TOLERANCE

hd, _has_highdicom = optional_import("highdicom")
codes, _ = optional_import("pydicom.sr.codedict", name="codes")

__all__ = [
    "SYNTHETIC_PATIENT_NAME",
    "SYNTHETIC_PATIENT_ID_PREFIX",
    "APPLICATION_NAME",
    "to_stored_values",
    "write_synthetic_dicom_series",
]

SYNTHETIC_PATIENT_NAME = "SYNTHETIC^IMAGE^NOT A REAL PATIENT"
SYNTHETIC_PATIENT_ID_PREFIX = "SYNTHETIC-"
APPLICATION_NAME = "monai-msgsagan"
_LO_MAX = 64  # DICOM LO value representation: at most 64 characters
_SAFE_TEXT = re.compile(r"^[ -~]*$")  # printable ASCII without backslash (checked separately)


def _check_text(value: str, field: str, max_len: int = _LO_MAX) -> str:
    """A free-text value that fits the DICOM LO value representation, else a ValueError naming ``field``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a non-empty string, got {value!r}.")
    if len(value) > max_len or "\\" in value or not _SAFE_TEXT.match(value):
        raise ValueError(
            f"{field} must be printable ASCII without backslashes and at most {max_len} characters, got {value!r}."
        )
    return value


def to_stored_values(images: torch.Tensor | np.ndarray, bits_allocated: int = 16) -> np.ndarray:
    """Map images in [-1, 1] to unsigned stored pixel values.

    Args:
        images: (N, 1, H, W) float array or tensor in [-1, 1] (an overshoot within the generator's
            :data:`~monai_msgsagan.generation.RANGE_TOLERANCE`, from half precision, is clipped).
        bits_allocated: 8 or 16.

    Returns:
        (N, H, W) ``uint8`` or ``uint16`` array; -1 maps to 0 and 1 to ``2**bits_allocated - 1``.

    Raises:
        ValueError: wrong shape, non-finite values, values well outside [-1, 1], or unsupported bit depth.
    """
    if bits_allocated not in (8, 16):
        raise ValueError(f"bits_allocated must be 8 or 16, got {bits_allocated}.")
    arr = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim != 4 or arr.shape[1] != 1 or arr.shape[0] < 1 or min(arr.shape[2:]) < 1:
        raise ValueError(f"images must have shape (N, 1, H, W) with N >= 1, got {tuple(arr.shape)}.")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("images contain NaN or infinite values.")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1 - RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise ValueError(f"images must lie in [-1, 1], got values in [{lo:.4f}, {hi:.4f}].")
    top = 2**bits_allocated - 1
    stored = np.rint((np.clip(arr[:, 0], -1.0, 1.0) + 1.0) * (top / 2.0))
    return stored.astype(np.uint16 if bits_allocated == 16 else np.uint8)


def write_synthetic_dicom_series(
    images: torch.Tensor | np.ndarray,
    out_dir: str | Path,
    model_name: str,
    model_version: str,
    class_name: str | None = None,
    model_sha256: str | None = None,
    bits_allocated: int = 16,
    series_number: int = 1,
    file_prefix: str = "synthetic",
) -> list[Path]:
    """Write a batch of synthetic images as one new study with one Secondary Capture series.

    Args:
        images: (N, 1, H, W) float tensor or array in [-1, 1] (MONOCHROME2: -1 is black, 1 is white).
        out_dir: existing folder; files ``{file_prefix}_0001.dcm`` ... are created there (never overwritten).
        model_name: name of the generator (for example the bundle name), recorded as contributing equipment.
        model_version: version of the generator, recorded as contributing equipment.
        class_name: class the images were conditioned on, or None for an unconditional generator.
        model_sha256: hex SHA-256 of the model file, recorded in the contribution description when given.
        bits_allocated: 16 (default, see the module docstring) or 8.
        series_number: DICOM Series Number.
        file_prefix: file name prefix (letters, digits, ``-`` and ``_``).

    Returns:
        paths of the written files, in image order.

    Raises:
        ValueError: bad images, text fields that do not fit DICOM, or an output file that already exists.
        FileNotFoundError: ``out_dir`` does not exist.
        RuntimeError: highdicom is not installed.
    """
    if not _has_highdicom:
        raise RuntimeError("writing DICOM needs highdicom: pip install 'monai-msgsagan[deploy]'.")
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise FileNotFoundError(f"DICOM output folder {out_dir} does not exist.")
    _check_text(model_name, "model_name")
    _check_text(model_version, "model_version")
    if class_name is not None:
        _check_text(class_name, "class_name", max_len=32)
    if model_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", model_sha256):
        raise ValueError(f"model_sha256 must be 64 lower-case hex digits, got {model_sha256!r}.")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", file_prefix):
        raise ValueError(f"file_prefix must be 1-32 letters, digits, '-' or '_', got {file_prefix!r}.")
    stored = to_stored_values(images, bits_allocated)
    paths = [out_dir / f"{file_prefix}_{i + 1:04d}.dcm" for i in range(stored.shape[0])]
    existing = [p for p in paths if p.exists()]
    if existing:
        raise ValueError(f"refusing to overwrite existing DICOM file {existing[0]}.")

    now = datetime.datetime.now(datetime.timezone.utc)
    study_uid, series_uid = generate_uid(prefix=None), generate_uid(prefix=None)
    patient_id = SYNTHETIC_PATIENT_ID_PREFIX + uuid.uuid4().hex[:16].upper()
    what = f"class {class_name}" if class_name is not None else "unconditional"
    series_description = f"SYNTHETIC X-ray ({what}) - NOT A REAL PATIENT"[:_LO_MAX]
    contribution = (
        f"Synthetic image generated by {APPLICATION_NAME} {__version__} with generator {model_name} "
        f"version {model_version}" + (f" sha256 {model_sha256}" if model_sha256 else "") + f" ({what})."
    )
    software_versions = [f"{APPLICATION_NAME} {__version__}", f"{model_name} {model_version}"[:_LO_MAX]]
    if model_sha256:
        software_versions.append(f"sha256:{model_sha256[:16]}")
    equipment = hd.ContributingEquipment(
        manufacturer=APPLICATION_NAME,
        purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=model_name,
        software_versions=software_versions,
        contribution_datetime=now,
        contribution_description=contribution,
    )
    # the same for every instance of the series (birth date, sex, accession number and referring physician stay
    # empty). highdicom requires a coordinate system kind; a synthetic image has no patient orientation, so the
    # Type 2 / 2C Patient Orientation and Laterality are emptied below instead.
    series: dict[str, Any] = {
        "photometric_interpretation": "MONOCHROME2",
        "bits_allocated": bits_allocated,
        "coordinate_system": "PATIENT",
        "patient_orientation": ("L", "F"),
        "study_instance_uid": study_uid,
        "series_instance_uid": series_uid,
        "series_number": series_number,
        "manufacturer": APPLICATION_NAME,
        "manufacturer_model_name": APPLICATION_NAME,
        "software_versions": software_versions,
        "patient_id": patient_id,
        "patient_name": SYNTHETIC_PATIENT_NAME,
        "study_id": "SYNTHETIC",
        "study_date": now.date(),
        "study_time": now.time(),
        "series_description": series_description,
        "contributing_equipment": [equipment],
    }
    top = 2**bits_allocated - 1
    for index, (pixels, path) in enumerate(zip(stored, paths)):
        sc = hd.sc.SCImage(
            pixel_array=pixels, sop_instance_uid=generate_uid(prefix=None), instance_number=index + 1, **series
        )
        sc.PatientOrientation = None
        sc.Laterality = None
        sc.StudyDescription = "SYNTHETIC IMAGES - NOT A REAL PATIENT"
        sc.ConversionType = "SYN"
        sc.ImageType = ["DERIVED", "SECONDARY"]
        sc.SyntheticData = "YES"
        sc.BurnedInAnnotation = "NO"
        sc.RecognizableVisualFeatures = "NO"
        sc.ImageComments = contribution + " Not a real patient; not for diagnosis."
        sc.RescaleIntercept = -1
        sc.RescaleSlope = f"{2.0 / top:.10g}"
        sc.RescaleType = "US"
        sc.WindowCenter = 0
        sc.WindowWidth = 2
        sc.save_as(path, enforce_file_format=True)
    return paths
