#!/usr/bin/env bash
# Sets up .venv (scripts/setup.sh), lints with ruff and runs the whole test suite, slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
