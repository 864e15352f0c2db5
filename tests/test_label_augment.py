"""The MONAI-Label-free core of the augmentation hook: class balancing, cache, dataset, config."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_utils import save_generator_artifact, tiny_generator
from monai.transforms import Compose, SelectItemsd

from monai_msgsagan.artifact import UnknownClassError, load_generator
from monai_msgsagan.files import write_png
from monai_msgsagan.generation import generate
from monai_msgsagan.label import (
    DEFAULT_MIX,
    REPEAT_KEY,
    SPLIT_FILENAME,
    SYNTHETIC_KEY,
    ClassIndexd,
    SyntheticAugmentedDataset,
    SyntheticAugmenter,
    SyntheticAugmentSettings,
    augment_split,
    class_counts,
    plan_real_repeats,
    plan_synthetic_counts,
    read_class_index,
)
from monai_msgsagan.transforms import LoadXray, xray_preprocess_transforms

CLASSES = ["COVID-19", "other"]
NET_ARGS = {"resolution": 16, "latent_dim": 8, "channels": [16, 8, 8], "attention_resolutions": [], "num_classes": 2}


@pytest.fixture
def torchscript_model(tmp_path: Path) -> Path:
    """A tiny class-conditional generator exported as TorchScript with its record."""
    return save_generator_artifact(tiny_generator(NET_ARGS), NET_ARGS, CLASSES, tmp_path / "models" / "model.ts")


def records(n_covid: int, n_other: int, folder: Path) -> list[dict]:
    """Datalist records whose labels are JSON label files, the MONAI Label datastore form of the app."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, name in enumerate(["COVID-19"] * n_covid + ["other"] * n_other):
        label = folder / f"case{i}.cls.json"
        label.write_text(json.dumps({"label": name}))
        out.append({"image": str(folder / f"case{i}.png"), "label": str(label)})
    return out


def test_plan_balance_ratio_and_classes():
    assert plan_synthetic_counts([10, 4, 7]) == [0, 6, 3]
    assert plan_synthetic_counts([10, 4, 7], balance=0.5) == [0, 1, 0]
    assert plan_synthetic_counts([10, 4, 7], max_ratio=1.0) == [0, 4, 3]
    assert plan_synthetic_counts([10, 4, 7], max_ratio=0.0) == [0, 0, 0]
    assert plan_synthetic_counts([10, 4, 7], augment=[2]) == [0, 0, 3]
    assert plan_synthetic_counts([10, 0]) == [0, 10]
    assert plan_synthetic_counts([10, 0], max_ratio=2.0) == [0, 0]
    with pytest.raises(ValueError, match="balance"):
        plan_synthetic_counts([3, 1], balance=0.0)
    with pytest.raises(ValueError, match="max_ratio"):
        plan_synthetic_counts([3, 1], max_ratio=-0.5)
    with pytest.raises(ValueError, match="outside"):
        plan_synthetic_counts([3, 1], augment=[2])


def test_read_class_index_forms_and_errors(tmp_path: Path):
    assert read_class_index(1, CLASSES) == 1
    assert read_class_index(torch.tensor([0]), CLASSES) == 0
    assert read_class_index("other", CLASSES) == 1
    assert read_class_index("1", CLASSES) == 1
    (tmp_path / "a.cls.json").write_text('{"label": "COVID-19"}')
    (tmp_path / "b.json").write_text('{"label": 1}')
    (tmp_path / "c.txt").write_text("other\n")
    assert [read_class_index(str(tmp_path / f), CLASSES) for f in ("a.cls.json", "b.json", "c.txt")] == [0, 1, 1]
    with pytest.raises(UnknownClassError, match=r"label: class 2 is not one of the classes"):
        read_class_index(2, CLASSES)
    with pytest.raises(UnknownClassError, match=r"record 3: class \"pneumothorax\" is not one of"):
        read_class_index("pneumothorax", CLASSES, where="record 3")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        read_class_index(str(tmp_path / "bad.json"), CLASSES)
    (tmp_path / "unknown.json").write_text('{"label": "pneumothorax"}')
    with pytest.raises(ValueError, match="unknown.json"):
        read_class_index(str(tmp_path / "unknown.json"), CLASSES)
    assert class_counts(records(3, 1, tmp_path / "d") + [{"image": "x", "label": 1, "synthetic": True}], CLASSES) == [
        3,
        1,
    ]
    item = ClassIndexd("label", CLASSES)({"image": "x", "label": str(tmp_path / "c.txt")})
    assert item["label"].dtype == torch.int64 and item["label"].shape == () and int(item["label"]) == 1


