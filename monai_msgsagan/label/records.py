"""Class labels of classification datalist records: an index, a class name, or a small label file."""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

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
            datastore form used by ``apps/monailabel_xray``), or a text file holding the index or the name.
        classes: class names, in the generator's and classifier's index order.
        where: what to name in error messages (a record id or a file).

    Raises:
        ValueError: unknown class name, index out of range, or an unreadable label file, naming ``where``.
    """
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{where}: a class label tensor must hold one value, got shape {list(value.shape)}.")
        value = int(value.item())
    if isinstance(value, bool):
        raise ValueError(f"{where}: a class label must be an index or a class name, got {value!r}.")
    if isinstance(value, int):
        if not 0 <= value < len(classes):
            raise ValueError(
                f"{where}: class index {value} is outside [0, {len(classes)}) for classes {list(classes)}."
            )
        return value
    if isinstance(value, (str, Path)):
        text = str(value)
        if text in classes:
            return list(classes).index(text)
        if text.lstrip("-").isdigit():  # an index written as text (CSV columns, form fields)
            return read_class_index(int(text), classes, where)
        path = Path(text)
        if path.is_file():
            return _read_label_file(path, classes)
        raise ValueError(f"{where}: {text!r} is neither a class of {list(classes)} nor an existing label file.")
    raise ValueError(f"{where}: a class label must be an index, a class name or a label file, got {type(value)}.")


def _read_label_file(path: Path, classes: Sequence[str]) -> int:
    try:
        text = path.read_text(encoding="utf-8").strip()
        content: Any = json.loads(text)["label"] if path.suffix == ".json" else text
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: cannot read a class label ({type(e).__name__}: {e}).") from e
    if (isinstance(content, int) and not isinstance(content, bool)) or (
        isinstance(content, str) and (content in classes or content.lstrip("-").isdigit())
    ):
        return read_class_index(content, classes, where=str(path))
    raise ValueError(f"{path}: the label must be a class index or one of {list(classes)}, got {content!r}.")


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
