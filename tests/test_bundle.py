"""The MONAI bundle, end to end, through real ``python -m monai.bundle`` commands (Model Zoo round trip)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from bundle_utils import BUNDLE_DIR, TINY, TINY_TRAIN, bundle_env, copy_bundle, overrides, run_bundle, train_bundle
from conftest import META_SCHEMA
from monai.bundle import ConfigWorkflow
from PIL import Image

from monai_msgsagan.networks import InferenceGenerator, sample_latent

CONFIGS = BUNDLE_DIR / "configs"


def tiny_generator(**kw) -> InferenceGenerator:
    return InferenceGenerator(32, 128, channels=[16, 16, 16, 8], attention_resolutions=(16,), num_classes=2, **kw)


def test_metadata_verifies_against_the_shared_schema(tmp_path):
    if not META_SCHEMA.is_file():
        pytest.skip(f"bundle metadata schema not found at {META_SCHEMA}")
    proc = run_bundle("verify_metadata", BUNDLE_DIR, "--filepath", str(META_SCHEMA))
    assert "metadata is verified with no error" in proc.stdout + proc.stderr
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == 128
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == []
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 1


@pytest.mark.parametrize("workflow_type, config", [("train", "train.json"), ("infer", "inference.json")])
def test_config_workflow_properties(workflow_type, config, tmp_path):
    workflow = ConfigWorkflow(
        config_file=str(CONFIGS / config),
        meta_file=str(CONFIGS / "metadata.json"),
        workflow_type=workflow_type,
        bundle_root=str(tmp_path),
    )
    workflow.initialize()
    assert not workflow.check_properties()
    if workflow_type == "train":
        assert workflow.parser.get("train#trainer#max_epochs") == "@max_epochs"


def test_train_and_inference_build_the_same_generator():
    """models/model.pt from train.json must load into inference.json's network_def without overrides."""
    train = json.loads((CONFIGS / "train.json").read_text())
    infer = json.loads((CONFIGS / "inference.json").read_text())
    for key in ("resolution", "latent_dim", "channels", "attention_resolutions"):
        assert train[key] == infer[key], key
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert infer["num_classes"] == len(meta["class_names"]) == 2  # the phantom classes
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == infer["latent_dim"]
    assert meta["network_data_format"]["outputs"]["pred"]["spatial_shape"] == [infer["resolution"]] * 2


def test_multi_gpu_config_is_a_patch_over_train():
    patch = json.loads((CONFIGS / "multi_gpu_train.json").read_text())
    assert patch["train#sampler"]["_target_"] == "monai_msgsagan.data.ClassBalancedSampler"  # a DistributedSampler
    assert "dist.init_process_group" in " ".join(patch["initialize"])


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory) -> Path:
    """One real tiny training run of the bundle on the embedded phantoms."""
    bundle = copy_bundle(tmp_path_factory.mktemp("trained") / "msgsagan_cxr")
    train_bundle(bundle, TINY_TRAIN)
    return bundle


