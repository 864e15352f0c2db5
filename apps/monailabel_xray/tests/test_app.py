"""The MONAI Label app with the augmentation hook, started for real over a datastore of real radiographs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASSES, NO_MONAILABEL, make_datastore, start_app
from PIL import Image

pytest.importorskip("monailabel", reason=NO_MONAILABEL)

from monai_msgsagan.label import SPLIT_FILENAME, read_class_index

TRAIN = "classification_xray"
INFER = "classification_xray_synthesis"


@pytest.fixture(scope="module")
def running_app(figure1_dir: Path, generator_file: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("app")
    studies = make_datastore(figure1_dir, root / "studies")
    conf = {"model_dir": str(root / "model"), "synthetic_model": str(generator_file), "synthetic_seed": "11"}
    with start_app(studies, conf) as client:
        yield client, studies, root / "model"


def test_info_lists_tasks(running_app):
    client, _, _ = running_app
    response = client.get("/info/")
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["models"][INFER]["type"] == "others"
    assert info["models"][INFER]["labels"] == CLASSES
    assert TRAIN in info["trainers"]
    assert info["trainers"][TRAIN]["config"]["synthetic_augment"] is True
    assert info["datastore"]["total"] == 8 and info["datastore"]["completed"] == 8


def test_sync_train_adds_synthetic_records_to_train_only(running_app):
    client, studies, model_dir = running_app
    response = client.post(f"/train/{TRAIN}?run_sync=true", json={"max_epochs": 1})
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["epoch"] == 1 and "train_acc" in stats["train"]["metrics"]
    split = json.loads((model_dir / TRAIN / "train_01" / SPLIT_FILENAME).read_text())
    real_train = [r for r in split["train"] if not r.get("synthetic") and not r.get("repeat")]
    repeats = [r for r in split["train"] if r.get("repeat")]
    synthetic = [r for r in split["train"] if r.get("synthetic")]
    # validation: real datastore images only
    assert split["validation"] and not any(r.get("synthetic") or r.get("repeat") for r in split["validation"])
    assert all(Path(r["image"]).parent == studies.resolve() for r in split["validation"] + real_train + repeats)
    assert len(real_train) + len(split["validation"]) == 8
    # train, the every-class mix: every class gets as many generated PNG files as the largest class has real
    # images, and the smaller class repeats its real records up to that number
    counts = np.bincount([read_class_index(r["label"], CLASSES) for r in real_train], minlength=2)
    minority = int(np.argmin(counts))
    assert sorted(r["label"] for r in synthetic) == [0] * counts.max() + [1] * counts.max()
    assert all(Path(r["image"]).is_file() for r in synthetic)
    assert len(repeats) == counts.max() - counts.min() > 0
    assert all(read_class_index(r["label"], CLASSES) == minority for r in repeats)
    assert stats["synthetic"] == {CLASSES[0]: int(counts.max()), CLASSES[1]: int(counts.max())}
    with Image.open(synthetic[0]["image"]) as im:
        assert im.size == (32, 32) and im.mode == "L"
    # a second training run reuses the cached images
    mtimes = {r["image"]: Path(r["image"]).stat().st_mtime_ns for r in synthetic}
    again = client.post(f"/train/{TRAIN}?run_sync=true", json={"max_epochs": 1})
    assert again.status_code == 200, again.text
    split2 = json.loads((model_dir / TRAIN / "train_01" / SPLIT_FILENAME).read_text())
    assert [r for r in split2["train"] if r.get("synthetic")] == synthetic
    assert {i: Path(i).stat().st_mtime_ns for i in mtimes} == mtimes


def test_infer_returns_synthetic_image(running_app):
    client, studies, _ = running_app
    image_id = sorted(p.name for p in studies.glob("*.jpg"))[0].rsplit(".", 1)[0]

    def infer(params: dict, output: str) -> bytes:
        r = client.post(f"/infer/{INFER}?image={image_id}&output={output}", data={"params": json.dumps(params)})
        assert r.status_code == 200, r.text
        return r.content

    png = infer({"class": "other", "seed": 5}, "image")
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.size == (32, 32) and im.mode == "L"
        pixels = np.asarray(im)
    assert pixels.std() > 0
    assert infer({"class": "other", "seed": 5}, "image") == png  # reproducible from the seed
    assert infer({"class": "other", "seed": 6}, "image") != png
    assert infer({"class": "COVID-19", "seed": 5}, "image") != png
    meta = json.loads(infer({"class": 1, "seed": 5}, "json"))
    assert meta["class"] == "other" and meta["synthetic"] is True and meta["seed"] == 5
    # never stored in the datastore as a label of the real image, even when the client asks for it
    infer({"class": "other", "seed": 5, "save_label": True, "label_tag": "original"}, "image")
    assert not (studies / "labels" / "original").exists() or not any((studies / "labels" / "original").iterdir())


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"synthetic_model": None}, "'synthetic_model' is missing"),
        ({"synthetic_model": "/nonexistent/generator.ts"}, "generator.ts: generator model not found"),
        ({"synthetic_classes": "pneumothorax"}, r"unknown classes \['pneumothorax'\]"),
        ({"synthetic_ratio": "-0.5"}, "synthetic_ratio.*>= 0"),
        ({"classes": "COVID-19,other,pneumonia"}, r"\['pneumonia'\] are not classes of the generator"),
    ],
)
def test_bad_config_fails_at_app_start(conf, message, figure1_dir, generator_file, tmp_path):
    studies = make_datastore(figure1_dir, tmp_path / "studies", n_covid=1, n_other=1)
    base = {"model_dir": str(tmp_path / "model"), "synthetic_model": str(generator_file)}
    full = {k: v for k, v in {**base, **conf}.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        with start_app(studies, full):
            pass


def test_hook_off_needs_no_generator(figure1_dir, tmp_path):
    studies = make_datastore(figure1_dir, tmp_path / "studies", n_covid=1, n_other=1)
    conf = {"model_dir": str(tmp_path / "model"), "synthetic": "false"}
    with pytest.raises(ValueError, match="'classes': give at least two class names"):  # no generator record to ask
        with start_app(studies, conf):
            pass
    with start_app(studies, {**conf, "classes": ",".join(CLASSES)}) as client:
        info = client.get("/info/").json()
    assert INFER not in info["models"]
    assert info["trainers"][TRAIN]["config"]["synthetic_augment"] is False
