"""Evaluate a trained generator: load its weights, generate images for every class, score them, write the report.

This is what the bundle's ``evaluate.json`` runs (configs hold wiring only): the trained EMA generator
(``models/model.pt``, a flat state dict) renders ``num_per_class`` images of each class from seeded latents;
they are scored against real images with :func:`~monai_msgsagan.metrics.evaluate_synthesis` (pairwise MS-SSIM,
collapse score, FID, KID, precision/recall/density/coverage, memorisation), and
:func:`~monai_msgsagan.metrics.write_report` writes ``report.json`` and the PNG plots.

Cost on CPU: the default InceptionV3 features run at 299 x 299, roughly 0.1-0.3 s per image on one core, so
keep ``num_per_class`` and the real sample modest there (tens to a few hundred images); on a GPU use thousands
(FID is biased upwards for small sets and is only comparable between runs with the same set sizes).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from monai_msgsagan.metrics.diversity import pairwise_ms_ssim
from monai_msgsagan.metrics.report import evaluate_synthesis, load_training_log, write_report
from monai_msgsagan.networks.generator import sample_latent

__all__ = ["evaluate_generator", "generate_per_class", "load_generator_weights"]


def load_generator_weights(
    network: nn.Module, path: str | os.PathLike, map_location: torch.device | str | None = "cpu"
) -> nn.Module:
    """Load a flat generator state dict (the bundle's ``models/model.pt``) into ``network``; returns ``network``.

    Raises:
        FileNotFoundError: ``path`` does not exist (train the bundle first).
        ValueError: the file is damaged, holds objects ``torch.load(weights_only=True)`` refuses, or does not hold
            a state dict matching ``network``; the message names the file and the reason (never the advice to load
            with ``weights_only=False``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: trained generator weights not found (run the bundle's training first)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # PyTorch's text advises weights_only=False (arbitrary code execution): keep only the reason, unchained
        found = re.search(r"WeightsUnpickler error: (.*?)(?:\. |\.?\n|\.?$)", str(err))
        reason = found.group(1) if found else "it holds Python objects other than tensors and plain containers"
        raise ValueError(
            f"{path}: cannot be loaded as a weights-only state dict ({reason}); export the generator's "
            "state_dict() (tensors only), as the bundle's training does, from a run you trust"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        first = str(err).strip().split(". ")[0].splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: unreadable as a PyTorch file ({first}); the file is damaged or incomplete") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a generator state dict, got {type(state).__name__}")
    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"{path}: weights do not fit the configured generator (resolution, latent_dim, channels, "
            f"attention_resolutions and num_classes must match the training run): {err}"
        ) from err
    return network


@torch.no_grad()
def generate_per_class(
    network: nn.Module,
    num_per_class: int,
    seed: int = 0,
    batch_size: int = 32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Generate ``num_per_class`` images of every class (or ``num_per_class`` images of an unconditional model).

    The latents ``(num_classes * num_per_class, latent_dim)`` are drawn on the CPU from
    ``torch.Generator().manual_seed(seed)`` (the same on every device); class ``k`` gets the ``k``-th block.

    Args:
        network: a generator with ``latent_dim`` and ``num_classes`` attributes returning ``(B, C, R, R)`` (an
            ``InferenceGenerator``) or a coarse-to-fine list of scales (a ``MultiScaleGenerator``; the finest is
            kept). Run in eval mode; its mode is restored.
        num_per_class: images per class, at least 1.
        seed: seed of the latents.
        batch_size: images per forward pass.
        device: where to run the network (default: where its parameters are).

    Returns:
        ``(images, labels)``: images ``(N, C, R, R)`` float32 on the CPU clamped to [-1, 1]; labels ``(N,)`` int64
        or ``None`` for an unconditional model.
    """
    if num_per_class < 1 or batch_size < 1:
        raise ValueError(f"num_per_class and batch_size must be positive, got {num_per_class} and {batch_size}")
    num_classes = int(getattr(network, "num_classes", 0))
    dev = torch.device(device) if device is not None else next(network.parameters()).device
    total = num_per_class * max(num_classes, 1)
    z_all = sample_latent(total, int(network.latent_dim), torch.Generator().manual_seed(seed))
    labels = torch.arange(num_classes).repeat_interleave(num_per_class) if num_classes > 0 else None
    was_training = network.training
    network.eval()
    out = []
    try:
        for start in range(0, total, batch_size):
            z = z_all[start : start + batch_size].to(dev)
            lab = labels[start : start + batch_size].to(dev) if labels is not None else None
            images = network(z, lab)
            images = images[-1] if isinstance(images, (list, tuple)) else images
            out.append(images.float().cpu())
    finally:
        network.train(was_training)
    images = torch.cat(out)
    if not bool(torch.isfinite(images).all()):
        raise ValueError("the generator produced NaN or infinite values (a diverged checkpoint?)")
    return images.clamp(-1, 1), labels


def evaluate_generator(
    network: nn.Module,
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
    class_names: Sequence[str] | None = None,
    settings: dict | None = None,
    device: torch.device | str | None = None,
) -> dict:
    """Generate images for every class, score them against ``real`` and write the report to ``output_dir``.

    Args:
        network: the trained generator (see :func:`generate_per_class`).
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
        class_names: names of the classes, stored in the report.
        settings: extra JSON-ready settings stored in the report's ``settings`` (checkpoint, data set, ...).
        device: where to run the generator and the feature network.

    Returns:
        the :func:`evaluate_synthesis` result with a ``generator`` entry (classes, images per class, and for
        conditional models each class's own pairwise MS-SSIM) and ``files`` (name -> path of what was written).
    """
    fake, labels = generate_per_class(network, num_per_class, seed=seed, batch_size=batch_size, device=device)
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
    result["settings"].update(settings or {})
    num_classes = int(getattr(network, "num_classes", 0))
    names = list(class_names) if class_names else [str(k) for k in range(max(num_classes, 1))]
    per_class = {}
    if labels is not None and num_per_class >= 2:
        for k in range(num_classes):
            per_class[names[k] if k < len(names) else str(k)] = pairwise_ms_ssim(
                fake[labels == k], num_pairs, seed
            ).as_dict()
    result["generator"] = {
        "num_classes": num_classes,
        "class_names": names if num_classes > 0 else [],
        "num_per_class": num_per_class,
        "resolution": int(fake.shape[-1]),
        "per_class_ms_ssim_fake": per_class,
    }
    log = Path(training_log) if training_log else None
    health = Path(health_log) if health_log and Path(health_log).is_file() else None
    if health is not None:
        rows = load_training_log(health)
        changes = [
            {"epoch": r.get("epoch"), "iteration": r.get("iteration"), "diagnosis": r["diagnosis"]}
            for i, r in enumerate(rows)
            if "diagnosis" in r and (i == 0 or rows[i - 1].get("diagnosis") != r["diagnosis"])
        ]
        final = rows[-1]
        result["health"] = {
            "final": {"diagnosis": final.get("diagnosis"), "evidence": final.get("evidence")},
            "changes": changes,
            "log": str(health),
        }
    result["files"] = write_report(
        result,
        output_dir,
        real=real,
        fake=fake,
        training_log=log if log is not None and log.is_file() else None,
        health_log=health,
    )
    return result
