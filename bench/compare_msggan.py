"""The paper's comparison: MSG-GAN (no attention) against MSG-SAGAN, same data, budget and seed, through the bundle.

For each model the repository's bundle is copied into ``<out>/<model>`` and run as real subprocesses with the
helpers shared with the tests (``bench/bundle_utils.py``): ``python -m monai.bundle run training``
(``attention_resolutions`` ``[]`` for MSG-GAN, the given list for MSG-SAGAN; everything else identical), then
``run evaluating`` with ``inference.json`` + ``evaluate.json`` (generate ``num_images`` per class, score against
the training data). The two ``report.json`` files are read back into a side-by-side table, printed and saved as
``<out>/comparison.json`` and ``<out>/comparison.md``.

Training time is the trainer's own "Engine run finished" time (the Ignite engine run, without process start
and data preparation); the subprocess wall time is reported beside it.

Examples::

    OMP_NUM_THREADS=2 python bench/compare_msggan.py --out /tmp/cmp_phantoms --max_epochs 25
    OMP_NUM_THREADS=2 python bench/compare_msggan.py --out /tmp/cmp_cxr \\
        --dataset_dir ../shared/data/figure1-cxr/metadata.csv --max_epochs 267
    python bench/compare_msggan.py --out /tmp/cmp_smoke --smoke      # seconds; a tiny network and feature net
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bundle_utils import bundle_env, copy_bundle, overrides, run_bundle, train_bundle

REPO_ROOT = Path(__file__).resolve().parents[1]

MODELS = ("MSG-GAN", "MSG-SAGAN")
#: a cheap user feature network for --smoke (InceptionV3 is the default otherwise)
SMOKE_FEATURES = "$torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten())"
_RUN_TIME = re.compile(r"Engine run finished\. Time taken: (\d+):(\d+):([\d.]+)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder (one bundle root per model inside)")
    p.add_argument("--dataset_dir", default="", help="folder or CSV of X-rays; empty = the procedural phantoms")
    p.add_argument("--label_column", default=None, help="CSV class column (default: unconditional)")
    p.add_argument("--num_phantoms", type=int, default=512)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--channels", default="[64,64,32,16]", help="generator/discriminator channels, coarse to fine")
    p.add_argument("--attention_resolutions", default="[16]", help="MSG-SAGAN's attention; MSG-GAN gets []")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_epochs", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_images", type=int, default=64, help="synthetic images per class for the evaluation")
    p.add_argument("--num_real", type=int, default=256, help="real images for the evaluation (at most the data set)")
    p.add_argument("--feature_extractor", default=None, help="config expression of a feature network (default FID's)")
    p.add_argument("--smoke", action="store_true", help="tiny network, data and feature net: a check in seconds")
    args = p.parse_args(argv)
    if args.smoke:
        args.resolution, args.channels, args.attention_resolutions = 32, "[16,16,16,8]", "[16]"
        args.num_phantoms, args.batch_size, args.max_epochs = 16, 8, 1
        args.num_images, args.num_real = 4, 12
        args.feature_extractor = args.feature_extractor or SMOKE_FEATURES
    return args


def _timed(log: Path, run: Callable[..., subprocess.CompletedProcess], *args: object) -> tuple[float, str]:
    """A bundle command of ``bundle_utils`` (no time limit); returns (wall seconds, output), the command and
    its output also in ``log``. Raises with the output's tail when it fails."""
    start = time.perf_counter()
    proc = run(*args, timeout=None, check=False)
    wall = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    log.write_text(" ".join(proc.args) + "\n\n" + output)
    if proc.returncode != 0:
        raise RuntimeError(f"{log.stem} failed ({proc.returncode}), full log in {log}:\n{output[-3000:]}")
    return wall, output


