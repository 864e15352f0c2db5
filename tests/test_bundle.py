"""The MONAI bundle, end to end, through real ``python -m monai.bundle`` commands (Model Zoo round trip)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from bundle_utils import (
    BUNDLE_DIR,
    TINY_GENERATOR,
    TINY_TRAIN,
    bundle_env,
    copy_bundle,
    overrides,
    run_bundle,
    save_generator_artifact,
    tiny_generator,
    train_bundle,
)
from conftest import DEPLOY_APP_DIR, META_SCHEMA
from monai.bundle import ConfigParser, ConfigWorkflow
from PIL import Image
from pydicom.pixels import apply_modality_lut
from xray_files import write_phantom_folder

from monai_msgsagan import __version__
from monai_msgsagan.artifact import GeneratorRecord, load_generator, save_record
from monai_msgsagan.files import file_sha256
from monai_msgsagan.generation import generate, generate_per_class
from monai_msgsagan.label import SyntheticAugmentSettings
from monai_msgsagan.metrics import pairwise_ms_ssim

CONFIGS = BUNDLE_DIR / "configs"


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
    if workflow_type == "infer":  # a published bundle's models/: the weights and their record
        args = {**TINY_GENERATOR, "resolution": 64, "channels": [64, 64, 64, 32, 16]}  # the bundle's default network
        save_generator_artifact(
            tiny_generator(args), args, ["normal", "lung_opacity"], tmp_path / "models" / "model.pt"
        )
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


def test_metadata_describes_the_default_network_and_versions_agree():
    """metadata.json's network_data_format is that of train.json's defaults; package, pyproject and bundle say the
    same version (the DICOM software versions use the package's). pyproject.toml is the version's one source; the
    Model Zoo reads metadata.json as a static file, so it keeps its own copy and this test keeps them equal."""
    train = json.loads((CONFIGS / "train.json").read_text())
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == train["latent_dim"]
    assert meta["network_data_format"]["outputs"]["pred"]["spatial_shape"] == [train["resolution"]] * 2
    version = re.search(r'^version = "(.+)"$', (BUNDLE_DIR.parent / "pyproject.toml").read_text(), re.M).group(1)
    assert __version__ == version, "the installed package metadata is stale: re-run scripts/setup.sh"
    assert meta["version"] == version == meta["required_packages_version"]["monai-msgsagan"]
    assert __version__ in meta["changelog"] and "class_names" not in meta  # class names live in models/model.json


def test_multi_gpu_config_is_a_patch_over_train():
    patch = json.loads((CONFIGS / "multi_gpu_train.json").read_text())
    assert patch["train#sampler"]["_target_"] == "monai_msgsagan.data.ClassBalancedSampler"  # a DistributedSampler
    assert "dist.init_process_group" in " ".join(patch["initialize"])


@pytest.mark.parametrize(
    "overrides,penalty,augment",
    [({}, "R1Penalty", 0.0), ({"ada": False}, "R1Penalty", 1.0), ({"r1_gamma": 0.0, "diffaugment": False}, None, None)],
)
def test_penalty_and_augmentation_are_components_the_settings_turn_off(overrides, penalty, augment):
    parser = ConfigParser()
    parser.read_config(CONFIGS / "train.json")
    parser.update(overrides)
    built_penalty = parser.get_parsed_content("train#penalty")
    built_augment = parser.get_parsed_content("train#augment")
    assert (type(built_penalty).__name__ if built_penalty is not None else None) == penalty
    assert (built_augment.probability if built_augment is not None else None) == augment


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
    record = json.loads((trained_bundle / "models" / "model.json").read_text())["generator_record"]
    assert record["network"]["channels"] == [16, 16, 16, 8] and record["class_names"] == ["normal", "lung_opacity"]
    assert record["training_data"]["settings"]["num_phantoms"] == 32 and record["version"] == __version__
    assert record["weights_sha256"] == file_sha256(trained_bundle / "models" / "model.pt")  # bound to its weights
    if (trained_bundle / "models" / "model_best.pt").is_file():  # the best weights have their own bound record
        best = json.loads((trained_bundle / "models" / "model_best.json").read_text())
        assert best["generator_record"]["weights_sha256"] == file_sha256(trained_bundle / "models" / "model_best.pt")
        assert best["generator_record"]["training_data"] == record["training_data"] and "criterion" in best
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
def test_verify_net_in_out_and_ckpt_export_with_the_record(trained_bundle, tmp_path):
    infer_cfg = str(trained_bundle / "configs" / "inference.json")
    root = ["--bundle_root", str(trained_bundle)]  # network settings come from models/model.json: no overrides
    run_bundle("verify_net_in_out", trained_bundle, "network_def", "--config_file", infer_cfg, *root)
    ts_path = tmp_path / "model.ts"
    configs = f"['{infer_cfg}','{trained_bundle / 'models' / 'model.json'}']"
    cmd = [sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(ts_path),
           "--ckpt_file", str(trained_bundle / "models" / "model.pt"), "--config_file", configs,
           "--meta_file", str(trained_bundle / "configs" / "metadata.json"), *root]  # fmt: skip
    proc = subprocess.run(cmd, env=bundle_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exported = load_generator(ts_path)  # the TorchScript carries the same record
    checkpoint = load_generator(trained_bundle / "models" / "model.pt")
    assert exported.record == checkpoint.record and exported.version == __version__
    assert exported.name == json.loads((CONFIGS / "metadata.json").read_text())["name"]
    for class_index in (0, 1):
        torch.testing.assert_close(
            generate(exported.network, 3, 0, class_index), generate(checkpoint.network, 3, 0, class_index)
        )


@pytest.mark.slow
def test_inference_writes_the_generated_images(trained_bundle, tmp_path):
    out = tmp_path / "png"
    run_bundle("run", trained_bundle, "inferring", "--config_file", str(trained_bundle / "configs" / "inference.json"),
               "--bundle_root", str(trained_bundle), "--output_dir", str(out), "--num_images", "5", "--class", "1",
               "--seed", "7")  # fmt: skip
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"synthetic_class1_seed7_{i:05d}.png" for i in range(5)]
    expected = generate(load_generator(trained_bundle / "models" / "model.pt").network, 5, 7, 1)
    for f, want in zip(files, ((expected[:, 0] + 1) * 127.5).numpy()):
        img = np.asarray(Image.open(f))
        assert img.dtype == np.uint8 and img.shape == (32, 32)
        assert np.abs(img.astype(float) - want).max() <= 1.0  # generate()'s values (SaveImaged truncates to uint8)

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
    )
    volumes = sorted(nii.glob("*.nii.gz"))
    assert len(volumes) == 2
    data = np.asarray(nib.load(volumes[0]).dataobj)
    assert data.shape[:2] == (32, 32) and 0.0 <= data.min() and data.max() <= 1.0


@pytest.mark.slow
def test_a_failed_rerun_leaves_the_previous_model_and_record(trained_bundle, tmp_path):
    """Retraining in the same bundle root on other data, afresh, with a learning rate that diverges: the run fails
    and models/ keeps the previous weights with their own record, still a loadable pair."""
    bundle = copy_bundle(tmp_path / "rerun")
    shutil.copytree(trained_bundle / "models", bundle / "models", ignore=shutil.ignore_patterns("resume"))
    before = {p.name: p.read_bytes() for p in (bundle / "models").iterdir() if p.is_file()}
    diverging = {**TINY_TRAIN, "num_phantoms": "16", "seed": "5", "resume": "False", "lr_g": "1e30", "lr_d": "1e30"}
    proc = train_bundle(bundle, diverging, check=False)
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert "NonFinite" in proc.stderr, proc.stderr[-2000:]
    after = {p.name: p.read_bytes() for p in (bundle / "models").iterdir() if p.is_file()}
    assert after == before
    assert load_generator(bundle / "models" / "model.pt").record.data_spec.num_phantoms == 32


@pytest.mark.slow
def test_inference_loads_weights_only_through_load_generator(tmp_path):
    """An unsafe pickle, or weights of the wrong shape, beside a record that names them: bundle inference refuses
    with the loader's ModelError naming the file (not MONAI's UnpicklingError or a raw size mismatch)."""
    bundle = copy_bundle(tmp_path / "bundle")
    model = save_generator_artifact(tiny_generator(), TINY_GENERATOR, ["normal", "lung_opacity"],
                                    bundle / "models" / "model.pt")  # fmt: skip
    record = GeneratorRecord.load(bundle / "models" / "model.json")
    infer = ["--config_file", str(bundle / "configs" / "inference.json"), "--bundle_root", str(bundle)]
    infer += ["--output_dir", str(tmp_path / "out"), "--num_images", "2"]
    torch.save({"weight": torch.zeros(1), "made_in": Path("/somewhere")}, model)
    save_record(record, model)
    proc = run_bundle("run", bundle, "inferring", *infer, check=False)
    assert proc.returncode != 0 and f"ModelError: {model}: cannot be loaded as a weights-only" in proc.stderr
    assert "weights_only=False" not in proc.stderr and "UnpicklingError" not in proc.stderr
    torch.save(tiny_generator({**TINY_GENERATOR, "channels": [8, 8, 8, 8]}).state_dict(), model)
    save_record(record, model)
    proc = run_bundle("run", bundle, "inferring", *infer, check=False)
    assert proc.returncode != 0 and f"ModelError: {model}: the weights do not fit the network of" in proc.stderr
    assert not (tmp_path / "out").is_dir() or not list((tmp_path / "out").iterdir())


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
    )
    assert len(list(out.glob("*.png"))) == 3


@pytest.mark.slow
def test_non_default_model_serves_everywhere_without_overrides(tmp_path):
    """Train with non-default network and data settings, then run bundle inference, evaluation, the Deploy app on
    the ckpt_export TorchScript and the MONAI Label hook with no network or data overrides: the record carries
    them. The same model, seed and class give the same images in all four."""
    bundle = copy_bundle(tmp_path / "bundle")
    data_csv = write_phantom_folder(tmp_path / "data", 24, size=48, seed=5, class_ratio=0.25)
    settings = {
        "resolution": "32",
        "latent_dim": "64",
        "channels": "[16,16,8,8]",
        "attention_resolutions": "[8]",
        "dataset_dir": str(data_csv),
        "label_column": "class_name",
        "batch_size": "8",
        "max_epochs": "1",
        "health_interval": "3",
    }
    train_bundle(bundle, settings)
    model = bundle / "models" / "model.pt"
    generator = load_generator(model)
    assert generator.record.network["latent_dim"] == 64 and generator.record.network["attention_resolutions"] == [8]
    assert generator.class_names == ["lung_opacity", "normal"]  # sorted class names of the CSV
    expected = generate(generator.network, 4, 7, generator.class_names.index("normal"))
    configs = bundle / "configs"

    # bundle inference, by class name
    png = tmp_path / "png"
    run_bundle(
        "run",
        bundle,
        "inferring",
        "--config_file",
        str(configs / "inference.json"),
        "--bundle_root",
        str(bundle),
        "--output_dir",
        str(png),
        "--num_images",
        "4",
        "--class",
        "normal",
        "--seed",
        "7",
    )
    written = np.stack([np.asarray(Image.open(f), dtype=float) for f in sorted(png.glob("*.png"))])
    assert np.abs(written - ((expected[:, 0] + 1) * 127.5).numpy()).max() <= 1.0  # SaveImaged truncates to uint8

    # evaluation on the training data the record names
    out = tmp_path / "eval"
    run_bundle(
        "run",
        bundle,
        "evaluating",
        "--config_file",
        f"['{configs / 'inference.json'}','{configs / 'evaluate.json'}']",
        "--bundle_root",
        str(bundle),
        "--output_dir",
        str(out),
        "--num_images",
        "4",
        "--num_real",
        "12",
        "--seed",
        "7",
        "--fidelity",
        "false",
    )
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["data"]["dataset_dir"] == str(data_csv.resolve()) and report["settings"]["num_real"] == 12
    fake, _ = generate_per_class(generator.network, 4, seed=7)
    assert torch.allclose(fake[4:], expected, atol=1e-5)  # class 1 ("normal") block
    assert report["diversity"]["fake"]["mean"] == pytest.approx(pairwise_ms_ssim(fake, seed=7).mean, rel=1e-5)

    # the Deploy app on the ckpt_export TorchScript, which carries the record
    ts = bundle / "models" / "model.ts"
    with_record = f"['{configs / 'inference.json'}','{bundle / 'models' / 'model.json'}']"
    run_bundle(
        "ckpt_export",
        bundle,
        "network_def",
        "--filepath",
        str(ts),
        "--ckpt_file",
        str(model),
        "--config_file",
        with_record,
        "--bundle_root",
        str(bundle),
    )
    request = tmp_path / "request"
    request.mkdir()
    (request / "request.json").write_text(json.dumps({"num_images": 4, "class": "normal", "seed": 7, "batch_size": 3}))
    dicom_out = tmp_path / "dicom"
    env = {**bundle_env(), "CUDA_VISIBLE_DEVICES": ""}
    app = subprocess.run(
        [sys.executable, str(DEPLOY_APP_DIR), "-i", str(request), "-o", str(dicom_out), "-m", str(ts)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert app.returncode == 0, app.stderr[-3000:]
    app_report = json.loads((dicom_out / "report.json").read_text())
    assert app_report["class"] == "normal" and app_report["model"]["version"] == __version__
    for i, name in enumerate(app_report["files"]):
        ds = pydicom.dcmread(dicom_out / name)
        np.testing.assert_allclose(apply_modality_lut(ds.pixel_array, ds), expected[i, 0].numpy(), atol=1e-4)
        # package, bundle (the model's version) and DICOM say the same version
        assert list(ds.SoftwareVersions)[:2] == [
            f"monai-msgsagan {__version__}",
            f"{app_report['model']['name']} {__version__}",
        ]

    # the MONAI Label hook on models/model.pt: its cached synthetic images of "normal" for seed 7
    hook = SyntheticAugmentSettings.from_conf({"synthetic_model": str(model), "synthetic_seed": "7"}, tmp_path / "c")
    cached = hook.build().generate("normal", 4)
    images = np.stack([np.asarray(Image.open(f), dtype=float) for f in cached])
    assert np.abs(images - ((expected[:, 0] + 1) * 127.5).numpy()).max() <= 0.5 + 1e-3


def _train_cmd(bundle: Path, epochs: int, kill_at: int | None = None) -> list[str]:
    """The bundle's training command; with ``kill_at``, a process that SIGKILLs itself when that iteration completes
    (a kill at a known point, whatever the machine's speed: an extra config file adds the handler)."""
    config = str(bundle / "configs" / "train.json")
    if kill_at is not None:
        imports = json.loads((bundle / "configs" / "train.json").read_text())["imports"]
        kill = bundle / "configs" / "kill.json"
        kill.write_text(json.dumps({
            "imports": [*imports, "$import signal", "$from ignite.engine import Events"],
            "run": [
                f"$@train#trainer.add_event_handler(Events.ITERATION_COMPLETED(once={kill_at}), "
                "lambda _: os.kill(os.getpid(), signal.SIGKILL))",
                "$@train#trainer.run()",
            ],
        }))  # fmt: skip
        config = f"['{config}','{kill}']"
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        config,
        "--meta_file",
        str(bundle / "configs" / "metadata.json"),
        "--bundle_root",
        str(bundle),
    ]
    return cmd + overrides({**TINY_TRAIN, "num_phantoms": "16", "max_epochs": str(epochs)})


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    """SIGKILL a training run in the epoch after its second checkpoint (iteration 5: 2 iterations an epoch), start it
    again: same model as an uninterrupted run."""
    full = copy_bundle(tmp_path / "full")
    subprocess.run(_train_cmd(full, 4), env=bundle_env(), check=True, capture_output=True, timeout=600)

    killed = copy_bundle(tmp_path / "killed")
    proc = subprocess.run(_train_cmd(killed, 4, kill_at=5), env=bundle_env(), capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert sorted(p.name for p in (killed / "models" / "resume").glob("*.pt")) == ["checkpoint_2.pt", "checkpoint_4.pt"]
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