def test_torchscript_and_state_dict_artifacts_agree(tmp_path: Path, torchscript_model: Path):
    scripted = load_generator(torchscript_model)
    assert (scripted.latent_dim, scripted.num_classes, scripted.resolution) == (8, 2, 16)
    assert scripted.class_names == CLASSES
    checkpoint = load_generator(
        save_generator_artifact(tiny_generator(NET_ARGS), NET_ARGS, CLASSES, tmp_path / "m" / "model.pt")
    )
    assert checkpoint.record.network == scripted.record.network and checkpoint.sha256 != scripted.sha256
    images = generate(scripted.network, 3, 3, 1)
    torch.testing.assert_close(generate(checkpoint.network, 3, 3, 1), images, atol=1e-5, rtol=0)
    assert images.shape == (3, 1, 16, 16) and not torch.allclose(images[0], images[1])
    assert not torch.allclose(generate(scripted.network, 1, 3, 0)[0], images[0])  # the class matters


def test_augmenter_balances_and_reuses_cache(tmp_path: Path, torchscript_model: Path):
    generator = load_generator(torchscript_model)
    cache = tmp_path / "cache"
    augmenter = SyntheticAugmenter(generator, cache, seed=3, mix="minority")
    data = records(5, 2, tmp_path / "data")
    synthetic = augmenter(data)
    assert augmenter.plan(data) == {"COVID-19": 0, "other": 3}
    assert len(synthetic) == 3
    assert all(r["synthetic"] is True and r["label"] == 1 and r["class_name"] == "other" for r in synthetic)
    assert all(r["generator_sha256"] == generator.sha256 for r in synthetic)
    folder = augmenter.cache_folder
    assert folder.parent == cache and folder.name.startswith(generator.sha256[:16])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["generator_sha256"] == generator.sha256 and manifest["seed"] == 3
    # real PNG files of the generator's resolution that the project's loader reads back as the generated tensor
    first = LoadXray()(synthetic[0]["image"])
    assert first.shape == (1, 16, 16)
    expected = (generate(generator.network, 1, 3, 1)[0] + 1) * 127.5
    assert np.abs(first.numpy() - expected.numpy()).max() <= 0.5 + 1e-4
    # a second run (new augmenter, same model and settings) reuses every file
    mtimes = {p: p.stat().st_mtime_ns for p in folder.rglob("*.png")}
    again = SyntheticAugmenter(load_generator(torchscript_model), cache, CLASSES, seed=3, mix="minority")(data)
    assert again == synthetic
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.png")} == mtimes
    # a run that needs more images only adds the missing ones
    more = augmenter(records(6, 2, tmp_path / "data2"))
    assert len(more) == 4 and [r["image"] for r in more[:3]] == [r["image"] for r in synthetic]
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.png") if p in mtimes} == mtimes
    # another seed is another cache folder with other images
    other = SyntheticAugmenter(generator, cache, seed=4, mix="minority")
    assert other.cache_folder != folder
    img_other = LoadXray()(other(data)[0]["image"])
    assert not np.array_equal(img_other.numpy(), first.numpy())
    # already synthetic records are not counted as real data
    assert augmenter(data + synthetic) == synthetic


def test_every_class_mix_makes_generated_say_nothing_about_the_class(tmp_path: Path, torchscript_model: Path):
    assert plan_synthetic_counts([10, 4, 7], mix="every_class") == [10, 10, 10]
    assert plan_synthetic_counts([10, 4, 7], balance=0.5, mix="every_class") == [5, 5, 5]
    assert plan_synthetic_counts([10, 4, 7], max_ratio=1.0, mix="every_class") == [10, 4, 7]
    assert plan_real_repeats([10, 4, 7], [10, 10, 10]) == [0, 6, 3]
    assert plan_real_repeats([10, 0], [10, 10]) == [0, 0]  # nothing to repeat
    with pytest.raises(ValueError, match="mix must be one of"):
        plan_synthetic_counts([3, 1], mix="majority")
    augmenter = SyntheticAugmenter(load_generator(torchscript_model), tmp_path / "cache", seed=3)
    assert augmenter.mix == DEFAULT_MIX
    data = records(5, 2, tmp_path / "data")
    added = augmenter(data)
    synthetic = [r for r in added if r.get(SYNTHETIC_KEY)]
    repeats = [r for r in added if r.get(REPEAT_KEY)]
    assert len(added) == len(synthetic) + len(repeats)
    # every class: 5 synthetic records; "other" (2 real) repeats its real records, cycling, up to 5
    assert [r["label"] for r in synthetic] == [0] * 5 + [1] * 5
    real_other = [r for r in data if read_class_index(r["label"], CLASSES) == 1]
    assert [r["image"] for r in repeats] == [real_other[i % 2]["image"] for i in range(3)]
    assert all(not r.get(SYNTHETIC_KEY) for r in repeats)
    # so every class is half synthetic and as large as any other
    final = data + added
    for c in (0, 1):
        members = [r for r in final if read_class_index(r["label"], CLASSES) == c]
        assert len(members) == 10 and sum(bool(r.get(SYNTHETIC_KEY)) for r in members) == 5
    # an augmented datalist is not augmented twice: its synthetic records and repeats are not counted as real
    assert augmenter(final) == added


