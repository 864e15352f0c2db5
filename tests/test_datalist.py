"""build_datalist on the real figure1 metadata.csv, on CSVs and folder trees with bad rows and corrupt files,
and the cached datasets built from it."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from monai.data import CacheDataset, DataLoader, PersistentDataset
from xray_files import ramp, write_bad_corpus, write_good_corpus, write_phantom_folder, write_png

from monai_msgsagan.data import (
    PHANTOM_CLASS_NAMES,
    DataSpec,
    build_datalist,
    make_dataset,
    training_data,
)
from monai_msgsagan.transforms import LoadXray, xray_train_transforms


def test_figure1_metadata_with_blank_and_multiclass_labels(figure1_dir):
    dl = build_datalist(figure1_dir / "metadata.csv", label_column="finding", val_fraction=0.2, seed=0)
    assert dl.class_names == ["COVID-19", "No finding", "Pneumonia"]
    assert len(dl.train) + len(dl.val) == 40
    assert dl.report.num_candidates == 55 and dl.report.num_used == 40
    assert dl.report.reason_counts() == {"blank label in column 'finding'": 15}
    assert all(s.row is not None and s.path.startswith("COVID-") for s in dl.report.skipped)
    for item in dl.train + dl.val:  # patientid without extension resolved to images/<patientid>.<ext>
        assert item["image"].startswith(str(figure1_dir / "images" / "COVID-"))
        assert dl.class_names[item["label"]] == item["class_name"]
    # stratified: every class with 2+ images has one in val; the 35-image class has 7
    val_counts = {c: sum(it["class_name"] == c for it in dl.val) for c in dl.class_names}
    assert val_counts == {"COVID-19": 7, "No finding": 1, "Pneumonia": 1}
    again = build_datalist(figure1_dir / "metadata.csv", label_column="finding", val_fraction=0.2, seed=0)
    assert again.train == dl.train and again.val == dl.val
    other = build_datalist(figure1_dir / "metadata.csv", label_column="finding", val_fraction=0.2, seed=1)
    assert other.val != dl.val


def test_figure1_class_filter_and_unlabelled(figure1_dir):
    dl = build_datalist(figure1_dir / "metadata.csv", label_column="finding", classes=["No finding", "COVID-19"])
    assert dl.class_names == ["No finding", "COVID-19"] and len(dl.train) == 38 and dl.val == []
    assert {it["label"] for it in dl.train if it["class_name"] == "COVID-19"} == {1}
    assert dl.report.reason_counts()["class 'Pneumonia' not in requested classes ['No finding', 'COVID-19']"] == 2
    unlabelled = build_datalist(figure1_dir / "metadata.csv", check_readable=False)
    assert len(unlabelled.train) == 55 and unlabelled.class_names == [] and unlabelled.num_classes == 0
    folder = build_datalist(figure1_dir / "images", check_readable=False)
    assert sorted(it["image"] for it in folder.train) == sorted(it["image"] for it in unlabelled.train)


def test_csv_with_bad_rows_reports_each_and_keeps_good(tmp_path):
    good = write_good_corpus(tmp_path / "img")
    bad = write_bad_corpus(tmp_path / "img")
    rows = ["file,diagnosis"]
    rows += [f"img/{p.name},normal" for p in good.values()]
    rows += [f"img/{p.name},normal" for p, _ in bad.values()]
    rows += ["img/does_not_exist.png,normal", ",normal", "img/gray8.png,", f"img/{good['png8'].name},normal"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    dl = build_datalist(tmp_path / "labels.csv", label_column="diagnosis")
    assert sorted(it["image"] for it in dl.train) == sorted(str(p) for p in good.values())
    reasons = {s.path: s.reason for s in dl.report.skipped}
    for path, fragment in bad.values():
        assert fragment in reasons[str(path)], reasons[str(path)]
        assert reasons[str(path)].startswith("unreadable")
    assert reasons["img/does_not_exist.png"].startswith("file not found")
    by_row = {s.row: s.reason for s in dl.report.skipped}
    n = len(good) + len(bad)
    assert by_row[n + 2].startswith("blank path in column 'file'")
    assert by_row[n + 3] == "blank label in column 'diagnosis'"
    assert by_row[n + 4] == "duplicate of row 1"
    assert len(dl.report.skipped) == len(bad) + 4
    threaded = build_datalist(tmp_path / "labels.csv", label_column="diagnosis", num_workers=2)
    assert threaded.train == dl.train and threaded.report.to_dict() == dl.report.to_dict()
    saved = json.loads(dl.report.to_json(tmp_path / "report.json").read_text())
    assert saved["num_used"] == len(good) and len(saved["skipped"]) == len(bad) + 4
    for item in dl.train:  # the good ones still load
        assert LoadXray()(item["image"]).ndim == 3


def test_folder_tree_with_class_subfolders(tmp_path):
    write_good_corpus(tmp_path / "normal")
    write_good_corpus(tmp_path / "opacity")
    bad = write_bad_corpus(tmp_path / "opacity" / "broken")
    shutil.copy(tmp_path / "normal" / "gray8.png", tmp_path / "loose.png")
    (tmp_path / "opacity" / "README.txt").write_text("not an image")
    dl = build_datalist(tmp_path, labels_from_subfolders=True, val_fraction=0.25, seed=3)
    assert dl.class_names == ["normal", "opacity"]
    items = dl.train + dl.val
    assert len(items) == 10 and sum(it["class_name"] == "opacity" for it in items) == 5
    assert {s.reason for s in dl.report.skipped if s.path.endswith("loose.png")} == {"not in a class subfolder"}
    assert len([s for s in dl.report.skipped if s.reason.startswith("unreadable")]) == len(bad)
    only = build_datalist(tmp_path, classes=["opacity"])
    assert only.class_names == ["opacity"] and len(only.train) == 5


def test_empty_results_say_why(tmp_path):
    write_bad_corpus(tmp_path / "bad")
    with pytest.raises(ValueError, match="no usable images.*unreadable: 10"):
        build_datalist(tmp_path / "bad")
    with pytest.raises(ValueError, match="datalist source not found"):
        build_datalist(tmp_path / "missing")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no column holds paths"):
        build_datalist(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="column 'finding' not found"):
        build_datalist(tmp_path / "x.csv", label_column="finding")


def test_phantom_folder_round_trip_and_cached_datasets(tmp_path):
    csv_path = write_phantom_folder(tmp_path / "ph", 8, size=64, seed=5)
    dl = build_datalist(csv_path, label_column="class_name", classes=PHANTOM_CLASS_NAMES, val_fraction=0.25)
    assert dl.class_names == list(PHANTOM_CLASS_NAMES)
    assert len(dl.train) == 6 and len(dl.val) == 2 and {it["label"] for it in dl.val} == {0, 1}
    transform = xray_train_transforms(32, augment=False)
    memory = make_dataset(dl.train, transform, cache="memory")
    disk = make_dataset(dl.train, transform, cache="disk", cache_dir=tmp_path / "cache")
    plain = make_dataset(dl.train, transform, cache="none")
    assert isinstance(memory, CacheDataset) and isinstance(disk, PersistentDataset)
    for ds in (memory, disk, plain):
        batch = next(iter(DataLoader(ds, batch_size=3)))
        assert [tuple(t.shape) for t in batch["image"]] == [(3, 1, s, s) for s in (4, 8, 16, 32)]
    torch.testing.assert_close(memory[0]["image"][-1], plain[0]["image"][-1])
    torch.testing.assert_close(disk[0]["image"][-1], plain[0]["image"][-1])
    assert any((tmp_path / "cache").iterdir())
    with pytest.raises(ValueError, match="cache_dir"):
        make_dataset(dl.train, transform, cache="disk")


def test_unusable_data_set_still_writes_the_report(tmp_path):
    """Every image bad: the run stops, but the per-file reasons are on disk first."""
    bad = write_bad_corpus(tmp_path / "bad")
    report = tmp_path / "logs" / "datalist_report.json"
    with pytest.raises(ValueError, match="no usable images") as err:
        build_datalist(tmp_path / "bad", report_path=report)
    assert str(report) in str(err.value)
    written = json.loads(report.read_text())
    assert written["num_used"] == 0
    assert sorted(Path(s["path"]).name for s in written["skipped"]) == sorted(p.name for p, _ in bad.values())


def test_broken_symbolic_links_are_reported(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_png(folder / "good.png", ramp(64, 64, 255))
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    (folder / "self.png").symlink_to(folder / "self.png")
    (folder / "a.dcm").symlink_to(folder / "b.dcm")
    (folder / "b.dcm").symlink_to(folder / "a.dcm")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)
    dl = build_datalist(folder)
    assert [Path(it["image"]).name for it in dl.train] == ["good.png"]
    reasons = {Path(s.path).name: s.reason for s in dl.report.skipped}
    assert set(reasons) == {"dangling.png", "self.png", "a.dcm", "b.dcm", "up"}
    assert reasons["dangling.png"].startswith("dangling symbolic link") and "gone.png" in reasons["dangling.png"]
    for name in ("self.png", "a.dcm", "b.dcm", "up"):
        assert reasons[name].startswith("symbolic link loop"), reasons[name]
    assert dl.report.num_candidates == 6


def test_data_spec_normalises_once_and_round_trips_through_asdict(tmp_path):
    """Blank strings are None, paths absolute, classes a tuple; ``asdict`` through JSON gives an equal spec."""
    spec = DataSpec(tmp_path / "data.csv", label_column=" ", classes=["b", "a"], store_dir="")
    assert spec.dataset_dir == str((tmp_path / "data.csv").resolve()) and spec.label_column is spec.store_dir is None
    assert spec.classes == ("b", "a") and DataSpec(dataset_dir="").dataset_dir is None
    assert DataSpec(labels_from_subfolders="false") == DataSpec() != DataSpec(labels_from_subfolders="True")
    assert DataSpec(**json.loads(json.dumps(asdict(spec)))) == spec != DataSpec(tmp_path / "data.csv")
    with pytest.raises(TypeError, match="DataSpec.num_phantoms: expected int"):
        DataSpec(num_phantoms="8")
    with pytest.raises(FileNotFoundError, match="data.csv does not exist"):
        training_data(spec, 32)


def test_bundle_data_entry_writes_the_report_when_nothing_is_usable(tmp_path):
    """The bundle's training_data keeps the per-file reasons on disk when every image is unusable."""
    write_bad_corpus(tmp_path / "bad")
    report = tmp_path / "logs" / "datalist_report.json"
    with pytest.raises(ValueError, match="no usable images"):
        training_data(DataSpec(tmp_path / "bad"), 32, report_path=report)
    assert json.loads(report.read_text())["num_used"] == 0
