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
# dciodvfy (Debian dicom3tools) validates the DICOM the Deploy app writes; its test skips, saying so, without it
if ! command -v dciodvfy >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y -q dicom3tools >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
      apt-get install -y -q dicom3tools >/dev/null 2>&1)) || echo "warning: could not install dicom3tools" >&2
  else
    echo "note: install Debian's dicom3tools (dciodvfy) to validate the synthetic DICOM" >&2
  fi
fi
# Orthanc (Debian's orthanc + orthanc-dicomweb) is the real PACS of tests/test_pacs.py and bench/app.py; the tests
# start their own Orthanc process (loopback, temporary storage) and skip, saying so, without it
if ! command -v Orthanc >/dev/null 2>&1 && [ ! -x /usr/sbin/Orthanc ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y -q orthanc orthanc-dicomweb >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
      apt-get install -y -q orthanc orthanc-dicomweb >/dev/null 2>&1)) || echo "warning: could not install orthanc" >&2
  else
    echo "note: install Debian's orthanc and orthanc-dicomweb to run the PACS tests" >&2
  fi
fi
"$VENV/bin/python" -c "import monai_msgsagan, monai, torch; print('monai-msgsagan', monai_msgsagan.__version__, '| monai', monai.__version__, '| torch', torch.__version__)"
