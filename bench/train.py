"""Training throughput of MultiScaleGanTrainer: MSG-GAN vs MSG-SAGAN, against a plain eager fp32 loop.

For each resolution and variant, runs the real trainer with the bundle's recipe (``train.json`` with its EMA
handler, widths capped at 128) on in-memory images for a fixed number of iterations and prints images/s, seconds
per 1000 real images shown (s/kimg) and peak memory. The baseline is a plain eager fp32 loop over the same
networks, optimizers and loss with no engine, no augmentation, no R1, no mode seeking, no EMA and no finiteness
checks: the ratio shows what the engine and the recipe's regularisers cost. The trainer also runs with
channels-last, fused Adam and bf16 autocast (``amp``: on CUDA and on CPUs with native bf16), and on CUDA with
``torch.compile`` too.

    python bench/train.py                                  # 64 and 256 px
    python bench/train.py --resolutions 64 --iterations 10 --batch 16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from bench_utils import sync
from bundle_recipe import bundle_recipe
from ignite.engine import Events
from monai.bundle import ConfigParser

from monai_msgsagan.generation import sample_latent
from monai_msgsagan.losses import get_adversarial_loss
from monai_msgsagan.networks.blocks import default_channels
from monai_msgsagan.transforms import image_pyramid

VARIANTS = {"MSG-GAN": [], "MSG-SAGAN": [32, 64]}


def recipe(
    resolution: int, attention: list[int], batch: int, iterations: int, device: torch.device, fast: bool, compile: bool
) -> ConfigParser:
    """The bundle's recipe at ``resolution`` (widths capped at 128) over ``iterations + 1`` batches of random
    two-class images in [-1, 1]; ``fast``: channels-last, fused Adam and bf16 autocast (where it applies)."""
    gen = torch.Generator().manual_seed(0)
    batches = [
        {"image": torch.rand(batch, 1, resolution, resolution, generator=gen) * 2 - 1, "label": torch.arange(batch) % 2}
        for _ in range(iterations + 1)
    ]
    torch.manual_seed(0)
    return bundle_recipe(
        {"device": device, "max_epochs": 1, "resolution": resolution, "attention_resolutions": attention,
         "channels": default_channels(resolution, channel_base=4096, max_channels=128), "batch_size": batch,
         "amp": fast, "channels_last": fast, "compile": compile,
         "train#g_optimizer#fused": fast, "train#d_optimizer#fused": fast},
        data_loader=batches,
    )  # fmt: skip


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plain_loop(resolution: int, attention: list[int], batch: int, iterations: int, device: torch.device) -> float:
    """Seconds for ``iterations`` eager fp32 G+D steps of the recipe's networks, optimizers and loss, nothing else."""
    parser = recipe(resolution, attention, batch, iterations, device, fast=False, compile=False)
    g, d = parser.get_parsed_content("train#g_net"), parser.get_parsed_content("train#d_net")
    opt_g, opt_d = parser.get_parsed_content("train#g_optimizer"), parser.get_parsed_content("train#d_optimizer")
    loss = get_adversarial_loss(parser.get_parsed_content("loss"))
    labels = torch.arange(batch, device=device) % 2
    real = image_pyramid(torch.rand(batch, 1, resolution, resolution, device=device) * 2 - 1, len(g.blocks))

    def step() -> None:
        with torch.no_grad():
            fake = g(sample_latent(batch, 128, device=device), labels)
        d_loss = loss.discriminator_loss(d(real, labels), d(fake, labels))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        fake = g(sample_latent(batch, 128, device=device), labels)
        d.requires_grad_(False)
        real_logits = d(real, labels) if loss.uses_real_in_generator_loss else None
        g_loss = loss.generator_loss(d(fake, labels), real_logits)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)

    step()
    sync(device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    sync(device)
    return time.perf_counter() - start


def trainer_run(
    resolution: int, attention: list[int], batch: int, iterations: int, device: torch.device, fast: bool, compile: bool
) -> float:
    """Seconds for ``iterations`` MultiScaleGanTrainer iterations (after one warm-up iteration)."""
    parser = recipe(resolution, attention, batch, iterations, device, fast, compile)
    trainer = parser.get_parsed_content("train#trainer")
    times: list[float] = []

    @trainer.on(Events.ITERATION_COMPLETED)
    def _stamp(_engine) -> None:
        sync(device)
        times.append(time.perf_counter())

    trainer.run()
    return times[-1] - times[0]


def run_one(args: argparse.Namespace, resolution: int, variant: str, mode: str) -> dict:
    device = torch.device(args.device)
    attention = [a for a in VARIANTS[variant] if a <= resolution]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if mode == "plain":
        seconds = plain_loop(resolution, attention, args.batch, args.iterations, device)
    else:
        fast = mode in ("trainer-bf16-cl", "trainer-bf16-cl-compile")
        seconds = trainer_run(
            resolution, attention, args.batch, args.iterations, device, fast, compile=mode.endswith("compile")
        )
    images = args.batch * args.iterations
    return {
        "resolution": resolution,
        "variant": variant,
        "mode": mode,
        "img_s": images / seconds,
        "s_per_kimg": 1000 * seconds / images,
        "peak_mem_MiB": peak_memory_mib(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--one", nargs=3, metavar=("RESOLUTION", "VARIANT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args, int(args.one[0]), args.one[1], args.one[2])))
        return
    modes = ["plain", "trainer", "trainer-bf16-cl"]  # bf16 where amp applies (CUDA, CPUs with native bf16)
    if args.device.startswith("cuda"):
        modes += ["trainer-bf16-cl-compile"]
    print(f"device={args.device} batch={args.batch} iterations={args.iterations} threads={torch.get_num_threads()}")
    print(f"{'res':>4} {'variant':<10} {'mode':<24} {'img/s':>8} {'s/kimg':>8} {'peak MiB':>9} {'vs plain':>9}")
    for resolution in args.resolutions:
        for variant in VARIANTS:
            rows = []
            for mode in modes:
                cmd = [sys.executable, __file__, "--one", str(resolution), variant, mode, "--batch", str(args.batch)]
                cmd += ["--iterations", str(args.iterations), "--device", args.device]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
            for r in rows:
                ratio = r["img_s"] / rows[0]["img_s"]
                print(
                    f"{r['resolution']:>4} {r['variant']:<10} {r['mode']:<24} {r['img_s']:>8.2f} "
                    f"{r['s_per_kimg']:>8.1f} {r['peak_mem_MiB']:>9.0f} {ratio:>8.2f}x"
                )


if __name__ == "__main__":
    main()