def _engine_seconds(output: str) -> float | None:
    found = _RUN_TIME.findall(output)
    if not found:
        return None
    h, m, s = found[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def run_model(name: str, args: argparse.Namespace) -> dict:
    """Train and evaluate one model in its own bundle root ``<out>/<name>``; returns its row of the table."""
    root = args.out / name
    if root.exists():
        shutil.rmtree(root)
    copy_bundle(root)
    common = {
        "resolution": str(args.resolution),
        "channels": args.channels,
        "attention_resolutions": "[]" if name == "MSG-GAN" else args.attention_resolutions,
        "seed": str(args.seed),
        "dataset_dir": args.dataset_dir,
        "num_phantoms": str(args.num_phantoms),
        "batch_size": str(args.batch_size),
    }
    if args.label_column:
        common["label_column"] = args.label_column
    train = {**common, "max_epochs": str(args.max_epochs), "checkpoint_interval": str(args.max_epochs)}
    train_wall, train_out = _timed(root / "train.log", train_bundle, root, train)
    evaluate = {**common, "num_images": str(args.num_images), "num_real": str(args.num_real)}  # data: the record's
    if args.feature_extractor:
        evaluate["feature_extractor"] = args.feature_extractor
    configs = root / "configs"
    config = f"['{configs / 'inference.json'}','{configs / 'evaluate.json'}']"
    args_eval = ("evaluating", "--config_file", config, "--bundle_root", str(root), *overrides(evaluate))
    eval_wall, _ = _timed(root / "evaluate.log", run_bundle, "run", root, *args_eval)
    report = json.loads((root / "eval" / "report.json").read_text())
    monitor = [json.loads(x) for x in (root / "logs" / "diversity.jsonl").read_text().splitlines() if x.strip()]
    fid = report["fidelity"] or {}
    prdc = fid.get("prdc") or {}
    return {
        "model": name,
        "attention_resolutions": json.loads(common["attention_resolutions"]),
        "ms_ssim_fake": report["diversity"]["fake"]["mean"],
        "ms_ssim_real": report["diversity"]["real"]["mean"],
        "collapse_score": report["diversity"]["collapse_score"],
        "fid": fid.get("fid"),
        "kid_mean": fid.get("kid", {}).get("mean"),
        "kid_std": fid.get("kid", {}).get("std"),
        "precision": prdc.get("precision"),
        "recall": prdc.get("recall"),
        "density": prdc.get("density"),
        "coverage": prdc.get("coverage"),
        "likely_copies": report["memorization"]["num_likely_copies"],
        "num_fake": report["settings"]["num_fake"],
        "num_real": report["settings"]["num_real"],
        "iterations": monitor[-1]["iteration"] if monitor else None,
        "train_engine_s": _engine_seconds(train_out),
        "train_wall_s": train_wall,
        "evaluate_wall_s": eval_wall,
        "report": str(root / "eval" / "report.json"),
    }


ROWS = (
    ("MS-SSIM fake (lower = more diverse)", "ms_ssim_fake", "{:.4f}"),
    ("MS-SSIM real (reference)", "ms_ssim_real", "{:.4f}"),
    ("collapse score (fake / real)", "collapse_score", "{:.3f}"),
    ("FID (lower = better)", "fid", "{:.2f}"),
    ("KID x 1000 (mean +- std)", "kid", None),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("density", "density", "{:.3f}"),
    ("coverage", "coverage", "{:.3f}"),
    ("likely copies of a training image", "likely_copies", "{}"),
    ("images fake / real", "counts", None),
    ("training iterations", "iterations", "{}"),
    ("training time, engine (s)", "train_engine_s", "{:.1f}"),
    ("training time, process wall (s)", "train_wall_s", "{:.1f}"),
    ("evaluation wall (s)", "evaluate_wall_s", "{:.1f}"),
)


def _cell(row: dict, key: str, fmt: str | None) -> str:
    if key == "kid":
        if row["kid_mean"] is None:
            return "-"
        return f"{1000 * row['kid_mean']:.2f} +- {1000 * row['kid_std']:.2f}"
    if key == "counts":
        return f"{row['num_fake']} / {row['num_real']}"
    value = row.get(key)
    return "-" if value is None else fmt.format(value)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| metric | " + " | ".join(r["model"] for r in rows) + " |", "|---|" + "---|" * len(rows)]
    for label, key, fmt in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(r, key, fmt) for r in rows) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in MODELS:
        print(f"training and evaluating {name} ...", flush=True)
        rows.append(run_model(name, args))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["OMP_NUM_THREADS"] = bundle_env()["OMP_NUM_THREADS"]
    settings["git_commit"] = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    settings["command"] = " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else None
    result = {"settings": settings, "models": rows}
    table = markdown_table(rows)
    (args.out / "comparison.json").write_text(json.dumps(result, indent=1))
    (args.out / "comparison.md").write_text(f"{table}\n\nsettings: `{json.dumps(settings)}`\n")
    print(table)
    print(f"written: {args.out / 'comparison.json'}, {args.out / 'comparison.md'}")
    return result


if __name__ == "__main__":
    main()
