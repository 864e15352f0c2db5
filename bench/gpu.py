"""The prepared GPU check: one run, under 8 minutes, one table.

Rows (each measured in its own subprocess with a time limit, so a hung compile or a failed section still leaves
the rest of the table):

- ``train <precision> <eager|compiled>``: the 256 px MSG-SAGAN networks of the README (channels
  ``[256,256,256,256,128,64,32]``, attention at 32 and 64, batch 32, two classes) with the bundle's training recipe
  (``train.json`` with its EMA handler) through ``MultiScaleGanTrainer``, in fp32 and bf16 autocast, eager and
  ``torch.compile``d: seconds per 1000 images (s/kimg, the target is 5 s/kimg on one H100) over ``--iterations``
  iterations after ``--warmup``.
- ``deploy fp16``: the MONAI Deploy app's generation path (``monai_msgsagan.generate`` on an exported
  256 px generator) in float16 on the GPU against float32 on the CPU, same seed: max |difference| (the app's
  test allows 2e-2) and images/s.
- ``ddp nccl 2 ranks``: ``tests/ddp_check.py`` under ``torchrun --nproc_per_node 2`` with the bundle's
  ``multi_gpu_train.json`` (NCCL on CUDA): both ranks must hold identical G, D and EMA. Needs two GPUs (NCCL
  refuses two ranks on one device); with fewer it says so.

``--cpu-smoke`` runs the same code on the CPU, reduced (32 px, tiny widths, 2 iterations, fp32 only, gloo), so CI
keeps it working (``tests/test_gpu_check.py``); ``torch.compile`` is left out there (minutes on 2 cores).

    bash bench/gpu.sh                  # on the GPU machine
    python bench/gpu.py --cpu-smoke    # seconds, any machine
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_utils import sync
from bundle_recipe import bundle_recipe
from bundle_utils import TINY_TRAIN, bundle_env, copy_bundle, save_generator_artifact
from ignite.engine import Events

REPO = Path(__file__).resolve().parents[1]

#: the README's 256 px recipe, and its reduced CPU form
FULL = {"resolution": 256, "channels": [256, 256, 256, 256, 128, 64, 32], "attention": [32, 64], "batch": 32}
SMOKE = {"resolution": 32, "channels": [16, 16, 16, 8], "attention": [16], "batch": 4}


def train_row(net: dict, device: torch.device, bf16: bool, compile: bool, warmup: int, iterations: int) -> dict:
    """s/kimg of the bundle's recipe through the real trainer (data already collated; host-to-device copies
    included)."""
    b, r = net["batch"], net["resolution"]
    gen = torch.Generator().manual_seed(0)
    batches = [
        {"image": torch.rand(b, 1, r, r, generator=gen) * 2 - 1, "label": torch.arange(b) % 2}
        for _ in range(warmup + iterations)
    ]
    torch.manual_seed(0)
    parser = bundle_recipe(
        {"device": device, "max_epochs": 1, "resolution": r, "channels": net["channels"], "batch_size": b,
         "attention_resolutions": net["attention"], "amp": bf16, "compile": compile,
         "train#trainer#non_blocking": True},
        data_loader=batches,
    )  # fmt: skip
    trainer = parser.get_parsed_content("train#trainer")
    stamps: list[float] = []

    def stamp(_engine) -> None:
        if len(stamps) or _engine.state.iteration == warmup:
            sync(device)
            stamps.append(time.perf_counter())

    trainer.add_event_handler(Events.ITERATION_COMPLETED, stamp)
    start = time.perf_counter()
    trainer.run()
    seconds = stamps[-1] - stamps[0]
    return {
        "value": 1000 * seconds / (b * iterations),
        "unit": "s/kimg",
        "detail": f"warm-up {stamps[0] - start:.1f} s, {iterations} it of batch {b}",
    }


def deploy_row(net: dict, device: torch.device, num_images: int) -> dict:
    """The Deploy app's generation in float16 on ``device`` against float32 on the CPU."""
    from monai_msgsagan.artifact import load_generator
    from monai_msgsagan.generation import generate
    from monai_msgsagan.networks import InferenceGenerator

    args = {"resolution": net["resolution"], "latent_dim": 128, "channels": list(net["channels"]),
            "attention_resolutions": list(net["attention"]), "num_classes": 0}  # fmt: skip
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_generator_artifact(InferenceGenerator(**args).eval(), args, [], Path(tmp) / "model.ts", name="gpu")
        cpu = generate(load_generator(path).network, num_images, 0, batch_size=num_images)
        half_model = load_generator(path, device).network
        generate(half_model, num_images, 0, batch_size=num_images, device=device, half_precision=True)  # warm-up
        sync(device)
        start = time.perf_counter()
        half = generate(half_model, num_images, 0, batch_size=num_images, device=device, half_precision=True)
        sync(device)
        seconds = time.perf_counter() - start
    diff = float((half - cpu).abs().max())
    precision = "float16" if device.type == "cuda" else "float32 (CPU: the app runs fp16 on CUDA only)"
    return {
        "value": diff,
        "unit": "max |diff|",
        "detail": f"{precision} vs CPU float32, {num_images / seconds:.0f} images/s",
        "ok": diff <= 2e-2,
    }


