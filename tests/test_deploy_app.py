"""The MONAI Deploy app run for real in subprocesses on tiny exported generators, and its package-level steps."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from bundle_utils import save_generator_artifact, tiny_generator
from operators import find_model_file  # the app's modules: tests/conftest.py puts its folder on sys.path
from output import OutputError, check_output_dir, remove_stale_partials, write_series_atomically
from pydicom.pixels import apply_modality_lut
from request import RequestError, load_request
from test_dicom import assert_synthetic_identity, dciodvfy_errors

from monai_msgsagan.artifact import ModelError, load_generator
from monai_msgsagan.generation import GenerationError, generate, image_latents
from monai_msgsagan.metrics.gate import diversity_gate
from monai_msgsagan.networks import InferenceGenerator

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "apps" / "xray_synthesis"

RES, LATENT = 32, 16
NETWORK = {"resolution": RES, "latent_dim": LATENT, "channels": [32, 32, 16, 16], "attention_resolutions": [16],
           "num_classes": 2}  # fmt: skip
CLASSES = ["normal", "covid"]
DEFAULTS = {"num_images": 4, "class": None, "seed": 0, "batch_size": 2}


def _tiny_generator() -> InferenceGenerator:
    return tiny_generator(NETWORK)


class _Collapsed(torch.nn.Module):
    """A mode-collapsed generator: the same smooth image whatever the latent."""

    def __init__(self, out_channels: int = 1) -> None:
        super().__init__()
        self.latent_dim, self.num_classes, self.resolution = LATENT, 2, RES
        ramp = torch.linspace(-0.8, 0.8, RES)
        self.register_buffer("image", (ramp[None, :] * ramp[:, None]).expand(out_channels, RES, RES).clone())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.image.unsqueeze(0).expand(z.shape[0], -1, -1, -1) + 0 * z[:, :1, None, None]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    not_ts = root / "not_torchscript" / "model.ts"
    not_ts.parent.mkdir()
    not_ts.write_bytes(b"this is not a TorchScript archive\n")
    return {
        # MAP layout: models/<name>/<file>
        "good": save_generator_artifact(_tiny_generator(), NETWORK, CLASSES, root / "good" / "msgsagan" / "model.ts"),
        "collapsed": save_generator_artifact(_Collapsed(), NETWORK, CLASSES, root / "collapsed" / "model.ts"),
        "wrong_output": save_generator_artifact(_Collapsed(3), NETWORK, CLASSES, root / "wrong" / "model.ts"),
        "not_torchscript": not_ts,
    }


def run_app(
    input_dir: Path,
    output_dir: Path,
    model: Path,
    config: Path | None = None,
    use_env: bool = False,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``python apps/xray_synthesis -i -o -m`` (or the HOLOSCAN_* variables) in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.update(extra_env or {})
    if config is not None:
        env["HOLOSCAN_CONFIG_PATH"] = str(config)
    cmd = [sys.executable, str(APP)]
    if use_env:
        env.update(
            HOLOSCAN_INPUT_PATH=str(input_dir), HOLOSCAN_OUTPUT_PATH=str(output_dir), HOLOSCAN_MODEL_PATH=str(model)
        )
    else:
        cmd += ["-i", str(input_dir), "-o", str(output_dir), "-m", str(model)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)


def _request_dir(tmp_path: Path, request: dict | str | None) -> Path:
    folder = tmp_path / "input"
    folder.mkdir()
    if request is not None:
        text = request if isinstance(request, str) else json.dumps(request)
        (folder / "request.json").write_text(text)
    return folder


def _config(tmp_path: Path, **overrides: dict) -> Path:
    """app.yaml with sections replaced (Holoscan reads YAML; JSON is YAML)."""
    import yaml

    config = yaml.safe_load((APP / "app.yaml").read_text())
    config.update(overrides)
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _no_dicom_left(output_dir: Path) -> None:
    if output_dir.exists():
        assert not list(output_dir.rglob("*.dcm")), "DICOM written by a failed run"
        assert not [p for p in output_dir.iterdir() if p.name.startswith(".partial")], "temporary folder left"
        assert not [p for p in output_dir.iterdir() if p.is_dir()], "series folder left"


# ---------------------------------------------------------------- the app in subprocesses


@pytest.mark.slow
def test_app_writes_synthetic_dicom(tmp_path: Path, models: dict[str, Path]) -> None:
    request = {"num_images": 5, "class": "covid", "seed": 7, "batch_size": 2}
    out = tmp_path / "out"
    result = run_app(_request_dir(tmp_path, request), out, models["good"].parent.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "written" and report["reason"] is None
    assert report["request"] == request
    generator = load_generator(models["good"])
    assert report["model"]["sha256"] == generator.sha256
    assert report["model"]["name"] == "msgsagan_tiny" and report["model"]["version"] == "0.0.1"
    assert report["device"] == "cpu" and report["precision"] == "float32" and report["class"] == "covid"
    assert set(report["timing_s"]) >= {"request", "load", "generate", "gate", "write", "total_in_graph"}
    assert report["gate"] == "passed" and report["diversity"]["pairs"] == 10
    assert report["diversity"]["mean"] <= report["diversity"]["threshold"]
    files = [out / f for f in report["files"]]
    assert len(files) == 5 and all(f.is_file() for f in files)
    assert len({f.parent for f in files}) == 1
    # the DICOM pixels are the images the same seed gives in this process
    expected = generate(generator.network, 5, 7, CLASSES.index("covid"), batch_size=2)
    for i, path in enumerate(files):
        ds = pydicom.dcmread(path)
        assert_synthetic_identity(ds, "msgsagan_tiny", "0.0.1")
        assert "covid" in ds.SeriesDescription
        assert generator.sha256 in ds.ContributingEquipmentSequence[0].ContributionDescription
        np.testing.assert_allclose(apply_modality_lut(ds.pixel_array, ds), expected[i, 0].numpy(), atol=1e-4)
    if shutil.which("dciodvfy"):
        assert dciodvfy_errors(files[0]) == []


@pytest.mark.slow
def test_app_with_holoscan_variables_and_yaml_defaults(tmp_path: Path, models: dict[str, Path]) -> None:
    out = tmp_path / "out"
    config = _config(tmp_path, request_defaults=DEFAULTS)
    result = run_app(_request_dir(tmp_path, None), out, models["good"], config=config, use_env=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["request"] == DEFAULTS and len(report["files"]) == 4
    assert report["class"] == "normal"  # the generator's default class


@pytest.mark.slow
def test_collapsed_generator_is_refused(tmp_path: Path, models: dict[str, Path]) -> None:
    out = tmp_path / "out"
    result = run_app(_request_dir(tmp_path, DEFAULTS), out, models["collapsed"])
    assert result.returncode == 3, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "refused" and report["gate"] == "refused"
    assert "mode collapse" in report["reason"] and report["diversity"]["mean"] > 0.99
    assert report["files"] == []
    _no_dicom_left(out)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, request_json, message",
    [
        ("not_torchscript", DEFAULTS, "neither a TorchScript export nor a PyTorch state dict"),
        ("wrong_output", DEFAULTS, "generator output is (2, 3, 32, 32), expected (2, 1, 32, 32)"),
        ("good", '{"num_images": 4, "seed": 1,', "not a readable JSON request"),
        ("good", {**DEFAULTS, "class": "pneumothorax"}, "class \"pneumothorax\" is not one of the classes ['normal'"),
        ("good", {**DEFAULTS, "num_images": 0}, "field 'num_images' must be in [2, 1024], got 0"),
    ],
)
def test_bad_input_fails_with_report(
    tmp_path: Path, models: dict[str, Path], case: str, request_json: dict | str, message: str
) -> None:
    out = tmp_path / "out"
    result = run_app(_request_dir(tmp_path, request_json), out, models[case])
    assert result.returncode == 1, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed" and message in report["reason"], report["reason"]
    _no_dicom_left(out)


@pytest.mark.slow
def test_missing_model_path(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_app(_request_dir(tmp_path, DEFAULTS), out, tmp_path / "no_such_model")
    assert result.returncode == 2  # the SDK's argument parser
    assert "No such file/folder" in result.stderr and "no_such_model" in result.stderr
    _no_dicom_left(out)


@pytest.mark.slow
def test_unwritable_output(tmp_path: Path, models: dict[str, Path]) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_app(_request_dir(tmp_path, DEFAULTS), blocker / "out", models["good"], use_env=True)
    assert result.returncode == 1
    assert f"output folder {blocker / 'out'} cannot be created" in result.stderr
    assert blocker.read_text() == ""


# ---------------------------------------------------------------- the package-level steps, in process


def test_request_fields(tmp_path: Path) -> None:
    folder = _request_dir(tmp_path, {"num_images": 3, "class": 1})
    request = load_request(folder, DEFAULTS, max_images=8, max_batch_size=4)
    assert request.to_dict() == {"num_images": 3, "class": 1, "seed": 0, "batch_size": 2}
    assert load_request(tmp_path / "input", DEFAULTS, 8, 4).num_images == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_request(empty, DEFAULTS, 8, 4).to_dict() == DEFAULTS
    bad = [
        ({"num_images": 9}, "field 'num_images' must be in [2, 8]"),
        ({"num_images": 1}, "field 'num_images' must be in [2, 8]"),
        ({"num_images": "4"}, "field 'num_images' must be an integer"),
        ({"seed": -1}, "field 'seed'"),
        ({"batch_size": 0}, "field 'batch_size'"),
        ({"class": ["a"]}, "field 'class'"),
        ({"count": 3}, "unknown field 'count'"),
        ([1, 2], "must be a JSON object"),
    ]
    for i, (values, message) in enumerate(bad):
        path = tmp_path / f"bad{i}.json"
        path.write_text(json.dumps(values))
        with pytest.raises(RequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_request(path, DEFAULTS, 8, 4)
        assert str(path) in str(pytest.raises(RequestError, load_request, path, DEFAULTS, 8, 4).value)
    (empty / "other.json").write_text("{}")
    with pytest.raises(RequestError, match="expected only request.json"):
        load_request(empty, DEFAULTS, 8, 4)


def test_model_loading_errors(tmp_path: Path, models: dict[str, Path]) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_generator(tmp_path / "missing")
    with pytest.raises(ModelError, match="neither a TorchScript export nor a PyTorch state dict"):
        load_generator(models["not_torchscript"])
    with pytest.raises(ModelError, match="exactly one TorchScript file"):
        find_model_file(models["good"].parents[2])  # the folder of all test models
    assert find_model_file(models["good"].parent.parent) == models["good"]
    plain = torch.jit.script(torch.nn.Linear(2, 2))
    torch.jit.save(plain, str(tmp_path / "linear.ts"))
    with pytest.raises(ModelError, match="carries no generator record"):
        load_generator(tmp_path / "linear.ts")


def test_generation_is_seeded_and_matches_the_network(models: dict[str, Path]) -> None:
    network = load_generator(models["good"]).network
    a = generate(network, 3, 11, 1, batch_size=2)
    b = generate(network, 3, 11, 1, batch_size=3)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert not torch.allclose(a, generate(network, 3, 12, 1))
    torch.testing.assert_close(generate(network, 2, 11, 1, start=1), a[1:], atol=1e-5, rtol=0)
    with torch.no_grad():
        reference = _tiny_generator()(image_latents(LATENT, 11, 1, range(3)), torch.ones(3, dtype=torch.long))
    torch.testing.assert_close(a, reference, atol=1e-5, rtol=0)
    with pytest.raises(GenerationError, match=r"\(2, 3, 32, 32\), expected \(2, 1, 32, 32\)"):
        generate(load_generator(models["wrong_output"]).network, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the app's GPU path needs one")
def test_cuda_float16_matches_cpu(models: dict[str, Path]) -> None:
    cpu = generate(load_generator(models["good"]).network, 4, 5, 0)
    gpu = load_generator(models["good"], "cuda").network
    half = generate(gpu, 4, 5, 0, device="cuda", half_precision=True)
    full = generate(gpu, 4, 5, 0, device="cuda", half_precision=False)
    torch.testing.assert_close(full, cpu, atol=1e-4, rtol=0)
    torch.testing.assert_close(half, cpu, atol=2e-2, rtol=0)


def test_gate_verdicts(models: dict[str, Path]) -> None:
    varied = generate(load_generator(models["good"]).network, 6, 0)
    collapsed = varied[:1].expand(6, -1, -1, -1)
    ok = diversity_gate(varied, threshold=0.8)
    assert ok.passed and ok.pairs == 15 and ok.mean < 0.8 and ok.reason is None
    refused = diversity_gate(collapsed, threshold=0.8)
    assert not refused.passed and refused.mean == pytest.approx(1.0, abs=1e-6) and "mode collapse" in refused.reason
    assert diversity_gate(varied, threshold=0.8, max_pairs=5).pairs == 5
    with pytest.raises(ValueError, match="N >= 2"):
        diversity_gate(varied[:1], 0.8)


def test_series_is_all_or_nothing(tmp_path: Path) -> None:
    images = torch.zeros(3, 1, 16, 16)
    images[2, 0, 0, 0] = float("nan")  # one bad image: the whole series is refused
    with pytest.raises(ValueError, match="NaN"):
        write_series_atomically(images, tmp_path, "m", "1")
    assert list(tmp_path.iterdir()) == []
    paths = write_series_atomically(torch.zeros(2, 1, 16, 16), tmp_path, "m", "1")
    assert [p.name for p in paths] == ["synthetic_0001.dcm", "synthetic_0002.dcm"]
    assert [p.name for p in tmp_path.iterdir()] == [paths[0].parent.name]


def test_output_dir_checks(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "new" / "out").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot be created"):
        check_output_dir(blocker / "out")
    with pytest.raises(OutputError, match="is not a folder"):
        check_output_dir(blocker)


# ---------------------------------------------------------------- hostile inputs


def _reports(output_dir: Path) -> list[dict]:
    """Every per-run report of ``output_dir`` (``report_<run id>.json``), oldest first."""
    return [json.loads(p.read_text()) for p in sorted(output_dir.glob("report_*.json"))]


@pytest.mark.slow
def test_each_run_keeps_its_report(tmp_path: Path, models: dict[str, Path]) -> None:
    out = tmp_path / "out"
    first = run_app(_request_dir(tmp_path, DEFAULTS), out, models["good"])
    assert first.returncode == 0, first.stderr[-3000:]
    written = json.loads((out / "report.json").read_text())
    (tmp_path / "input" / "request.json").write_text(json.dumps({**DEFAULTS, "num_images": 0}))
    second = run_app(tmp_path / "input", out, models["good"])
    assert second.returncode == 1, second.stderr[-3000:]
    reports = _reports(out)
    assert [r["status"] for r in reports] == ["written", "failed"]
    assert reports[0] == written and reports[0]["run_id"] != reports[1]["run_id"]
    assert all((out / f).is_file() for f in reports[0]["files"])
    # report.json is the latest run's report
    assert json.loads((out / "report.json").read_text()) == reports[1]


@pytest.mark.slow
def test_oversize_request_is_refused_without_echo(tmp_path: Path, models: dict[str, Path]) -> None:
    out = tmp_path / "out"
    request = _request_dir(tmp_path, {**DEFAULTS, "class": "x" * (50 << 20)})
    result = run_app(request, out, models["good"])
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(result.stderr) < 20_000 and len(result.stdout) < 20_000
    assert (out / "report.json").stat().st_size < 20_000
    report = json.loads((out / "report.json").read_text())
    assert str(request / "request.json") in report["reason"] and "limits.max_request_bytes" in report["reason"]
    _no_dicom_left(out)


def test_request_echo_is_capped(tmp_path: Path) -> None:
    for i, values in enumerate(
        [
            {"class": "y" * 20_000},
            {"num_images": list(range(5_000))},
            {"z" * 20_000: 1},
        ]
    ):
        path = tmp_path / f"request{i}.json"
        path.write_text(json.dumps(values))
        with pytest.raises(RequestError) as raised:
            load_request(path, DEFAULTS, 8, 4)
        assert str(path) in str(raised.value) and len(str(raised.value)) < 400, str(raised.value)[:400]


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text('{"num_images": 4, "seed": 1, "num_images": 8}')
    with pytest.raises(RequestError, match="duplicate field 'num_images'") as raised:
        load_request(path, DEFAULTS, 8, 4)
    assert str(path) in str(raised.value)


def test_deeply_nested_request_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text('{"class": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(RequestError) as raised:
        load_request(path, DEFAULTS, 8, 4, max_bytes=1 << 20)
    assert str(path) in str(raised.value) and "nested" in str(raised.value)


@pytest.mark.slow
def test_killed_run_leaves_nothing_for_later_runs(tmp_path: Path, models: dict[str, Path]) -> None:
    """SIGKILL while the series is being written; the next run removes the dead run's hidden folder."""
    out = tmp_path / "out"
    request = _request_dir(tmp_path, {**DEFAULTS, "num_images": 300, "batch_size": 100})
    config = _config(tmp_path, diversity_gate={"max_mean_ms_ssim": 1.0, "max_pairs": 10})
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    env["HOLOSCAN_CONFIG_PATH"] = str(config)
    cmd = [sys.executable, str(APP), "-i", str(request), "-o", str(out), "-m", str(models["good"])]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if len(list(out.glob(".partial-*/*.dcm"))) >= 3:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be killed mid-write"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert list(out.glob(".partial-*/*.dcm")), "no half-written series to clean up"
    (tmp_path / "again").mkdir()
    result = run_app(_request_dir(tmp_path / "again", DEFAULTS), out, models["good"], config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], sorted(p.name for p in out.iterdir())
    report = json.loads((out / "report.json").read_text())
    assert len(report["removed_stale"]) == 1 and report["removed_stale"][0].startswith(".partial-")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.dcm")) == sorted(report["files"])


def test_stale_partials_are_removed_live_ones_kept(tmp_path: Path) -> None:
    import fcntl

    dead, live, old = tmp_path / ".partial-dead", tmp_path / ".partial-live", tmp_path / ".partial-old"
    for folder in (dead, live, old):
        folder.mkdir()
        (folder / "synthetic_0001.dcm").write_bytes(b"DICM")
    (tmp_path / ".partial-dead.lock").write_text("")  # its writer was killed: nobody holds the lock
    (tmp_path / ".partial-live.lock").write_text("")
    with open(tmp_path / ".partial-live.lock") as held:  # a writer still at work holds its lock
        fcntl.flock(held, fcntl.LOCK_EX)
        assert remove_stale_partials(tmp_path) == [".partial-dead", ".partial-old"]
        assert sorted(p.name for p in tmp_path.iterdir()) == [".partial-live", ".partial-live.lock"]
    assert remove_stale_partials(tmp_path) == [".partial-live"] and list(tmp_path.iterdir()) == []


def test_send_settings_from_yaml_and_environment() -> None:
    from destinations import send_settings

    section = {"dicom_node": {"ae_title": "PACS", "host": "pacs.example.org", "port": 104}, "attempts": 2}
    settings = send_settings(section, {})
    assert str(settings.dicom_node) == "PACS@pacs.example.org:104" and settings.stow_rs_url is None
    assert settings.enabled and settings.attempts == 2
    env = {
        "XRAY_SYNTHESIS_DICOM_NODE": "ORTHANC@127.0.0.1:4242",
        "XRAY_SYNTHESIS_STOW_RS_URL": "http://h/dicom-web/studies",
    }
    settings = send_settings(section, env)
    assert (
        str(settings.dicom_node) == "ORTHANC@127.0.0.1:4242"
        and settings.stow_rs_url == env["XRAY_SYNTHESIS_STOW_RS_URL"]
    )
    assert not send_settings(section, {"XRAY_SYNTHESIS_DICOM_NODE": ""}).enabled  # empty: turned off
    assert not send_settings(None, {}).enabled  # an app.yaml without a send section sends nothing
    bad = [
        ({"dicom_node": "no-port@host"}, {}, "app.yaml send.dicom_node: a DICOM node is written AE_TITLE@host:port"),
        ({}, {"XRAY_SYNTHESIS_DICOM_NODE": "A@h:70000"}, "XRAY_SYNTHESIS_DICOM_NODE: DICOM node port"),
        ({"dicom_node": {"ae_title": "X" * 17, "host": "h", "port": 1}}, {}, "AE title must be 1-16"),
        ({"stow_rs_url": "ftp://x"}, {}, "must be an http"),
        ({"attempts": 0}, {}, "send.attempts must be an integer in"),
        ({"retries": 3}, {}, "unknown setting send.retries"),
    ]
    for section, env, message in bad:
        with pytest.raises(ValueError, match=re.escape(message)):
            send_settings(section, env)


def test_request_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    """A named pipe called request.json would block the app forever on read."""
    os.mkfifo(tmp_path / "request.json")
    with pytest.raises(RequestError, match="not a regular file") as raised:
        load_request(tmp_path, DEFAULTS, 8, 4)
    assert str(tmp_path / "request.json") in str(raised.value)
