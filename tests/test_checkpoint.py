"""Checkpoint integrity: no diverged weights on disk, verified loads with fallback, a current export, full disks and
interrupted writes (in process, CPU; tiny networks)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from ignite.engine import Events
from test_trainer import assert_same, build, deterministic, states  # noqa: F401 (deterministic: autouse fixture)

from monai_msgsagan.engines import NonFiniteLossError
from monai_msgsagan.handlers import GanCheckpointSaver

CKPT_LOGGER = "monai_msgsagan.handlers.checkpoint_loader"


def _set_lr_after_resume(trainer, optimizer, lr: float) -> None:
    """Change ``optimizer``'s learning rate once the checkpoint (which restores the saved lr) is loaded."""

    def set_lr(_engine):
        for group in optimizer.param_groups:
            group["lr"] = lr

    trainer.add_event_handler(Events.STARTED, set_lr)


def test_diverged_weights_are_never_saved(tmp_path):
    """lr_g 1e30 with a short epoch: the guard skips steps but the epoch ends; the weights are finite (about 1e30)
    but every generated image is NaN. Neither checkpoint nor model.pt may be written, and the error must name the
    checkpoint that is intact."""
    trainer, *_ = build(tmp_path, max_epochs=1)
    trainer.run()
    good = (tmp_path / "checkpoint_3.pt").read_bytes()
    model = (tmp_path / "model.pt").read_bytes()

    trainer, g, *_ = build(tmp_path, max_epochs=2)
    trainer.max_nonfinite_steps = 100  # the guard alone does not stop this run
    _set_lr_after_resume(trainer, trainer.g_optimizer, 1e30)
    with pytest.raises(NonFiniteLossError, match=r"(?s)not saving.*newest intact checkpoint is .*checkpoint_3\.pt"):
        trainer.run()
    assert trainer.state.epoch == 2  # the epoch did end
    assert all(torch.isfinite(p).all() for p in g.parameters())  # finite weights ...
    assert not torch.isfinite(g(torch.randn(2, g.latent_dim), torch.tensor([0, 1]))[-1]).all()  # ... NaN images
    assert sorted(p.name for p in tmp_path.glob("checkpoint_*.pt")) == ["checkpoint_3.pt"]
    assert (tmp_path / "checkpoint_3.pt").read_bytes() == good
    assert (tmp_path / "model.pt").read_bytes() == model


def test_a_new_run_that_trained_nothing_exports_nothing(tmp_path):
    """A fresh run (no checkpoint to resume) whose every step is skipped as non-finite (NaN images, fewer steps than
    the guard's limit): it stops, and no checkpoint and no model.pt are written over the previous model."""
    previous = tmp_path / "previous"
    trainer, *_ = build(previous, max_epochs=1)
    trainer.run()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(previous / "model.pt", fresh / "model.pt")  # the model of an earlier run in the same place
    model = (fresh / "model.pt").read_bytes()
    nan_images = [{"image": torch.full((1, 16, 16), float("nan")), "label": i % 2} for i in range(24)]
    trainer, *_ = build(fresh, max_epochs=1, dataset=nan_images)
    trainer.max_nonfinite_steps = 100  # the guard does not stop this one-epoch run
    with pytest.raises(NonFiniteLossError, match=r"no generator update was applied since the last export"):
        trainer.run()
    assert trainer.generator_updates == 0 and trainer.state.iteration == 3
    assert not list(fresh.glob("checkpoint_*")) and (fresh / "model.pt").read_bytes() == model


def test_non_finite_tensor_in_the_checkpoint_is_not_saved(tmp_path):
    """A single inf in the optimizer state (or anywhere in the checkpoint) blocks the save."""
    trainer, *_ = build(tmp_path, max_epochs=1)
    trainer.run()
    saver = _saver(trainer)
    state = next(iter(trainer.d_optimizer.state.values()))
    state["exp_avg_sq"].view(-1)[0] = float("inf")
    trainer.state.iteration = 4
    with pytest.raises(NonFiniteLossError, match=r"d_optimizer.*not finite"):
        saver(trainer)
    assert not (tmp_path / "checkpoint_4.pt").exists()


def _saver(trainer) -> GanCheckpointSaver:
    """The checkpoint saver ``build`` attached to ``trainer``."""
    for handlers in trainer._event_handlers.values():
        for handler, *_ in handlers:
            if isinstance(getattr(handler, "__self__", None), GanCheckpointSaver):
                return handler.__self__
    raise AssertionError("no GanCheckpointSaver attached")


def _corrupt_in_place(path, tensor: torch.Tensor) -> None:
    """Overwrite the first value of ``tensor``'s data inside the checkpoint file with NaN (same size)."""
    data = bytearray(path.read_bytes())
    raw = tensor.detach().cpu().contiguous().numpy().tobytes()
    at = data.find(raw)
    assert at >= 0 and data.find(raw, at + 1) < 0, "tensor data not found exactly once"
    size = path.stat().st_size
    data[at : at + 4] = torch.tensor([float("nan")]).numpy().tobytes()
    path.write_bytes(bytes(data))
    assert path.stat().st_size == size


