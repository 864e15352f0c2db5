"""The bundle's own training recipe for the benchmarks: ``bundle/configs/train.json`` parsed by MONAI's
``ConfigParser`` with a benchmark's overrides, so that a benchmark trains what the bundle trains and cannot drift
from it. Benchmarks import it as ``bundle_recipe`` (a script's own folder is on ``sys.path``).

The returned parser gives the parts by their config ids: ``train#trainer`` (a
:class:`~monai_msgsagan.engines.MultiScaleGanTrainer`), ``train#g_net``, ``train#d_net``, ``train#ema_net``,
``train#g_optimizer``, ``train#d_optimizer``, ``train#dataset``, ``train#handlers``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

TRAIN_CONFIG = Path(__file__).resolve().parents[1] / "bundle" / "configs" / "train.json"


def bundle_recipe(
    overrides: Mapping[str, Any] | None = None,
    handlers: Mapping[str, Mapping[str, Any]] | None = None,
    data_loader: Iterable | None = None,
) -> ConfigParser:
    """``train.json`` with ``overrides`` applied.

    Args:
        overrides: config ids and their values (``{"resolution": 32, "train#trainer#d_train_steps": 5}``); a value
            may be an object (a loss instance), used as it is.
        handlers: the training handlers to keep, by class name, each with overrides of its arguments
            (``{"GeneratorEMA": {}}``, the default); the others (checkpoints, resume, TensorBoard, samples, ...)
            are left out.
        data_loader: batches ``{"image": (B, 1, R, R) in [-1, 1], "label": (B,)}`` that replace the bundle's
            data loader (the networks still take their number of classes from the bundle's data).
    """
    parser = ConfigParser()
    parser.read_config(TRAIN_CONFIG)
    parser.update(dict(overrides or {}))
    keep = {"GeneratorEMA": {}} if handlers is None else handlers
    kept = []
    for handler in parser["train#handlers"]:
        name = handler["_target_"].rsplit(".", 1)[-1]
        if name in keep:
            kept.append({**handler, **keep[name]})
    missing = sorted(set(keep) - {h["_target_"].rsplit(".", 1)[-1] for h in kept})
    if missing:
        raise ValueError(f"{TRAIN_CONFIG}: no training handler {missing} to keep.")
    parser["train#handlers"] = kept
    if data_loader is not None:
        parser["train#dataloader"] = data_loader
    return parser
