"""The real-data benchmark: do synthetic X-rays help an imbalanced classifier on real chest radiographs?

Given the pediatric chest X-ray set of Kermany et al. (2018) (``--data``: the Kaggle / Mendeley ``chest_xray/``
folder or a resized copy with its ``{train,test}/{NORMAL,PNEUMONIA}`` layout; see ``bench/pneumonia_data.py``),
every run of the plan goes through the repository's bundle in subprocesses, each in its own bundle root
``<out>/<setting>/<model>_seed<g>``:

1. ``run training`` on the setting's imbalanced train subset (drawn by patient, ``<out>/<setting>/train.csv``),
   GAN seed ``g``;
2. ``run utility`` with the official test split as the real held-out set (``test.csv``): the classifier arms with
   ``--classifier_seeds``, hierarchical intervals, class fidelity with the reference classifier (the
   ``real_oversampled`` arm), the radiograph FID; the arms without synthetic data are trained once per setting
   and read from ``<out>/<setting>/classifier_cache`` by the other runs of the setting;
3. ``run evaluating``: MS-SSIM diversity, InceptionV3 FID / KID, memorisation, health and ``eval/MODEL_CARD.md``.

Then the tables: per run and pooled over GAN seeds (a hierarchical bootstrap over GAN seeds, classifier seeds and
test images, from each run's ``eval/utility_scores.pt``), class fidelity, MSG-SAGAN against MSG-GAN, and each
stage's wall time; printed and written to ``<out>/real_benchmark.md`` and ``.json``. A rerun with the same
``--out`` skips finished stages (an interrupted training resumes from its checkpoint).

The plan (``--runs``) is ``setting:model:seeds`` items separated by ``;``; the default is the study of
``bundle/docs/EVALUATION.md``: MSG-SAGAN with GAN seeds 0, 1, 2 and MSG-GAN with seeds 0, 1 at 10:1, and MSG-SAGAN
seed 0 at 4:1 and in the three-class setting. ``--jobs`` runs stages side by side, each with
``OMP_NUM_THREADS`` = cores / jobs (the classifiers always use one thread, so their results do not depend on it).

Examples::

    python bench/real_utility.py --data /data/chest_xray --out /tmp/real --jobs 2
    python bench/real_utility.py --data /data/chest_xray --out /tmp/real --table_only
    python bench/real_utility.py --data /data/chest_xray --out /tmp/real128 --runs "pneumonia10:MSG-SAGAN:0,1,2" \\
        --gan "{'resolution': '128', 'channels': '[128,128,128,64,32,16]', 'batch_size': '32'}" \\
        --attention "[32,64]" --max_epochs 200          # the GPU recipe
    python bench/real_utility.py --data <tiny fake set> --out /tmp/q --quick   # every stage in a minute or two
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import torch
from bench_utils import cpu_summary
from pneumonia_data import SETTINGS, write_setting

from monai_msgsagan.utility.fidelity import summarize_class_fidelity
from monai_msgsagan.utility.scoring import hierarchical_means, percentile_interval

REPO_ROOT = Path(__file__).resolve().parents[1]

MODELS = ("MSG-SAGAN", "MSG-GAN")
DEFAULT_RUNS = "pneumonia10:MSG-SAGAN:0,1,2;pneumonia10:MSG-GAN:0,1;pneumonia4:MSG-SAGAN:0;viral10:MSG-SAGAN:0"
QUICK_GAN = {"resolution": "32", "channels": "[16,16,16,8]", "batch_size": "8", "health_interval": "4"}
QUICK_CLASSIFIER = {"classifier#num_steps": "3", "classifier#batch_size": "8"}
SYNTHETIC_ARMS = ("real_plus_synthetic", "synthetic_only", "real_plus_synthetic_every_class")


@dataclass(frozen=True)
class Lever:
    """One class-fidelity lever of the ablation (``bundle/docs/EVALUATION.md``): bundle overrides of training
    and of the utility study. A lever that changes only the utility study (how synthetic images are sampled)
    reuses the generator of the run without it."""

    training: dict[str, str] = field(default_factory=dict)
    utility: dict[str, str] = field(default_factory=dict)
    epochs_factor: int = 1
    minority_share: float = 0.0  # last share of the epochs drawn toward the minority classes

    @property
    def trains(self) -> bool:
        return bool(self.training) or self.epochs_factor != 1 or self.minority_share > 0


#: The levers, named in ``--runs`` as ``MSG-SAGAN+balanced+filter``.
LEVERS = {
    "balanced": Lever(training={"class_balanced": "True"}),
    "acgan": Lever(training={"class_loss_weight": "1.0"}),
    "finetune": Lever(minority_share=0.2),
    "long": Lever(epochs_factor=3),
    "filter": Lever(utility={"filter_synthetic": "True"}),
    "trunc": Lever(utility={"truncation": "0.7"}),
}


@dataclass
class Run:
    """One generator of the plan and its bundle root."""

    setting: str
    model: str
    seed: int
    root: Path
    seconds: dict[str, float] = field(default_factory=dict)
    levers: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The model and its levers, as in ``--runs``."""
        return "+".join((self.model, *self.levers))

    @property
    def name(self) -> str:
        return f"{self.setting} {self.label} seed {self.seed}"

    @property
    def sampling_only(self) -> bool:
        """True when some lever changes only sampling: the run reuses :attr:`generator_root`'s generator."""
        return any(not LEVERS[x].trains for x in self.levers)

    @property
    def generator_root(self) -> Path:
        """The bundle root whose generator this run studies (the run without its sampling levers)."""
        trained = "+".join((self.model, *(x for x in self.levers if LEVERS[x].trains)))
        return self.root.parent / f"{trained}_seed{self.seed}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="the chest X-ray set (folder with train/ and test/)")
    p.add_argument("--out", type=Path, required=True, help="output folder (splits, bundle roots, tables)")
    p.add_argument("--runs", default=DEFAULT_RUNS, help="'setting:model:seed,seed;...' (settings: "
                   f"{list(SETTINGS)}; models: {list(MODELS)})")  # fmt: skip
    p.add_argument("--max_epochs", type=int, default=10, help="GAN epochs (batch 16 at 64 px: 92 iterations each "
                   "at 10:1)")  # fmt: skip
    p.add_argument("--gan", default="{}", help="more training overrides, a Python dict of strings")
    p.add_argument("--attention", default="[16]", help="MSG-SAGAN's attention resolutions (MSG-GAN: none)")
    p.add_argument("--classifier_seeds", default="[0,1,2,3,4]")
    p.add_argument("--num_resamples", type=int, default=1000)
    p.add_argument("--data_seed", type=int, default=0, help="seed of the patient draw of the train subsets")
    p.add_argument("--jobs", type=int, default=1, help="stages run side by side")
    p.add_argument("--no_evaluate", action="store_true", help="skip run evaluating (InceptionV3 FID, model card)")
    p.add_argument("--quick", action="store_true", help="tiny networks and budgets: every stage, for CI")
    p.add_argument("--table_only", action="store_true", help="only the tables of the finished runs in --out")
    args = p.parse_args(argv)
    args.gan = {k: str(v) for k, v in ast.literal_eval(args.gan).items()}
    if "attention_resolutions" in args.gan:
        raise SystemExit("give MSG-SAGAN's attention resolutions with --attention (MSG-GAN has none)")
    args.classifier, args.evaluate = {}, {}
    if args.quick:
        args.gan = {**QUICK_GAN, **args.gan}
        args.max_epochs, args.num_resamples = 1, 50
        args.classifier = dict(QUICK_CLASSIFIER)
        args.evaluate = {"num_images": "4", "num_real": "8", "fidelity": "False"}
    return args


