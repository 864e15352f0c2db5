"""Live GAN health: the diagnosis rules, and the monitor on real tiny training runs (signals, health.jsonl,
model_best.pt, stopping a collapsed run)."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from test_trainer import build, deterministic  # noqa: F401 (deterministic: autouse fixture)

from monai_msgsagan.data import real_image_sample
from monai_msgsagan.handlers import Diagnosis, DiversityMonitor, HealthThresholds, TrainingHealthMonitor, diagnose

HEALTHY = {
    "d_real_acc": 0.7,
    "d_fake_acc": 0.6,
    "logit_margin": 0.8,
    "g_loss_variation": 0.2,
    "d_loss_variation": 0.1,
    "g_loss_rise": 0.05,
    "grad_finest_relative": 0.8,
    "ms_ssim_fake": 0.45,
    "ms_ssim_real": 0.4,
    "skipped_fraction": 0.0,
}


@pytest.mark.parametrize(
    "change, expected, evidence",
    [
        ({}, Diagnosis.HEALTHY, "no failure signal"),
        ({"ms_ssim_fake": 0.85}, Diagnosis.MODE_COLLAPSE, "generated images keep 25% of the real images' diversity"),
        ({"ms_ssim_fake_class1": 0.9}, Diagnosis.MODE_COLLAPSE, "generated images of class1 keep 17%"),
        ({"ms_ssim_fake": 0.96, "ms_ssim_real": 0.87}, Diagnosis.MODE_COLLAPSE, "keep 31%"),
        (
            {"d_real_acc": 0.99, "d_fake_acc": 1.0, "grad_finest_relative": 0.01},
            Diagnosis.VANISHING_GRADIENTS,
            "gradient reaching G's finest scale at 0.01",
        ),
        ({"d_real_acc": 0.99, "d_fake_acc": 1.0}, Diagnosis.HEALTHY, "no failure signal"),  # D strong, G still fed
        ({"g_loss_variation": 0.9}, Diagnosis.NON_CONVERGENCE, "g_loss relative std 0.90"),
        (
            {"d_real_acc": 0.99, "d_fake_acc": 0.98, "g_loss_rise": 0.8},
            Diagnosis.NON_CONVERGENCE,
            "g_loss rose by 0.80",
        ),
        ({"skipped_fraction": 0.25}, Diagnosis.NON_CONVERGENCE, "25% of steps skipped"),
    ],
)
def test_diagnosis_rules(change, expected, evidence):
    diagnosis, why = diagnose({**HEALTHY, **change})
    assert diagnosis == expected and evidence in why


def test_missing_signals_never_diagnose_and_thresholds_are_settable():
    assert diagnose({"epoch": 1, "iteration": 3})[0] == Diagnosis.HEALTHY
    assert diagnose({**HEALTHY, "ms_ssim_fake": 0.6}, HealthThresholds(collapse_diversity=0.7))[0] == "mode_collapse"


def _monitored(tmp_path, max_epochs, **health_kw):
    trainer, g, _, ema = build(tmp_path, max_epochs=max_epochs)
    real = real_image_sample(trainer.data_loader.dataset, 8, seed=0)
    diversity = DiversityMonitor(ema, num_samples=8, real_images=real, epoch_interval=1)
    health = TrainingHealthMonitor(
        interval=3, window=6, diversity_monitor=diversity, log_path=tmp_path / "logs" / "health.jsonl", **health_kw
    )
    diversity.attach(trainer)
    health.attach(trainer)
    return trainer, g, ema, health


def test_monitor_writes_signals_and_keeps_the_best_model(tmp_path):
    trainer, _, ema, health = _monitored(tmp_path, 2, best_model_path=tmp_path / "model_best.pt")
    trainer.run()
    records = [json.loads(line) for line in (tmp_path / "logs" / "health.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [3, 6]
    last = records[-1]
    for key in ("d_real_acc", "d_fake_acc", "logit_margin", "g_loss_trend", "d_loss_variation", "skipped_fraction"):
        assert isinstance(last[key], float), key
    assert {"grad_scale4", "grad_scale8", "grad_scale16"} <= set(last) and last["grad_finest_relative"] > 0
    assert {"ms_ssim_ratio", "ms_ssim_ratio_class0", "ms_ssim_ratio_class1", "diversity_retained_class1"} <= set(last)
    assert last["diagnosis"] in set(Diagnosis) and last["evidence"]
    best = json.loads((tmp_path / "model_best.json").read_text())
    assert best["criterion"] == "abs_log_diversity_retained" and best == health.best
    saved = torch.load(tmp_path / "model_best.pt", weights_only=True)
    assert saved.keys() == ema.state_dict().keys() and all(torch.isfinite(v).all() for v in saved.values())


def test_a_resumed_run_keeps_the_best_model_of_the_run_it_resumes(tmp_path):
    """A resumed run starts from the recorded best: a model that does not beat it does not replace it."""
    trainer, _, _, health = _monitored(tmp_path, 2, best_model_path=tmp_path / "model_best.pt")
    trainer.run()
    recorded = {**health.best, "value": 0.0}  # as if the run had reached a score the next epochs cannot beat
    (tmp_path / "model_best.json").write_text(json.dumps(recorded))
    weights = (tmp_path / "model_best.pt").read_bytes()

    resumed, _, _, health = _monitored(tmp_path / "resumed", 3, best_model_path=tmp_path / "model_best.pt")
    resumed.load_state_dict({"iteration": trainer.state.iteration, "epoch_length": 3, "max_epochs": 3})
    resumed.run()
    assert resumed.state.epoch == 3 and health.best == recorded
    assert (tmp_path / "model_best.pt").read_bytes() == weights

    fresh, _, _, health = _monitored(tmp_path / "fresh", 1, best_model_path=tmp_path / "model_best.pt")
    fresh.run()  # a run from the start does not inherit a best from another run
    assert health.best is not None and health.best["iteration"] == 3 and health.best != recorded


def test_a_collapsed_generator_is_diagnosed_and_the_run_stopped(tmp_path, caplog):
    """A real collapse: G's first layer zeroed (every latent and class gives the same image) and frozen."""
    trainer, g, ema, health = _monitored(tmp_path, 4, stop_after_collapsed=1, best_model_path=tmp_path / "best.pt")
    with torch.no_grad():
        g.blocks[0].conv1.weight.zero_()
        ema.blocks[0].conv1.weight.zero_()
    for group in trainer.g_optimizer.param_groups:
        group["lr"] = 0.0
    with caplog.at_level(logging.WARNING, logger="monai_msgsagan.handlers.health"):
        trainer.run()
    assert health.history[-1]["diagnosis"] == "mode_collapse"
    assert trainer.state.epoch == 2 and trainer.state.iteration == 6  # stopped at the first check after epoch 1's
    assert "training health mode_collapse: generated images keep 0% of the real images' diversity" in caplog.text
    assert "stopping: mode_collapse in 1 consecutive health checks" in caplog.text
    assert not (tmp_path / "best.pt").exists()  # a collapsed generator is never the best model
