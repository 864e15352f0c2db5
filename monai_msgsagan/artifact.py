"""The generator artifact: a trained generator's weights with the record of what it is, and its one loader.

``models/model.pt`` stays the flat state dict the Model Zoo expects. Every weights file has its record beside it,
its name with ``.json`` (``models/model.json``, ``models/model_best.json``): ``{"generator_record": {...}}``
(:class:`GeneratorRecord`), what the weights alone do not say: the network arguments, the class names, the training
data's settings and the identity of every training image (so that an evaluation can prove it did not score the
generator on images it was trained on), the recipe, the package version and the weights' SHA-256. Training writes
the weights first, then their record (:func:`save_record`), so a run that fails before it has weights to export
leaves the previous pair as it was. A TorchScript export carries ``model.json`` inside (``ckpt_export ...
--config_file "['configs/inference.json','models/model.json']"``). :func:`load_generator` reads either, checks the
record as a schema (:meth:`GeneratorRecord.from_dict`) and refuses anything else, or weights whose record names
other weights, with a :class:`ModelError`.

Training-image identities are strings: ``sha256:<hex>`` of the file bytes for files (so a copy of a training
image under another name is still recognised), ``phantom:<seed>:<index>`` for the procedural phantoms (a
phantom is a pure function of its data set seed and index, whatever the resolution).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from monai_msgsagan._version import __version__
from monai_msgsagan.data.sources import TrainingData
from monai_msgsagan.data.spec import DataSpec
from monai_msgsagan.files import atomic_write_text, file_sha256
from monai_msgsagan.networks import InferenceGenerator

__all__ = [
    "MAX_RECORD_BYTES",
    "MAX_RECORD_DEPTH",
    "RECORD_FORMAT",
    "RECORD_KEY",
    "RECORD_NAME",
    "DataLeakageError",
    "GeneratorArtifact",
    "GeneratorRecord",
    "ModelError",
    "UnknownClassError",
    "check_no_leakage",
    "find_overlap",
    "load_generator",
    "record_path",
    "resolve_class",
    "save_record",
    "training_record",
]

#: Version of the record's layout (3: it names its weights' SHA-256). Formats 1 (0.3.0: the record's fields at the
#: top level of model.json) and 2 (0.4.0) are read too: inside a TorchScript export, whose weights travel with their
#: record; beside a ``model.pt`` they cannot show which weights they describe and are refused.
RECORD_FORMAT = 3
#: Largest record file read (bytes): about 400,000 training images' identities and names.
MAX_RECORD_BYTES = 64 * 2**20
#: Deepest nesting of JSON arrays and objects in a record (a record written by this package nests 5 deep).
MAX_RECORD_DEPTH = 32
#: File name of the record, beside the weights.
RECORD_NAME = "model.json"
#: Key of the record in ``model.json`` (so that ``model.json`` is a harmless extra bundle config file).
RECORD_KEY = "generator_record"
#: The bundle metadata that ``python -m monai.bundle ckpt_export`` stores in a TorchScript file.
_METADATA_FILE = "metadata.json"

_NETWORK_KEYS = ("resolution", "latent_dim", "channels", "attention_resolutions", "num_classes")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EXPORT_HINT = (
    "export it with python -m monai.bundle ckpt_export network_def --filepath models/model.ts "
    "--ckpt_file models/model.pt --meta_file configs/metadata.json "
    "--config_file \"['configs/inference.json','models/model.json']\""
)


class ModelError(ValueError):
    """A model file that is not a usable generator artifact; the message names the file and the reason."""


class DataLeakageError(ValueError):
    """Images that a generator was trained on were given as held-out test images."""


class UnknownClassError(ValueError):
    """A requested class that is not one of the classes; the message names the valid ones."""


def resolve_class(
    requested: int | str | None, class_names: Sequence[str], where: str = "class", default: int = 0
) -> tuple[int, str | None]:
    """The one class resolution: ``(index, name)`` of a requested class.

    Args:
        requested: a class index in ``[0, len(class_names))``, a class name, or ``None`` for the default class.
        class_names: the classes in class index order (a generator's :attr:`GeneratorRecord.class_names`; empty for
            an unconditional generator, which takes only ``None`` and gives ``(0, None)``).
        where: what the error message names (a request field, a datalist record).
        default: the index ``None`` stands for: the first class, or a model's
            :attr:`GeneratorArtifact.default_class` (the class a TorchScript export was made for).

    Raises:
        UnknownClassError: any other request, naming the valid classes.
    """
    names = list(class_names)
    if requested is None:
        return (default, names[default]) if names else (0, None)
    if isinstance(requested, int) and not isinstance(requested, bool) and 0 <= requested < len(names):
        return requested, names[requested]
    if isinstance(requested, str) and requested in names:
        return names.index(requested), requested
    if not names:
        raise UnknownClassError(f"{where} {_shown(requested)} asked of an unconditional generator (it has no classes).")
    raise UnknownClassError(
        f"{where} {_shown(requested)} is not one of the classes {names} (a name, or an index in [0, {len(names)}))."
    )


def record_path(model_path: str | os.PathLike) -> Path:
    """The record of a weights file: its path with ``.json`` for ``.pt`` (``models/model.pt``:
    ``models/model.json``; the health monitor's ``models/model_best.pt``: ``models/model_best.json``)."""
    return Path(model_path).with_suffix(".json")


def _fail(field_name: str, reason: str) -> ModelError:
    return ModelError(f"generator record: field {field_name}: {reason}.")


def _too_large(source: str | os.PathLike, size: int) -> ModelError:
    return ModelError(
        f"{source}: {size / 2**20:.1f} MiB, more than a generator record's limit of {MAX_RECORD_BYTES / 2**20:.0f} "
        "MiB; not read."
    )


def _too_deep(where: str) -> ModelError:
    return ModelError(
        f"{where}nested deeper than {MAX_RECORD_DEPTH} levels (a generator record nests 5 deep: not a record this "
        "package wrote)."
    )


def _parse_record_json(text: str | bytes, source: str | os.PathLike) -> Any:
    """``json.loads`` of a record's text, bounded in size and nesting (:data:`MAX_RECORD_DEPTH`, checked without
    recursion); :class:`ModelError` naming ``source``."""
    if len(text) > MAX_RECORD_BYTES:
        raise _too_large(source, len(text))
    try:
        raw = json.loads(text)
    except RecursionError:
        raise _too_deep(f"{source}: ") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{source}: unreadable generator record ({e}).") from e
    todo: list[tuple[Any, int, str]] = [(raw, 1, "")]
    while todo:
        value, depth, where = todo.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_RECORD_DEPTH:
                raise _too_deep(f"{source}: field {where or '(top level)'}: ")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            todo += [(v, depth + 1, f"{where}.{k}" if where else str(k)) for k, v in items]
    return raw


def _string_list(value: Any, field_name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(field_name, f"expected a list of strings, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class GeneratorRecord:
    """What a trained generator is.

    Attributes:
        network: :class:`~monai_msgsagan.networks.InferenceGenerator` keyword arguments (``resolution``,
            ``latent_dim``, ``channels``, ``attention_resolutions``, ``num_classes``).
        class_names: class names in class index order (empty for an unconditional generator).
        training_data: ``{"source": <folder, CSV or "phantoms">, "settings": {...}, "num_images": N,
            "item_ids": [...], "item_names": [...]}``: the :class:`~monai_msgsagan.data.DataSpec` of the images
            (``asdict``; :attr:`data_spec`), and the identity (see the module docstring) and a readable name of every
            training image, in the same order.
        recipe: the training settings (loss, learning rates, batch size, epochs, ...), for the reader.
        version: ``monai_msgsagan.__version__`` of the training run.
        weights_sha256: hex SHA-256 of the weights file the record describes (set by :func:`save_record`; empty in
            a record not yet bound to weights, and in formats 1 and 2).

    Raises:
        ModelError: naming the field and the reason, for a record that cannot be right: a missing or mistyped
            field, class names that are empty, repeated or not ``num_classes`` of them, a ``num_images`` or an
            ``item_names`` list that does not match ``item_ids``, data settings that are not a ``DataSpec``, a
            malformed SHA-256.
    """

    network: dict[str, Any]
    class_names: list[str]
    training_data: dict[str, Any]
    recipe: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    weights_sha256: str = ""
    format: int = RECORD_FORMAT

    def __post_init__(self) -> None:
        if not isinstance(self.network, Mapping):
            raise _fail("network", f"expected an object, got {_shown(self.network)}")
        missing = [k for k in _NETWORK_KEYS if k not in self.network]
        if missing:
            raise ModelError(f"generator record: network arguments {missing} are missing.")
        self.network = {k: self.network[k] for k in _NETWORK_KEYS}
        for key in ("resolution", "latent_dim", "num_classes"):
            value = self.network[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _fail(f"network.{key}", f"expected a non-negative integer, got {_shown(value)}")
        for key in ("channels", "attention_resolutions"):
            values = self.network[key]
            if not isinstance(values, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
            ):
                raise _fail(f"network.{key}", f"expected a list of positive integers, got {_shown(values)}")
            self.network[key] = [int(v) for v in values]
        num_classes = self.network["num_classes"]
        if not isinstance(self.class_names, list) or not all(
            isinstance(c, str) and c.strip() for c in self.class_names
        ):
            raise _fail("class_names", f"expected a list of non-empty strings, got {_shown(self.class_names)}")
        repeated = sorted({c for c in self.class_names if self.class_names.count(c) > 1})
        if repeated:
            raise _fail("class_names", f"{repeated} named more than once (a class name must pick one class)")
        if len(self.class_names) != num_classes:
            raise _fail("class_names", f"{num_classes} classes in the network but class names {list(self.class_names)}")
        self._check_training_data()
        if not isinstance(self.recipe, Mapping):
            raise _fail("recipe", f"expected an object, got {_shown(self.recipe)}")
        if not isinstance(self.version, str):
            raise _fail("version", f"expected a string, got {_shown(self.version)}")
        if self.weights_sha256 and not (isinstance(self.weights_sha256, str) and _SHA256.match(self.weights_sha256)):
            raise _fail("weights_sha256", f"expected 64 lower-case hex digits, got {_shown(self.weights_sha256)}")
        self.format = RECORD_FORMAT

    def _check_training_data(self) -> None:
        data = self.training_data
        if not isinstance(data, Mapping):
            raise _fail("training_data", f"expected an object, got {_shown(data)}")
        if "item_ids" not in data:
            raise ModelError("generator record: training_data has no item_ids list.")
        ids = _string_list(data["item_ids"], "training_data.item_ids")
        if "item_names" in data:
            names = _string_list(data["item_names"], "training_data.item_names")
            if len(names) != len(ids):
                raise _fail("training_data.item_names", f"{len(names)} names for {len(ids)} item_ids")
        count = data.get("num_images")
        if isinstance(count, bool) or not isinstance(count, int) or count != len(ids):
            raise _fail(
                "training_data.num_images",
                f"says {_shown(count)} training images but item_ids lists {len(ids)} (an emptied or edited record "
                "cannot prove which images the generator saw)",
            )
        source = data.get("source", "phantoms")
        if not isinstance(source, str):
            raise _fail("training_data.source", f"expected a string, got {_shown(source)}")
        settings = data.get("settings", {})
        if not isinstance(settings, dict):
            raise _fail("training_data.settings", f"expected an object, got {_shown(settings)}")
        try:  # format 1 has no settings: its source names the data
            data["settings"] = asdict(DataSpec(**{"dataset_dir": "" if source == "phantoms" else source, **settings}))
        except TypeError as e:
            raise _fail("training_data.settings", f"not a data specification ({e})") from None

    @property
    def training_ids(self) -> set[str]:
        """Identities of the training images."""
        return set(self.training_data["item_ids"])

    @property
    def data_spec(self) -> DataSpec:
        """Which images the generator was trained on (fields a record does not hold, as in format 1, at their
        defaults)."""
        return DataSpec(**self.training_data["settings"])

    def to_dict(self) -> dict[str, Any]:
        """``{"generator_record": {...}}``: the content of ``model.json``."""
        return {RECORD_KEY: asdict(self)}

    def save(self, path: str | os.PathLike, extra: Mapping[str, Any] | None = None) -> Path:
        """Write the record (atomically) as ``{"generator_record": {...}, **extra}``; returns the path. To write the
        record of a weights file, use :func:`save_record`, which binds the two."""
        return atomic_write_text(path, json.dumps({**(extra or {}), **self.to_dict()}, indent=1))

    @classmethod
    def from_dict(cls, raw: Any, source: str | os.PathLike) -> GeneratorRecord:
        """The record in ``raw`` (the content of ``model.json`` or of an export's ``metadata.json``).

        Raises:
            ModelError: naming ``source`` and what is missing or wrong.
        """
        if isinstance(raw, Mapping) and RECORD_KEY in raw:
            raw = raw[RECORD_KEY]
        if not isinstance(raw, Mapping):
            raise ModelError(f"{source}: a generator record is a JSON object, got {type(raw).__name__}.")
        if raw.get("format") not in (1, 2, RECORD_FORMAT):
            raise ModelError(f"{source}: record format {raw.get('format')!r}, this package reads 1 to {RECORD_FORMAT}.")
        try:
            return cls(
                **{k: raw[k] for k in ("network", "class_names", "training_data", "version")},
                recipe=raw.get("recipe", {}),
                weights_sha256=raw.get("weights_sha256", ""),
            )
        except KeyError as e:
            raise ModelError(f"{source}: generator record has no {e.args[0]!r}.") from None
        except ModelError as e:
            raise ModelError(f"{source}: {e}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> GeneratorRecord:
        """Read ``model.json``; :class:`ModelError` naming the file and the reason when it cannot be used."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(
                f"{path}: generator record not found (it is written beside models/model.pt by the bundle's training; "
                "weights without their record cannot say what network they are or what they were trained on)."
            )
        try:
            if path.stat().st_size > MAX_RECORD_BYTES:
                raise _too_large(path, path.stat().st_size)
            text = path.read_bytes()
        except OSError as e:
            raise ModelError(f"{path}: unreadable generator record ({e}).") from e
        return cls.from_dict(_parse_record_json(text, path), path)


def save_record(
    record: GeneratorRecord, weights_path: str | os.PathLike, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``record`` as the record of the weights file ``weights_path`` (:func:`record_path`), naming the file's
    SHA-256: call it after the weights are written (atomically), so the two are written together and the record
    never describes weights that do not exist yet. ``extra``: more top-level keys of the file. Returns the record's
    path."""
    bound = dataclasses.replace(record, weights_sha256=file_sha256(weights_path))
    return bound.save(record_path(weights_path), extra)


def training_record(
    network: Mapping[str, Any], data: TrainingData, recipe: Mapping[str, Any] | None = None
) -> GeneratorRecord:
    """The record of a training run on ``data`` (what ``train.json`` saves beside ``models/model.pt``).

    Args:
        network: the generator's network arguments (see :attr:`GeneratorRecord.network`).
        data: the training set; its data specification and the identity of each of its images are recorded.
        recipe: training settings to keep with the model.
    """
    network = dict(network)
    ids, names = data.identities()
    return GeneratorRecord(
        network=network,
        class_names=list(data.class_names) if int(network.get("num_classes", 0)) > 0 else [],
        training_data={
            "source": data.source,
            "settings": asdict(data.spec),
            "num_images": len(ids),
            "item_ids": ids,
            "item_names": names,
        },
        recipe=dict(recipe or {}),
        version=__version__,
    )


@dataclass
class GeneratorArtifact:
    """A trained generator ready to make images, with its record and its identity.

    Attributes:
        network: an :class:`~monai_msgsagan.networks.InferenceGenerator` or its TorchScript export, in eval mode:
            ``z`` ``(B, latent_dim)`` [+ ``labels`` ``(B,)`` int64] -> ``(B, 1, R, R)`` in [-1, 1]. Make images
            with :func:`~monai_msgsagan.generation.generate`.
        record: what the generator is (:class:`GeneratorRecord`).
        path: the weights or TorchScript file.
        sha256: hex SHA-256 of that file (the model's identity in reports, caches and DICOM).
        name, version: the bundle ``name``/``version`` stored in a TorchScript export; for ``model.pt`` the file
            stem and the record's package version.
    """

    network: nn.Module
    record: GeneratorRecord
    path: Path
    sha256: str
    name: str
    version: str

    @property
    def latent_dim(self) -> int:
        return int(self.record.network["latent_dim"])

    @property
    def num_classes(self) -> int:
        return int(self.record.network["num_classes"])

    @property
    def resolution(self) -> int:
        return int(self.record.network["resolution"])

    @property
    def class_names(self) -> list[str]:
        return list(self.record.class_names)

    @property
    def default_class(self) -> int:
        """The class the network generates when called with latents only: the one a TorchScript export was made
        for (``--class`` at export), else 0."""
        return int(getattr(self.network, "default_class", 0)) if self.num_classes > 0 else 0

    def resolve_class(self, requested: int | str | None, where: str = "class") -> tuple[int, str | None]:
        """``(index, name)`` of a class of this model (:func:`resolve_class`; ``None``: :attr:`default_class`)."""
        return resolve_class(requested, self.class_names, where, self.default_class)

    def network_for_class(self, index: int) -> nn.Module:
        """The network, set to generate class ``index`` (from :func:`resolve_class`) when it is called with latents
        only, ``z`` ``(B, latent_dim)`` -> ``(B, 1, R, R)`` in [-1, 1]: what the bundle's inference evaluator feeds
        it."""
        if self.num_classes > 0:
            self.network.default_class = index  # an InferenceGenerator's, or its TorchScript export's, attribute
        return self.network

    def identity(self) -> dict[str, Any]:
        """JSON-ready description of the model (no weights, no training image list)."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "name": self.name,
            "version": self.version,
            "class_names": self.class_names,
            "network": dict(self.record.network),
            "package_version": self.record.version,
        }


def load_generator(model_path: str | os.PathLike, device: str | torch.device = "cpu") -> GeneratorArtifact:
    """Load a generator artifact: ``models/model.pt`` with its ``models/model.json``, or a TorchScript export
    carrying that ``model.json`` inside.

    Raises:
        ModelError: naming the file and the reason: missing file or record, a record that fails its schema
            (:class:`GeneratorRecord`) or names other weights (its ``weights_sha256`` is not the file's: weights and
            record of different runs), a file that is neither a weights-only state dict nor TorchScript, weights or
            a scripted network that do not fit the record.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"{path}: generator model not found (train the bundle first, or check the path).")
    if not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path} is neither a TorchScript export nor a PyTorch state dict (both are zip archives; this file is "
            "not one: damaged, truncated, or another kind of file)."
        )
    sha256 = file_sha256(path)
    if _is_torchscript(path):
        network, record, metadata = _load_torchscript(path, device)
        name, version = str(metadata.get("name", path.stem)), str(metadata.get("version", record.version))
    else:
        record = GeneratorRecord.load(record_path(path))
        _check_binding(path, record, sha256)
        network = _load_state_dict(path, record).to(device)
        name, version = path.stem, record.version
    return GeneratorArtifact(network.eval(), record, path, sha256, name, version)


def _check_binding(path: Path, record: GeneratorRecord, sha256: str) -> None:
    """Refuse weights that are not the ones their record describes (:class:`ModelError` naming both files)."""
    if not record.weights_sha256:
        raise ModelError(
            f"{record_path(path)} does not name the SHA-256 of the weights it describes (record format <= 2, from "
            f"monai-msgsagan 0.4.0 or older), so nothing shows that {path} is that model. Retrain; or, if you know "
            'these weights and this record come from the same run, bind them with python -c "from '
            "monai_msgsagan.artifact import GeneratorRecord, save_record; "
            f"save_record(GeneratorRecord.load('{record_path(path)}'), '{path}')\"."
        )
    if record.weights_sha256 != sha256:
        raise ModelError(
            f"{path} (SHA-256 {sha256[:16]}...) is not the model its record {record_path(path)} describes (weights "
            f"SHA-256 {record.weights_sha256[:16]}...): they come from different training runs (one that stopped "
            "between writing the two, or files copied or edited separately), so the record's classes and training "
            "data would be wrong for these weights. Use the weights and the record of one run, or train again."
        )


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with a ``constants.pkl``; ``torch.save`` zips have none."""
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") for n in archive.namelist())


def _load_torchscript(path: Path, device: str | torch.device) -> tuple[nn.Module, GeneratorRecord, dict]:
    extra = {_METADATA_FILE: "", RECORD_NAME: ""}
    try:
        network = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as e:  # torch.jit.load raises RuntimeError/ValueError variants for damaged archives
        raise ModelError(
            f"{path} is not a loadable TorchScript model ({type(e).__name__}: {str(e).splitlines()[0]})."
        ) from e
    try:
        metadata = json.loads(extra[_METADATA_FILE]) if extra[_METADATA_FILE] else {}
    except (json.JSONDecodeError, RecursionError) as e:
        raise ModelError(f"{path}: its {_METADATA_FILE} is not usable JSON ({type(e).__name__}).") from None
    raw_record = _parse_record_json(extra[RECORD_NAME], f"{path} ({RECORD_NAME})") if extra[RECORD_NAME] else None
    if raw_record is None:
        raise ModelError(f"{path}: the TorchScript file carries no generator record ({RECORD_NAME}); {_EXPORT_HINT}.")
    record = GeneratorRecord.from_dict(raw_record, path)
    for key in ("latent_dim", "num_classes", "resolution"):
        if getattr(network, key, None) != record.network[key]:
            raise ModelError(
                f"{path}: the scripted network's {key} is {getattr(network, key, None)!r} but its record says "
                f"{record.network[key]!r} (is it an InferenceGenerator exported with its own models/model.json?)."
            )
    return network, record, metadata


def _load_state_dict(path: Path, record: GeneratorRecord) -> nn.Module:
    try:
        network = InferenceGenerator(**record.network)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{record_path(path)}: the network arguments do not build an InferenceGenerator ({e}).") from e
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # PyTorch's text advises weights_only=False (arbitrary code execution): keep only the reason, unchained
        found = re.search(r"WeightsUnpickler error: (.*?)(?:\. |\.?\n|\.?$)", str(err))
        reason = found.group(1) if found else "it holds Python objects other than tensors and plain containers"
        raise ModelError(
            f"{path}: cannot be loaded as a weights-only state dict ({reason}); export the generator's "
            "state_dict() (tensors only), as the bundle's training does, from a run you trust"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        first = str(err).strip().split(". ")[0].splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"{path}: unreadable as a PyTorch file ({first}); the file is damaged or incomplete") from None
    if not isinstance(state, Mapping):
        raise ModelError(f"{path}: expected a generator state dict, got {type(state).__name__}.")
    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"{path}: the weights do not fit the network of {record_path(path)}: {err}") from None
    return network


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