def plan(spec: str, out: Path) -> list[Run]:
    """The runs of ``spec`` with the stages they finished already (``<root>/stages.json``); a run with a sampling
    lever brings the run that trains its generator into the plan (before it) when the plan lacks it."""
    runs: list[Run] = []
    for item in (s.strip() for s in spec.split(";") if s.strip()):
        setting, label, seeds = (x.strip() for x in item.split(":"))
        model, *levers = label.split("+")
        if setting not in SETTINGS or model not in MODELS or any(x not in LEVERS for x in levers):
            raise SystemExit(f"{item!r}: settings are {list(SETTINGS)}, models {list(MODELS)}, levers "
                             f"{list(LEVERS)} (joined with +)")  # fmt: skip
        for g in seeds.split(","):
            run = Run(setting, model, int(g), out / setting / f"{label}_seed{g}", levers=tuple(levers))
            if run.sampling_only and all(r.root != run.generator_root for r in runs):
                trained = tuple(x for x in levers if LEVERS[x].trains)
                runs.append(Run(setting, model, int(g), run.generator_root, levers=trained))
            runs.append(run)
    for run in runs:
        stages = run.root / "stages.json"
        run.seconds = json.loads(stages.read_text()) if stages.is_file() else {}
    return runs


def bundle_command(root: Path, workflow: str, configs: list[str], values: dict[str, str], threads: int) -> float:
    """``python -m monai.bundle run <workflow>`` in a subprocess with the repository's configs and ``root`` as the
    bundle root; its output goes to ``root/<workflow>.log``. Returns the wall time, raises on failure."""
    config_dir = REPO_ROOT / "bundle" / "configs"
    files = [str(config_dir / c) for c in configs]
    cmd = [sys.executable, "-m", "monai.bundle", "run", workflow, "--bundle_root", str(root),
           "--meta_file", str(config_dir / "metadata.json"), "--logging_file", str(config_dir / "logging.conf"),
           "--config_file", files[0] if len(files) == 1 else str(files)]  # fmt: skip
    cmd += [item for k, v in values.items() for item in (f"--{k}", v)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(root / f"{workflow}.log", "a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    if proc.returncode != 0:
        tail = (root / f"{workflow}.log").read_text()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); {root / f'{workflow}.log'} ends:\n{tail}")
    return time.perf_counter() - start


class Stages:
    """Training, utility and evaluation of every run, scheduled on ``jobs`` workers; stage times in
    ``<root>/stages.json`` (a finished stage is not run again)."""

    def __init__(self, runs: list[Run], args: argparse.Namespace, splits: dict[str, tuple[Path, Path]]):
        self.runs, self.args, self.splits = runs, args, splits
        self.threads = max(1, (os.cpu_count() or 1) // max(1, args.jobs))
        self.lock = threading.Lock()

    def _done(self, run: Run, stage: str, seconds: float) -> None:
        with self.lock:
            run.seconds[stage] = round(seconds, 1)
            (run.root / "stages.json").write_text(json.dumps(run.seconds, indent=1))
            print(f"[{run.name}] {stage}: {seconds:.0f} s", flush=True)

    def training(self, run: Run) -> None:
        train_csv, _ = self.splits[run.setting]
        levers = [LEVERS[x] for x in run.levers]
        epochs = self.args.max_epochs
        for lever in levers:
            epochs *= lever.epochs_factor
        values = {"dataset_dir": str(train_csv), "label_column": "class", "path_column": "path",
                  "attention_resolutions": self.args.attention if run.model == "MSG-SAGAN" else "[]",
                  "seed": str(run.seed), "max_epochs": str(epochs), **self.args.gan}  # fmt: skip
        for lever in levers:
            values.update(lever.training)
            if lever.minority_share > 0:
                values["minority_epochs"] = str(max(1, round(epochs * lever.minority_share)))
        self._done(run, "training", bundle_command(run.root, "training", ["train.json"], values, self.threads))

    def utility(self, run: Run) -> None:
        _, test_csv = self.splits[run.setting]
        values = {"test_dataset_dir": str(test_csv), "test_label_column": "class", "test_path_column": "path",
                  "classifier_seeds": self.args.classifier_seeds, "num_resamples": str(self.args.num_resamples),
                  "classifier_cache_dir": str(run.root.parent / "classifier_cache"),
                  **self.args.classifier}  # fmt: skip
        for lever in run.levers:
            values.update(LEVERS[lever].utility)
        if run.sampling_only:
            values["model_path"] = str(run.generator_root / "models" / "model.pt")
        seconds = bundle_command(run.root, "utility", ["inference.json", "utility.json"], values, self.threads)
        self._done(run, "utility", seconds)

    def evaluating(self, run: Run) -> None:
        seconds = bundle_command(run.root, "evaluating", ["inference.json", "evaluate.json"], self.args.evaluate,
                                 self.threads)  # fmt: skip
        self._done(run, "evaluating", seconds)

    @staticmethod
    def _stages(run: Run, stages: list[str]) -> list[str]:
        """A sampling-only run has no training of its own, and no evaluation (its generator's is the same)."""
        return ["utility"] if run.sampling_only else stages

    def run_all(self) -> None:
        """Every unfinished stage, in plan order, a run's stages in order; the first run of a setting does its
        utility study before the others of the setting (it fills the classifier cache they read)."""
        stages = ["training", "utility"] + ([] if self.args.no_evaluate else ["evaluating"])
        todo = [(r, s) for r in self.runs for s in self._stages(r, stages) if s not in r.seconds]
        first, trainer = {}, {r.root: r for r in self.runs}
        for r in self.runs:
            first.setdefault(r.setting, r)
        running: dict[Future, tuple[Run, str]] = {}
        busy: set[int] = set()
        with ThreadPoolExecutor(max(1, self.args.jobs)) as pool:
            while todo or running:
                for item in list(todo):
                    if len(running) >= max(1, self.args.jobs):
                        break
                    run, stage = item
                    own = self._stages(run, stages)
                    earlier = [s for s in own[: own.index(stage)] if s not in run.seconds]
                    if run.sampling_only and "training" not in trainer[run.generator_root].seconds:
                        earlier.append("training of its generator")
                    waits_for_cache = (
                        stage == "utility" and run is not first[run.setting]
                        and "utility" not in first[run.setting].seconds
                    )  # fmt: skip
                    if id(run) in busy or earlier or waits_for_cache:
                        continue
                    todo.remove(item)
                    busy.add(id(run))
                    running[pool.submit(getattr(self, stage), run)] = item
                if not running:
                    raise RuntimeError(f"stages that cannot start: {[(r.name, s) for r, s in todo]}")
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    run, _stage = running.pop(future)
                    busy.discard(id(run))
                    future.result()


def cell(mean: float | None, lo: float = 0.0, hi: float = 0.0, signed: bool = False) -> str:
    if mean is None:
        return "undefined"
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(mean)} [{f.format(lo)}, {f.format(hi)}]"


def _number(entry: dict | None, key: str, fmt: str, scale: float = 1.0) -> str:
    """``fmt`` of ``entry[key] * scale``, or ``-`` when there is no such value."""
    return fmt.format(entry[key] * scale) if entry and key in entry else "-"


def pooled(runs: list[Run], seed: int = 0) -> dict:
    """Arms, differences to the baseline and class fidelity of ``runs`` (GAN seeds of one setting and model)
    pooled: the hierarchical bootstrap over GAN seeds, classifier seeds and test images."""
    reports = [json.loads((r.root / "eval" / "utility.json").read_text()) for r in runs]
    saved = [torch.load(r.root / "eval" / "utility_scores.pt", weights_only=True) for r in runs]
    metrics, baseline = saved[0]["metrics"], reports[0]["baseline"]
    out = {"runs": [r.seed for r in runs], "baseline": baseline, "arms": {}, "differences": {}, "class_fidelity": {}}
    means = {arm: hierarchical_means(torch.stack([s["arms"][arm] for s in saved]).double(), seed)
             for arm in saved[0]["arms"]}  # fmt: skip
    for arm, m in means.items():
        out["arms"][arm] = {name: [float(m[0, i]), *percentile_interval(m[1:, i])] for i, name in enumerate(metrics)}
        if arm != baseline:
            d = m - means[baseline]
            out["differences"][arm] = {name: [float(d[0, i]), *percentile_interval(d[1:, i])]
                                       for i, name in enumerate(metrics)}  # fmt: skip
    for name in saved[0]["class_fidelity"]:
        samples = torch.stack([s["class_fidelity"][name] for s in saved]).double()
        out["class_fidelity"][name] = summarize_class_fidelity(samples, seed)
    i = metrics.index("balanced_accuracy")
    if "synthetic_only" in means and "real_oversampled" in means:
        ratio = means["synthetic_only"][:, i] / means["real_oversampled"][:, i]
        out["synthetic_only_vs_real"] = [float(ratio[0]), *percentile_interval(ratio[1:])]
    return out


def tables(runs: list[Run]) -> tuple[str, dict]:
    """The markdown tables and their numbers, from the finished runs."""
    done = [r for r in runs if (r.root / "eval" / "utility_scores.pt").is_file()]
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in done:
        groups.setdefault((r.setting, r.label), []).append(r)
    data: dict = {"cpu": cpu_summary(), "groups": {}}
    lines = ["## Utility on the real held-out test split", "",
             "Mean [95% interval]; differences are paired, against the baseline (the best arm without synthetic "
             "data). Per GAN seed: intervals over classifier seeds and test images; pooled: over GAN seeds too.", "",
             "| setting | GAN | GAN seed | arm | balanced accuracy | minority recall | balanced acc. vs baseline "
             "| minority recall vs baseline |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    fidelity = ["## Class fidelity (reference classifier: real train split only, class-balanced)", "",
                "| setting | GAN | GAN seed | class | synthetic called class / real called class | class fidelity "
                "| train-on-synthetic / train-on-real balanced accuracy | radiograph FID |",
                "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (setting, model), group in groups.items():
        rows = [(str(r.seed), json.loads((r.root / "eval" / "utility.json").read_text())) for r in group]
        pool = pooled(group)
        data["groups"][f"{setting} {model}"] = {"per_seed": {s: rep for s, rep in rows}, "pooled": pool}
        minority = rows[0][1]["minority_classes"][-1]
        for seed, rep in rows:
            for arm, entry in rep["arms"].items():
                m = entry["metrics"]
                d = rep["differences"].get(arm)
                ba, rec = m["balanced_accuracy"], m[f"recall/{minority}"]
                diffs = ("baseline", "baseline") if d is None else tuple(
                    cell(d[k]["mean"], *d[k]["ci95"], signed=True)
                    for k in ("balanced_accuracy", f"recall/{minority}"))  # fmt: skip
                lines.append(f"| {setting} | {model} | {seed} | {arm} | {cell(ba['mean'], *ba['ci95'])} "
                             f"| {cell(rec['mean'], *rec['ci95'])} | {diffs[0]} | {diffs[1]} |")  # fmt: skip
            cf = rep.get("class_fidelity", {})
            tstr, fid = cf.get("synthetic_only_vs_real"), cf.get("radiograph_fid")
            for name, c in cf.get("classes", {}).items():
                fidelity.append(
                    f"| {setting} | {model} | {seed} | {name} | {c['synthetic_called_class']:.2f} / "
                    f"{c['real_called_class']:.2f} | {cell(c['fidelity'], *(c['ci95'] or ()))} | "
                    f"{cell(tstr['ratio'], *tstr['ci95']) if tstr else '-'} | "
                    f"{_number(fid, 'mean', '{:.1f}')} |"
                )
        if len(group) > 1:
            for arm, m in pool["arms"].items():
                d = pool["differences"].get(arm)
                diffs = (
                    ("baseline", "baseline")
                    if d is None
                    else (cell(*d["balanced_accuracy"], signed=True), cell(*d[f"recall/{minority}"], signed=True))
                )
                lines.append(f"| {setting} | {model} | pooled {','.join(s for s, _ in rows)} | {arm} "
                             f"| {cell(*m['balanced_accuracy'])} | {cell(*m[f'recall/{minority}'])} | {diffs[0]} "
                             f"| {diffs[1]} |")  # fmt: skip
            for name, c in pool["class_fidelity"].items():
                tstr = pool.get("synthetic_only_vs_real")
                fidelity.append(
                    f"| {setting} | {model} | pooled | {name} | {c['synthetic_called_class']:.2f} / "
                    f"{c['real_called_class']:.2f} | {cell(c['fidelity'], *(c['ci95'] or ()))} | "
                    f"{cell(*tstr) if tstr else '-'} | - |"
                )
    ablation = ["## Class-fidelity levers (ablation)", "",
                "Pooled over the GAN seeds listed; differences against the baseline (best arm without synthetic "
                "data), balanced accuracy unless named.", "",
                "| setting | GAN + levers | GAN seeds | minority class fidelity | train-on-synthetic / train-on-real "
                "| minority-only fill | every-class mix | every-class mix, minority recall |",
                "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (setting, label), group in groups.items():
        pool = data["groups"][f"{setting} {label}"]["pooled"]
        minority = json.loads((group[0].root / "eval" / "utility.json").read_text())["minority_classes"][-1]
        cf, tstr, d = pool["class_fidelity"].get(minority), pool.get("synthetic_only_vs_real"), pool["differences"]
        fill, mix = d.get("real_plus_synthetic", {}), d.get("real_plus_synthetic_every_class", {})
        ablation.append(
            f"| {setting} | {label} | {','.join(str(r.seed) for r in group)} | "
            f"{cell(cf['fidelity'], *(cf['ci95'] or ())) if cf else '-'} | {cell(*tstr) if tstr else '-'} | "
            f"{cell(*fill['balanced_accuracy'], signed=True) if fill else '-'} | "
            f"{cell(*mix['balanced_accuracy'], signed=True) if mix else '-'} | "
            f"{cell(*mix[f'recall/{minority}'], signed=True) if mix else '-'} |"
        )
    comparison = ["## MSG-SAGAN against MSG-GAN", "",
                  "| setting | GAN | GAN seed | MS-SSIM synthetic / real (collapse score) | FID InceptionV3 "
                  "| KID x 1000 | radiograph FID | minority class fidelity | every-class mix vs baseline |",
                  "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    times = ["## Wall time per stage (s)", "", "| setting | GAN | GAN seed | training | utility | evaluating |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in done:
        rep = json.loads((r.root / "eval" / "utility.json").read_text())
        minority = rep["minority_classes"][-1]
        ev_path = r.root / "eval" / "report.json"
        ev = json.loads(ev_path.read_text()) if ev_path.is_file() else None
        div = ev["diversity"] if ev else None
        fid = (ev or {}).get("fidelity") or {}
        cf = rep.get("class_fidelity", {})
        mix = rep["differences"].get("real_plus_synthetic_every_class", {}).get("balanced_accuracy")
        minority_fidelity = cf.get("classes", {}).get(minority)
        comparison.append(
            f"| {r.setting} | {r.label} | {r.seed} | "
            + (f"{div['fake']['mean']:.3f} / {div['real']['mean']:.3f} ({div['collapse_score']:.3f})" if div else "-")
            + f" | {_number(fid, 'fid', '{:.1f}')} | {_number(fid.get('kid'), 'mean', '{:.1f}', 1000)}"
            + f" | {_number(cf.get('radiograph_fid'), 'mean', '{:.1f}')} | "
            + (cell(minority_fidelity["fidelity"], *(minority_fidelity["ci95"] or ())) if minority_fidelity else "-")
            + f" | {cell(mix['mean'], *mix['ci95'], signed=True) if mix else '-'} |"
        )
        s = r.seconds
        times.append(f"| {r.setting} | {r.label} | {r.seed} | {s.get('training', '-')} | {s.get('utility', '-')} "
                     f"| {s.get('evaluating', '-')} |")  # fmt: skip
    sections = [ablation, lines, fidelity, comparison, times, [f"Measured on: {data['cpu']}"]]
    text = "\n\n".join("\n".join(section) for section in sections)
    return text, data


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = plan(args.runs, args.out)
    splits = {}
    for setting in dict.fromkeys(r.setting for r in runs):
        train_csv, test_csv, summary = write_setting(args.data, setting, args.out / setting, args.data_seed)
        (args.out / setting / "split.json").write_text(json.dumps(summary, indent=1))
        print(f"{setting}: train {summary['train_counts']}, test {summary['test_counts']}", flush=True)
        splits[setting] = (train_csv, test_csv)
    if not args.table_only:
        Stages(runs, args, splits).run_all()
    text, data = tables(runs)
    data["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    print(text)
    (args.out / "real_benchmark.md").write_text(text + "\n")
    (args.out / "real_benchmark.json").write_text(json.dumps(data, indent=1))
    return data


if __name__ == "__main__":
    main()
