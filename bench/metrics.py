"""Benchmark the metrics against their baselines in the same run.

1. Pairwise MS-SSIM over all pairs of N images (default 200 at 256 px): ``pairwise_ms_ssim`` (batched,
   per-image statistics once) against the naive loop calling ``pytorch_msssim.ms_ssim`` on each pair. The naive
   loop is timed on a subset of pairs and extrapolated to all pairs (printed as such); the values on that subset
   are compared.
2. FID for 2 x M images (default 500, 64 px grayscale): ``compute_fid`` (batched extraction, feature cache)
   against the plain torchmetrics path (``FrechetInceptionDistance(feature=InceptionV3Features())`` updated with
   the images in batches), both with the same offline InceptionV3; then ``compute_fid`` on a second synthetic
   set against the same real set (a training monitor's case), where the cache skips the real set (the plain
   path would recompute it, costing as much as its first run).

Runs on CPU, and on CUDA when present. Example::

    python bench/metrics.py --threads 2
    python bench/metrics.py --threads 2 --fid-images 100 --naive-pairs 100
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from bench_utils import sync
from pytorch_msssim import ms_ssim
from torchmetrics.image.fid import FrechetInceptionDistance

from monai_msgsagan.metrics import FeatureCache, InceptionV3Features, compute_fid, pairwise_ms_ssim


def structured_images(n: int, size: int, seed: int) -> torch.Tensor:
    """(n, 1, size, size) in [-1, 1]: smooth random structure, fine noise and a flat dark band (X-ray-like)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, size // 16, size // 16, generator=gen)
    x = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    x = (0.85 * x + 0.15 * torch.rand(n, 1, size, size, generator=gen)).clamp(0, 1)
    x[:, :, : size // 8] = 0.0
    return x * 2 - 1


def bench_ms_ssim(device: torch.device, n: int, size: int, naive_pairs: int, chunk: int) -> None:
    x = structured_images(n, size, seed=0).to(device)
    total = n * (n - 1) // 2
    pairwise_ms_ssim(x[:4], chunk_size=chunk)  # warm-up (kernels, oneDNN primitives)
    sync(device)
    t0 = time.perf_counter()
    fast = pairwise_ms_ssim(x, chunk_size=chunk)
    sync(device)
    t_fast = time.perf_counter() - t0

    u = (x + 1) / 2
    subset = fast.pairs[torch.linspace(0, total - 1, min(naive_pairs, total)).round().long()]
    ms_ssim(u[:1], u[1:2], data_range=1.0)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    ref = torch.stack([ms_ssim(u[i : i + 1], u[j : j + 1], data_range=1.0) for i, j in subset.tolist()])
    sync(device)
    t_sub = time.perf_counter() - t0
    t_naive = t_sub / subset.shape[0] * total
    lookup = dict(zip(map(tuple, fast.pairs.tolist()), fast.values.tolist()))
    err = max(abs(lookup[tuple(p)] - r) for p, r in zip(subset.tolist(), ref.double().tolist()))
    print(
        f"[{device.type}] pairwise MS-SSIM, {n} images at {size} px, {total} pairs, "
        f"{fast.settings['levels']} scales, cross term {fast.settings['cross_term_dtype']}, chunk {chunk}"
    )
    print(f"  pairwise_ms_ssim (all pairs)         : {t_fast:8.2f} s   mean {fast.mean:.6f}")
    print(
        f"  naive per-pair pytorch_msssim loop   : {t_naive:8.2f} s   (timed on {subset.shape[0]} of {total} "
        f"pairs: {t_sub:.2f} s, extrapolated)"
    )
    print(
        f"  speed-up                             : {t_naive / t_fast:8.1f} x   max |difference| on the timed "
        f"pairs {err:.2e}"
    )


def bench_fid(device: torch.device, m: int, size: int, batch: int) -> None:
    real = structured_images(m, size, seed=1)
    fake = structured_images(m, size, seed=2)
    fake2 = structured_images(m, size, seed=3)
    net = InceptionV3Features().to(device)
    with torch.inference_mode():
        net(real[:2].to(device))  # warm-up

    cache = FeatureCache()
    sync(device)
    t0 = time.perf_counter()
    ours = compute_fid(real, fake, net, batch_size=batch, device=device, cache=cache)
    sync(device)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours2 = compute_fid(real, fake2, net, batch_size=batch, device=device, cache=cache)
    sync(device)
    t_ours2 = time.perf_counter() - t0

    def plain(fakes: torch.Tensor) -> tuple[float, float]:
        metric = FrechetInceptionDistance(feature=net).to(device)
        t = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, m, batch):
                metric.update(real[s : s + batch].to(device), real=True)
            for s in range(0, m, batch):
                metric.update(fakes[s : s + batch].to(device), real=False)
            value = float(metric.compute())
        sync(device)
        return value, time.perf_counter() - t

    ref, t_plain = plain(fake)
    print(f"[{device.type}] FID, 2 x {m} images at {size} px (gray -> 3 channels, TF-bilinear to 299), batch {batch}")
    print(f"  compute_fid, cold cache              : {t_ours:8.2f} s   FID {ours:.4f}")
    print(f"  plain torchmetrics FID               : {t_plain:8.2f} s   FID {ref:.4f}")
    print(
        f"  compute_fid, 2nd fake set, same real : {t_ours2:8.2f} s   FID {ours2:.4f} (real features from the "
        "cache; the plain path recomputes them, so costs as above)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="images for pairwise MS-SSIM")
    parser.add_argument("--size", type=int, default=256, help="MS-SSIM image side")
    parser.add_argument("--naive-pairs", type=int, default=200, help="pairs the naive loop is timed on")
    parser.add_argument("--chunk", type=int, default=32, help="pairs per batched step")
    parser.add_argument("--fid-images", type=int, default=500, help="images per set for FID (0 skips FID)")
    parser.add_argument("--fid-size", type=int, default=64)
    parser.add_argument("--fid-batch", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(
        f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, CUDA available: {torch.cuda.is_available()}"
    )
    for device in devices:
        bench_ms_ssim(device, args.images, args.size, args.naive_pairs, args.chunk)
        if args.fid_images:
            bench_fid(device, args.fid_images, args.fid_size, args.fid_batch)


if __name__ == "__main__":
    main()
