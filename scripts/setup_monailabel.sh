#!/usr/bin/env bash
# Creates .venv-monailabel: MONAI Label 0.8.5 beside monai-msgsagan, in its own environment.
#
# Why a separate environment: monailabel 0.8.5's full dependency set (sam2, pydicom-seg, numpymaxflow,
# monai[torchvision,itk,...]) drags in torchvision from PyPI (a CUDA build, and 0.28+ breaks the CPU torch 2.13.0
# with "torchvision::nms"), numpy 1.x and a pydicom < 3 that highdicom rejects. So monailabel is installed with
# --no-deps and exactly the requirements that a radiology-style app with a local datastore imports are pinned
# below (versions contemporary with monailabel 0.8.5 where its code relies on their API: fastapi/starlette,
# pydantic, httpx).  Left out on purpose: torchvision, sam2 (SAM2 infer tasks), pydicom-seg and pynetdicom
# (DICOMweb/DICOM SEG datastores), girder-client and shapely (digital pathology), numpymaxflow (scribbles),
# mlflow, lmdb, openslide.
#
# Idempotent: re-running with unchanged pins only checks the environment (stamp file).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-monailabel
start=$(date +%s)

# torch is constrained for every pip call, so nothing below can upgrade or replace it.
TORCH_PIN="torch==2.13.0"
MONAILABEL_PIN="monailabel==0.8.5"
# monai itself (the versions the core package supports) with the pieces monailabel's train/infer tasks import
MONAI_PINS=(
  "monai==1.6.1" "pytorch-ignite==0.5.5" "nibabel==5.4.2" "pillow==12.0.0" "psutil==7.2.2" "scikit-image==0.26.0"
  "tensorboard==2.21.0" "tqdm==4.70.1" "fire==0.7.1" "pyyaml==6.0.3" "scipy==1.17.1" "einops==0.8.2"
)
# what monailabel's server, app, datastore and task modules import at start
SERVER_PINS=(
  "fastapi==0.115.5" "starlette==0.41.3" "pydantic==2.9.2" "pydantic-settings==2.6.1" "uvicorn==0.32.1"
  "python-multipart==0.0.17" "httpx==0.27.2" "python-dotenv==1.0.1" "requests==2.32.3" "requests-toolbelt==1.0.0"
  "urllib3==2.2.3" "schedule==1.2.2" "timeloop==1.0.2" "expiringdict==1.2.2" "expiring-dict==1.1.0"
  "cachetools==5.5.0" "watchdog==6.0.0" "filelock==3.16.1" "passlib==1.7.4" "pyjwt==2.10.1" "bcrypt==4.2.1"
  "dicomweb-client==0.59.3" "google-auth==2.36.0" "pynrrd==1.1.1" "itk==5.4.0" "scikit-learn==1.9.1"
  "setuptools<81"
  # monailabel.interfaces.app imports the DICOMweb datastore, which imports pydicom-seg at module level:
  # pydicom-seg 0.4.1 needs numpy < 2, jsonschema < 4 and pydicom < 3 (it imports pydicom._storage_sopclass_uids)
  "pydicom-seg==0.4.1" "pydicom==2.4.4" "numpy==1.26.4" "jsonschema==3.2.0" "SimpleITK==2.4.0"
  # monailabel.interfaces.app imports the DSA (digital pathology) datastore too
  "girder-client==3.2.6"
)
# monai-msgsagan's core dependencies that its label hook and networks need (no deploy/fid extras)
CORE_PINS=("pytorch-msssim==1.0.0" "torchmetrics==1.9.0" "matplotlib==3.11.2" "pytest==9.2.0")

stamp="$VENV/.installed-$(sha1sum scripts/setup_monailabel.sh pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -x "$VENV/bin/python" ]; then
  # monailabel 0.8.5 imports distutils, which Python 3.12 removed
  if ! "$PY" -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] < (3, 12)))'; then
    echo "setup_monailabel.sh: monailabel 0.8.5 needs Python 3.9-3.11; set PYTHON to one (got $("$PY" -V))" >&2
    exit 1
  fi
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ]; then
  constraints="$VENV/constraints.txt"
  echo "$TORCH_PIN" > "$constraints"
  pipi() { PIP_CONSTRAINT="$constraints" "$VENV/bin/python" -m pip install -q "$@"; }
  "$VENV/bin/python" -m pip install -q --upgrade pip
  pipi "$TORCH_PIN"
  pipi --no-deps "$MONAILABEL_PIN"
  pipi "${MONAI_PINS[@]}" "${SERVER_PINS[@]}" "${CORE_PINS[@]}"
  pipi --no-deps -e .
  if "$VENV/bin/python" -m pip show -q torchvision 2>/dev/null; then
    echo "setup_monailabel.sh: torchvision got installed into $VENV; it breaks torch 2.13.0 CPU" >&2
    exit 1
  fi
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
"$VENV/bin/python" - <<'EOF'
import monai, monailabel, numpy, torch
from monailabel.interfaces.app import MONAILabelApp  # noqa: F401  (the app server imports)
import monai_msgsagan.label  # noqa: F401
print(f"monailabel {monailabel.__version__} | monai {monai.__version__} | torch {torch.__version__} | numpy {numpy.__version__}")
EOF
echo "setup_monailabel.sh: ready in $(( $(date +%s) - start )) s"
