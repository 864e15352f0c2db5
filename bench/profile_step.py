"""Per-operator profile of one float32 training step: ours against the original MSG-GAN code (BMSG-GAN) at matched
size, with ``torch.profiler``.

The candidates are those of ``bench/step_vs_msggan.py`` (same widths, latent, batch, loss, Adam and EMA):
the reference, ours in float32 contiguous with plain Adam, and ours with the bundle's settings but ``--amp False``
(channels-last, fused Adam, float32). Each runs ``--warmup`` iterations, then ``--iterations`` under the
profiler, the candidates taking turns one iteration each (so a disturbance hits all alike). The table gives, per
ATen operator, the self CPU milliseconds per iteration of each candidate (the ``--top`` operators by their largest
row), then per profiled iteration the total self CPU time, the wall time, the kernel (system) time and the minor
page faults, and the floating-point operations of one iteration (``FlopCounterMode``), forward and backward. glibc
gives large freed blocks back to the kernel, so a float32 step may fault its activations in afresh every iteration;
``--keep-freed-memory`` shows what that costs by turning it off. Run it on an otherwise idle machine: the profiler
measures wall time, which other processes inflate.

    OMP_NUM_THREADS=2 python bench/profile_step.py                 # MSG-GAN (no attention), 64 px, batch 16
    OMP_NUM_THREADS=2 python bench/profile_step.py --attention 16  # MSG-SAGAN
"""

from __future__ import annotations

import argparse
import ctypes
import resource
import time
from collections import defaultdict

from bench_utils import cpu_summary
from step_vs_msggan import batches, ours_candidate, reference_candidate
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Returns ``{candidate: {operator: self CPU ms per iteration}}``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--attention", type=int, nargs="*", default=[])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3, help="the first also counts the floating-point operations")
    p.add_argument("--top", type=int, default=20)
    p.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="first set glibc malloc to keep freed memory (mallopt: mmap threshold 32 MiB, trim threshold 1 GiB; "
        "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 does the same "
        "for a whole process), for all candidates alike",
    )
    args = p.parse_args(argv)
    if args.keep_freed_memory:
        libc = ctypes.CDLL("libc.so.6")
        if not (libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)):
            raise RuntimeError("mallopt refused the settings")
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
    faults: dict[str, float] = defaultdict(float)
    flops: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    system: dict[str, float] = defaultdict(float)
    for turn in range(args.warmup + args.iterations):
        for name, step in candidates.items():  # one iteration each in turn, as in step_vs_msggan.py
            if turn == 0:  # count the floating-point operations of one iteration (convolutions, matrix products)
                with FlopCounterMode(display=False) as counter:
                    step()
                for op, count in counter.get_flop_counts()["Global"].items():
                    part = "backward" if "backward" in str(op) else "forward"
                    flops[f"GFLOP/it {part} (FlopCounterMode)"][name] += count / 1e9
                continue
            if turn < args.warmup:
                step()
                continue
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                step()
                wall[name] += (time.perf_counter() - start) * 1e3 / args.iterations
                after = resource.getrusage(resource.RUSAGE_SELF)
            faults[name] += (after.ru_minflt - before.ru_minflt) / args.iterations
            system[name] += (after.ru_stime - before.ru_stime) * 1e3 / args.iterations
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
    print(f"{'kernel (system) ms/it':<44}" + "".join(f"{system[n]:>18.1f}" for n in names))
    print(f"{'minor page faults/it':<44}" + "".join(f"{faults[n]:>18.0f}" for n in names))
    for row in sorted(flops, reverse=True):  # forward, then backward
        print(f"{row:<44}" + "".join(f"{flops[row][n]:>18.1f}" for n in names))
    return table


if __name__ == "__main__":
    main()
