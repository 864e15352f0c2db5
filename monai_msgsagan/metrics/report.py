"""Evaluation of a synthetic set against real data, and its report: ``report.json`` plus PNG plots."""

from __future__ import annotations

import csv
import json
import math
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from monai_msgsagan.files import atomic_write_text
from monai_msgsagan.metrics.diversity import pairwise_ms_ssim
from monai_msgsagan.metrics.fidelity import ExtractionOptions, FeatureCache, fidelity_metrics
from monai_msgsagan.metrics.memorization import memorization
from monai_msgsagan.metrics.utils import check_images, check_same_size

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["evaluate_synthesis", "load_training_log", "write_evaluation_report"]

_STEP_KEYS = ("iteration", "step", "epoch")


def evaluate_synthesis(
    real: torch.Tensor,
    fake: torch.Tensor,
    feature_extractor: nn.Module | None = None,
    *,
    num_pairs: int | None = None,
    seed: int = 0,
    fidelity: bool = True,
    nearest_k: int = 5,
    kid_kwargs: Mapping[str, Any] | None = None,
    copy_ratio: float = 0.5,
    ms_ssim_kwargs: dict | None = None,
    **extraction: Unpack[ExtractionOptions],
) -> dict:
    """Diversity (pairwise MS-SSIM, collapse score), fidelity (FID, KID, PRDC) and memorisation of a synthetic set.

    Args:
        real: (Nr, C, H, W) real images in [-1, 1], Nr >= 2.
        fake: (Nf, C, H, W) synthetic images in [-1, 1], Nf >= 2, same C, H, W.
        feature_extractor: feature network for FID/KID/PRDC and feature-space memorisation (None = InceptionV3).
        num_pairs: MS-SSIM pairs per set (None = all pairs); seed: pair sampling and KID subsets.
        fidelity: False skips the feature network altogether (no FID/KID/PRDC, MS-SSIM-only memorisation).
        nearest_k: k of precision/recall/density/coverage (skipped when a set has k images or fewer).
        kid_kwargs: passed to :func:`~.fidelity.kid_from_features` (``subsets``, ``subset_size``; ``seed`` is
            ``seed`` unless given); copy_ratio: see :func:`~.memorization.memorization`.
        ms_ssim_kwargs: passed to the MS-SSIM functions (window, weights, chunk size, dtype).
        extraction: ``batch_size``, ``device``, ``cache`` (keywords) of the feature extraction, see
            :func:`~.fidelity.extract_features`; each set's features are extracted once.

    Returns:
        JSON-ready dict: ``settings``, ``diversity`` (real and fake pairwise MS-SSIM with per-pair values,
        ``collapse_score`` = fake mean / real mean, ``difference``), ``fidelity`` (or None) and ``memorization``.
    """
    check_images(real, "real", min_count=2, what="evaluate_synthesis")
    check_images(fake, "fake", min_count=2, what="evaluate_synthesis")
    check_same_size(real, fake)
    kw = dict(ms_ssim_kwargs or {})
    if extraction.get("cache") is None:
        extraction["cache"] = FeatureCache()
    div_real = pairwise_ms_ssim(real, num_pairs, seed, **kw)
    div_fake = pairwise_ms_ssim(fake, num_pairs, seed, **kw)
    result: dict = {
        "settings": {
            "num_real": int(real.shape[0]),
            "num_fake": int(fake.shape[0]),
            "image_shape": list(real.shape[1:]),
            "seed": seed,
            "num_pairs": num_pairs,
            "feature_network": None
            if not fidelity
            else (type(feature_extractor).__name__ if feature_extractor is not None else "InceptionV3 pool3"),
            "feature_preprocessing": None
            if not fidelity or feature_extractor is not None
            else "[-1,1]->[0,1], gray->3 channels, TF1 bilinear resize to 299, scaled to [-1, 127/128]",
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "diversity": {
            "real": div_real.as_dict(with_values=True),
            "fake": div_fake.as_dict(with_values=True),
            "collapse_score": div_fake.mean / div_real.mean if div_real.mean > 0 else math.inf,
            "difference": div_fake.mean - div_real.mean,
            "collapse_score_definition": "mean pairwise MS-SSIM(fake) / mean pairwise MS-SSIM(real); "
            "> 1 = less diverse than real",
        },
        "fidelity": None,
    }
    if fidelity:  # each set's features are extracted once: memorisation finds them in the cache
        kid = {"seed": seed, **(kid_kwargs or {})}
        result["fidelity"] = fidelity_metrics(
            real, fake, feature_extractor, nearest_k=nearest_k, kid_kwargs=kid, **extraction
        )
    result["memorization"] = memorization(
        real, fake, feature_extractor, copy_ratio=copy_ratio, use_features=fidelity, ms_ssim_kwargs=kw, **extraction
    )
    return result


def load_training_log(log: str | Path | Sequence[dict]) -> list[dict]:
    """Training metrics as a list of dicts with a step key (``iteration``, ``step`` or ``epoch``) and numbers.

    Accepts a list of dicts, or a path to ``.json`` (a list of dicts), ``.jsonl`` (one dict a line) or ``.csv``.
    """
    if not isinstance(log, (str, Path)):
        rows = [dict(r) for r in log]
    else:
        path = Path(log)
        if not path.is_file():
            raise FileNotFoundError(f"training log {path} not found")
        text = path.read_text()
        if path.suffix == ".json":
            rows = json.loads(text)
        elif path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif path.suffix == ".csv":
            rows = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(text.splitlines())]
        else:
            raise ValueError(f"training log {path}: expected .json, .jsonl or .csv")
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise ValueError("training log: expected a non-empty list of dicts (one per logged step)")
    if not any(k in rows[0] for k in _STEP_KEYS):
        raise ValueError(f"training log: each entry needs one of the keys {_STEP_KEYS}, got {sorted(rows[0])}")
    return rows


