"""The prepared GPU check (bench/gpu.sh), the MSG-GAN step comparison (bench/step_vs_msggan.py) and its float32
profile (bench/profile_step.py) in their reduced CPU forms, so that none of them rots between the runs on a lent
GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_reduced_on_cpu():
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu.sh"), "--cpu-smoke"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = proc.stdout
    for row in ("deploy fp16 vs CPU", "ddp 2 ranks", "train fp32 eager"):
        assert f"| {row}" in table, table
    assert "ranks identical: True" in table and "s/kimg" in table and "FAILED" not in table


def test_step_comparison_with_the_original_msggan_runs():
    from step_vs_msggan import main

    rows = main(["--resolution", "32", "--iterations", "1", "--warmup", "1"])
    assert [r["variant"] for r in rows] == ["MSG-GAN"] * 4 + ["MSG-SAGAN"] * 4
    assert all(r["s_per_it"] > 0 and r["params"] > 0 for r in rows)


def test_float32_step_profile_runs():
    from profile_step import main

    table = main(["--resolution", "32", "--iterations", "1", "--warmup", "1", "--attention", "8"])
    assert list(table) == ["reference", "ours contiguous", "ours --amp False"]
    assert all(row["aten::convolution_backward"] > 0 for row in table.values())
