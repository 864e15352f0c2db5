#!/usr/bin/env bash
# Creates .venv and installs monai-msgsagan with everything the main job and the tests need.
# Idempotent: re-running with an unchanged pyproject.toml only checks the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
stamp="$VENV/.installed-$(sha1sum pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # the CPU-capable torch build first: anything unpinned afterwards is satisfied by it
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".[all]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
"$VENV/bin/python" -c "import monai_msgsagan, monai, torch; print('monai-msgsagan', monai_msgsagan.__version__, '| monai', monai.__version__, '| torch', torch.__version__)"
