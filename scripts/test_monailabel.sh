#!/usr/bin/env bash
# Builds .venv-monailabel (scripts/setup_monailabel.sh) and runs the MONAI Label app tests in it.
# Extra arguments go to pytest, e.g. `bash scripts/test_monailabel.sh -k infer`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_monailabel.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# the app tests live beside the app; --rootdir keeps the repo's pytest settings (markers, warnings filter)
.venv-monailabel/bin/python -m pytest -q --rootdir . -p no:cacheprovider apps/monailabel_xray/tests "$@"
