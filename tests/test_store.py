"""The preprocessed store: one decode per real PNG/DICOM file, resumable after a real kill, refusal of other
settings, reads equal to the transform pipeline, and the bundle's ``run preprocess`` then ``run training``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_utils import TINY_TRAIN, bundle_env, copy_bundle, run_bundle, train_bundle
from monai.data import DataLoader
from xray_files import dicom_dataset, ramp, write_dicom, write_png

from monai_msgsagan.artifact import GeneratorRecord
from monai_msgsagan.data import (
    ClassBalancedSampler,
    DataSpec,
    StoreError,
    StoreIncompleteError,
    StoreSettingsError,
    XrayStoreDataset,
    build_datalist,
    preprocess_store,
    training_data,
)
from monai_msgsagan.files import file_sha256
from monai_msgsagan.transforms import XrayPreprocessSettings, xray_preprocess_transforms


def write_mixed_folder(folder: Path, per_class: int = 4) -> dict[str, Path]:
    """Class subfolders ``a`` (8-bit PNGs) and ``b`` (12-bit DICOM, 16-bit PNG), plus a truncated PNG and a text
    file named ``.dcm`` in ``b``; returns the two bad files."""
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    for i in range(per_class):
        write_png(folder / "a" / f"img_{i:02d}.png", ramp(40 + 4 * i, 48, 255, seed=i))
        write_dicom(folder / "b" / f"img_{i:02d}.dcm", dicom_dataset(ramp(48, 40, 4095, seed=10 + i), "MONOCHROME1"))
    write_png(folder / "b" / "img_99.png", ramp(48, 48, 65535, seed=99))
    good = write_png(folder / "b" / "cut.png", ramp(64, 64, 255)).read_bytes()
    (folder / "b" / "cut.png").write_bytes(good[: len(good) // 2])
    (folder / "b" / "notes.dcm").write_text("not an image\n" * 20)
    return {"truncated": folder / "b" / "cut.png", "text": folder / "b" / "notes.dcm"}


def test_store_equals_the_pipeline_and_reports_bad_files(tmp_path):
    bad = write_mixed_folder(tmp_path / "src")
    spec = DataSpec(tmp_path / "src", labels_from_subfolders=True, store_dir=tmp_path / "store")
    summary = preprocess_store(
        spec, 32, num_workers=2, shard_size=4, report_path=tmp_path / "logs" / "datalist_report.json"
    )
    assert (summary.num_images, summary.num_skipped, summary.num_shards) == (9, 2, 3)
    report = json.loads((tmp_path / "logs" / "datalist_report.json").read_text())
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert "truncated" in reasons[str(bad["truncated"])] and "not a DICOM file" in reasons[str(bad["text"])]
    assert report == json.loads((tmp_path / "store" / "datalist_report.json").read_text())

    store = XrayStoreDataset(tmp_path / "store", resolution=32)
    datalist = build_datalist(tmp_path / "src", labels_from_subfolders=True)  # decodes every file: the reference
    assert len(store) == len(datalist.train) == 9 and store.class_names == ["a", "b"]
    assert store.labels == [it["label"] for it in datalist.train]
    ids, names = store.identities()
    assert names == [it["image"] for it in datalist.train]
    assert ids == [f"sha256:{file_sha256(p)}" for p in names]
    pipeline = xray_preprocess_transforms(32)
    dtypes = [str(np.load(tmp_path / "store" / f"shard_{k:05d}.npy", mmap_mode="r").dtype) for k in range(3)]
    assert dtypes == ["uint8", "uint16", "uint16"]  # shard 0: 8-bit PNGs only; then DICOM and a 16-bit PNG
    for i, item in enumerate(datalist.train):
        expected = pipeline(item)["image"].as_tensor()
        got = store[i]
        assert got["image"].dtype == torch.float32 and got["image"].shape == (1, 32, 32)
        assert got["label"] == item["label"]
        step = 1.0 / 255 if i < 4 else 1.0 / 65535  # half a quantisation step of the shard's dtype
        assert float((got["image"] - expected).abs().max()) <= step + 1e-6, item["image"]

    again = preprocess_store(spec, 32, shard_size=4)
    assert (again.shards_written, again.shards_reused, again.num_images) == (0, 3, 9)


def test_other_settings_or_files_are_refused(tmp_path):
    write_mixed_folder(tmp_path / "src", per_class=2)
    store = tmp_path / "store"
    spec = DataSpec(tmp_path / "src", labels_from_subfolders=True, store_dir=store)
    preprocess_store(spec, 32)
    with pytest.raises(StoreSettingsError, match=r"store\.json.*resolution: store has 32, asked for 64"):
        preprocess_store(spec, 64)
    with pytest.raises(StoreSettingsError, match="normalize_mode: store has 'percentile', asked for 'minmax'"):
        preprocess_store(spec, 32, transform_settings=XrayPreprocessSettings(normalize_mode="minmax"))
    same = XrayPreprocessSettings(normalize_mode="percentile", lower=0.5, window=None)  # the defaults, given explicitly
    again = preprocess_store(spec, 32, transform_settings=same)
    assert again.shards_reused == 1 and again.num_images == 5
    write_png(tmp_path / "src" / "a" / "new.png", ramp(40, 40, 255, seed=5))
    with pytest.raises(StoreSettingsError, match="num_files: store has 7, asked for 8") as e:
        preprocess_store(spec, 32)
    assert "files_sha256" in e.value.mismatches
    with pytest.raises(StoreSettingsError, match="resolution: store has 32, asked for 64"):
        XrayStoreDataset(store, resolution=64)
    with pytest.raises(StoreSettingsError, match="labels_from_subfolders: store has True, asked for False"):
        training_data(DataSpec(tmp_path / "src", store_dir=store), 32)


def _edited_store(tmp_path: Path) -> Path:
    write_mixed_folder(tmp_path / "src", per_class=2)
    preprocess_store(
        DataSpec(tmp_path / "src", labels_from_subfolders=True, store_dir=tmp_path / "store"), 32, shard_size=2
    )
    return tmp_path / "store"


def test_shard_pixels_edited_after_writing_are_refused_when_first_read(tmp_path):
    store = _edited_store(tmp_path)
    npy = store / "shard_00001.npy"
    arr = np.load(npy)
    np.save(npy, np.zeros_like(arr))  # every pixel zeroed: same size, shape and dtype
    dataset = XrayStoreDataset(store)  # opens: size and shape agree
    dataset[0]  # shard 0 is intact
    files = json.loads((store / "shard_00001.json").read_text())["files"]
    with pytest.raises(StoreError, match=rf"shard_00001\.npy: the shard's pixels were changed .*{files[0]}"):
        dataset[2]


@pytest.mark.parametrize("edit", ["labels", "truncate"])
def test_shard_record_edited_or_shard_truncated_is_refused_when_opened(tmp_path, edit):
    store = _edited_store(tmp_path)
    record_file = store / "shard_00000.json"
    record = json.loads(record_file.read_text())
    if edit == "labels":
        record["labels"] = [1 - label for label in record["labels"]]  # every label flipped
        record_file.write_text(json.dumps(record))
        reason = r"shard_00000\.json: the shard record was changed after it was written"
    else:
        npy = store / "shard_00000.npy"
        npy.write_bytes(npy.read_bytes()[:-100])
        reason = r"shard_00000\.npy: the shard is .* \(truncated or replaced after it was written\)"
    with pytest.raises(StoreError, match=rf"{reason}.*holds 2 image\(s\): .*{record['files'][0]}"):
        XrayStoreDataset(store)


def test_ranks_read_disjoint_parts_through_dataloader_workers(tmp_path):
    write_mixed_folder(tmp_path / "src", per_class=6)
    preprocess_store(
        DataSpec(tmp_path / "src", labels_from_subfolders=True, store_dir=tmp_path / "store"), 16, shard_size=5
    )
    store = XrayStoreDataset(tmp_path / "store")
    seen = []
    for rank in range(2):
        sampler = ClassBalancedSampler(store, store.labels, balanced=False, num_replicas=2, rank=rank, seed=0)
        loader = DataLoader(store, batch_size=3, sampler=sampler, num_workers=2)
        batches = list(loader)
        assert batches[0]["image"].shape == (3, 1, 16, 16) and batches[0]["image"].dtype == torch.float32
        assert all(float(b["image"].min()) >= -1.0 and float(b["image"].max()) <= 1.0 for b in batches)
        seen.append(torch.cat([b["image"] for b in batches]))
    flat = torch.cat(seen).flatten(1)
    assert len(store) == 13 and len(flat) == 14  # DistributedSampler pads 13 to 7 per rank with one repeat
    assert len({tuple(row.tolist()) for row in flat}) == 13  # every image, across the two ranks


_PREPROCESS = """
import os, signal, sys
import monai_msgsagan.data.store as store
from monai_msgsagan.data import DataSpec, preprocess_store
# SIGKILL as soon as the first shard is complete (its .json written): an interruption at a known point, whatever
# the machine's speed
store._log_shard = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
preprocess_store(DataSpec(sys.argv[1], store_dir=sys.argv[2]), 64, shard_size=2, num_workers=1)
"""


@pytest.mark.slow
def test_killed_preprocessing_resumes_where_it_stopped(tmp_path):
    """A real preprocessing process SIGKILLed right after its first shard (by itself, so at the same point on any
    machine); the rerun writes only the missing shards and the store equals one written in a single run."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(24):
        write_png(src / f"cxr_{i:02d}.png", ramp(1200, 1000, 65535, seed=i))
    store = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-c", _PREPROCESS, str(src), str(store)], env=bundle_env(), timeout=300)
    assert proc.returncode == -signal.SIGKILL
    done = sorted(p.name for p in store.glob("shard_*.json"))
    assert done == ["shard_00000.json"]
    with pytest.raises(StoreIncompleteError, match="preprocessing has not finished"):
        XrayStoreDataset(store)

    resumed = preprocess_store(DataSpec(src, store_dir=store), 64, shard_size=2)
    assert resumed.shards_reused == len(done) and resumed.shards_written == 12 - len(done)
    whole = preprocess_store(DataSpec(src, store_dir=tmp_path / "whole"), 64, shard_size=2, num_workers=2)
    a, b = XrayStoreDataset(store), XrayStoreDataset(tmp_path / "whole")
    assert a.identities() == b.identities()
    for i in range(len(a)):
        assert torch.equal(a[i]["image"], b[i]["image"])
    assert whole.num_images == resumed.num_images == 24


