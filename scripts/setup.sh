#!/usr/bin/env bash
# Creates .venv and installs monai-msgsagan with everything the main job and the tests need.
# Idempotent: re-running with an unchanged pyproject.toml only checks the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
stamp="$VENV/.installed-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)"
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
# optional Debian tools whose tests skip, saying so, without them: installed when run as root with apt-get
apt_optional() {  # COMMAND NOTE PACKAGE...
  local cmd=$1 note=$2
  shift 2
  if command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y -q "$@" >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
      apt-get install -y -q "$@" >/dev/null 2>&1)) || echo "warning: could not install $*" >&2
  else
    echo "note: $note" >&2
  fi
}
# dciodvfy (Debian dicom3tools) validates the DICOM the Deploy app writes
apt_optional dciodvfy "install Debian's dicom3tools (dciodvfy) to validate the synthetic DICOM" dicom3tools
# Orthanc is the real PACS of tests/test_pacs.py and bench/app.py (each starts its own process on loopback)
apt_optional Orthanc "install Debian's orthanc and orthanc-dicomweb to run the PACS tests" orthanc orthanc-dicomweb
"$VENV/bin/python" -c "import monai_msgsagan, monai, torch; print('monai-msgsagan', monai_msgsagan.__version__, '| monai', monai.__version__, '| torch', torch.__version__)"
