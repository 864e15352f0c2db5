"""Per-operator profile of one float32 training step: ours against the original MSG-GAN code (BMSG-GAN) at matched
size, with ``torch.profiler``.

The candidates are those of ``bench/step_vs_msggan.py`` (same widths, latent, batch, loss, Adam and EMA):
the reference, ours in float32 contiguous with plain Adam, and ours with the bundle's settings but ``--amp False``
(channels-last, fused Adam, float32). Each runs ``--warmup`` iterations, then ``--iterations`` under the
profiler, the candidates taking turns one iteration each (so a disturbance hits all alike). The table gives, per
ATen operator, the self CPU milliseconds per iteration of each candidate (the ``--top`` operators by their largest
row), then the total self CPU time and the wall time per profiled iteration. Run it on an otherwise idle
machine: the profiler measures wall time, which other processes inflate.

    OMP_NUM_THREADS=2 python bench/profile_step.py                 # MSG-GAN (no attention), 64 px, batch 16
    OMP_NUM_THREADS=2 python bench/profile_step.py --attention 16  # MSG-SAGAN
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_utils import cpu_summary  # noqa: E402
from step_vs_msggan import batches, ours_candidate, reference_candidate  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Returns ``{candidate: {operator: self CPU ms per iteration}}``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--attention", type=int, nargs="*", default=[])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args(argv)
    depth = args.resolution.bit_length() - 2
    data = batches(args.resolution, args.batch, args.warmup + args.iterations)
    ours = (args.resolution, args.latent, args.attention, data)
    candidates = {
        "reference": reference_candidate(depth, args.latent, data)[0],
        "ours contiguous": ours_candidate(*ours, fast=False, amp=False)[0],
        "ours --amp False": ours_candidate(*ours, fast=True, amp=False)[0],
    }
    print(cpu_summary())
    print(f"resolution={args.resolution} batch={args.batch} latent={args.latent} attention={args.attention}")
    table: dict[str, dict[str, float]] = {name: defaultdict(float) for name in candidates}
    wall: dict[str, float] = defaultdict(float)
    for turn in range(args.warmup + args.iterations):
        for name, step in candidates.items():  # one iteration each in turn, as in step_vs_msggan.py
            if turn < args.warmup:
                step()
                continue
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                start = time.perf_counter()
                step()
                wall[name] += (time.perf_counter() - start) * 1e3 / args.iterations
            for event in prof.key_averages():
                table[name][event.key] += event.self_cpu_time_total / 1e3 / args.iterations
    for name, step in candidates.items():
        if name.startswith("ours"):
            step()  # resume once more: the engine ends its epoch and run (no iteration left)
    names = list(table)
    ops = sorted({op for row in table.values() for op in row}, key=lambda op: -max(table[n].get(op, 0) for n in names))
    print(f"{'operator (self CPU ms/it)':<44}" + "".join(f"{n:>18}" for n in names))
    for op in ops[: args.top]:
        print(f"{op[:44]:<44}" + "".join(f"{table[n].get(op, 0.0):>18.1f}" for n in names))
    print(f"{'total self CPU':<44}" + "".join(f"{sum(table[n].values()):>18.1f}" for n in names))
    print(f"{'wall ms/it (profiled)':<44}" + "".join(f"{wall[n]:>18.1f}" for n in names))
    return table


if __name__ == "__main__":
    main()
