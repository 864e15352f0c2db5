"""Throughput of the synthesis app at 256 px: images/s end to end and the time split (load, generate, gate, write).

Two measurements in one run, on an exported (untrained, full-size) InferenceGenerator:

1. the app's steps in process (``monai_msgsagan.synthesis``: load -> generate -> diversity gate -> DICOM write),
   timed one by one; the baseline is the generator alone (``generate``), so the numbers show what the gate and the
   DICOM writing cost on top of the network;
2. the real app (``python apps/xray_synthesis``) in a subprocess, whose wall time adds Python/Holoscan start-up,
   with the split it reports in ``report.json``.

Runs on CUDA (float32 and the app's float16) when present, else on the CPU::

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/app.py --num-images 32 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from monai.data import save_net_with_metadata

from monai_msgsagan.networks import InferenceGenerator
from monai_msgsagan.synthesis import generate, load_exported_generator, write_series_atomically
from monai_msgsagan.synthesis.gate import diversity_gate

REPO = Path(__file__).resolve().parents[1]


def export_generator(folder: Path, resolution: int) -> Path:
    """An untrained full-size generator saved like ``ckpt_export`` (weights do not change the speed)."""
    torch.manual_seed(0)
    net = InferenceGenerator(resolution, latent_dim=128).eval()
    path = folder / "models" / "msgsagan" / "model.ts"
    path.parent.mkdir(parents=True)
    save_net_with_metadata(
        torch.jit.script(net), str(path.with_suffix("")), meta_values={"name": "bench", "version": "0"}
    )
    return path


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def in_process(model: Path, out: Path, n: int, batch: int, device: torch.device, half: bool) -> dict[str, float]:
    """Seconds per step of the app's pipeline, run in this process (one warm-up generation first)."""
    times = {}
    start = time.perf_counter()
    generator = load_exported_generator(model, device)
    sync(device)
    times["load"] = time.perf_counter() - start
    generate(generator, batch, 0, batch, None, device, half)  # warm-up: TorchScript profiling runs, CUDA init
    sync(device)
    start = time.perf_counter()
    images = generate(generator, n, 1, batch, None, device, half)
    sync(device)
    times["generate"] = time.perf_counter() - start
    start = time.perf_counter()
    gate = diversity_gate(images, threshold=1.0, max_pairs=2016)
    times["gate"] = time.perf_counter() - start
    start = time.perf_counter()
    write_series_atomically(images, out, "bench", "0")
    times["write"] = time.perf_counter() - start
    times["pairs"] = gate.pairs
    return times


def full_app(model: Path, folder: Path, n: int, batch: int) -> tuple[float, dict]:
    """Wall time of ``python apps/xray_synthesis`` and the timing split of its report."""
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "request.json").write_text(json.dumps({"num_images": n, "seed": 0, "batch_size": batch}))
    config = folder / "app.yaml"
    settings = yaml.safe_load((REPO / "apps" / "xray_synthesis" / "app.yaml").read_text())
    settings["diversity_gate"]["max_mean_ms_ssim"] = 1.0  # untrained weights: measure speed, not diversity
    config.write_text(yaml.safe_dump(settings))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOLOSCAN_CONFIG_PATH": str(config)}
    cmd = [sys.executable, str(REPO / "apps" / "xray_synthesis"), "-i", str(folder / "input")]
    cmd += ["-o", str(folder / "output"), "-m", str(model.parent.parent)]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"app failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return wall, json.loads((folder / "output" / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--num-images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--skip-app", action="store_true", help="skip the subprocess run of the real app")
    args = parser.parse_args()
    n, batch = args.num_images, args.batch_size
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device {name} | {args.resolution} px | {n} images, batch {batch} | torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = export_generator(tmp, args.resolution)
        precisions = [False, True] if device.type == "cuda" else [False]
        for half in precisions:
            out = tmp / f"out_{int(half)}"
            out.mkdir()
            t = in_process(model, out, n, batch, device, half)
            total = t["load"] + t["generate"] + t["gate"] + t["write"]
            label = "float16" if half else "float32"
            print(
                f"in process {label}: load {t['load']:.3f}s | generate {t['generate']:.3f}s | gate {t['gate']:.3f}s "
                f"({t['pairs']} pairs) | write {t['write']:.3f}s | total {total:.3f}s"
            )
            print(
                f"  baseline generator alone: {n / t['generate']:.1f} images/s | "
                f"app steps end to end: {n / total:.1f} images/s "
                f"({t['generate'] / total:.0%} of the time in the network)"
            )
        if not args.skip_app:
            wall, report = full_app(model, tmp / "app", n, batch)
            split = " | ".join(f"{k} {v:.3f}s" for k, v in report["timing_s"].items())
            print(
                f"real app subprocess ({report['device']}, {report['precision']}): "
                f"wall {wall:.2f}s -> {n / wall:.2f} images/s"
            )
            print(f"  report split: {split}")


if __name__ == "__main__":
    main()
