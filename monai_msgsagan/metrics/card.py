"""One report card per trained model: ``eval/MODEL_CARD.md``, read by a reviewer without rerunning anything.

It gathers what the other parts measured: the generator's record (data and provenance), the evaluation report
(diversity, fidelity, memorisation, training health; :func:`~monai_msgsagan.metrics.evaluate_generator`) and, when
the utility study ran for *this* model (same weights' SHA-256), its class fidelity and utility
(:func:`~monai_msgsagan.utility.run_utility_study`, ``utility.json`` in the same folder). Every number is copied
from those files; the card links their plots.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monai_msgsagan.artifact import GeneratorArtifact
from monai_msgsagan.files import atomic_write_text

__all__ = ["write_model_card"]


def _interval(entry: dict, signed: bool = False) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    lo, hi = entry["ci95"]
    return f"{f.format(entry['mean'])} [{f.format(lo)}, {f.format(hi)}]"


def _data_section(identity: dict[str, Any], record: dict[str, Any]) -> list[str]:
    data = record.get("training_data", {})
    settings = data.get("settings", {})
    net = identity["network"]
    return [
        "## Data and provenance",
        "",
        f"- model: `{identity['path']}` (SHA-256 `{identity['sha256']}`), package {identity.get('package_version')}",
        f"- classes: {', '.join(identity['class_names']) or 'unconditional'}",
        f"- training data: `{data.get('source', '?')}`, {data.get('num_images', '?')} images (each listed by "
        "content hash in the record, `models/model.json`)"
        + (f"; settings {json.dumps({k: v for k, v in settings.items() if v not in (None, '', False)})}"),
        f"- network: {net['resolution']} px, latent {net['latent_dim']}, channels {net['channels']}, attention at "
        f"{net['attention_resolutions'] or 'no scale (MSG-GAN)'}",
        f"- recipe: {json.dumps(record.get('recipe', {}))}",
        "",
    ]


def _evaluation_sections(result: dict[str, Any]) -> list[str]:
    div = result["diversity"]
    lines = [
        "## Diversity (pairwise MS-SSIM, lower = more diverse)",
        "",
        f"- synthetic {div['fake']['mean']:.4f}, real {div['real']['mean']:.4f}: collapse score "
        f"{div['collapse_score']:.3f} (> 1: less diverse than the real images)",
    ]
    for name, entry in result.get("generator", {}).get("per_class_ms_ssim_fake", {}).items():
        lines.append(f"- class {name}: synthetic {entry['mean']:.4f}")
    lines += ["", "## Fidelity", ""]
    fid = result.get("fidelity")
    if fid:
        feats = fid.get("features", {})
        lines.append(f"- FID {fid['fid']:.2f}, KID x 1000 {fid['kid']['mean'] * 1000:.2f} ({feats.get('network')}, "
                     f"{result['settings']['num_real']} real / {result['settings']['num_fake']} synthetic images; "
                     "biased upwards for small sets)")  # fmt: skip
        if fid.get("prdc"):
            lines.append("- " + ", ".join(f"{k} {v:.3f}" for k, v in fid["prdc"].items() if isinstance(v, float)))
    else:
        lines.append("- not computed (`fidelity` false)")
    mem = result.get("memorization", {})
    lines += ["", "## Memorisation", ""]
    lines.append(f"- {mem.get('num_likely_copies', '?')} of {mem.get('settings', {}).get('num_fake', '?')} synthetic "
                 "images flagged as likely copies of a training image (see `nearest_neighbours.png`)")  # fmt: skip
    lines += ["", "## Training health", ""]
    health = result.get("health")
    if health:
        final = health["final"]
        lines.append(f"- final diagnosis: **{final['diagnosis']}**")
        changes = ", ".join(f"{c['diagnosis']} (epoch {c['epoch']})" for c in health["changes"])
        lines.append(f"- diagnoses over training: {changes}")
    else:
        lines.append("- no health log (`logs/health.jsonl`) next to this model")
    return lines + [""]


def _utility_sections(utility: dict[str, Any] | None, sha256: str) -> list[str]:
    if utility is None or utility.get("settings", {}).get("generator_sha256") != sha256:
        note = "no utility study of this model yet" if utility is None else "`utility.json` is of another model"
        return [
            "## Class fidelity",
            "",
            f"- not measured: {note}; class fidelity needs a labelled real held-out split (`run utility`).",
            "",
            "## Utility",
            "",
            f"- not measured: {note}.",
            "",
        ]
    lines = ["## Class fidelity", ""]
    cf = utility.get("class_fidelity", {})
    if "classes" in cf:
        lines.append(f"Reference classifier: {cf['reference_classifier']}. Class fidelity = share of synthetic "
                     "images of the class it calls the class / share of real held-out images of the class it calls "
                     "the class (1.0: as recognisable as real).")  # fmt: skip
        lines.append("")
        lines.append("| class | synthetic called class | real called class | class fidelity [95%] |")
        lines.append("|---|---|---|---|")
        for name, c in cf["classes"].items():
            value = c.get("note", "undefined")
            if c["fidelity"] is not None:
                value = f"{c['fidelity']:.3f} [{c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}]"
            lines.append(f"| {name} | {c['synthetic_called_class']:.3f} | {c['real_called_class']:.3f} | {value} |")
        tstr = cf.get("synthetic_only_vs_real")
        if tstr:
            lo, hi = tstr["ci95"]
            lines.append("")
            lines.append(f"- train on synthetic / train on real, balanced accuracy on real held-out images: "
                         f"{tstr['balanced_accuracy_synthetic_only']:.3f} / {tstr['balanced_accuracy_real']:.3f} = "
                         f"{tstr['ratio']:.3f} [{lo:.3f}, {hi:.3f}]")  # fmt: skip
        if "radiograph_fid" in cf:
            r = cf["radiograph_fid"]
            lines.append(f"- radiograph FID (reference classifier features): {r['mean']:.2f} ± {r['std']:.2f} "
                         f"over classifier seeds ({r['images']})")  # fmt: skip
    else:
        lines.append(f"- {cf.get('note', 'not measured')}")
    lines += ["", "## Utility", "", f"Test split: {utility['test_counts']}; baseline: `{utility['baseline']}`; "
              f"{len(utility['settings']['seeds'])} classifier seeds; intervals: {utility['settings']['bootstrap']}.",
              ""]  # fmt: skip
    default = utility.get("default_arm")
    settings = utility["settings"]
    if default:
        lines += [f"Default synthetic mix: `{default}`, what the MONAI Label hook adds unless told otherwise; "
                  "`real_plus_synthetic` (the minority classes only) stays an option, measured harmful on real chest "
                  "X-rays (`bundle/docs/EVALUATION.md`).", ""]  # fmt: skip
    if settings.get("truncation", 1.0) != 1.0 or settings.get("filter_synthetic"):
        accepted = settings.get("filter_acceptance")
        filtering = f"on (kept / generated per class: {accepted})" if settings.get("filter_synthetic") else "off"
        psi = settings.get("truncation", 1.0)
        lines += [f"Synthetic sampling: truncation {psi}, classifier filter {filtering}.", ""]
    lines += ["| arm | balanced accuracy | vs baseline |", "|---|---|---|"]
    for arm, entry in utility["arms"].items():
        diff = utility["differences"].get(arm)
        vs = "baseline" if diff is None else _interval(diff["balanced_accuracy"], signed=True)
        name = f"{arm} (default)" if arm == default else arm
        lines.append(f"| {name} | {_interval(entry['metrics']['balanced_accuracy'])} | {vs} |")
    lines += ["", "Verdict:", "", *(f"- {v}" for v in utility["verdict"].splitlines()), ""]
    return lines


def write_model_card(result: dict[str, Any], output_dir: str | Path, generator: GeneratorArtifact) -> Path:
    """Write ``output_dir/MODEL_CARD.md`` from an evaluation result, the model and its record, and the folder's
    ``utility.json`` when it exists.

    Args:
        result: the :func:`~monai_msgsagan.metrics.evaluate_generator` result (with ``files``).
        output_dir: the evaluation folder.
        generator: the evaluated model (:func:`~monai_msgsagan.artifact.load_generator`).

    Returns:
        the card's path.
    """
    identity = generator.identity()
    record = {"training_data": generator.record.training_data, "recipe": generator.record.recipe}
    out = Path(output_dir)
    utility_path = out / "utility.json"
    utility = json.loads(utility_path.read_text()) if utility_path.is_file() else None
    kind = "MSG-SAGAN" if identity["network"]["attention_resolutions"] else "MSG-GAN"
    lines = [f"# Model card: {kind} generator `{identity['name']}` {identity.get('version', '')}".rstrip(), ""]
    lines += _data_section(identity, record)
    lines += _evaluation_sections(result)
    lines += _utility_sections(utility, identity["sha256"])
    plots = {**result.get("files", {}), **((utility or {}).get("files", {}))}
    pictures = [f"- [{name}]({Path(p).name})" for name, p in plots.items() if str(p).endswith(".png")]
    lines += ["## Plots", "", *pictures, ""]
    return atomic_write_text(out / "MODEL_CARD.md", "\n".join(lines))