@pytest.mark.slow
def test_bundle_preprocess_then_training_from_the_store(tmp_path):
    """``run preprocess``, then ``run training`` from the store with 2 DataLoader workers and with none: the
    same weights, and the record holds the files' identities as training from the folder would."""
    bundle = copy_bundle(tmp_path / "bundle")
    src = tmp_path / "src"
    bad = write_mixed_folder(src, per_class=8)
    configs = bundle / "configs"
    config = f"['{configs / 'train.json'}','{configs / 'preprocess.json'}']"
    store = tmp_path / "store"
    common = ["--dataset_dir", str(src), "--store_dir", str(store), "--resolution", "32"]
    common += ["--labels_from_subfolders", "true", "--bundle_root", str(bundle)]
    proc = run_bundle("run", bundle, "preprocess", "--config_file", config, *common, "--preprocess_workers", "2")
    assert "17 images in 1 shards" in proc.stdout + proc.stderr
    assert not (bundle / "models").exists()  # preprocessing builds no network and writes no record

    values = {**TINY_TRAIN, "dataset_dir": str(src), "store_dir": str(store), "labels_from_subfolders": "true"}
    train_bundle(bundle, {**values, "num_workers": "2"})
    in_process = copy_bundle(tmp_path / "in_process")
    train_bundle(in_process, {**values, "num_workers": "0"})
    with_workers = torch.load(bundle / "models" / "model.pt", weights_only=True)
    for key, value in torch.load(in_process / "models" / "model.pt", weights_only=True).items():
        torch.testing.assert_close(with_workers[key], value, rtol=0, atol=0, msg=key)  # workers change nothing
    record = GeneratorRecord.load(bundle / "models" / "model.json")
    direct = training_data(DataSpec(src, labels_from_subfolders=True), 32)  # the same files without a store
    assert (record.training_data["item_ids"], record.training_data["item_names"]) == direct.identities()
    assert record.class_names == ["a", "b"] and record.training_data["source"] == str(src.resolve())
    assert record.data_spec == DataSpec(src, labels_from_subfolders=True, num_phantoms=32, store_dir=store)
    report = json.loads((bundle / "logs" / "datalist_report.json").read_text())
    assert {s["path"] for s in report["skipped"]} == {str(p) for p in bad.values()}
    # evaluation with no data or network overrides reads the same store (the record names it)
    out = tmp_path / "eval"
    evaluate = f"['{configs / 'inference.json'}','{configs / 'evaluate.json'}']"
    run_bundle("run", bundle, "evaluating", "--config_file", evaluate, "--bundle_root", str(bundle), "--output_dir",
               str(out), "--num_images", "4", "--num_real", "12", "--fidelity", "false")  # fmt: skip
    assert json.loads((out / "report.json").read_text())["settings"]["num_real"] == 12


@pytest.mark.slow
def test_bench_data_prints_its_table_at_a_small_scale(tmp_path):
    """``bench/data.py`` end to end on 120 files (the default is 100,000), so the benchmark cannot rot."""
    bench = Path(__file__).resolve().parents[1] / "bench" / "data.py"
    args = ["--num", "120", "--subset", "60", "--reads", "64", "--workdir", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, str(bench), *args], env=bundle_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for row in ("scaling", "read 256 px", "read 64 px", "peak RSS 256 px", "MIMIC-CXR"):
        assert row in proc.stdout, row
    assert "store / Persistent / LMDB" in proc.stdout
