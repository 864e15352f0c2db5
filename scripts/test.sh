#!/usr/bin/env bash
# Sets up every environment the tests need, lints, and runs the whole test suite (slow tests included):
#   .venv (scripts/setup.sh): the package with MONAI, MONAI Deploy and the metrics extras -> tests/
#   .venv-map (scripts/setup_map.sh): the MAP packager -> tests/test_map_package.py
#   .venv-monailabel (scripts/test_monailabel.sh): MONAI Label 0.8.5 -> apps/monailabel_xray/tests
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_map.sh
.venv/bin/ruff check .
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} .venv/bin/python -m pytest -q "$@"
bash scripts/test_monailabel.sh
