"""The utility benchmark in one command: do synthetic minority X-rays help an imbalanced classifier?

For each data set (the phantoms at every ``--ratios`` imbalance, and with ``--figure1`` the real radiographs of
``../shared/data/figure1-cxr``) and each model (MSG-SAGAN, and MSG-GAN = no attention), the repository's bundle
is copied into ``<out>/<data set>/<model>`` and run as real subprocesses:

1. ``python -m monai.bundle run training`` on the imbalanced train split (the generator records its training
   images in ``models/model.json``);
2. ``python -m monai.bundle run utility`` with ``inference.json`` + ``utility.json``: the same classifier trained
   under every arm (:mod:`monai_msgsagan.utility.study`) and scored on a disjoint, real test split (balanced
   phantoms of another seed, or the held-out patients of figure1-cxr); the leakage check runs first.

The reports (``eval/utility.json``) are read back into one table, printed and saved as
``<out>/utility_benchmark.md`` and ``.json``. A rerun with the same ``--out`` reuses finished trainings (the bundle
resumes from its last checkpoint). Data sets:

- phantoms ``ratioR``: ``--num_phantoms`` phantoms of which a fraction ``1 / (R + 1)`` show lung opacity (R:1,
  normal to opacity), data seed 0; test: ``--num_test_phantoms`` balanced phantoms of seed 1000.
- ``figure1``: COVID-19 against every other finding (No finding, Pneumonia; unlabelled rows dropped), split by
  patient (``COVID-00003a``/``b`` are one patient) with ``--figure1_test_fraction`` of each class's patients held
  out, seeded: the split is written to ``<out>/figure1-cxr/{train,test}.csv``.

Examples (2-core CPU: about 25 minutes per ratio for both models)::

    OMP_NUM_THREADS=2 python bench/utility.py --out /tmp/utility --ratios 10
    OMP_NUM_THREADS=2 python bench/utility.py --out /tmp/utility --ratios 10,4 --figure1 ../shared/data/figure1-cxr
    python bench/utility.py --out /tmp/utility_quick --quick         # a minute: tiny networks, every step
    python bench/utility.py --out /tmp/utility --ratios 10,4 --table_only   # the table of finished runs
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import time
from pathlib import Path

import numpy as np
from bundle_utils import copy_bundle, overrides, run_bundle, train_bundle

REPO_ROOT = Path(__file__).resolve().parents[1]

MODELS = {"MSG-SAGAN": "[16]", "MSG-GAN": "[]"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder (one bundle root per data set and model)")
    p.add_argument("--ratios", default="10", help="comma-separated R of the R:1 phantom imbalances ('' for none)")
    p.add_argument("--models", default="MSG-SAGAN,MSG-GAN", help=f"comma-separated, of {list(MODELS)}")
    p.add_argument("--num_phantoms", type=int, default=512, help="phantom train split size")
    p.add_argument("--num_test_phantoms", type=int, default=256, help="balanced phantom test split size")
    p.add_argument("--max_epochs", type=int, default=50, help="GAN epochs on the phantoms (the bundle default)")
    p.add_argument("--figure1", type=Path, default=None, help="figure1-cxr folder: add the real-data study")
    p.add_argument("--figure1_test_fraction", type=float, default=0.4)
    p.add_argument("--figure1_max_epochs", type=int, default=300, help="GAN epochs on figure1 (batch 8)")
    p.add_argument("--classifier_seeds", default="[0,1,2]")
    p.add_argument("--num_resamples", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="tiny networks and data: every step in about a minute")
    p.add_argument("--table_only", action="store_true", help="print the table of the finished runs in --out")
    p.add_argument(
        "--class_balanced",
        action="store_true",
        help="also train each model with class-balanced sampling (train.json class_balanced) as '<model>, balanced'",
    )
    args = p.parse_args(argv)
    args.gan = {}
    args.classifier = []
    if args.quick:
        args.gan = {"resolution": "32", "channels": "[16,16,16,8]", "batch_size": "8"}
        args.num_phantoms, args.num_test_phantoms, args.max_epochs, args.figure1_max_epochs = 48, 16, 1, 2
        args.classifier = ["--classifier#num_steps", "3", "--classifier#batch_size", "8"]
        args.num_resamples = 50
    return args


def figure1_split(figure1_dir: Path, out: Path, test_fraction: float, seed: int = 0) -> tuple[Path, Path]:
    """COVID-19 vs other, split by patient: ``out/train.csv`` and ``out/test.csv`` (columns ``path``, ``class``)."""
    with open(figure1_dir / "metadata.csv", encoding="latin-1", newline="") as f:
        rows = list(csv.DictReader(f))
    patients: dict[str, dict[str, list[str]]] = {"COVID-19": {}, "other": {}}
    for row in rows:
        finding = row["finding"].strip()
        if not finding:
            continue
        image = next(iter(sorted((figure1_dir / "images").glob(f"{row['patientid']}.*"))), None)
        if image is None:
            continue
        label = "COVID-19" if finding == "COVID-19" else "other"
        patient = re.sub(r"[a-z]+$", "", row["patientid"])
        patients[label].setdefault(patient, []).append(str(image.resolve()))
    rng = np.random.default_rng(seed)
    split: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for label, by_patient in patients.items():
        ids = sorted(by_patient)
        order = rng.permutation(len(ids))
        n_test = min(len(ids) - 1, max(1, math.ceil(test_fraction * len(ids))))
        for rank, i in enumerate(order):
            split["test" if rank < n_test else "train"] += [(p, label) for p in by_patient[ids[i]]]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, items in split.items():
        path = out / f"{name}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("path", "class"))
            writer.writerows(sorted(items))
        paths.append(path)
    return paths[0], paths[1]


def run_one(root: Path, model: str, train_data: dict[str, str], test_data: dict[str, str], args) -> dict:
    """Train (or resume) one generator through the bundle and run its utility study; returns the report.

    ``model`` is a key of :data:`MODELS`, or that key followed by ``", balanced"`` (class-balanced GAN training).
    """
    if not (root / "configs").is_dir():
        copy_bundle(root)
    configs = root / "configs"
    start = time.perf_counter()
    name, _, variant = model.partition(", ")
    train = {**args.gan, **train_data, "attention_resolutions": MODELS[name]}
    if variant == "balanced":
        train["class_balanced"] = "True"
    train_bundle(root, train, timeout=4 * 3600)
    train_s = time.perf_counter() - start
    data = {k: v for k, v in train_data.items() if k not in ("max_epochs", "batch_size")}
    study = {**data, **test_data, "classifier_seeds": args.classifier_seeds, "num_resamples": str(args.num_resamples)}
    start = time.perf_counter()
    run_bundle(
        "run",
        root,
        "utility",
        "--config_file",
        f"['{configs / 'inference.json'}','{configs / 'utility.json'}']",
        "--bundle_root",
        str(root),
        *overrides(study),
        *args.classifier,
        timeout=4 * 3600,
    )
    report = json.loads((root / "eval" / "utility.json").read_text())
    report["wall_seconds"] = {"training": round(train_s, 1), "utility": round(time.perf_counter() - start, 1)}
    (root / "eval" / "utility_bench.json").write_text(json.dumps(report, indent=1))
    return report


def table(results: dict[str, dict[str, dict]]) -> str:
    """One markdown table: every data set, model and arm."""
    lines = [
        "| data | model | arm | balanced accuracy | minority recall | AUROC | balanced acc. vs baseline "
        "| minority recall vs baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(v: dict) -> str:
        return f"{v['mean']:.3f} ± {v['std']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"

    def diff(d: dict | None) -> str:
        return "baseline" if d is None else f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"

    for data, by_model in results.items():
        for model, report in by_model.items():
            minority = (report["minority_classes"] or report["classes"][-1:])[0]
            for arm, entry in report["arms"].items():
                m = entry["metrics"]
                d = report["differences"].get(arm)
                lines.append(
                    f"| {data} | {model} | {arm} | {cell(m['balanced_accuracy'])} | {cell(m[f'recall/{minority}'])} "
                    f"| {cell(m['auroc'])} | {diff(d and d['balanced_accuracy'])} "
                    f"| {diff(d and d[f'recall/{minority}'])} |"
                )
    return "\n".join(lines)


def diagnostics(results: dict[str, dict[str, dict]]) -> str:
    """Per class: how often fresh synthetic images of the class are called that class by the baseline's and by
    the synthetic arms' classifiers, their diversity next to the real class, and the wall times."""
    lines = [
        "| data | model | class | synthetic called this class by: baseline / real_plus_synthetic / synthetic_only / "
        "real_plus_synthetic_every_class "
        "| pairwise MS-SSIM synthetic / real (collapse score) | GAN training s | utility s |",
        "|---|---|---|---|---|---|---|",
    ]
    for data, by_model in results.items():
        for model, report in by_model.items():
            diag = report["diagnostics"]
            for name, d in diag["classes"].items():
                called = d.get("called_this_class", {})
                arms = (diag["baseline"], "real_plus_synthetic", "synthetic_only", "real_plus_synthetic_every_class")
                rates = " / ".join(f"{called[a]:.2f}" if a in called else "-" for a in arms)
                ms = (
                    f"{d['ms_ssim_synthetic']:.3f} / {d['ms_ssim_real']:.3f} ({d['collapse_score']:.2f})"
                    if "collapse_score" in d
                    else "-"
                )
                w = report.get("wall_seconds", {})
                lines.append(
                    f"| {data} | {model} | {name} | {rates} | {ms} "
                    f"| {w.get('training', '-')} | {w.get('utility', '-')} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; choose from {list(MODELS)}")
    if args.class_balanced:
        models += [f"{m}, balanced" for m in models]
    studies: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for ratio in [r.strip() for r in args.ratios.split(",") if r.strip()]:
        train = {
            "num_phantoms": str(args.num_phantoms),
            "phantom_class_ratio": repr(1.0 / (float(ratio) + 1.0)),
            "max_epochs": str(args.max_epochs),
        }
        studies[f"phantoms {ratio}:1"] = (train, {"num_test_phantoms": str(args.num_test_phantoms)})
    if args.figure1 is not None:
        train_csv, test_csv = figure1_split(args.figure1, args.out / "figure1-cxr", args.figure1_test_fraction)
        columns = {"label_column": "class", "path_column": "path"}
        train = {
            "dataset_dir": str(train_csv),
            **columns,
            "max_epochs": str(args.figure1_max_epochs),
            "batch_size": "8",
        }
        studies["figure1-cxr"] = (train, {"test_dataset_dir": str(test_csv)})
    results: dict[str, dict[str, dict]] = {}
    for data, (train, test) in studies.items():
        folder = re.sub(r"[^A-Za-z0-9]+", "_", data).strip("_")
        for model in models:
            root = args.out / folder / re.sub(r"[^A-Za-z0-9-]+", "_", model)
            if args.table_only:
                for name in ("utility_bench.json", "utility.json"):  # utility.json: a run without wall times
                    if (root / "eval" / name).is_file():
                        results.setdefault(data, {})[model] = json.loads((root / "eval" / name).read_text())
                        break
                continue
            print(f"== {data}, {model}", flush=True)
            results.setdefault(data, {})[model] = run_one(root, model, train, test, args)
    text = "## Utility on real held-out images\n\n" + table(results) + "\n\n## Why\n\n" + diagnostics(results)
    verdicts = [f"- {d}, {m}: " + r["verdict"].replace("\n", "; ") for d, rs in results.items() for m, r in rs.items()]
    text += "\n\n" + "\n".join(verdicts)
    print(text)
    (args.out / "utility_benchmark.md").write_text(text + "\n")
    (args.out / "utility_benchmark.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
