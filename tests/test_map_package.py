"""MAP packaging up to the image build: the pinned packager writes a complete build context that runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bundle_utils import save_generator_artifact
from test_deploy_app import CLASSES, DEFAULTS, NETWORK, _tiny_generator

from monai_msgsagan import __version__

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "apps" / "packaging" / "map_build_context.py"
# the packager environment (holoscan-cli 4.0.0, see apps/xray_synthesis/README.md)
MAP_PYTHON = Path(os.environ.get("MSGSAGAN_MAP_PYTHON", REPO / ".venv-map" / "bin" / "python"))


def _packager_available() -> bool:
    if not MAP_PYTHON.is_file():
        return False
    probe = [str(MAP_PYTHON), "-c", "import holoscan_cli.packager.arguments"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


pytestmark = pytest.mark.skipif(
    not _packager_available(),
    reason=f"MAP packager environment not found at {MAP_PYTHON} (see apps/xray_synthesis/README.md, "
    "'Packaging as a MAP'; set MSGSAGAN_MAP_PYTHON)",
)


@pytest.mark.slow
def test_build_context_is_complete_and_runs(tmp_path: Path) -> None:
    model = save_generator_artifact(_tiny_generator(), NETWORK, CLASSES, tmp_path / "models" / "msgsagan" / "model.ts")
    out = tmp_path / "context"
    result = subprocess.run(
        [str(MAP_PYTHON), str(SCRIPT), str(out), "--models", str(tmp_path / "models")],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"docker buildx build --platform linux/amd64 -f {out / 'Dockerfile'}" in result.stdout

    app_json = json.loads((out / "map" / "app.json").read_text())
    assert app_json["sdk"] == "monai-deploy" and app_json["sdkVersion"] == "4.0.0"
    assert json.loads(app_json["command"]) == ["python3", "/opt/holoscan/app"]
    assert app_json["environment"]["HOLOSCAN_MODEL_PATH"] == "/opt/holoscan/models"
    pkg_json = json.loads((out / "map" / "pkg.json").read_text())
    assert pkg_json["models"] == {"msgsagan": "/opt/holoscan/models/msgsagan"}
    assert pkg_json["resources"] == yaml.safe_load((REPO / "apps/xray_synthesis/app.yaml").read_text())["resources"]
    packaged_model = out / "models" / "msgsagan" / "model.ts"
    assert packaged_model.read_bytes() == model.read_bytes()
    assert (out / "app.config").read_text() == (REPO / "apps/xray_synthesis/app.yaml").read_text()
    requirements = (out / "pip" / "requirements.txt").read_text()
    assert "highdicom==0.28.2" in requirements and "holoscan-cu13==4.6.0" in requirements
    dockerfile = (out / "Dockerfile").read_text()
    for line in (
        "FROM nvcr.io/nvidia/cuda:13.0.0-runtime-ubuntu24.04 AS base",
        "RUN pip install monai-deploy-app-sdk==4.0.0",
        "COPY ./models  /opt/holoscan/models",
        "COPY ./app /opt/holoscan/app",
        "COPY ./app.config /var/holoscan/app.yaml",
        "ENV HOLOSCAN_CONFIG_PATH=/var/holoscan/app.yaml",
    ):
        assert line in dockerfile, line
    assert (out / "app" / "monai_msgsagan" / "dicom.py").is_file() and (out / "app" / "__main__.py").is_file()
    assert (out / "app" / f"monai_msgsagan-{__version__}.dist-info" / "METADATA").is_file()  # the copy's version

    # the packaged app runs from the context as the image would run it: package from the app folder, not PYTHONPATH
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "request.json").write_text(json.dumps(DEFAULTS))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", HOLOSCAN_CONFIG_PATH=str(out / "app.config"),
        HOLOSCAN_INPUT_PATH=str(tmp_path / "input"), HOLOSCAN_OUTPUT_PATH=str(tmp_path / "output"),
        HOLOSCAN_MODEL_PATH=str(out / "models"),
    )  # fmt: skip
    run = subprocess.run(
        [sys.executable, str(out / "app")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "output" / "report.json").read_text())
    assert report["status"] == "written" and len(report["files"]) == DEFAULTS["num_images"]
    assert report["model"]["path"] == str(packaged_model)
