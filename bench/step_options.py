"""Which step options win on this machine: channels-last, fused Adam, bf16 autocast (``amp``) and
``torch.compile`` for the bundle's default networks and recipe (``train.json`` as it is, on the CPU, with its EMA
handler) through ``MultiScaleGanTrainer``.

Each configuration is a fresh trainer over the same seeded phantoms (drawn before the timing); the configurations
run in turn, ``--repeats`` times, so a disturbance by other processes shows as disagreement between repeats.
Reported: the median and the minimum seconds per iteration after ``--warmup`` iterations, and the warm-up time
(compilation included). ``amp`` is bf16 autocast only on CPUs with native bf16 (AMX or AVX512-BF16,
``cpu_has_native_bf16``); elsewhere the row repeats the one above.

    OMP_NUM_THREADS=2 python bench/step_options.py                 # eager options, twice
    OMP_NUM_THREADS=2 python bench/step_options.py --compile --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_utils import cpu_summary
from bundle_recipe import bundle_recipe
from ignite.engine import Events
from torch.utils.data import DataLoader


def run(
    channels_last: bool, fused: bool, compile: bool, amp: bool, iterations: int, warmup: int
) -> tuple[float, float, float]:
    """(median, min) seconds per iteration and the warm-up seconds of one configuration."""
    torch.manual_seed(0)
    options = {"channels_last": channels_last, "compile": compile, "amp": amp}
    options |= {"train#g_optimizer#fused": fused, "train#d_optimizer#fused": fused}
    parser = bundle_recipe({"device": "cpu", "max_epochs": 1, "num_phantoms": 16 * (iterations + warmup), **options})
    data = parser.get_parsed_content("train#dataset")
    parser["train#dataloader"] = DataLoader([data[i] for i in range(len(data))], batch_size=16, drop_last=True)
    trainer = parser.get_parsed_content("train#trainer")
    stamps: list[float] = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda _: stamps.append(time.perf_counter()))
    start = time.perf_counter()
    trainer.run()
    steps = [b - a for a, b in zip(stamps[warmup - 1 :], stamps[warmup:])]
    return statistics.median(steps), min(steps), stamps[warmup - 1] - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--compile", action="store_true", help="also channels-last + fused + torch.compile")
    args = p.parse_args()
    configs = [(False, False, False, False), (True, False, False, False), (False, True, False, False)]
    configs += [(True, True, False, False), (True, True, False, True)]
    if args.compile:
        configs.append((True, True, True, False))
    print(f"{cpu_summary()} iterations={args.iterations} warmup={args.warmup}")
    header = f"{'channels_last':>13} {'fused':>6} {'compile':>8} {'amp':>6}"
    print(f"{header} {'median s/it':>12} {'min s/it':>9} {'warm-up s':>10}")
    for _ in range(args.repeats):
        for config in configs:
            median, fastest, warm = run(*config, args.iterations, args.warmup)
            flags = f"{config[0]!s:>13} {config[1]!s:>6} {config[2]!s:>8} {config[3]!s:>6}"
            print(f"{flags} {median:>12.3f} {fastest:>9.3f} {warm:>10.1f}")


if __name__ == "__main__":
    main()