@pytest.mark.slow
def test_training_writes_model_samples_logs_and_checkpoints(trained_bundle):
    model = torch.load(trained_bundle / "models" / "model.pt", weights_only=True)
    net = tiny_generator()
    net.load_state_dict(model)  # the flat EMA generator state dict loads into network_def
    assert sorted(p.name for p in (trained_bundle / "models" / "resume").glob("*.pt")) == [
        "checkpoint_4.pt",
        "checkpoint_8.pt",
    ]
    logs = trained_bundle / "logs"
    assert list((logs / "tensorboard").glob("events.out.tfevents.*"))
    assert (logs / "samples" / "samples_epoch0002.png").is_file()
    record = json.loads((logs / "diversity.jsonl").read_text().splitlines()[-1])
    assert record["epoch"] == 2 and 0 < record["ms_ssim_fake"] <= 1 and 0 < record["ms_ssim_real"] < 1
    health = [json.loads(line) for line in (logs / "health.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in health] == [4, 8]  # --health_interval 4, 4 iterations per epoch
    assert all(h["diagnosis"] in {"healthy", "mode_collapse", "non_convergence", "vanishing_gradients"} for h in health)
    assert {"d_real_acc", "grad_scale32", "logit_margin"} <= set(health[-1])


@pytest.mark.slow
def test_verify_net_in_out_and_ckpt_export(trained_bundle, tmp_path):
    infer_cfg = str(trained_bundle / "configs" / "inference.json")
    run_bundle("verify_net_in_out", trained_bundle, "network_def", "--config_file", infer_cfg, *overrides(TINY))
    ts_path = tmp_path / "model.ts"
    run_bundle(
        "ckpt_export",
        trained_bundle,
        "network_def",
        "--filepath",
        str(ts_path),
        "--ckpt_file",
        str(trained_bundle / "models" / "model.pt"),
        "--config_file",
        infer_cfg,
        "--bundle_root",
        str(trained_bundle),
        *overrides(TINY),
    )
    extra = {"metadata.json": "", "inference.json": ""}
    scripted = torch.jit.load(str(ts_path), _extra_files=extra)
    assert (
        json.loads(extra["metadata.json"])["version"] == json.loads((CONFIGS / "metadata.json").read_text())["version"]
    )
    eager = tiny_generator().eval()
    eager.load_state_dict(torch.load(trained_bundle / "models" / "model.pt", weights_only=True))
    z = sample_latent(3, 128, torch.Generator().manual_seed(0))
    torch.testing.assert_close(scripted(z), eager(z))
    torch.testing.assert_close(scripted(z, torch.tensor([1, 1, 0])), eager(z, torch.tensor([1, 1, 0])))


@pytest.mark.slow
def test_inference_writes_the_generated_images(trained_bundle, tmp_path):
    out = tmp_path / "png"
    run_bundle(
        "run",
        trained_bundle,
        "inferring",
        "--config_file",
        str(trained_bundle / "configs" / "inference.json"),
        "--bundle_root",
        str(trained_bundle),
        "--output_dir",
        str(out),
        "--num_images",
        "5",
        "--class_index",
        "1",
        "--seed",
        "7",
        *overrides(TINY),
    )
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"synthetic_class1_seed7_{i:05d}.png" for i in range(5)]
    eager = tiny_generator(default_class=1).eval()
    eager.load_state_dict(torch.load(trained_bundle / "models" / "model.pt", weights_only=True))
    z = sample_latent(5, 128, torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = ((eager(z)[:, 0].clamp(-1, 1) + 1) * 127.5).numpy()
    for f, want in zip(files, expected):
        img = np.asarray(Image.open(f))
        assert img.dtype == np.uint8 and img.shape == (32, 32)
        assert np.abs(img.astype(float) - want).max() <= 1.0  # same orientation and values as the generator

    nii = tmp_path / "nii"
    run_bundle(
        "run",
        trained_bundle,
        "inferring",
        "--config_file",
        str(trained_bundle / "configs" / "inference.json"),
        "--bundle_root",
        str(trained_bundle),
        "--output_dir",
        str(nii),
        "--num_images",
        "2",
        "--output_ext",
        ".nii.gz",
        "--output_dtype",
        "$np.float32",
        "--output_scale",
        "None",
        *overrides(TINY),
    )
    volumes = sorted(nii.glob("*.nii.gz"))
    assert len(volumes) == 2
    data = np.asarray(nib.load(volumes[0]).dataobj)
    assert data.shape[:2] == (32, 32) and 0.0 <= data.min() and data.max() <= 1.0


@pytest.mark.slow
def test_zip_download_and_infer_from_the_download(trained_bundle, tmp_path):
    archive = tmp_path / "msgsagan_cxr.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(trained_bundle.rglob("*")):
            rel = path.relative_to(trained_bundle.parent)
            if path.is_file() and "resume" not in rel.parts and "logs" not in rel.parts:
                zf.write(path, rel)
    downloads = tmp_path / "downloads"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "download",
            "--name",
            "msgsagan_cxr",
            "--bundle_dir",
            str(downloads),
            "--url",
            archive.as_uri(),
        ],
        env=bundle_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    downloaded = downloads / "msgsagan_cxr"
    assert (downloaded / "models" / "model.pt").is_file() and (downloaded / "docs" / "README.md").is_file()
    out = tmp_path / "out"
    run_bundle(
        "run",
        downloaded,
        "inferring",
        "--config_file",
        str(downloaded / "configs" / "inference.json"),
        "--bundle_root",
        str(downloaded),
        "--output_dir",
        str(out),
        "--num_images",
        "3",
        *overrides(TINY),
    )
    assert len(list(out.glob("*.png"))) == 3


def _train_cmd(bundle: Path, epochs: int) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        str(bundle / "configs" / "train.json"),
        "--meta_file",
        str(bundle / "configs" / "metadata.json"),
        "--bundle_root",
        str(bundle),
    ]
    return cmd + overrides({**TINY_TRAIN, "num_phantoms": "16", "max_epochs": str(epochs)})


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    """SIGKILL a training run after its second checkpoint, start it again: same model as an uninterrupted run."""
    full = copy_bundle(tmp_path / "full")
    subprocess.run(_train_cmd(full, 4), env=bundle_env(), check=True, capture_output=True, timeout=600)

    killed = copy_bundle(tmp_path / "killed")
    proc = subprocess.Popen(
        _train_cmd(killed, 4), env=bundle_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    second = killed / "models" / "resume" / "checkpoint_4.pt"
    deadline = time.monotonic() + 600
    while not second.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert second.exists(), "the run ended before its second checkpoint"
    assert not (killed / "models" / "resume" / "checkpoint_8.pt").exists(), "the run was not interrupted"
    subprocess.run(_train_cmd(killed, 4), env=bundle_env(), check=True, capture_output=True, timeout=600)

    expected = torch.load(full / "models" / "model.pt", weights_only=True)
    resumed = torch.load(killed / "models" / "model.pt", weights_only=True)
    for key, value in expected.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0, msg=key)
    last = torch.load(killed / "models" / "resume" / "checkpoint_8.pt", weights_only=True)
    torch.testing.assert_close(
        last["discriminator"],
        torch.load(full / "models" / "resume" / "checkpoint_8.pt", weights_only=True)["discriminator"],
        rtol=0,
        atol=0,
    )


