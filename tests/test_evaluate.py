"""Evaluating a trained generator: the package functions, the training monitor's FID, and the bundle's evaluate.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from bundle_utils import (
    REPO_ROOT,
    TINY_GENERATOR,
    TINY_TRAIN,
    copy_bundle,
    overrides,
    run_bundle,
    save_generator_artifact,
    tiny_generator,
)
from ignite.engine import Engine
from metrics_helpers import TinyFeatures

from monai_msgsagan.artifact import load_generator
from monai_msgsagan.generation import generate_per_class
from monai_msgsagan.handlers import DiversityMonitor
from monai_msgsagan.metrics import compute_fid, evaluate_generator, pairwise_ms_ssim
from monai_msgsagan.networks import MultiScaleGenerator

#: a user feature network given through the config: (N, 1, R, R) -> (N, 16), cheap on one core
POOL_FEATURES = "$torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten())"


def tiny_multiscale() -> MultiScaleGenerator:
    return tiny_generator(multiscale=True)


def test_evaluate_generator_report_holds_the_numbers(tmp_path):
    model = save_generator_artifact(tiny_generator(), TINY_GENERATOR, ["normal", "lung_opacity"], tmp_path / "model.pt")
    generator = load_generator(model)
    real = torch.rand(12, 1, 32, 32) * 2 - 1
    log = tmp_path / "diversity.jsonl"
    log.write_text(
        '{"epoch": 1, "iteration": 4, "ms_ssim_fake": 0.3}\n{"epoch": 2, "iteration": 8, "ms_ssim_fake": 0.2}\n'
    )
    health = tmp_path / "health.jsonl"
    health.write_text(
        '{"epoch": 1, "iteration": 4, "d_accuracy_real": 0.6, "diagnosis": "mode_collapse", "evidence": "a"}\n'
        '{"epoch": 2, "iteration": 8, "d_accuracy_real": 0.7, "diagnosis": "healthy", "evidence": "b"}\n'
    )
    features = TinyFeatures()
    result = evaluate_generator(
        generator,
        real,
        tmp_path / "eval",
        num_per_class=4,
        feature_extractor=features,
        training_log=log,
        health_log=health,
        settings={"checkpoint": "models/model.pt"},
    )
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert set(result["files"]) == {
        "report",
        "samples",
        "ms_ssim_histogram",
        "nearest_neighbours",
        "training_metrics",
        "health_metrics",
        "model_card",
    }
    card = (tmp_path / "eval" / "MODEL_CARD.md").read_text()
    assert card.startswith("# Model card: MSG-SAGAN generator")
    assert f"SHA-256 `{generator.sha256}`" in card and "final diagnosis: **healthy**" in card
    assert f"FID {report['fidelity']['fid']:.2f}" in card
    assert "not measured: no utility study of this model yet" in card and "[samples](samples.png)" in card
    assert report["health"]["final"] == {"diagnosis": "healthy", "evidence": "b"}
    assert [c["diagnosis"] for c in report["health"]["changes"]] == ["mode_collapse", "healthy"]
    assert report["settings"]["num_fake"] == 8 and report["settings"]["checkpoint"] == "models/model.pt"
    assert report["generator"]["class_names"] == ["normal", "lung_opacity"]
    assert report["settings"]["model"]["sha256"] == generator.sha256
    fake, _ = generate_per_class(generator.network, 4)
    assert report["diversity"]["fake"]["mean"] == pytest.approx(pairwise_ms_ssim(fake).mean)
    assert report["fidelity"]["fid"] == pytest.approx(compute_fid(real, fake, features))
    assert set(report["generator"]["per_class_ms_ssim_fake"]) == {"normal", "lung_opacity"}


def test_diversity_monitor_logs_fid_at_its_interval_with_cached_real_features(tmp_path):
    net = tiny_multiscale()
    real = torch.rand(10, 1, 32, 32) * 2 - 1
    features = TinyFeatures()
    monitor = DiversityMonitor(
        net,
        num_samples=6,
        real_images=real,
        epoch_interval=1,
        log_path=tmp_path / "diversity.jsonl",
        fid_interval=2,
        fid_num_samples=8,
        feature_extractor=features,
    )
    engine = Engine(lambda e, batch: None)  # a real Ignite engine; the monitor only reads its epoch counters
    monitor.attach(engine)
    engine.run([0, 1], max_epochs=3)
    records = [json.loads(line) for line in (tmp_path / "diversity.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert ["fid" in r for r in records] == [False, True, True]  # every 2 epochs, and when training completes
    assert monitor.feature_cache.misses == 1 and monitor.feature_cache.hits == 1  # real features computed once
    fake = monitor.generate(8)
    assert records[-1]["fid"] == pytest.approx(compute_fid(real, fake, features))
    assert records[-1]["ms_ssim_fake"] == pytest.approx(pairwise_ms_ssim(monitor.generate(6)).mean)


def test_diversity_monitor_fid_needs_real_images():
    with pytest.raises(ValueError, match="real_images"):
        DiversityMonitor(tiny_multiscale(), num_samples=4, fid_interval=1)


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory) -> Path:
    """A tiny real training run of the bundle on the phantoms, with the monitor's FID (InceptionV3) every epoch."""
    bundle = copy_bundle(tmp_path_factory.mktemp("eval") / "msgsagan_cxr")
    config = str(bundle / "configs" / "train.json")
    run_bundle("run", bundle, "training", "--config_file", config, "--bundle_root", str(bundle),
               *overrides(TINY_TRAIN), "--fid_interval", "1")  # fmt: skip
    return bundle