def ddp_row(smoke: bool, timeout: float) -> dict:
    """tests/ddp_check.py with 2 ranks (NCCL on CUDA, gloo on the CPU smoke)."""
    if not smoke and torch.cuda.device_count() < 2:
        return {"value": None, "unit": "", "detail": f"skipped: {torch.cuda.device_count()} GPU, NCCL needs 2"}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = copy_bundle(Path(tmp) / "bundle")
        out = Path(tmp) / "ranks.json"
        settings = {**TINY_TRAIN, "max_epochs": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        cmd += [str(REPO / "tests" / "ddp_check.py"), str(bundle), str(out)]
        cmd += [f"{k}={json.dumps(json.loads(v))}" for k, v in settings.items()]
        env = bundle_env()
        if smoke:
            env["CUDA_VISIBLE_DEVICES"] = ""
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"torchrun failed ({proc.returncode}): {proc.stderr[-2000:]}")
        ranks = json.loads(out.read_text())
    same = all(ranks[0][k] == ranks[1][k] for k in ("generator", "discriminator", "ema_generator"))
    backend = "gloo" if smoke else "nccl"
    return {
        "value": time.perf_counter() - start,
        "unit": "s",
        "detail": f"{backend}, ranks identical: {same}",
        "ok": same and [r["rank"] for r in ranks] == [0, 1],
    }


def rows(smoke: bool) -> list[tuple[str, list[str]]]:
    """(name, arguments of ``--one``) of every row, in the order run (the compiled ones, slowest, last)."""
    train = [("train fp32 eager", ["train", "fp32", "eager"])]
    if not smoke:
        train += [
            ("train bf16 eager", ["train", "bf16", "eager"]),
            ("train bf16 compiled", ["train", "bf16", "compiled"]),
            ("train fp32 compiled", ["train", "fp32", "compiled"]),
        ]
    return [("deploy fp16 vs CPU", ["deploy"]), ("ddp 2 ranks", ["ddp"]), *train]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu-smoke", action="store_true", help="the reduced CPU form (CI)")
    p.add_argument("--budget-s", type=float, default=450.0, help="wall-clock budget of all rows together")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    smoke = args.cpu_smoke
    net = SMOKE if smoke else FULL
    warmup = args.warmup if args.warmup is not None else (1 if smoke else 5)
    iterations = args.iterations if args.iterations is not None else (2 if smoke else 20)
    device = torch.device("cpu" if smoke else "cuda")
    if args.one:
        kind = args.one[0]
        if kind == "train":
            row = train_row(net, device, args.one[1] == "bf16", args.one[2] == "compiled", warmup, iterations)
        elif kind == "deploy":
            row = deploy_row(net, device, 4 if smoke else 32)
        else:
            row = ddp_row(smoke, float(args.one[1]))
        print(json.dumps(row))
        return 0

    if not smoke and not torch.cuda.is_available():
        print("no CUDA device: run with --cpu-smoke for the reduced CPU form", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.budget_s
    what = "CPU smoke" if smoke else torch.cuda.get_device_name(0)
    print(f"# bench/gpu.py on {what}, torch {torch.__version__}, {net['resolution']} px, batch {net['batch']}")
    table, failed = [], 0
    for name, one in rows(smoke):
        left = deadline - time.monotonic()
        if left < 10:
            table.append((name, "not run: budget spent", "", ""))
            failed += 1
            continue
        cmd = [sys.executable, __file__, "--one", *one, *(["--cpu-smoke"] if smoke else [])]
        cmd += ["--warmup", str(warmup), "--iterations", str(iterations)]
        if one == ["ddp"]:
            cmd.insert(cmd.index("ddp") + 1, str(max(left - 5, 5)))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            table.append((name, f"timed out after {left:.0f} s", "", ""))
            failed += 1
            continue
        if proc.returncode != 0:
            table.append((name, "FAILED", "", proc.stderr.strip().splitlines()[-1][:100] if proc.stderr else ""))
            failed += 1
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        ok = row.get("ok", True)
        failed += not ok
        value = "-" if row["value"] is None else f"{row['value']:.4g}"
        table.append((name, value, row["unit"], ("" if ok else "CHECK FAILED: ") + row["detail"]))
    print(f"| {'check':<22} | {'value':>10} | {'unit':<10} | detail")
    print(f"|{'-' * 24}|{'-' * 12}|{'-' * 12}|{'-' * 40}")
    for name, value, unit, detail in table:
        print(f"| {name:<22} | {value:>10} | {unit:<10} | {detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