def test_corrupted_checkpoint_is_detected_and_the_last_good_one_is_used(tmp_path, caplog):
    """The optimizer state of the newest checkpoint corrupted in place: resume detects it (integrity hash), says so,
    falls back to the previous checkpoint, and ends exactly where an uninterrupted run ends."""
    full, _g, _d, _e = build(tmp_path / "full", max_epochs=3)
    full.run()
    expected = states(_g, _d, _e)

    part = tmp_path / "part"
    first, *_ = build(part, max_epochs=2)
    first.run()
    newest = part / "checkpoint_6.pt"
    saved = torch.load(newest, weights_only=True)
    _corrupt_in_place(newest, saved["d_optimizer"]["state"][0]["exp_avg_sq"])

    resumed, g, d, ema = build(part, max_epochs=3)
    resumed.max_nonfinite_steps = 100
    with caplog.at_level(logging.WARNING, logger=CKPT_LOGGER):
        resumed.run()
    message = caplog.text
    assert "checkpoint_6.pt" in message and "SHA-256" in message and "checkpoint_3.pt" in message
    assert "Traceback" not in message
    assert resumed.state.iteration == 9
    assert_same(states(g, d, ema), expected)
    assert sorted(p.name for p in part.glob("checkpoint_*.pt")) == ["checkpoint_6.pt", "checkpoint_9.pt"]


def test_unreadable_newest_checkpoint_falls_back(tmp_path, caplog):
    trainer, *_ = build(tmp_path, max_epochs=2)
    trainer.run()
    newest = tmp_path / "checkpoint_6.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # a truncated copy
    resumed, *_ = build(tmp_path, max_epochs=2)
    with caplog.at_level(logging.WARNING, logger=CKPT_LOGGER):
        resumed.run()
    assert "checkpoint_6.pt" in caplog.text and "checkpoint_3.pt" in caplog.text
    assert resumed.state.iteration == 6  # epoch 2 was trained again from checkpoint_3


def test_the_last_good_checkpoint_is_never_rotated_out(tmp_path):
    """keep-newest-2 with [good 3, corrupt 6]: writing 9 keeps 9 and 3 (the two newest good ones)."""
    trainer, *_ = build(tmp_path, max_epochs=2)
    trainer.run()
    bad = tmp_path / "checkpoint_6.pt"
    bad.write_bytes(b"\0" * bad.stat().st_size)
    saver = _saver(trainer)
    trainer.state.iteration = 9
    trainer._g_updates += 1  # as if the generator had trained since the last export (else nothing is written)
    saver(trainer)
    assert (tmp_path / "checkpoint_3.pt").exists() and (tmp_path / "checkpoint_9.pt").exists()


def test_stale_model_is_rewritten_from_the_newest_checkpoint(tmp_path):
    """Killed after checkpoint_6.pt but before model.pt: the rerun finds training complete and rewrites model.pt
    from the checkpoint."""
    trainer, *_ = build(tmp_path, max_epochs=1)
    trainer.run()
    stale = (tmp_path / "model.pt").read_bytes()
    trainer, *_ = build(tmp_path, max_epochs=2)
    trainer.run()
    (tmp_path / "model.pt").write_bytes(stale)  # the state a kill between the two writes leaves

    rerun, *_ = build(tmp_path, max_epochs=2)
    rerun.run()
    assert rerun.state.iteration == 6
    model = torch.load(tmp_path / "model.pt", weights_only=True)
    ema = torch.load(tmp_path / "checkpoint_6.pt", weights_only=True)["ema_generator"]
    assert_same([model], [ema])


def test_stale_temporary_files_are_removed(tmp_path):
    (tmp_path / ".checkpoint_3.pt.k2j4h5.tmp").write_bytes(b"partial")
    (tmp_path / ".model.pt.a8d7f6.tmp").write_bytes(b"partial")
    (tmp_path / "unrelated.tmp").write_bytes(b"not ours")
    trainer, *_ = build(tmp_path, max_epochs=1)
    trainer.run()
    assert sorted(p.name for p in tmp_path.glob("*.tmp")) == ["unrelated.tmp"]


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unshare and a user-namespace tmpfs mount")
def test_full_disk_says_no_space_and_names_the_file(tmp_path):
    """A real full file system: a 256 KiB tmpfs, mounted in a private user and mount namespace."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = textwrap.dedent(
        f"""
        import torch
        from monai_msgsagan.files import atomic_torch_save
        from monai_msgsagan.handlers.integrity import save_checkpoint
        try:
            atomic_torch_save({{"w": torch.zeros(1_000_000)}}, "{disk}/checkpoint_4.pt")
        except OSError as e:
            print("ERROR", e)
        try:  # the hash sidecar fits, the checkpoint does not: no orphan checkpoint_6.pt.sha256 stays
            save_checkpoint({{"w": torch.zeros(1_000_000)}}, "{disk}/checkpoint_6.pt")
        except OSError as e:
            print("SIDECAR", e)
        """
    )
    proc = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", f'mount -t tmpfs -o size=256k tmpfs "{disk}" && "$0" -c "$1"; ls -a "{disk}"']
        + [sys.executable, script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout
    assert "ERROR" in out, out + proc.stderr
    error = out.split("ERROR", 1)[1].splitlines()[0]
    assert "no space left on device" in error.lower() and f"{disk}/checkpoint_4.pt" in error, error
    assert ".tmp" not in out  # the partial file was removed
    assert "SIDECAR" in out and "checkpoint_6.pt" in out.split("SIDECAR", 1)[1].splitlines()[0]
    assert ".sha256" not in out, out  # ls -a: no orphan hash file