def test_png_orientation_and_values_match_the_loader(tmp_path: Path):
    """Row h of the tensor is row h of the PNG (LoadXray's orientation); [-1, 1] maps to 0..255 rounded."""
    image = torch.full((1, 8, 16), -1.0)
    image[0, 0, :] = 1.0  # top row white
    image[0, :, 3] = 0.0  # one mid-grey column
    write_png(image, tmp_path / "x.png")
    read = LoadXray()(tmp_path / "x.png")
    expected = torch.round((image + 1) * 127.5)
    assert read.shape == (1, 8, 16) and torch.equal(read.as_tensor(), expected)
    with pytest.raises(ValueError, match=r"\(1, H, W\)"):
        write_png(torch.zeros(3, 8, 8), tmp_path / "rgb.png")


def test_augmenter_rejects_bad_settings(torchscript_model: Path, tmp_path: Path):
    generator = load_generator(torchscript_model)
    with pytest.raises(ValueError, match=r"classes \['pneumothorax'\] are not classes of the generator"):
        SyntheticAugmenter(generator, tmp_path, ["other", "pneumothorax"])
    with pytest.raises(ValueError, match="not classes"):
        SyntheticAugmenter(generator, tmp_path, augment_classes=["pneumothorax"])
    with pytest.raises(ValueError, match="max_ratio"):
        SyntheticAugmenter(generator, tmp_path, max_ratio=-1)
    unconditional = {**NET_ARGS, "num_classes": 0}
    path = save_generator_artifact(tiny_generator(unconditional), unconditional, [], tmp_path / "u" / "model.ts")
    with pytest.raises(ValueError, match="not class-conditional"):
        SyntheticAugmenter(load_generator(path), tmp_path)


def test_classes_are_matched_by_name(torchscript_model: Path, tmp_path: Path):
    """A datalist whose label order differs from the generator's gets the generator's images of each name."""
    generator = load_generator(torchscript_model)
    swapped = SyntheticAugmenter(generator, tmp_path, ["other", "COVID-19"], seed=3, mix="minority")
    records_ = swapped([{"image": "a.png", "label": 0}] * 3 + [{"image": "b.png", "label": 1}])
    assert [(r["label"], r["class_name"]) for r in records_] == [(1, "COVID-19")] * 2
    image = LoadXray()(records_[0]["image"])
    expected = (generate(generator.network, 1, 3, CLASSES.index("COVID-19"))[0] + 1) * 127.5
    assert np.abs(image.numpy() - expected.numpy()).max() <= 0.5 + 1e-4


def figure1_records(figure1_dir: Path, n_covid: int, n_other: int) -> list[dict]:
    """Real chest X-rays with their class from metadata.csv (finding COVID-19, or anything else: "other")."""
    with open(figure1_dir / "metadata.csv", encoding="latin-1") as f:
        rows = list(csv.DictReader(f))
    picked: dict[str, list[dict]] = {"COVID-19": [], "other": []}
    for row in sorted(rows, key=lambda r: r["patientid"]):
        name = "COVID-19" if row["finding"] == "COVID-19" else "other"
        image = next(iter(sorted((figure1_dir / "images").glob(f"{row['patientid']}.*"))), None)
        if image is not None and os.path.getsize(image) < 400_000:
            picked[name].append({"image": str(image), "label": name})
    return picked["COVID-19"][:n_covid] + picked["other"][:n_other]


