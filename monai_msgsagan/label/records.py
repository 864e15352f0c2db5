"""Class labels of classification datalist records: an index, a class name, or a small label file."""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_msgsagan.artifact import resolve_class

__all__ = ["REPEAT_KEY", "SYNTHETIC_KEY", "ClassIndexd", "class_counts", "read_class_index"]

#: Datalist key that marks a record as generated, so nothing downstream takes it for real data.
SYNTHETIC_KEY = "synthetic"
#: Key marking a record that repeats a real record (the every-class mix), so it can be told from the original.
REPEAT_KEY = "repeat"


def read_class_index(value: Any, classes: Sequence[str], where: str = "label") -> int:
    """Class index in ``[0, len(classes))`` of a record's label.

    Args:
        value: an ``int`` class index (or a 1-element tensor, or the index as text); a class name from ``classes``;
            or the path of a label file: ``*.json`` holding ``{"label": <index or name>}`` (the MONAI Label
            datastore form used by ``apps/monailabel_xray``), or a text file holding the index or the name. The
            index or name is resolved by :func:`~monai_msgsagan.artifact.resolve_class`.
        classes: class names, in the generator's and classifier's index order.
        where: what to name in error messages (a record id or a file).

    Raises:
        ValueError: no label, an unknown class (:class:`~monai_msgsagan.artifact.UnknownClassError`), or an
            unreadable label file, naming ``where`` or the file.
    """
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{where}: a class label tensor must hold one value, got shape {list(value.shape)}.")
        value = int(value.item())
    value = str(value) if isinstance(value, Path) else value
    if isinstance(value, str) and value not in classes and not value.lstrip("-").isdigit() and Path(value).is_file():
        value, where = _label_file_content(Path(value)), value
    if isinstance(value, str) and value not in classes and value.lstrip("-").isdigit():  # an index as text (CSV)
        value = int(value)
    if value is None:
        raise ValueError(f"{where}: no class label.")
    return resolve_class(value, classes, f"{where}: class")[0]


def _label_file_content(path: Path) -> Any:
    """The label a label file holds: ``{"label": ...}`` of a ``.json`` file, the stripped text of any other."""
    try:
        text = path.read_text(encoding="utf-8").strip()
        return json.loads(text)["label"] if path.suffix == ".json" else text
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: cannot read a class label ({type(e).__name__}: {e}).") from e


def class_counts(datalist: Sequence[Mapping[str, Any]], classes: Sequence[str], label_key: str = "label") -> list[int]:
    """Number of real records per class (neither ``synthetic`` nor a ``repeat``), in class index order."""
    counts = [0] * len(classes)
    for i, record in enumerate(datalist):
        if record.get(SYNTHETIC_KEY) or record.get(REPEAT_KEY):
            continue
        if label_key not in record:
            raise ValueError(f"datalist record {i} ({record.get('image', '?')}) has no {label_key!r} key.")
        counts[read_class_index(record[label_key], classes, where=f"record {i} ({record.get('image', '?')})")] += 1
    return counts


class ClassIndexd(MapTransform):
    """Dictionary transform: replace each class label (index, name or label file) by a 0-d int64 tensor.

    Real records from a MONAI Label datastore carry the path of a ``.json`` label file, synthetic records the class
    index itself; after this transform both are the same ``torch.int64`` scalar, ready for ``CrossEntropyLoss``
    once batched to ``(B,)``.
    """

    def __init__(self, keys: KeysCollection, classes: Sequence[str], allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if not classes:
            raise ValueError("classes must name at least one class.")
        self.classes = list(classes)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            index = read_class_index(d[key], self.classes, where=f"{d.get('image', key)}")
            d[key] = torch.tensor(index, dtype=torch.int64)
        return d
