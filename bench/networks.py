"""Network benchmark: MSG-GAN (no attention) vs MSG-SAGAN side by side.

For each resolution prints parameter counts, generator images/s (inference), G+D training-step images/s and peak
memory, for the bundle's networks, optimizers and loss (``train.json``, two classes) at the default widths. Each
configuration runs in its own subprocess so that peak memory (CPU: max RSS; CUDA: max allocated) belongs to that
configuration alone. On CUDA the training step uses bf16 autocast and channels_last.

    python bench/networks.py                       # 64, 128, 256 px
    python bench/networks.py --resolutions 64 --batch 4 --steps 3
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

from monai_msgsagan.generation import sample_latent
from monai_msgsagan.losses import get_adversarial_loss

VARIANTS = {"MSG-GAN": [], "MSG-SAGAN": [32, 64]}


def run_one(resolution: int, variant: str, batch: int, steps: int, device: str) -> dict:
    dev = torch.device(device)
    torch.manual_seed(0)
    attention = [a for a in VARIANTS[variant] if a <= resolution]  # the scales the network has
    parser = bundle_recipe(
        {"device": dev, "resolution": resolution, "channels": None, "attention_resolutions": attention}
    )
    g, d = parser.get_parsed_content("train#g_net"), parser.get_parsed_content("train#d_net")
    cuda = dev.type == "cuda"
    if cuda:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats()
    opt_g, opt_d = parser.get_parsed_content("train#g_optimizer"), parser.get_parsed_content("train#d_optimizer")
    loss = get_adversarial_loss(parser.get_parsed_content("loss"))
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(batch, device=dev) % 2
    real = [torch.rand(batch, 1, s, s, device=dev) * 2 - 1 for s in [2**k for k in range(2, resolution.bit_length())]]

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)

    def train_step() -> None:
        z = sample_latent(batch, 128, gen, dev)
        with autocast():
            fake = g(z, labels)
            d_loss = loss.discriminator_loss(d(real, labels).float(), d([f.detach() for f in fake], labels).float())
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with autocast():
            real_logits = d(real, labels).float() if loss.uses_real_in_generator_loss else None
            g_loss = loss.generator_loss(d(fake, labels).float(), real_logits)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    @torch.no_grad()
    def generate() -> None:
        with autocast():
            g(sample_latent(batch, 128, gen, dev), labels)

    results = {}
    for name, fn in (("generate", generate), ("train_step", train_step)):
        fn()  # warm-up
        sync(dev)
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        sync(dev)
        results[f"{name}_img_s"] = batch * steps / (time.perf_counter() - start)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "resolution": resolution,
        "variant": variant,
        "device": device,
        "params_g_M": sum(p.numel() for p in g.parameters()) / 1e6,
        "params_d_M": sum(p.numel() for p in d.parameters()) / 1e6,
        **results,
        "peak_mem_MiB": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--one", nargs=2, metavar=("RESOLUTION", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), args.one[1], args.batch, args.steps, args.device)))
        return
    print(f"device={args.device} batch={args.batch} steps={args.steps} threads={torch.get_num_threads()}")
    header = f"{'res':>4} {'variant':<10} {'G M':>6} {'D M':>6} {'gen img/s':>10} {'train img/s':>11} {'peak MiB':>9}"
    print(header)
    for resolution in args.resolutions:
        rows = []
        for variant in VARIANTS:
            cmd = [sys.executable, __file__, "--one", str(resolution), variant, "--batch", str(args.batch)]
            cmd += ["--steps", str(args.steps), "--device", args.device]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        for r in rows:
            print(
                f"{r['resolution']:>4} {r['variant']:<10} {r['params_g_M']:>6.2f} {r['params_d_M']:>6.2f} "
                f"{r['generate_img_s']:>10.1f} {r['train_step_img_s']:>11.2f} {r['peak_mem_MiB']:>9.0f}"
            )
        ratio = rows[1]["train_step_img_s"] / rows[0]["train_step_img_s"]
        print(f"     MSG-SAGAN / MSG-GAN training throughput at {resolution} px: {ratio:.2f}x")


if __name__ == "__main__":
    main()
