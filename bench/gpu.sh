#!/usr/bin/env bash
# The prepared GPU check (bench/gpu.py): 256 px training throughput (fp32/bf16, eager/compiled), the
# Deploy app's fp16 path against the CPU, and the 2-rank NCCL DDP test, under 8 minutes, one table.
# Run from anywhere on the GPU machine; PYTHON selects the interpreter (default: the repository's .venv, else
# python). Extra arguments go to bench/gpu.py (--cpu-smoke for the reduced CPU form that CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONWARNINGS=ignore
exec timeout 470 "$PYTHON" bench/gpu.py --budget-s 450 "$@"
