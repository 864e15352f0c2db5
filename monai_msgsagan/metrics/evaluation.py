"""Evaluate a trained generator: generate images for every class, score them, write the report.

This is what the bundle's ``evaluate.json`` runs (configs hold wiring only): the trained EMA generator
(:func:`~monai_msgsagan.artifact.load_generator` of ``models/model.pt``) renders ``num_per_class`` images of each
class (:func:`~monai_msgsagan.generation.generate_per_class`, the images inference makes with the same seed);
they are scored against real images with :func:`~monai_msgsagan.metrics.evaluate_synthesis` (pairwise MS-SSIM,
collapse score, FID, KID, precision/recall/density/coverage, memorisation), and
:func:`~monai_msgsagan.metrics.write_evaluation_report` writes ``report.json`` and the PNG plots.

The InceptionV3 features run at 299 x 299: on CPU keep ``num_per_class`` and the real sample modest; FID is biased
upwards for small sets and only comparable between runs with the same set sizes.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from monai_msgsagan.artifact import GeneratorArtifact
from monai_msgsagan.generation import generate_per_class
from monai_msgsagan.metrics.card import write_model_card
from monai_msgsagan.metrics.diversity import pairwise_ms_ssim
from monai_msgsagan.metrics.report import (
    diagnosis_changes,
    evaluate_synthesis,
    load_training_log,
    write_evaluation_report,
)

__all__ = ["evaluate_generator"]


def evaluate_generator(
    generator: GeneratorArtifact,
    real: torch.Tensor,
    output_dir: str | os.PathLike,
    *,
    num_per_class: int = 64,
    seed: int = 0,
    batch_size: int = 32,
    feature_extractor: nn.Module | None = None,
    fidelity: bool = True,
    num_pairs: int | None = None,
    training_log: str | os.PathLike | None = None,
    health_log: str | os.PathLike | None = None,
    settings: dict | None = None,
    device: torch.device | str | None = None,
) -> dict:
    """Generate images for every class, score them against ``real`` and write the report to ``output_dir``.

    Args:
        generator: the trained generator (:func:`~monai_msgsagan.artifact.load_generator`); its class names and
            identity go into the report.
        real: ``(Nr, C, R, R)`` real images in [-1, 1] of the generator's size, Nr >= 2 (more than
            ``nearest_k`` = 5 for precision/recall/density/coverage).
        output_dir: where ``report.json`` and the PNG plots go.
        num_per_class: synthetic images per class (all classes are pooled for the metrics).
        seed: latents, MS-SSIM pair sampling and KID subsets.
        batch_size: generator and feature-network batch size.
        feature_extractor: feature network of FID/KID/PRDC/memorisation; None = InceptionV3 pool3 (standard FID).
        fidelity: False skips the feature network (MS-SSIM diversity and MS-SSIM memorisation only).
        num_pairs: MS-SSIM pairs per set (None = all pairs).
        training_log: the training monitor's JSON-lines log (``logs/diversity.jsonl``); plotted when it exists,
            ignored when the path does not exist.
        health_log: the training health monitor's JSON-lines log (``logs/health.jsonl``); when it exists the
            report gets ``health`` (the final diagnosis with its evidence and every change of diagnosis) and
            ``health_metrics.png``.
        settings: extra JSON-ready settings stored in the report's ``settings`` (checkpoint, data set, ...).
        device: where to run the generator and the feature network.

    Returns:
        the :func:`evaluate_synthesis` result with a ``generator`` entry (classes, images per class, and for
        conditional models each class's own pairwise MS-SSIM) and ``files`` (name -> path of what was written).
    """
    fake, labels = generate_per_class(generator.network, num_per_class, seed, batch_size=batch_size, device=device)
    result = evaluate_synthesis(
        real,
        fake,
        feature_extractor,
        num_pairs=num_pairs,
        seed=seed,
        fidelity=fidelity,
        batch_size=batch_size,
        device=device,
    )
    result["settings"].update({"model": generator.identity(), **(settings or {})})
    names = generator.class_names
    per_class = {}
    if labels is not None and num_per_class >= 2:
        for k, name in enumerate(names):
            per_class[name] = pairwise_ms_ssim(fake[labels == k], num_pairs, seed).as_dict()
    result["generator"] = {
        "num_classes": generator.num_classes,
        "class_names": names,
        "num_per_class": num_per_class,
        "resolution": int(fake.shape[-1]),
        "per_class_ms_ssim_fake": per_class,
    }
    log = Path(training_log) if training_log and Path(training_log).is_file() else None
    health = Path(health_log) if health_log and Path(health_log).is_file() else None
    if health is not None:
        rows = load_training_log(health)
        result["health"] = {
            "final": {"diagnosis": rows[-1].get("diagnosis"), "evidence": rows[-1].get("evidence")},
            "changes": [
                {"epoch": r.get("epoch"), "iteration": r.get("iteration"), "diagnosis": r["diagnosis"]}
                for r in diagnosis_changes(rows)
            ],
            "log": str(health),
        }
    result["files"] = write_evaluation_report(
        result, output_dir, real=real, fake=fake, training_log=log, health_log=health
    )
    result["files"]["model_card"] = str(write_model_card(result, output_dir, generator))
    return result
