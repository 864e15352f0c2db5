"""evaluate_synthesis and the report files (JSON numbers and PNG plots)."""

from __future__ import annotations

import json

import pytest
import torch
from metrics_helpers import TinyFeatures, load_xrays
from PIL import Image

from monai_msgsagan.metrics import evaluate_synthesis, load_training_log, pairwise_ms_ssim, write_evaluation_report


def test_report_files_exist_and_hold_the_numbers(figure1_dir, tmp_path):
    xr = load_xrays(figure1_dir, 64, limit=20)
    real, fake = xr[:12], xr[12:]
    fake = torch.cat([fake, real[:2]])  # two leaked training images
    net = TinyFeatures()
    result = evaluate_synthesis(real, fake, net, nearest_k=3, kid_kwargs={"subsets": 10})
    log = [{"iteration": i * 10, "loss_g": 1.0 / (i + 1), "ms_ssim": 0.3 + 0.01 * i} for i in range(5)]
    files = write_evaluation_report(result, tmp_path, real=real, fake=fake, training_log=log)
    assert set(files) == {"report", "samples", "ms_ssim_histogram", "nearest_neighbours", "training_metrics"}
    for name, path in files.items():
        if name != "report":
            with Image.open(path) as im:
                assert im.format == "PNG" and im.size[0] > 100
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["diversity"]["fake"]["mean"] == pytest.approx(pairwise_ms_ssim(fake).mean)
    assert saved["diversity"]["collapse_score"] == pytest.approx(
        pairwise_ms_ssim(fake).mean / pairwise_ms_ssim(real).mean
    )
    assert saved["fidelity"]["fid"] == pytest.approx(result["fidelity"]["fid"]) and saved["fidelity"]["fid"] > 0
    assert set(saved["fidelity"]["prdc"]) == {"precision", "recall", "density", "coverage", "nearest_k"}
    assert saved["memorization"]["likely_copy"][-2:] == [True, True]
    assert saved["memorization"]["nearest_ssim_index"][-2:] == [0, 1]
    assert saved["settings"]["num_real"] == 12 and saved["settings"]["feature_network"] == "TinyFeatures"
    assert saved["diversity"]["real"]["settings"]["levels"] == 3


def test_training_log_formats(tmp_path):
    rows = [{"epoch": 1, "fid": 10.0}, {"epoch": 2, "fid": 8.0}]
    (tmp_path / "log.json").write_text(json.dumps(rows))
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "log.csv").write_text("epoch,fid\n1,10\n2,8\n")
    for name in ("log.json", "log.jsonl", "log.csv"):
        assert [r["fid"] for r in load_training_log(tmp_path / name)] == [10.0, 8.0]
    with pytest.raises(ValueError, match="needs one of the keys"):
        load_training_log([{"fid": 1.0}])
    with pytest.raises(FileNotFoundError, match="not found"):
        load_training_log(tmp_path / "missing.json")


def test_evaluate_without_features_and_errors(tmp_path):
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(4, 1, 32, 32, generator=gen) * 2 - 1
    result = evaluate_synthesis(real, real.flip(-1), fidelity=False)
    assert result["fidelity"] is None and "feature_distance" not in result["memorization"]
    files = write_evaluation_report(result, tmp_path)
    assert set(files) == {"report", "ms_ssim_histogram"}
    with pytest.raises(ValueError, match="evaluate_synthesis needs at least 2 images, got 1"):
        evaluate_synthesis(real, real[:1], fidelity=False)
