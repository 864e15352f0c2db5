"""Writing the utility study: ``utility.json`` and its plots (metric bars with intervals, confusion matrices)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from monai_msgsagan.files import atomic_write_text

__all__ = ["write_utility_report", "utility_table"]


def utility_table(report: dict[str, Any]) -> str:
    """A markdown table of the report: per arm, mean +- seed spread [95% interval] of the headline metrics, and
    the difference to the baseline on balanced accuracy."""
    metrics = ["balanced_accuracy", *(f"recall/{c}" for c in report["minority_classes"]), "macro_f1", "auroc"]
    head = "| arm | " + " | ".join(metrics) + " | balanced accuracy vs baseline |"
    rows = [head, "|" + "---|" * (len(metrics) + 2)]
    for arm, entry in report["arms"].items():
        cells = []
        for m in metrics:
            v = entry["metrics"][m]
            cells.append(f"{v['mean']:.3f} ± {v['std']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]")
        if arm == report["baseline"]:
            diff = "baseline"
        else:
            d = report["differences"][arm]["balanced_accuracy"]
            diff = f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
        rows.append(f"| {arm} | " + " | ".join(cells) + f" | {diff} |")
    return "\n".join(rows)


def write_utility_report(report: dict[str, Any], output_dir: str | os.PathLike) -> dict[str, str]:
    """Write ``utility.json``, ``utility.md`` (the table), ``utility_metrics.png`` and ``utility_confusion.png``.

    Returns:
        ``{name: path}`` of the files written (also stored in ``utility.json`` under ``files``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "report": str(out / "utility.json"),
        "table": str(out / "utility.md"),
        "metrics_plot": str(out / "utility_metrics.png"),
        "confusion_plot": str(out / "utility_confusion.png"),
    }
    arms = list(report["arms"])
    metrics = ["balanced_accuracy", *(f"recall/{c}" for c in report["minority_classes"]), "macro_f1", "auroc"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for x, arm in enumerate(arms):
            v = report["arms"][arm]["metrics"][m]
            lo, hi = v["ci95"]
            colour = "tab:orange" if "synthetic" in arm else "tab:blue"
            ax.bar(x, v["mean"], color=colour, alpha=0.6)
            ax.errorbar(
                x, v["mean"], yerr=[[max(0.0, v["mean"] - lo)], [max(0.0, hi - v["mean"])]], color="k", capsize=3
            )
            ax.scatter([x] * len(v["per_seed"]), v["per_seed"], s=8, color="k", zorder=3)
        ax.set_xticks(range(len(arms)), arms, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.set_title(m, fontsize=9)
    fig.suptitle(
        f"real held-out test split; bars: mean of {len(report['settings']['seeds'])} seeds, 95% bootstrap "
        "interval, dots: seeds",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(files["metrics_plot"], dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(arms), figsize=(2.8 * len(arms), 3.0), squeeze=False)
    names = report["classes"]
    for ax, arm in zip(axes[0], arms):
        cm = report["arms"][arm]["confusion_matrix"]
        ax.imshow(cm, cmap="Blues")
        for i, row in enumerate(cm):
            for j, n in enumerate(row):
                ax.text(j, i, str(n), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(names)), names, fontsize=7, rotation=30)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
        ax.set_title(arm, fontsize=8)
    fig.suptitle("confusion matrices on the real test split, summed over seeds", fontsize=8)
    fig.tight_layout()
    fig.savefig(files["confusion_plot"], dpi=110)
    plt.close(fig)
    report = {**report, "files": files}
    atomic_write_text(Path(files["table"]), utility_table(report) + "\n\n" + report["verdict"] + "\n")
    atomic_write_text(Path(files["report"]), json.dumps(report, indent=2))
    return files