def _number(v: str) -> float | str:
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def _to_display(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (N, H, W[, 3]) in [0, 1] for imshow."""
    x = ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)
    return x[:, 0] if x.shape[1] == 1 else x[:, :3].permute(0, 2, 3, 1)


def _plot_grid(ax_rows, images: torch.Tensor, title: str) -> None:
    shown = _to_display(images)
    for k, ax in enumerate(ax_rows):
        ax.axis("off")
        if k < shown.shape[0]:
            ax.imshow(shown[k].numpy(), cmap="gray", vmin=0, vmax=1)
    ax_rows[0].set_title(title, loc="left", fontsize=9)


def write_evaluation_report(
    result: dict,
    out_dir: str | Path,
    real: torch.Tensor | None = None,
    fake: torch.Tensor | None = None,
    training_log: str | Path | Sequence[dict] | None = None,
    health_log: str | Path | Sequence[dict] | None = None,
    num_samples: int = 16,
    num_neighbours: int = 8,
) -> dict[str, str]:
    """Write ``report.json`` and PNG plots of an :func:`evaluate_synthesis` result.

    Files: ``report.json`` (every number and the settings); ``samples.png`` (grid of synthetic, and real,
    images; needs ``fake``); ``ms_ssim_histogram.png`` (pairwise MS-SSIM, real vs synthetic);
    ``nearest_neighbours.png`` (the synthetic images most alike a training image by MS-SSIM, each beside that
    image; needs ``real`` and ``fake``); ``training_metrics.png`` (every numeric series of ``training_log``
    against its step, see :func:`load_training_log`); ``health_metrics.png`` (the same for ``health_log``, the
    training health monitor's ``logs/health.jsonl``, with the points where its diagnosis changed marked).

    Returns:
        dict name -> path of the files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = atomic_write_text(out / "report.json", json.dumps(result, indent=1, default=_json_default))
    written = {"report": str(report)}

    if fake is not None:
        rows = [("synthetic", fake)] + ([("real", real)] if real is not None else [])
        cols = min(num_samples, max(r[1].shape[0] for r in rows))
        fig, axes = plt.subplots(len(rows), cols, figsize=(1.2 * cols, 1.35 * len(rows)), squeeze=False)
        for axr, (name, imgs) in zip(axes, rows):
            _plot_grid(list(axr), imgs[:cols], f"{name} (first {min(cols, imgs.shape[0])})")
        fig.tight_layout()
        written["samples"] = _save(fig, out / "samples.png")

    div = result.get("diversity", {})
    if "values" in div.get("real", {}) and "values" in div.get("fake", {}):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for name, colour in (("real", "tab:blue"), ("fake", "tab:orange")):
            vals = div[name]["values"]
            ax.hist(
                vals,
                bins=40,
                range=(0, 1),
                alpha=0.55,
                color=colour,
                density=True,
                label=f"{'synthetic' if name == 'fake' else 'real'}: mean {div[name]['mean']:.3f} (n={len(vals)})",
            )
        ax.set_xlabel("pairwise MS-SSIM (higher = less diverse)")
        ax.set_ylabel("density")
        ax.set_title(f"collapse score {div.get('collapse_score', float('nan')):.3f}", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written["ms_ssim_histogram"] = _save(fig, out / "ms_ssim_histogram.png")

    mem = result.get("memorization")
    if mem is not None and real is not None and fake is not None:
        order = sorted(range(len(mem["ms_ssim"])), key=lambda i: -mem["ms_ssim"][i])[:num_neighbours]
        fig, axes = plt.subplots(2, len(order), figsize=(1.4 * len(order), 3.7), squeeze=False)
        shown_f, shown_r = _to_display(fake), _to_display(real)
        for col, i in enumerate(order):
            j = mem["nearest_ssim_index"][i]
            for row, (img, label) in enumerate(((shown_f[i], f"fake {i}"), (shown_r[j], f"real {j}"))):
                ax = axes[row][col]
                ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                flag = " COPY?" if row == 0 and mem["likely_copy"][i] else ""
                ax.set_title(f"{label}{flag}" + (f"\nMS-SSIM {mem['ms_ssim'][i]:.3f}" if row == 0 else ""), fontsize=7)
        fig.suptitle("synthetic images (top) most alike a training image (bottom)", fontsize=8)
        fig.tight_layout()
        written["nearest_neighbours"] = _save(fig, out / "nearest_neighbours.png")

    for key, log, name in (
        ("training_metrics", training_log, "training_metrics.png"),
        ("health_metrics", health_log, "health_metrics.png"),
    ):
        if log is not None:
            path = _plot_log(load_training_log(log), out / name, plt)
            if path is not None:
                written[key] = path
    return written


def _plot_log(rows: list[dict], path: Path, plt) -> str | None:
    """Every numeric series of a JSON-lines log against its step; a diagnosis column marks where it changed."""
    step_key = next(k for k in _STEP_KEYS if k in rows[0])
    series = sorted(
        {
            k
            for r in rows
            for k, v in r.items()
            if k != step_key and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
    )
    if not series:
        return None
    fig, axes = plt.subplots(len(series), 1, figsize=(5, 1.8 * len(series)), squeeze=False, sharex=True)
    changes = [(r[step_key], r["diagnosis"]) for r in diagnosis_changes(rows)]
    for ax, key in zip(axes[:, 0], series):
        pts = [(r[step_key], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", lw=1)
        ax.set_ylabel(key, fontsize=8)
        for step, _ in changes:
            ax.axvline(step, color="tab:red", lw=0.6, alpha=0.5)
    if changes:
        axes[0, 0].set_title("; ".join(f"{d} from {step}" for step, d in changes)[:200], fontsize=7)
    axes[-1, 0].set_xlabel(step_key)
    fig.tight_layout()
    return _save(fig, path)


def diagnosis_changes(rows: list[dict]) -> list[dict]:
    """The rows of a health log where the diagnosis changed (the first diagnosed row included)."""
    return [
        r for i, r in enumerate(rows) if "diagnosis" in r and (i == 0 or rows[i - 1].get("diagnosis") != r["diagnosis"])
    ]


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def _json_default(o):
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
