"""Fixtures for the MONAI Label app tests; they run in .venv-monailabel (scripts/test_monailabel.sh)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from monai_msgsagan.networks import InferenceGenerator

APP_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = APP_DIR.parents[1]
SHARED_DIR = Path(os.environ.get("MSGSAGAN_SHARED_DIR", REPO_ROOT.parent / "shared"))
FIGURE1_DIR = SHARED_DIR / "data" / "figure1-cxr"
CLASSES = ["COVID-19", "other"]
#: Why the app tests skip outside .venv-monailabel; each test module calls ``pytest.importorskip`` with it.
NO_MONAILABEL = "MONAI Label is not installed here: run `bash scripts/test_monailabel.sh` (it builds .venv-monailabel)"
GENERATOR_ARGS = {"resolution": 32, "latent_dim": 8, "channels": [16, 16, 8, 8], "attention_resolutions": [],
                  "num_classes": 2}  # fmt: skip
sys.path.append(str(REPO_ROOT / "bench"))  # the repository's test helpers (bench/bundle_utils.py)
sys.path.insert(0, str(APP_DIR))  # what `monailabel start_server` does, so main.py and the tests find lib/


@pytest.fixture(scope="session")
def figure1_dir() -> Path:
    """The real chest radiographs of ../shared/data/figure1-cxr (skips when absent)."""
    if not (FIGURE1_DIR / "metadata.csv").is_file():
        pytest.skip(f"real radiographs not found at {FIGURE1_DIR} (set MSGSAGAN_SHARED_DIR to the shared folder)")
    return FIGURE1_DIR


@pytest.fixture(scope="session")
def generator_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny class-conditional MSG-SAGAN generator as TorchScript with its record, as ckpt_export writes it."""
    from bundle_utils import save_generator_artifact

    torch.manual_seed(0)
    network = InferenceGenerator(**GENERATOR_ARGS).eval()
    return save_generator_artifact(network, GENERATOR_ARGS, CLASSES, tmp_path_factory.mktemp("generator") / "model.ts")


def make_datastore(figure1_dir: Path, folder: Path, n_covid: int = 6, n_other: int = 2) -> Path:
    """Copy a few real radiographs into a MONAI Label datastore, with ``labels/final/<id>.cls.json`` class labels
    from metadata.csv (finding ``COVID-19``, anything else ``other``). Small files only, to keep the test fast."""
    with open(figure1_dir / "metadata.csv", encoding="latin-1") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["patientid"])
    wanted = {"COVID-19": n_covid, "other": n_other}
    labels_dir = folder / "labels" / "final"
    labels_dir.mkdir(parents=True)
    for row in rows:
        name = "COVID-19" if row["finding"] == "COVID-19" else "other"
        images = sorted((figure1_dir / "images").glob(f"{row['patientid']}.*"))
        if not wanted[name] or not images or images[0].stat().st_size > 300_000:
            continue
        shutil.copy(images[0], folder / images[0].name)
        (labels_dir / f"{row['patientid']}.cls.json").write_text(json.dumps({"label": name}))
        wanted[name] -= 1
    if any(wanted.values()):
        pytest.skip(f"not enough small radiographs in {figure1_dir} for the datastore ({wanted} missing)")
    return folder


@contextmanager
def start_app(studies: Path, conf: dict[str, str]) -> Iterator:
    """Start the real MONAI Label server app (FastAPI ``TestClient``, in process) on this app and datastore."""
    from fastapi.testclient import TestClient
    from monailabel.app import app
    from monailabel.config import settings
    from monailabel.interfaces.utils.app import clear_cache

    settings.MONAI_LABEL_APP_DIR = str(APP_DIR)
    settings.MONAI_LABEL_STUDIES = str(studies)
    settings.MONAI_LABEL_APP_CONF = conf
    settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD = False
    settings.MONAI_LABEL_SESSIONS = False
    settings.MONAI_LABEL_AUTO_UPDATE_SCORING = False
    clear_cache()
    try:
        with TestClient(app) as client:
            yield client
    finally:
        clear_cache()
