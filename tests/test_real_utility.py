"""The real-data benchmark (``bench/real_utility.py``) on a tiny set in the Kermany et al. layout made of phantoms:
the patient-level split and its refusals, and every stage through the bundle with the pooled tables."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pneumonia_data  # bench/, which tests/conftest.py puts on sys.path
import pytest
from bundle_utils import REPO_ROOT
from PIL import Image

from monai_msgsagan.data.phantoms import make_phantom


def write_kermany(root: Path, seed: int = 0) -> Path:
    """``root/chest_xray/{train,test}/{NORMAL,PNEUMONIA}`` JPEG phantoms (pneumonia = lung opacity) named as in the
    real set; ``person3`` is in both official splits (as 170 patients of the real set are)."""
    rng = np.random.default_rng(seed)
    layout = {
        "train": {"NORMAL": [f"IM-{i:04d}-0001" for i in range(1, 25)]
                  + [f"NORMAL2-IM-{i:04d}-0001" for i in range(1, 5)],
                  "PNEUMONIA": [f"person{p}_{kind}_{p * 10 + j}" for p in range(1, 13) for j in range(2)
                                for kind in (("bacteria",) if p % 3 else ("virus",))]},
        "test": {"NORMAL": [f"IM-{i:04d}-0001" for i in range(101, 113)],
                 "PNEUMONIA": [f"person{p}_{kind}_{p * 10}" for p in (3, *range(201, 223))
                               for kind in (("bacteria",) if p % 2 else ("virus",))]},
    }  # fmt: skip
    for split, folders in layout.items():
        for folder, names in folders.items():
            out = root / "chest_xray" / split / folder
            out.mkdir(parents=True, exist_ok=True)
            for name in names:
                image = make_phantom(48, int(folder == "PNEUMONIA"), rng)
                Image.fromarray(np.round((image[0] + 1) * 127.5).astype(np.uint8)).save(out / f"{name}.jpeg")
    (root / "chest_xray" / "train" / "NORMAL" / ".DS_Store").write_bytes(b"\0")
    return root


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_split_by_patient_keeps_test_patients_out(tmp_path: Path):
    data = write_kermany(tmp_path)
    expected = {  # train: whole patients of 2 images each until the class has its share; test: the official split
        "pneumonia10": ({"normal": 28, "pneumonia": 4}, {"normal": 12, "pneumonia": 23}),
        "pneumonia4": ({"normal": 28, "pneumonia": 8}, {"normal": 12, "pneumonia": 23}),
        "viral10": ({"normal": 28, "bacterial": 16, "viral": 4}, {"normal": 12, "bacterial": 12, "viral": 11}),
    }
    for setting, (train_counts, test_counts) in expected.items():
        train_csv, test_csv, summary = pneumonia_data.write_setting(data, setting, tmp_path / setting, seed=0)
        train, test = read_csv(train_csv), read_csv(test_csv)
        assert (summary["train_counts"], summary["test_counts"]) == (train_counts, test_counts)
        assert all(Path(r["path"]).parents[1].name == "train" for r in train)
        assert all(Path(r["path"]).parents[1].name == "test" for r in test)
        assert "person3" not in {Path(r["path"]).name.split("_")[0] for r in train}  # a test patient's images
        assert summary["excluded_train_images_of_test_patients"] == 2
    again = pneumonia_data.write_setting(data, "viral10", tmp_path / "again", seed=0)
    assert again[0].read_text() == (tmp_path / "viral10" / "train.csv").read_text()  # seeded


def test_split_refuses_overlap_and_unreadable_names(tmp_path: Path):
    data = write_kermany(tmp_path)
    test_dir = data / "chest_xray" / "test" / "PNEUMONIA"
    train_file = next((data / "chest_xray" / "train" / "NORMAL").glob("IM-0001-*.jpeg"))
    (test_dir / "person999_virus_1.jpeg").write_bytes(train_file.read_bytes())  # the same content, renamed
    with pytest.raises(ValueError, match=r"person999_virus_1.jpeg \(same content as train image .*IM-0001"):
        pneumonia_data.write_setting(data, "pneumonia10", tmp_path / "out")
    (test_dir / "person999_virus_1.jpeg").unlink()
    (test_dir / "scan_01.jpeg").write_bytes(train_file.read_bytes())
    with pytest.raises(ValueError, match=r"name gives no patient.*scan_01.jpeg"):
        pneumonia_data.write_setting(data, "pneumonia10", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no folder with train/"):
        pneumonia_data.write_setting(tmp_path / "out", "pneumonia10", tmp_path / "out2")


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_real_utility", REPO_ROOT / "bench" / "real_utility.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclass looks its module up
    spec.loader.exec_module(bench)
    return bench


def test_plan_names_levers_and_brings_the_generator_of_a_sampling_lever(tmp_path: Path):
    bench = load_bench()
    runs = bench.plan("viral10:MSG-SAGAN+balanced+filter:0;viral10:MSG-GAN+acgan:1", tmp_path)
    assert [r.root.name for r in runs] == ["MSG-SAGAN+balanced_seed0", "MSG-SAGAN+balanced+filter_seed0",
                                           "MSG-GAN+acgan_seed1"]  # fmt: skip
    trained, filtered, acgan = runs
    assert not trained.sampling_only and filtered.sampling_only and filtered.generator_root == trained.root
    assert acgan.label == "MSG-GAN+acgan" and acgan.name == "viral10 MSG-GAN+acgan seed 1"
    with pytest.raises(SystemExit, match="levers"):
        bench.plan("viral10:MSG-SAGAN+sharper:0", tmp_path)


@pytest.mark.slow
def test_bench_quick_runs_every_stage_and_pools_gan_seeds(tmp_path: Path, capsys):
    bench = load_bench()
    data = write_kermany(tmp_path / "data")
    out = tmp_path / "out"
    runs = "pneumonia10:MSG-SAGAN:0,1;pneumonia10:MSG-GAN:0"
    result = bench.main(["--data", str(data), "--out", str(out), "--quick", "--runs", runs,
                         "--classifier_seeds", "[0,1]"])  # fmt: skip
    text = capsys.readouterr().out
    assert set(result["groups"]) == {"pneumonia10 MSG-SAGAN", "pneumonia10 MSG-GAN"}
    pooled = result["groups"]["pneumonia10 MSG-SAGAN"]["pooled"]
    assert pooled["runs"] == [0, 1] and set(pooled["class_fidelity"]) == {"normal", "pneumonia"}
    lo, hi = pooled["arms"]["real_oversampled"]["balanced_accuracy"][1:]
    assert 0.0 <= lo <= hi <= 1.0
    assert "| pneumonia10 | MSG-SAGAN | pooled 0,1 | real_plus_synthetic_every_class |" in text
    assert "## MSG-SAGAN against MSG-GAN" in text and "## Class fidelity" in text
    cache = list((out / "pneumonia10" / "classifier_cache").glob("*.pt"))
    assert len(cache) == 3 * 2  # the arms without synthetic data x classifier seeds, trained once for 3 generators
    for root in ("MSG-SAGAN_seed0", "MSG-SAGAN_seed1", "MSG-GAN_seed0"):
        stages = json.loads((out / "pneumonia10" / root / "stages.json").read_text())
        assert set(stages) == {"training", "utility", "evaluating"}
        card = (out / "pneumonia10" / root / "eval" / "MODEL_CARD.md").read_text()
        assert "Class fidelity" in card and "Utility" in card
        assert "Default synthetic mix: `real_plus_synthetic_every_class`" in card
        assert "| real_plus_synthetic_every_class (default) |" in card
    reports = [json.loads((out / "pneumonia10" / r / "eval" / "utility.json").read_text()) for r in
               ("MSG-SAGAN_seed0", "MSG-GAN_seed0")]  # fmt: skip
    # the arms without synthetic data are the same classifiers for every generator of the setting
    assert reports[0]["arms"]["real_weighted"]["metrics"] == reports[1]["arms"]["real_weighted"]["metrics"]
    # a rerun finds every stage finished and only rebuilds the tables
    again = bench.main(["--data", str(data), "--out", str(out), "--quick", "--runs", runs,
                        "--classifier_seeds", "[0,1]"])  # fmt: skip
    assert again["groups"].keys() == result["groups"].keys()
    assert "] training:" not in capsys.readouterr().out
    # the class-fidelity levers: a sampling lever reuses the generator trained without it, a training lever trains
    levers = "pneumonia10:MSG-SAGAN+filter+trunc:0;pneumonia10:MSG-GAN+acgan+finetune:0"
    ablation = bench.main(["--data", str(data), "--out", str(out), "--quick", "--runs", levers, "--no_evaluate",
                           "--classifier_seeds", "[0,1]"])  # fmt: skip
    text = capsys.readouterr().out
    sampled = out / "pneumonia10" / "MSG-SAGAN+filter+trunc_seed0"
    assert json.loads((sampled / "stages.json").read_text()).keys() == {"utility"}
    settings = json.loads((sampled / "eval" / "utility.json").read_text())["settings"]
    assert settings["truncation"] == 0.7 and settings["filter_synthetic"] is True
    assert settings["generator"].endswith("MSG-SAGAN_seed0/models/model.pt")
    record = json.loads((out / "pneumonia10" / "MSG-GAN+acgan+finetune_seed0" / "models" / "model.json").read_text())
    recipe = record["generator_record"]["recipe"]
    assert recipe["class_loss_weight"] == 1.0 and recipe["minority_epochs"] == 1
    assert "## Class-fidelity levers (ablation)" in text and "| pneumonia10 | MSG-SAGAN+filter+trunc | 0 |" in text
    assert set(ablation["groups"]) == {"pneumonia10 MSG-SAGAN", "pneumonia10 MSG-SAGAN+filter+trunc",
                                       "pneumonia10 MSG-GAN+acgan+finetune"}  # fmt: skip
