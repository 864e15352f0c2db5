#!/usr/bin/env bash
# Creates .venv-map: the MONAI Application Package (MAP) packager beside the Deploy SDK, in its own environment.
# holoscan-cli 5.x (what monai-deploy-app-sdk 4.0 pulls in unpinned) dropped the packager; 4.0.0 is the last
# release with it, and it pins packaging<26, which would downgrade the main environment. Idempotent (stamp file).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-map
stamp="$VENV/.installed-$(sha1sum scripts/setup_map.sh | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "holoscan-cli==4.0.0"
  "$VENV/bin/python" -m pip install -q --no-deps "monai-deploy-app-sdk==4.0.0" "holoscan-cu13==4.6.0" \
    wheel-axle-runtime filelock
  touch "$stamp"
fi
"$VENV/bin/python" -c "import holoscan_cli.packager.arguments; print('MAP packager: holoscan-cli 4.0.0')"
