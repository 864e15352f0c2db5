"""The bundle's default training step on cores shared with another process: which OpenMP settings to use.

Each setting runs in a fresh process (OpenMP reads its environment at start) and trains the bundle's default
networks and recipe with its default speed settings (``bench/step_options.py``'s last row: channels-last, fused
Adam, ``amp``) for ``--warmup`` + ``--iterations`` iterations, once on otherwise free cores and once while a
competitor, a one-thread float32 matrix-multiply loop standing in for another user's job, keeps one core busy.
Settings, in turn, ``--repeats`` times: torch's default (as many threads as cores, OpenMP threads spin while they
wait), ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep), and ``OMP_NUM_THREADS`` = cores - 1 (the cores the
competitor leaves). The table gives the median seconds per iteration of each repeat and the speed-up of the best
repeat against the default setting without the competitor, measured in the same run. Other users' processes load
the cores in both halves alike; say what ran beside it when quoting the numbers.

    python bench/shared_cores.py                 # 2 repeats
    python bench/shared_cores.py --iterations 4 --warmup 1 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def competitor() -> None:
    """Keep one core busy with one-thread float32 matrix products until killed."""
    import torch

    torch.set_num_threads(1)
    a = torch.randn(512, 512)
    while True:
        a = torch.tanh(a @ a)


def worker(iterations: int, warmup: int) -> None:
    """Print the median seconds per iteration of the default step (last line of stdout)."""
    from step_options import run

    median, _, _ = run(True, True, False, True, iterations, warmup)
    print(median)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--competitor", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.competitor:
        competitor()
        return
    if args.worker:
        worker(args.iterations, args.warmup)
        return
    from bench_utils import cpu_summary

    cores = os.cpu_count() or 1
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    settings = {
        "default (threads = cores, spinning)": {},
        "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
        f"OMP_NUM_THREADS={max(1, cores - 1)}": {"OMP_NUM_THREADS": str(max(1, cores - 1))},
    }
    print(f"{cpu_summary()} cores={cores} iterations={args.iterations} warmup={args.warmup}")
    cmd = [sys.executable, __file__, "--worker", "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    times: dict[tuple[str, bool], list[float]] = {}
    for _ in range(args.repeats):
        for busy in (False, True):
            rival = None
            if busy:
                rival = subprocess.Popen([sys.executable, __file__, "--competitor"], env=clean)
                time.sleep(2.0)  # let it start
            try:
                for name, env in settings.items():
                    out = subprocess.run(cmd, env={**clean, **env}, capture_output=True, text=True, check=True)
                    times.setdefault((name, busy), []).append(float(out.stdout.strip().splitlines()[-1]))
            finally:
                if rival is not None:
                    rival.kill()
                    rival.wait()
    base = min(times[(next(iter(settings)), False)])
    print(f"{'setting':<38} {'competitor':>10} {'s/it per repeat':>22} {'speed-up':>9}")
    for (name, busy), values in times.items():
        listed = ", ".join(f"{v:.3f}" for v in values)
        print(f"{name:<38} {'1 core' if busy else 'none':>10} {listed:>22} {base / min(values):>8.2f}x")


if __name__ == "__main__":
    main()