def test_dataset_wrapper_on_real_images(figure1_dir: Path, torchscript_model: Path, tmp_path: Path):
    data = figure1_records(figure1_dir, 3, 1)
    augmenter = SyntheticAugmenter(load_generator(torchscript_model), tmp_path / "cache")
    transform = Compose(
        [
            xray_preprocess_transforms(16, label_key=None),
            SelectItemsd(["image", "label"]),
            ClassIndexd("label", CLASSES),
        ]
    )
    ds = SyntheticAugmentedDataset(data, augmenter, transform)
    # the every-class mix: 3 synthetic images per class, then the one real "other" image repeated twice
    assert len(ds) == 12 and len(ds.added_data) == 8 and ds.real_data == data
    items = [ds[i] for i in range(len(ds))]
    labels = [int(item["label"]) for item in items]
    assert labels == [0, 0, 0, 1] + [0, 0, 0, 1, 1, 1] + [1, 1]
    for item in items:
        assert item["image"].shape[-2:] == (16, 16)
        assert float(item["image"].min()) >= -1.0 and float(item["image"].max()) <= 1.0


def test_settings_from_conf(tmp_path: Path, torchscript_model: Path):
    settings = SyntheticAugmentSettings.from_conf(
        {"synthetic_model": str(torchscript_model), "synthetic_ratio": "0.5", "synthetic_seed": "7"},
        tmp_path / "cache",
    )
    assert settings.max_ratio == 0.5 and settings.seed == 7 and settings.balance == 1.0
    assert settings.classes == tuple(CLASSES)  # from the generator's record
    assert settings.mix == DEFAULT_MIX == "every_class"  # the mix the real-data study supports
    augmenter = settings.build()
    # every class gets the largest class's count (6), capped at half its real count
    assert augmenter.plan(records(6, 2, tmp_path / "d")) == {"COVID-19": 3, "other": 1}
    minority = SyntheticAugmentSettings.from_conf(
        {"synthetic_model": str(torchscript_model), "synthetic_mix": "minority"}, tmp_path / "cache"
    )
    assert minority.build().plan(records(6, 2, tmp_path / "d")) == {"COVID-19": 0, "other": 4}
    checkpoint = save_generator_artifact(tiny_generator(NET_ARGS), NET_ARGS, CLASSES, tmp_path / "m" / "model.pt")
    from_ckpt = SyntheticAugmentSettings.from_conf({"synthetic_model": str(checkpoint)}, tmp_path, ["other"])
    assert from_ckpt.generator.resolution == 16 and from_ckpt.classes == ("other",)

    def bad(conf: dict, match: str, classes: list[str] | None = None) -> None:
        with pytest.raises(ValueError, match=match):
            SyntheticAugmentSettings.from_conf(conf, tmp_path, classes)

    model = str(torchscript_model)
    bad({}, "'synthetic_model' is missing")
    bad({"synthetic_model": str(tmp_path / "none.ts")}, "'synthetic_model'.*not found")
    bad({"synthetic_model": model}, r"'classes': classes \['pneumothorax'\] are not classes", ["other", "pneumothorax"])
    bad({"synthetic_model": model, "synthetic_classes": "other,pneumothorax"}, r"unknown classes \['pneumothorax'\]")
    bad({"synthetic_model": model, "synthetic_ratio": "-1"}, "synthetic_ratio.*>= 0")
    bad({"synthetic_model": model, "synthetic_ratio": "lots"}, "expected a float")
    bad({"synthetic_model": model, "synthetic_balance": "1.5"}, "balance")
    bad({"synthetic_model": model, "synthetic_mix": "majority"}, "synthetic_mix.*every_class")
    (tmp_path / "m" / "model.json").unlink()
    bad({"synthetic_model": str(checkpoint)}, "generator record not found")


def test_augment_split_keeps_validation_real(tmp_path: Path, torchscript_model: Path):
    augmenter = SyntheticAugmenter(load_generator(torchscript_model), tmp_path / "cache")
    train, val = records(4, 1, tmp_path / "t"), records(1, 1, tmp_path / "v")
    stray = {"image": "s.png", "label": 1, "synthetic": True}
    new_train, new_val, per_class = augment_split(augmenter, train, val + [stray], {}, tmp_path / "out")
    # the every-class mix: 4 synthetic images per class, the single real "other" record repeated 3 times
    assert per_class == {"COVID-19": 4, "other": 4}
    assert len(new_train) == 5 + 8 + 3 and sum(bool(r.get("synthetic")) for r in new_train) == 8
    assert new_val == val
    split = json.loads((tmp_path / "out" / SPLIT_FILENAME).read_text())
    assert split["validation"] == val and len(split["train"]) == 16
    off, _, none = augment_split(augmenter, train, val, {"synthetic_augment": "false"})
    assert off == train and none == {}
