"""Training step of MultiScaleGanTrainer against the original MSG-GAN code (BMSG-GAN), side by side in one process.

The reference is ``bench/msggan_reference.py`` (BMSG-GAN's networks, loss and batch loop, vendored with its MIT
licence). Both sides get the same network size: the reference's widths (``latent_size`` at every scale, halved
from the fifth scale on) are given to ``MultiScaleGenerator``/``MultiScaleDiscriminator`` as ``channels``, with
the same latent size, RGB images, relativistic average hinge loss, Adam and a generator EMA; ours adds nothing
else (no augmentation, no penalty, no mode seeking, no spectral norm). Variants: MSG-GAN (no attention) and
MSG-SAGAN (our networks with attention at ``--attention``; the reference has none, so that row also shows what
attention costs). Ours runs as the real Ignite engine with the bundle's settings (channels-last, fused Adam, ``amp``:
bf16 autocast where the CPU computes bf16 natively, see ``cpu_has_native_bf16``), with them but ``--amp False``
(float32), and, as a same-run baseline, with all three off (float32, contiguous, plain Adam).

The candidates take turns, one iteration each (round robin: engines are interrupted after every iteration and
resumed), so a disturbance by other processes hits all of them alike; the table gives the median seconds per
iteration over ``--iterations`` turns after ``--warmup`` and the speed-up against the reference.

    OMP_NUM_THREADS=2 python bench/step_vs_msggan.py                        # 64 px, batch 16, 2 threads
    python bench/step_vs_msggan.py --resolution 32 --iterations 2 --warmup 1  # a smoke check in seconds
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from bench_utils import cpu_summary
from ignite.engine import Events
from msggan_reference import (
    Discriminator,
    Generator,
    RelativisticAverageHingeGAN,
    reference_step,
    update_average,
)

from monai_msgsagan.engines import MultiScaleGanTrainer
from monai_msgsagan.handlers import GeneratorEMA
from monai_msgsagan.networks import MultiScaleDiscriminator, MultiScaleGenerator

CHANNELS = 3  # the reference's RGB images


def reference_widths(depth: int, latent: int) -> list[int]:
    """The reference generator's width per scale, coarse to fine (see ``msggan_reference.Generator``)."""
    return [latent] * min(depth, 4) + [latent // 2 ** (i - 2) for i in range(3, depth - 1)]


def batches(resolution: int, batch: int, count: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(batch, CHANNELS, resolution, resolution, generator=gen) * 2 - 1 for _ in range(count)]


def reference_candidate(depth: int, latent: int, data: list[torch.Tensor]) -> tuple[Callable[[], None], int]:
    torch.manual_seed(0)
    gen, dis = Generator(depth, latent, CHANNELS), Discriminator(depth, latent, CHANNELS)
    shadow = copy.deepcopy(gen)
    update_average(shadow, gen, beta=0)
    gen_optim = torch.optim.Adam(gen.parameters(), 0.003, betas=(0.0, 0.99), eps=1e-8)
    dis_optim = torch.optim.Adam(dis.parameters(), 0.003, betas=(0.0, 0.99), eps=1e-8)
    loss = RelativisticAverageHingeGAN(dis)
    gen.train()
    dis.train()
    it = iter(data)
    params = sum(p.numel() for p in list(gen.parameters()) + list(dis.parameters()))
    return lambda: reference_step(gen, shadow, dis, gen_optim, dis_optim, loss, next(it)), params


def ours_candidate(
    resolution: int, latent: int, attention: list[int], data: list[torch.Tensor], fast: bool, amp: bool
) -> tuple[Callable[[], None], int]:
    """One iteration of the real engine per call (it interrupts itself after every iteration); ``fast``:
    channels-last and fused Adam; ``amp``: bf16 autocast where the trainer uses it (``cpu_has_native_bf16``)."""
    torch.manual_seed(0)
    widths = reference_widths(resolution.bit_length() - 2, latent)
    kw = dict(image_channels=CHANNELS, channels=widths, attention_resolutions=attention)
    g = MultiScaleGenerator(resolution, latent, **kw)
    d = MultiScaleDiscriminator(resolution, **kw, use_spectral_norm=False)
    ema = copy.deepcopy(g)
    opt_g = torch.optim.Adam(g.parameters(), 0.003, betas=(0.0, 0.99), fused=fast)
    opt_d = torch.optim.Adam(d.parameters(), 0.003, betas=(0.0, 0.99), fused=fast)
    loader = [{"image": x} for x in data]
    trainer = MultiScaleGanTrainer(
        "cpu", 1, loader, g, opt_g, d, opt_d, loss="rahinge", channels_last=fast, amp=amp,
        check_interval=len(data), train_handlers=[GeneratorEMA(g, ema, batch_size=data[0].shape[0])],
    )  # fmt: skip
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: e.interrupt())
    params = sum(p.numel() for p in list(g.parameters()) + list(d.parameters()))
    return trainer.run, params


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--latent", type=int, default=64, help="the reference's latent_size = widest channel count")
    p.add_argument("--attention", type=int, nargs="*", default=[16], help="MSG-SAGAN's attention scales")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)
    depth = args.resolution.bit_length() - 2
    turns = args.warmup + args.iterations
    rows = []
    print(cpu_summary())
    print(
        f"resolution={args.resolution} batch={args.batch} latent={args.latent} "
        f"widths={reference_widths(depth, args.latent)} iterations={args.iterations}"
    )
    print(f"{'variant':<10} {'candidate':<44} {'params':>8} {'s/it':>8} {'vs reference':>13}")
    for variant, attention in (("MSG-GAN", []), ("MSG-SAGAN", args.attention)):
        data = batches(args.resolution, args.batch, turns)
        ours = (args.resolution, args.latent, attention, data)
        candidates = {
            "reference (BMSG-GAN)": reference_candidate(depth, args.latent, data),
            "ours, contiguous, Adam": ours_candidate(*ours, fast=False, amp=False),
            "ours, --amp False (channels-last, fused)": ours_candidate(*ours, fast=True, amp=False),
            "ours, defaults (channels-last, fused, amp)": ours_candidate(*ours, fast=True, amp=True),
        }
        times: dict[str, list[float]] = {name: [] for name in candidates}
        for turn in range(turns):
            for name, (step, _) in candidates.items():
                start = time.perf_counter()
                step()
                if turn >= args.warmup:
                    times[name].append(time.perf_counter() - start)
        for name, (step, _) in candidates.items():
            if name.startswith("ours"):
                step()  # resume once more: the engine ends its epoch and run (no iteration left)
        ref = statistics.median(times["reference (BMSG-GAN)"])
        for name, (_, params) in candidates.items():
            median = statistics.median(times[name])
            rows.append({"variant": variant, "candidate": name, "params": params, "s_per_it": median})
            print(f"{variant:<10} {name:<44} {params:>8} {median:>8.4f} {ref / median:>12.2f}x", flush=True)
    return rows


if __name__ == "__main__":
    main()