def evaluate(bundle: Path, out: Path, *args: str):
    configs = bundle / "configs"
    config = f"['{configs / 'inference.json'}','{configs / 'evaluate.json'}']"
    return run_bundle("run", bundle, "evaluating", "--config_file", config, "--bundle_root", str(bundle),
                      "--output_dir", str(out), *args)  # fmt: skip


@pytest.mark.slow
def test_training_monitor_logs_inception_fid_through_the_bundle(trained_bundle):
    records = [json.loads(x) for x in (trained_bundle / "logs" / "diversity.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(r["fid"] > 0 for r in records)


@pytest.mark.slow
def test_evaluate_config_default_inception_path(trained_bundle, tmp_path):
    out = tmp_path / "eval"
    evaluate(trained_bundle, out, "--num_images", "6", "--num_real", "12")  # network and data from the record
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["feature_network"] == "InceptionV3 pool3"
    assert report["settings"]["num_fake"] == 12 and report["settings"]["num_real"] == 12
    assert report["settings"]["model"]["path"].endswith("models/model.pt")
    assert report["generator"]["class_names"] == ["normal", "lung_opacity"]
    assert report["fidelity"]["fid"] > 0 and report["fidelity"]["prdc"]["nearest_k"] == 5
    assert 0 < report["diversity"]["fake"]["mean"] <= 1 and 0 < report["diversity"]["real"]["mean"] < 1
    for name in ("samples", "ms_ssim_histogram", "nearest_neighbours", "training_metrics", "health_metrics"):
        assert (out / f"{name}.png").is_file()
    assert report["health"]["final"]["diagnosis"] in (
        "healthy",
        "mode_collapse",
        "non_convergence",
        "vanishing_gradients",
    )


@pytest.mark.slow
def test_evaluate_config_matches_the_package_with_a_user_feature_network(trained_bundle, tmp_path):
    out = tmp_path / "eval"
    evaluate(trained_bundle, out, "--num_images", "5", "--num_real", "16", "--seed", "3",
             "--feature_extractor", POOL_FEATURES)  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["feature_network"] == "Sequential" and report["fidelity"]["features"]["dim"] == 16
    # the same numbers from the package, on the same weights and real sample
    from monai_msgsagan.data import DataSpec, real_image_sample, training_data

    generator = load_generator(trained_bundle / "models" / "model.pt")
    real = real_image_sample(training_data(DataSpec(num_phantoms=32), 32).dataset, 16, 3)
    fake, _ = generate_per_class(generator.network, 5, seed=3)
    pool = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten())
    assert report["fidelity"]["fid"] == pytest.approx(compute_fid(real, fake, pool), rel=1e-5)
    assert report["diversity"]["fake"]["mean"] == pytest.approx(pairwise_ms_ssim(fake).mean, rel=1e-5)


@pytest.mark.slow
def test_evaluate_config_on_real_radiographs_unconditional(figure1_dir, tmp_path):
    bundle = copy_bundle(tmp_path / "msgsagan_cxr")
    data = ["--dataset_dir", str(figure1_dir / "metadata.csv"), "--attention_resolutions", "[]"]
    tiny = {**TINY_TRAIN, "max_epochs": "1"}
    tiny.pop("attention_resolutions")
    run_bundle("run", bundle, "training", "--config_file", str(bundle / "configs" / "train.json"),
               "--bundle_root", str(bundle), *overrides(tiny), *data)  # fmt: skip
    out = tmp_path / "eval"  # no network or data overrides: they come from models/model.json
    evaluate(bundle, out, "--num_images", "8", "--num_real", "100", "--feature_extractor", POOL_FEATURES)
    report = json.loads((out / "report.json").read_text())
    assert report["generator"]["num_classes"] == 0 and report["generator"]["class_names"] == []
    assert report["settings"]["num_real"] == 55 and report["settings"]["num_fake"] == 8  # all 55 radiographs
    assert report["settings"]["model"]["network"]["attention_resolutions"] == []
    assert report["settings"]["data"]["dataset_dir"] == str((figure1_dir / "metadata.csv").resolve())
    assert report["memorization"] is not None


@pytest.mark.slow
def test_compare_msggan_smoke_table(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_msggan", REPO_ROOT / "bench" / "compare_msggan.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    result = compare.main(["--out", str(tmp_path), "--smoke"])
    rows = {r["model"]: r for r in result["models"]}
    assert rows["MSG-GAN"]["attention_resolutions"] == [] and rows["MSG-SAGAN"]["attention_resolutions"] == [16]
    for name, row in rows.items():
        report = json.loads(Path(row["report"]).read_text())
        assert row["fid"] == report["fidelity"]["fid"] and row["ms_ssim_fake"] == report["diversity"]["fake"]["mean"]
        assert row["iterations"] == 2 and row["train_engine_s"] > 0
        assert (tmp_path / name / "models" / "model.pt").is_file()
    # same data and seed: the real reference is the same set for both models
    assert rows["MSG-GAN"]["ms_ssim_real"] == rows["MSG-SAGAN"]["ms_ssim_real"]
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["models"] == result["models"]
    assert "| FID (lower = better) |" in (tmp_path / "comparison.md").read_text()
