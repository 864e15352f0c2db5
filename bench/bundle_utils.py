"""Run real ``python -m monai.bundle`` commands on copies of the repo's bundle in subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from monai.data import save_net_with_metadata

from monai_msgsagan.artifact import RECORD_NAME, GeneratorRecord
from monai_msgsagan.handlers.checkpoint_saver import save_generator
from monai_msgsagan.networks import InferenceGenerator, MultiScaleGenerator

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = REPO_ROOT / "bundle"

#: a tiny network and data set that keep a bundle run to seconds on one CPU core
TINY = {
    "resolution": "32",
    "channels": "[16,16,16,8]",
    "attention_resolutions": "[16]",
}
TINY_TRAIN = {**TINY, "num_phantoms": "32", "batch_size": "8", "max_epochs": "2", "health_interval": "4"}


def copy_bundle(dest: Path) -> Path:
    """A copy of ``bundle/`` (configs, docs, LICENSE, ...) without models or logs."""
    shutil.copytree(BUNDLE_DIR, dest, ignore=shutil.ignore_patterns("models", "logs", "eval", "__pycache__"))
    return dest


def bundle_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def overrides(values: dict[str, str]) -> list[str]:
    return [item for k, v in values.items() for item in (f"--{k}", v)]


def run_bundle(command: str, bundle: Path, *args: str, timeout: int = 600, check: bool = True, **kw):
    """``python -m monai.bundle <command> ...`` with the bundle's metadata and logging config."""
    cmd = [sys.executable, "-m", "monai.bundle", command, *args]
    cmd += ["--meta_file", str(bundle / "configs" / "metadata.json")]
    if command == "run":
        cmd += ["--logging_file", str(bundle / "configs" / "logging.conf")]
    proc = subprocess.run(cmd, env=bundle_env(), capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def train_bundle(bundle: Path, values: dict[str, str], **kw):
    """``python -m monai.bundle run training`` of ``bundle`` (its own ``train.json``, ``bundle_root`` = ``bundle``)
    with ``--key value`` overrides."""
    config = str(bundle / "configs" / "train.json")
    return run_bundle("run", bundle, "training", "--config_file", config, "--bundle_root", str(bundle),
                      *overrides(values), **kw)  # fmt: skip


#: the tiny class-conditional generator of the unit tests (32 px, attention at 16x16)
TINY_GENERATOR = {"resolution": 32, "latent_dim": 128, "channels": [16, 16, 16, 8], "attention_resolutions": [16],
                  "num_classes": 2}  # fmt: skip


def tiny_generator(network_args: dict | None = None, seed: int = 0, multiscale: bool = False) -> torch.nn.Module:
    """A seeded, untrained generator (:data:`TINY_GENERATOR` unless ``network_args``): the scriptable
    ``InferenceGenerator`` in eval mode, or the training ``MultiScaleGenerator``."""
    torch.manual_seed(seed)
    if multiscale:
        return MultiScaleGenerator(**(network_args or TINY_GENERATOR))
    return InferenceGenerator(**(network_args or TINY_GENERATOR)).eval()


def save_generator_artifact(
    network: torch.nn.Module,
    network_args: dict,
    class_names: list[str],
    path: Path,
    name: str = "msgsagan_tiny",
    version: str = "0.0.1",
    training_ids: list[str] | None = None,
) -> Path:
    """Save a generator the two ways it ships, with its record (:class:`~monai_msgsagan.artifact.GeneratorRecord`):

    - ``path`` ending in ``.pt``: the flat state dict (atomically), then ``model.json`` beside it naming its
      SHA-256, as the bundle's training writes them (:func:`~monai_msgsagan.handlers.checkpoint_saver.save_generator`);
    - otherwise (``.ts``): TorchScript with ``model.json`` inside, as ``python -m monai.bundle ckpt_export
      --config_file "['configs/inference.json','models/model.json']"`` writes it (``network`` may be any scriptable
      module with ``latent_dim``/``num_classes``/``resolution`` attributes).
    """
    ids = list(training_ids or [])
    record = GeneratorRecord(
        network=network_args,
        class_names=list(class_names),
        training_data={"source": "phantoms", "num_images": len(ids), "item_ids": ids, "item_names": ids},
        version=version,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pt":
        save_generator(network, path, record)
    else:
        save_net_with_metadata(
            torch.jit.script(network),
            str(path.with_suffix("")),
            meta_values={"name": name, "version": version},
            more_extra_files={RECORD_NAME: json.dumps(record.to_dict()).encode()},
        )
    return path