def _torchrun_cmd(bundle: Path, out: Path, settings: dict[str, str]) -> list[str]:
    """tests/ddp_check.py under ``torchrun --nproc_per_node 2`` (gloo)."""
    args = [f"{k}={json.dumps(json.loads(v))}" for k, v in settings.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return cmd + [str(Path(__file__).with_name("ddp_check.py")), str(bundle), str(out), *args]


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` and all its descendants: torchrun starts its workers in sessions of their own, so killing
    its process group would leave them running (Linux: the tree is read from /proc before anything is killed)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [proc.pid], [proc.pid]
    while todo:
        kids = children.get(todo.pop(), [])
        tree += kids
        todo += kids
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in tree[1:]) and time.monotonic() < deadline:
        time.sleep(0.05)


def _torchrun(bundle: Path, out: Path, settings: dict[str, str], timeout: int = 600) -> list[dict]:
    """Run :func:`_torchrun_cmd` to the end; returns every rank's record."""
    proc = subprocess.Popen(
        _torchrun_cmd(bundle, out, settings),
        env=bundle_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)  # the workers too, not only torchrun
        proc.communicate()
        raise AssertionError(f"torchrun did not finish within {timeout} s (ranks out of step?)") from None
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_multi_gpu_resume_matches_uninterrupted_run(tmp_path):
    """torchrun, 2 processes, gloo, SIGKILLed (torchrun and both workers) after its first checkpoint and started
    again: every rank ends with G, D and EMA bit-identical to an uninterrupted run (both ranks restore optimizers,
    EMA, counters and their own random states from rank 0's checkpoint)."""
    settings = {**TINY_TRAIN, "max_epochs": "3"}
    expected = _torchrun(copy_bundle(tmp_path / "full"), tmp_path / "full.json", settings)

    bundle = copy_bundle(tmp_path / "killed")
    resume = bundle / "models" / "resume"
    proc = subprocess.Popen(
        _torchrun_cmd(bundle, tmp_path / "killed.json", settings),
        env=bundle_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not (resume / "checkpoint_2.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    _kill_tree(proc)
    assert (resume / "checkpoint_2.pt").exists(), "the run ended before its first checkpoint"
    assert not (resume / "checkpoint_6.pt").exists(), "the run was not interrupted"
    resumed = _torchrun(bundle, tmp_path / "resumed.json", settings, timeout=300)
    assert resumed[0]["resumed_from"] in ("checkpoint_2.pt", "checkpoint_4.pt")  # not a fresh start
    assert resumed[1]["resumed_from"] == resumed[0]["resumed_from"]  # every rank loaded it
    assert expected[0]["resumed_from"] is None
    for rank, (got, want) in enumerate(zip(resumed, expected)):
        assert got["iterations"] == want["iterations"] == 6, rank
        for key in ("generator", "discriminator", "ema_generator"):
            assert got[key] == want[key], (rank, key)


@pytest.mark.slow
@pytest.mark.parametrize("spectral_norm", ["false", "true"])
def test_multi_gpu_config_with_torchrun_on_cpu(tmp_path, spectral_norm):
    """torchrun, 2 processes, gloo: ranks see disjoint data but hold identical G, D (with spectral norm: its u/v
    vectors too) and EMA."""
    bundle = copy_bundle(tmp_path / "ddp")
    out = tmp_path / "ranks.json"
    settings = {**TINY_TRAIN, "max_epochs": "1", "d_spectral_norm": spectral_norm}
    args = [f"{k}={json.dumps(json.loads(v))}" for k, v in settings.items()]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(Path(__file__).with_name("ddp_check.py")),
            str(bundle),
            str(out),
            *args,
        ],
        env=bundle_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = json.loads(out.read_text())
    assert [r["rank"] for r in ranks] == [0, 1]
    assert ranks[0]["iterations"] == ranks[1]["iterations"] == 2  # 32 phantoms / 2 ranks / batch 8
    for key in ("generator", "discriminator", "ema_generator"):
        assert ranks[0][key] == ranks[1][key], key
    assert not set(ranks[0]["sampler_indices"]) & set(ranks[1]["sampler_indices"])
    # only rank 0 writes
    assert len(list((bundle / "logs" / "tensorboard").glob("events.*"))) == 1
    assert (bundle / "models" / "model.pt").is_file()
