"""LoadXray / LoadXrayd on real files: the figure1 radiographs, DICOMs written with pydicom, PNG, JPEG, NIfTI,
and a corpus of corrupt inputs that must each be refused with a named reason."""

from __future__ import annotations

import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import LoadImage
from PIL import Image
from pydicom.pixels import get_encoder
from pydicom.uid import (
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)
from xray_files import dicom_dataset, ramp, write_bad_corpus, write_dicom, write_good_corpus, write_png

from monai_msgsagan.transforms import (
    XRAY_META_KEYS,
    LoadXray,
    LoadXrayd,
    XrayReadError,
    read_xray,
    xray_preprocess_transforms,
)


def _figure1_images(figure1_dir: Path) -> list[Path]:
    files = sorted(p for p in (figure1_dir / "images").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    assert len(files) == 55
    return files


def test_every_figure1_image_loads(figure1_dir):
    loader = LoadXray()
    for path in _figure1_images(figure1_dir):
        img = loader(path)
        with Image.open(path) as im:
            w, h = im.size
        assert isinstance(img, MetaTensor) and img.dtype == torch.float32
        assert tuple(img.shape) == (1, h, w), path
        assert img.meta["filename_or_obj"] == str(path)
        assert tuple(img.meta["original_size"]) == (h, w)
        assert img.meta["source_format"] in ("jpeg", "png")
        assert 0.0 <= float(img.min()) < float(img.max()) <= 255.0


@pytest.mark.parametrize("resolution", [64, 256])
def test_every_figure1_image_normalises(figure1_dir, resolution):
    pipeline = xray_preprocess_transforms(resolution)
    for path in _figure1_images(figure1_dir):
        img = pipeline({"image": str(path), "label": 0})["image"]
        assert tuple(img.shape) == (1, resolution, resolution), path
        assert torch.isfinite(img).all()
        assert float(img.min()) >= -1.0 and float(img.max()) <= 1.0
        assert float(img.max()) > 0.5 and float(img.std()) > 0.2, f"{path} lost its contrast"


# --- DICOM: the displayed image against the expected array ------------------------------------------------------

STORED = ramp(40, 48, 4095)


def _expected_window(values: np.ndarray, center: float, width: float, y_min: float, y_max: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR), written out independently of pydicom."""
    c, w = center - 0.5, width - 1.0
    out = ((values - c) / w + 0.5) * (y_max - y_min) + y_min
    out = np.where(values <= c - w / 2, y_min, out)
    return np.where(values > c + w / 2, y_max, out)


def test_dicom_monochrome2_rescale(tmp_path):
    ds = dicom_dataset(STORED, "MONOCHROME2", RescaleSlope=2, RescaleIntercept=-100, PixelSpacing=[0.15, 0.2])
    img = LoadXray()(write_dicom(tmp_path / "m2.dcm", ds))
    np.testing.assert_allclose(img[0].numpy(), STORED * 2.0 - 100.0)
    assert img.meta["photometric_interpretation"] == "MONOCHROME2"
    np.testing.assert_allclose(img.meta["pixel_spacing"], [0.15, 0.2])
    assert img.meta["source_format"] == "dicom"


def test_dicom_monochrome1_is_inverted(tmp_path):
    ds = dicom_dataset(STORED, "MONOCHROME1", RescaleSlope=2, RescaleIntercept=-100, ImagerPixelSpacing=[0.1, 0.1])
    img = LoadXray()(write_dicom(tmp_path / "m1.dcm", ds))
    shown = STORED * 2.0 - 100.0
    np.testing.assert_allclose(img[0].numpy(), shown.min() + shown.max() - shown)
    # the brightest stored value is displayed darkest
    assert img[0].numpy()[np.unravel_index(STORED.argmax(), STORED.shape)] == pytest.approx(shown.min())
    np.testing.assert_allclose(img.meta["pixel_spacing"], [0.1, 0.1])
    assert img.meta["photometric_interpretation"] == "MONOCHROME1"


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_inverse_presentation_lut_shape(tmp_path, photometric):
    ds = dicom_dataset(STORED, photometric, PresentationLUTShape="INVERSE")
    img = LoadXray()(write_dicom(tmp_path / "inv.dcm", ds))
    shown = STORED.astype(np.float32)
    # INVERSE accompanies MONOCHROME1 (one inversion, not two); on MONOCHROME2 it asks for the inversion
    np.testing.assert_array_equal(img[0].numpy(), shown.min() + shown.max() - shown)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_voi_window(tmp_path, photometric):
    ds = dicom_dataset(STORED, photometric, WindowCenter=1500, WindowWidth=1200)
    img = LoadXray()(write_dicom(tmp_path / "win.dcm", ds))
    expected = _expected_window(STORED.astype(np.float64), 1500, 1200, 0.0, 4095.0)
    if photometric == "MONOCHROME1":
        expected = 4095.0 - expected
    np.testing.assert_allclose(img[0].numpy(), expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(img.meta["display_range"], [0.0, 4095.0])
    raw = LoadXray(apply_voi=False)(tmp_path / "win.dcm")[0].numpy()
    np.testing.assert_allclose(raw, STORED if photometric == "MONOCHROME2" else STORED.min() + STORED.max() - STORED)


def test_dicom_rescale_then_window(tmp_path):
    ds = dicom_dataset(STORED, "MONOCHROME2", RescaleSlope=0.5, RescaleIntercept=10, WindowCenter=800, WindowWidth=600)
    img = LoadXray()(write_dicom(tmp_path / "rw.dcm", ds))
    expected = _expected_window(STORED * 0.5 + 10.0, 800, 600, 10.0, 4095 * 0.5 + 10.0)
    np.testing.assert_allclose(img[0].numpy(), expected, rtol=1e-5, atol=1e-3)


def test_dicom_without_preamble_and_implicit_vr(tmp_path):
    no_preamble = write_dicom(tmp_path / "nopre.dcm", dicom_dataset(STORED), preamble=False)
    assert no_preamble.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(LoadXray()(no_preamble)[0].numpy(), STORED)
    implicit = write_dicom(tmp_path / "implicit.dcm", dicom_dataset(STORED), syntax=ImplicitVRLittleEndian)
    img = LoadXray()(implicit)
    np.testing.assert_array_equal(img[0].numpy(), STORED)
    assert "Implicit" in img.meta["transfer_syntax"]
    both = write_dicom(tmp_path / "IM0001", dicom_dataset(STORED), syntax=ImplicitVRLittleEndian, preamble=False)
    np.testing.assert_array_equal(LoadXray()(both)[0].numpy(), STORED)


def _encoder_available(uid) -> bool:
    try:
        return get_encoder(uid).is_available
    except NotImplementedError:
        return False


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless], ids=lambda s: s.name)
def test_dicom_lossless_compressed(tmp_path, syntax):
    if not _encoder_available(syntax):
        pytest.skip(f"no installed pydicom encoder for {syntax.name}")
    path = write_dicom(tmp_path / "c.dcm", dicom_dataset(STORED, "MONOCHROME1"), syntax=syntax)
    img = LoadXray()(path)
    assert img.meta["transfer_syntax"] == syntax.name
    np.testing.assert_array_equal(img[0].numpy(), STORED.min() + STORED.max() - STORED.astype(np.float32))


@pytest.mark.parametrize("bits", [12, 16])
def test_dicom_jpeg_lossless_process14(tmp_path, bits):
    stored = ramp(33, 51, (1 << bits) - 1, seed=bits)
    ds = dicom_dataset(stored, "MONOCHROME2", bits_stored=bits, RescaleSlope=1, RescaleIntercept=-1024)
    img = LoadXray()(write_dicom(tmp_path / "jll.dcm", ds, syntax=JPEGLosslessSV1))
    assert img.meta["transfer_syntax"] == JPEGLosslessSV1.name
    np.testing.assert_array_equal(img[0].numpy(), stored.astype(np.float32) - 1024.0)


def test_dicom_jpeg_baseline(tmp_path):
    stored8 = ramp(40, 48, 255)
    path = write_dicom(tmp_path / "jb.dcm", dicom_dataset(stored8, bits_stored=8), syntax=JPEGBaseline8Bit)
    img = LoadXray()(path)
    assert img.meta["transfer_syntax"] == JPEGBaseline8Bit.name
    assert float(np.abs(img[0].numpy() - stored8).mean()) < 2.0  # lossy at quality 95


def test_dicom_files_shipped_with_pydicom():
    """Real third-party compressed files (JPEG Extended 12-bit, JPEG-LS near-lossless 16-bit)."""
    from pydicom.data import get_testdata_file

    for name in ("JPGExtended.dcm", "JPEGLSNearLossless_16.dcm"):
        path = get_testdata_file(name, download=False)
        if path is None:
            pytest.skip(f"pydicom test file {name} not installed")
        img = LoadXray()(path)
        assert img.ndim == 3 and img.shape[0] == 1 and torch.isfinite(img).all() and float(img.std()) > 0


# --- PNG / JPEG / NIfTI ---------------------------------------------------------------------------------------


def test_png_8_and_16_bit(tmp_path):
    g8, g16 = ramp(30, 40, 255), ramp(30, 40, 65535)
    img8 = LoadXray()(write_png(tmp_path / "a.png", g8, dpi=254))
    img16 = LoadXray()(write_png(tmp_path / "b.png", g16))
    np.testing.assert_array_equal(img8[0].numpy(), g8)
    np.testing.assert_array_equal(img16[0].numpy(), g16)
    np.testing.assert_allclose(img8.meta["display_range"], [0, 255])
    np.testing.assert_allclose(img16.meta["display_range"], [0, 65535])
    np.testing.assert_allclose(img8.meta["pixel_spacing"], [0.1, 0.1], rtol=1e-3)  # 254 dpi
    assert np.isnan(img16.meta["pixel_spacing"]).all()


def test_rgb_stored_grayscale_is_converted(tmp_path):
    gray = ramp(30, 40, 255)
    Image.fromarray(np.repeat(gray[..., None], 3, axis=2)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(LoadXray()(tmp_path / "rgb.png")[0].numpy(), gray)


def test_nifti_2d_and_singleton_3d_match_monai_layout(tmp_path):
    gray = ramp(30, 40, 4095).astype(np.float32)
    write_png(tmp_path / "ref.png", ramp(30, 40, 255))
    monai_png = LoadImage(image_only=True)(tmp_path / "ref.png")  # MONAI's PIL reader: (W, H), axis 0 = x
    assert tuple(monai_png.shape) == (40, 30)
    nib.save(nib.Nifti1Image(gray.T, np.diag([0.2, 0.3, 1.0, 1.0])), tmp_path / "a.nii.gz")
    nib.save(nib.Nifti1Image(gray.T[:, :, None], np.eye(4)), tmp_path / "b.nii")
    for name in ("a.nii.gz", "b.nii"):
        np.testing.assert_array_equal(LoadXray()(tmp_path / name)[0].numpy(), gray)
    np.testing.assert_allclose(LoadXray()(tmp_path / "a.nii.gz").meta["pixel_spacing"], [0.3, 0.2])
    np.testing.assert_array_equal(LoadXray()(tmp_path / "ref.png")[0].numpy(), monai_png.numpy().T)


def test_nifti_volume_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((16, 16, 4), np.float32), np.eye(4)), tmp_path / "vol.nii.gz")
    with pytest.raises(XrayReadError, match="not 2D"):
        LoadXray()(tmp_path / "vol.nii.gz")


# --- corrupt inputs -------------------------------------------------------------------------------------------


def test_corrupt_corpus_each_gets_its_named_error(tmp_path):
    bad = write_bad_corpus(tmp_path)
    for case, (path, reason) in bad.items():
        with pytest.raises(XrayReadError) as info:
            LoadXray()(path)
        err = info.value
        assert err.path == str(path), case
        assert reason in err.reason, f"{case}: {err.reason}"
        assert str(path) in str(err)
        assert isinstance(err, ValueError)
        copy = pickle.loads(pickle.dumps(err))  # crosses DataLoader worker boundaries intact
        assert (copy.path, copy.reason) == (err.path, err.reason)


def test_missing_file_and_constant_image(tmp_path):
    with pytest.raises(XrayReadError, match="file not found"):
        read_xray(tmp_path / "nope.png")
    write_png(tmp_path / "flat.png", np.full((32, 32), 7, np.uint8))
    with pytest.raises(XrayReadError, match="constant image"):
        read_xray(tmp_path / "flat.png")
    assert read_xray(tmp_path / "flat.png", allow_constant=True)[0].shape == (32, 32)


def test_good_corpus_through_dict_loader_and_collate(tmp_path):
    files = write_good_corpus(tmp_path)
    data = [{"image": str(p), "label": i} for i, p in enumerate(files.values())]
    pipeline = xray_preprocess_transforms(32)
    batch = next(iter(DataLoader(Dataset(data, pipeline), batch_size=len(data))))
    assert tuple(batch["image"].shape) == (len(data), 1, 32, 32)
    assert batch["image"].meta["label"].tolist() == list(range(len(data)))
    assert sorted(batch["image"].meta["source_format"]) == sorted(["png", "png", "jpeg", "dicom", "nifti"])
    assert sorted(batch["image"].meta["transfer_syntax"])[-1] == "Explicit VR Little Endian"
    for path in files.values():
        assert set(XRAY_META_KEYS) <= set(LoadXray()(path).meta), path
    loaded = LoadXrayd("image")({"image": str(files["dicom"]), "label": 3})
    assert loaded["image"].meta["label"] == 3 and loaded["label"] == 3
    with pytest.raises(ValueError, match="'label' must be an integer class index, got 'COVID-19'"):
        LoadXrayd("image")({"image": str(files["dicom"]), "label": "COVID-19"})


def test_dicom_voi_lut_sequence(tmp_path):
    from pydicom.dataset import Dataset as DicomDataset

    lut = (np.sqrt(np.arange(1024) / 1023.0) * 4095).astype(np.uint16)  # a gamma-like display LUT, 12-bit output
    item = DicomDataset()
    item.LUTDescriptor = [1024, 1000, 12]  # 1024 entries, first mapped stored value 1000
    item.LUTData = lut.astype("<u2").tobytes()
    ds = dicom_dataset(STORED, "MONOCHROME2")
    ds.VOILUTSequence = [item]
    img = LoadXray()(write_dicom(tmp_path / "voilut.dcm", ds))
    expected = lut[np.clip(STORED.astype(np.int64) - 1000, 0, 1023)]
    np.testing.assert_array_equal(img[0].numpy(), expected.astype(np.float32))
    np.testing.assert_allclose(img.meta["display_range"], [0, 4095])


def test_dicom_signed_pixels(tmp_path):
    signed = (STORED.astype(np.int32) - 2048).astype(np.int16)
    ds = dicom_dataset(signed, "MONOCHROME2", RescaleSlope=1, RescaleIntercept=0)
    np.testing.assert_array_equal(LoadXray()(write_dicom(tmp_path / "s.dcm", ds))[0].numpy(), signed)


@pytest.mark.parametrize(
    "name, fragment",
    [
        # colour images
        ("SC_rgb_rle.dcm", "colour image"),
        ("SC_rgb_jpeg_dcmtk.dcm", "colour image"),
        ("examples_palette.dcm", "PALETTE COLOR"),
        # pydicom's own broken files: an invalid IS value, a missing Bits Allocated, truncated pixel data
        ("badVR.dcm", "malformed dicom file"),
        ("meta_missing_tsyntax.dcm", "incomplete DICOM image description"),
        ("MR_truncated.dcm", "truncated"),
        ("rtplan.dcm", "no pixel data"),
    ],
)
def test_third_party_dicoms_are_refused_with_named_errors(name, fragment):
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not installed")
    with pytest.raises(XrayReadError, match=fragment):
        LoadXray()(path)


def test_tiff_16_bit_and_gray_alpha_png(tmp_path):
    g16 = ramp(30, 40, 65535, seed=5)
    Image.fromarray(g16).save(tmp_path / "scan.tif")
    img = LoadXray()(tmp_path / "scan.tif")
    np.testing.assert_array_equal(img[0].numpy(), g16)
    assert img.meta["source_format"] == "tiff"
    g8 = ramp(30, 40, 255, seed=6)
    Image.fromarray(np.stack([g8, np.full_like(g8, 255)], axis=-1), mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(LoadXray()(tmp_path / "la.png")[0].numpy(), g8)


def test_jpeg_draft_decoding_is_close_to_full_decoding(tmp_path):
    big = np.kron(ramp(64, 80, 255, seed=9), np.ones((16, 16), np.uint8))  # 1024 x 1280, smooth blocks
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=95, dpi=(100, 100))
    full = LoadXray()(tmp_path / "big.jpg")
    draft = LoadXray(draft_size=256)(tmp_path / "big.jpg")
    assert tuple(draft.shape) == (1, 256, 320)  # 1/4 scale: both sides still >= 256
    assert tuple(draft.meta["original_size"]) == (1024, 1280) == tuple(full.meta["original_size"])
    np.testing.assert_allclose(draft.meta["pixel_spacing"], full.meta["pixel_spacing"] * 4, rtol=1e-6)
    pooled = torch.nn.functional.avg_pool2d(full[None].as_tensor(), 4)[0]
    assert float((draft.as_tensor() - pooled).abs().mean()) < 2.0  # of 255
    np.testing.assert_array_equal(LoadXray(draft_size=256)(write_png(tmp_path / "big.png", big))[0].numpy(), big)
