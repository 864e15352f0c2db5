"""The data specification: which images a run trains on, one frozen value passed whole."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from monai_msgsagan.data.datalist import Datalist, build_datalist

__all__ = ["DataSpec", "SELECTION_FIELDS"]

#: The fields besides ``dataset_dir`` that select files out of it (what a store is checked against).
SELECTION_FIELDS = ("label_column", "path_column", "classes", "labels_from_subfolders")
_TYPES: dict[str, type | tuple[type, ...]] = {
    "labels_from_subfolders": bool,
    "num_phantoms": int,
    "phantom_classes": int,
    "phantom_class_ratio": (int, float),
    "seed": int,
}


@dataclass(frozen=True)
class DataSpec:
    """Which images a run trains on: a folder or CSV of radiographs (from a preprocessed store or not), or the
    embedded procedural chest phantoms. The datalist, the store, the training data, the generator record and the
    bundle configs pass it whole, serialised with :func:`dataclasses.asdict` and compared with ``==``. The
    constructor normalises once: a blank string is ``None`` (the configs' ``""``), ``dataset_dir`` and
    ``store_dir`` become resolved absolute paths, ``classes`` a tuple, ``"true"`` / ``"false"`` a bool.

    Attributes:
        dataset_dir: a folder of images (DICOM, PNG, JPEG, NIfTI; searched recursively) or a CSV of paths and
            labels; ``None``: the phantoms.
        label_column: CSV column of class names (``None``: unlabelled, every label 0).
        path_column: CSV column of image paths (``None``: detected).
        classes: class names to keep, in label order (``None``: every class found, sorted).
        labels_from_subfolders: folder sources: the first-level subfolder is the class.
        num_phantoms, phantom_classes: size and classes (1 or 2) of the phantom set.
        phantom_class_ratio: fraction of lung-opacity phantoms (label 1) with two classes: 0.5 is balanced,
            ``1 / 11`` a 10:1 imbalance.
        seed: seed of the phantoms, of the datalist split and of the data pipeline's augmentation.
        store_dir: a store written by :func:`~monai_msgsagan.data.preprocess_store` from ``dataset_dir`` with these
            settings: training reads it instead of decoding files; ``None``: no store.

    Raises:
        TypeError: a field of the wrong type, naming it.
    """

    dataset_dir: str | None = None
    label_column: str | None = None
    path_column: str | None = None
    classes: tuple[str, ...] | None = None
    labels_from_subfolders: bool = False
    num_phantoms: int = 512
    phantom_classes: int = 2
    phantom_class_ratio: float = 0.5
    seed: int = 0
    store_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("dataset_dir", "label_column", "path_column", "store_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"DataSpec.{name}: expected a string or None, got {value!r}.")
            text = None if value is None or not os.fspath(value).strip() else os.fspath(value)
            if text is not None and name in ("dataset_dir", "store_dir"):
                text = str(Path(text).resolve())
            object.__setattr__(self, name, text)
        if self.classes is not None:
            if not isinstance(self.classes, (list, tuple)) or not all(isinstance(c, str) for c in self.classes):
                raise TypeError(f"DataSpec.classes: expected a list of class names or None, got {self.classes!r}.")
            object.__setattr__(self, "classes", tuple(self.classes))
        flag = self.labels_from_subfolders  # the bundle CLI gives "true" / "false" as strings
        if isinstance(flag, str) and flag.lower() in ("true", "false"):
            object.__setattr__(self, "labels_from_subfolders", flag.lower() == "true")
        for name, kind in _TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise TypeError(f"DataSpec.{name}: expected {getattr(kind, '__name__', 'a number')}, got {value!r}.")

    def datalist(self, check_readable: bool = True, report_path: str | os.PathLike | None = None) -> Datalist:
        """:func:`~monai_msgsagan.data.build_datalist` of ``dataset_dir`` with this selection and seed.

        Raises:
            FileNotFoundError: no ``dataset_dir``, or it does not exist.
        """
        if self.dataset_dir is None or not Path(self.dataset_dir).exists():
            raise FileNotFoundError(
                f"dataset_dir {self.dataset_dir or '(empty)'} does not exist (give a folder or a CSV of images)."
            )
        return build_datalist(
            self.dataset_dir,
            label_column=self.label_column,
            path_column=self.path_column,
            classes=self.classes,
            seed=self.seed,
            check_readable=check_readable,
            labels_from_subfolders=self.labels_from_subfolders,
            report_path=report_path,
        )
