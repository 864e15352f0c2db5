"""The record of a trained generator: what ``models/model.pt`` is, written beside it as ``models/model.json``.

``models/model.pt`` stays the flat state dict the Model Zoo expects. Its record holds what the weights alone do
not say: the :class:`~monai_msgsagan.networks.InferenceGenerator` arguments, the class names in class order, the
identity of every training image (so that an evaluation can prove it did not score the generator on images it
was trained on), the training recipe and the package version. The bundle's ``train.json`` writes it when a run
starts; :func:`load_generator` reads weights and record together.

Training-image identities are strings: ``sha256:<hex>`` of the file bytes for files (so a copy of a training
image under another name is still recognised), ``phantom:<seed>:<index>`` for the procedural phantoms (a
phantom is a pure function of its data set seed and index, whatever the resolution).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from monai_msgsagan.data.sources import TrainingData
from monai_msgsagan.label.files import atomic_write_text
from monai_msgsagan.label.generator import SyntheticGenerator

__all__ = [
    "RECORD_FORMAT",
    "RECORD_NAME",
    "DataLeakageError",
    "GeneratorRecord",
    "RecordError",
    "check_no_leakage",
    "find_overlap",
    "load_generator",
    "record_path",
    "training_record",
]

#: Version of the record's layout; a record with another format is refused.
RECORD_FORMAT = 1
#: File name of the record, beside the weights.
RECORD_NAME = "model.json"

_NETWORK_KEYS = ("resolution", "latent_dim", "channels", "attention_resolutions", "num_classes")


class RecordError(ValueError):
    """A generator record is missing, unreadable or does not describe the weights beside it."""


class DataLeakageError(ValueError):
    """Images that a generator was trained on were given as held-out test images."""


def record_path(model_path: str | os.PathLike) -> Path:
    """The record of a weights file: ``model.json`` in its folder (one record per training run, so
    ``models/model.pt`` and the health monitor's ``models/model_best.pt`` share ``models/model.json``)."""
    return Path(model_path).parent / RECORD_NAME


@dataclass
class GeneratorRecord:
    """What a trained generator is.

    Attributes:
        network: :class:`~monai_msgsagan.networks.InferenceGenerator` keyword arguments (``resolution``,
            ``latent_dim``, ``channels``, ``attention_resolutions``, ``num_classes``).
        class_names: class names in class index order (empty for an unconditional generator).
        training_data: ``{"source": <folder, CSV or "phantoms">, "num_images": N, "item_ids": [...],
            "item_names": [...]}``: the identity (see the module docstring) and a readable name of every
            training image, in the same order.
        recipe: the training settings (loss, learning rates, batch size, epochs, ...), for the reader.
        version: ``monai_msgsagan.__version__`` of the training run.
    """

    network: dict[str, Any]
    class_names: list[str]
    training_data: dict[str, Any]
    recipe: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    format: int = RECORD_FORMAT

    def __post_init__(self) -> None:
        missing = [k for k in _NETWORK_KEYS if k not in self.network]
        if missing:
            raise RecordError(f"generator record: network arguments {missing} are missing.")
        self.network = {k: self.network[k] for k in _NETWORK_KEYS}
        self.network["channels"] = [int(c) for c in self.network["channels"]]
        self.network["attention_resolutions"] = [int(r) for r in self.network["attention_resolutions"]]
        num_classes = int(self.network["num_classes"])
        if num_classes > 0 and len(self.class_names) != num_classes:
            raise RecordError(
                f"generator record: {num_classes} classes in the network but class names {list(self.class_names)}."
            )
        ids = self.training_data.get("item_ids")
        if not isinstance(ids, list):
            raise RecordError("generator record: training_data has no item_ids list.")

    @property
    def training_ids(self) -> set[str]:
        """Identities of the training images."""
        return set(self.training_data["item_ids"])

    def save(self, path: str | os.PathLike) -> Path:
        """Write the record as JSON (atomically); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> GeneratorRecord:
        """Read a record; :class:`RecordError` naming the file and the reason when it cannot be used."""
        path = Path(path)
        if not path.is_file():
            raise RecordError(
                f"{path}: generator record not found (it is written beside models/model.pt by the bundle's training; "
                "weights without their record cannot say what they were trained on)."
            )
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RecordError(f"{path}: unreadable generator record ({e}).") from e
        if not isinstance(raw, Mapping):
            raise RecordError(f"{path}: a generator record is a JSON object, got {type(raw).__name__}.")
        if raw.get("format") != RECORD_FORMAT:
            raise RecordError(f"{path}: record format {raw.get('format')!r}, this package reads {RECORD_FORMAT}.")
        try:
            return cls(**{k: raw[k] for k in ("network", "class_names", "training_data", "recipe", "version")})
        except KeyError as e:
            raise RecordError(f"{path}: generator record has no {e.args[0]!r}.") from None
        except RecordError as e:
            raise RecordError(f"{path}: {e}") from None


def training_record(
    network: Mapping[str, Any], data: TrainingData, recipe: Mapping[str, Any] | None = None
) -> GeneratorRecord:
    """The record of a training run on ``data`` (what ``train.json`` saves beside ``models/model.pt``).

    Args:
        network: the generator's network arguments (see :attr:`GeneratorRecord.network`).
        data: the training set; the identity of each of its images is recorded.
        recipe: training settings to keep with the model.
    """
    from monai_msgsagan import __version__

    network = dict(network)
    ids, names = data.identities()
    return GeneratorRecord(
        network=network,
        class_names=list(data.class_names) if int(network.get("num_classes", 0)) > 0 else [],
        training_data={"source": data.source, "num_images": len(ids), "item_ids": ids, "item_names": names},
        recipe=dict(recipe or {}),
        version=__version__,
    )


def find_overlap(
    train_ids: Iterable[str], train_names: Iterable[str], test_ids: Iterable[str], test_names: Iterable[str]
) -> list[tuple[str, str]]:
    """``(test name, train name)`` of every test image whose identity is also a train image's."""
    train_name = dict(zip(train_ids, train_names))
    return [(name, train_name[i]) for i, name in zip(test_ids, test_names) if i in train_name]


def check_no_leakage(record: GeneratorRecord, test_ids: Iterable[str], test_names: Iterable[str]) -> None:
    """Refuse test images that the generator was trained on.

    Raises:
        DataLeakageError: naming the test images (up to 10, and how many in all) found in the record's training
            data, with the training image each one matches.
    """
    data = record.training_data
    leaked = find_overlap(data["item_ids"], data.get("item_names", data["item_ids"]), test_ids, test_names)
    if leaked:
        shown = "; ".join(f"{t} (= training image {g})" for t, g in leaked[:10])
        raise DataLeakageError(
            f"{len(leaked)} held-out test image(s) were in the generator's training data, so it would be scored on "
            f"images it has seen: {shown}{' ...' if len(leaked) > 10 else ''}. Train the generator on a split "
            "that excludes the test images."
        )


def load_generator(
    model_path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[SyntheticGenerator, GeneratorRecord]:
    """Load ``models/model.pt`` with its record ``models/model.json``: the network is built from the record.

    Returns:
        ``(generator, record)``: a :class:`~monai_msgsagan.label.generator.SyntheticGenerator` (images from seeds,
        ``(N, C, R, R)`` in [-1, 1]) and the record.

    Raises:
        RecordError: no or bad record; ValueError: the weights do not fit the record's network (naming the file).
    """
    record = GeneratorRecord.load(record_path(model_path))
    return SyntheticGenerator.from_file(model_path, record.network, device), record
