from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MSGSAGAN_SHARED_DIR", REPO_ROOT.parent / "shared"))
FIGURE1_DIR = SHARED_DIR / "data" / "figure1-cxr"
META_SCHEMA = SHARED_DIR / "schemas" / "meta_schema_20240725.json"
#: The MONAI Deploy app's folder: its modules (operators, output, request, destinations) import the way
#: ``python apps/xray_synthesis`` imports them.
DEPLOY_APP_DIR = REPO_ROOT / "apps" / "xray_synthesis"
sys.path.insert(0, str(DEPLOY_APP_DIR))
# the helpers the tests share with the benchmarks (bundle_utils, orthanc_server); last, so that no benchmark script
# shadows a module of the app
sys.path.append(str(REPO_ROOT / "bench"))


@pytest.fixture(scope="session")
def figure1_dir() -> Path:
    """The 55 real chest radiographs of ../shared/data/figure1-cxr (skips when absent)."""
    if not (FIGURE1_DIR / "metadata.csv").is_file():
        pytest.skip(f"real radiographs not found at {FIGURE1_DIR} (set MSGSAGAN_SHARED_DIR to the shared folder)")
    return FIGURE1_DIR
