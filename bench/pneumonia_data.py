"""The public pediatric chest X-ray set of Kermany et al. (2018) as imbalanced train subsets and a held-out test split.

The set (Guangzhou Women and Children's Medical Center, CC BY 4.0) comes as ``{train,test}/{NORMAL,PNEUMONIA}``
folders of JPEG files: the original Kaggle / Mendeley layout ``chest_xray/{train,test,val}/...`` (full size) and
resized copies with the same layout (for example a ``dataset/`` folder of 224 px files) both work; ``val`` (16
images) is not used. The patient and the finding are in each file name:

- ``NORMAL/IM-0115-0001.jpeg``, ``NORMAL/NORMAL2-IM-1427-0001.jpeg``: patient ``IM-0115`` / ``NORMAL2-IM-1427``;
- ``PNEUMONIA/person1000_bacteria_2931.jpeg``, ``PNEUMONIA/person1000_virus_1681.jpeg``: patient ``person1000``,
  bacterial or viral pneumonia.

Train subsets are drawn **by patient** from the official train split, seeded, and never contain a patient of the
official test split (the same ``personN`` appears in both official splits for 170 patients: their train images are
left out). :func:`check_disjoint` refuses, naming the files, a test split that shares a patient or a file's content
with a train subset. Settings (``SETTINGS``):

- ``pneumonia10`` / ``pneumonia4``: normal (all train images) against pneumonia at 10:1 / 4:1;
- ``viral10``: normal (all), bacterial (as many as normal) and viral at 10:1 against each, three classes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monai_msgsagan.files import file_sha256

__all__ = ["SETTINGS", "Setting", "XrayFile", "check_disjoint", "find_splits", "read_split", "write_setting"]

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
_PNEUMONIA = re.compile(r"^(person\d+)_(bacteria|virus)_\d+")
_NORMAL = re.compile(r"^((?:NORMAL2-)?IM-\d+)-")


@dataclass(frozen=True)
class XrayFile:
    """One radiograph: its path, patient and finding (``normal``, ``bacteria`` or ``virus``)."""

    path: Path
    patient: str
    finding: str


@dataclass(frozen=True)
class Setting:
    """An imbalanced train subset: ``classes`` maps each class name to the findings it holds, ``ratios`` gives each
    class's size as a fraction of the normal images (1.0 = all train normal images)."""

    classes: dict[str, tuple[str, ...]]
    ratios: dict[str, float]


SETTINGS: dict[str, Setting] = {
    "pneumonia10": Setting(
        {"normal": ("normal",), "pneumonia": ("bacteria", "virus")}, {"normal": 1.0, "pneumonia": 0.1}
    ),
    "pneumonia4": Setting(
        {"normal": ("normal",), "pneumonia": ("bacteria", "virus")}, {"normal": 1.0, "pneumonia": 0.25}
    ),
    "viral10": Setting(
        {"normal": ("normal",), "bacterial": ("bacteria",), "viral": ("virus",)},
        {"normal": 1.0, "bacterial": 1.0, "viral": 0.1},
    ),
}


def find_splits(data_dir: str | Path) -> tuple[Path, Path]:
    """The official ``train`` and ``test`` folders under ``data_dir`` (the folder holding them, or a parent such as
    the Kaggle download's ``chest_xray/`` or a repository's ``dataset/``, searched three levels down).

    Raises:
        FileNotFoundError: no folder with ``train/NORMAL``, ``train/PNEUMONIA``, ``test/NORMAL`` and
            ``test/PNEUMONIA`` (the message says where it looked and how to get the set).
    """
    root = Path(data_dir).expanduser()
    candidates = [root, *sorted(p for depth in ("*", "*/*", "*/*/*") for p in root.glob(depth) if p.is_dir())]
    for c in candidates:
        if "__MACOSX" in c.parts:
            continue
        if all((c / s / k).is_dir() for s in ("train", "test") for k in ("NORMAL", "PNEUMONIA")):
            return c / "train", c / "test"
    raise FileNotFoundError(
        f"{root}: no folder with train/{{NORMAL,PNEUMONIA}} and test/{{NORMAL,PNEUMONIA}} found (searched 3 levels "
        "down). Give the Kermany et al. pediatric chest X-ray set (chest_xray/ of the Kaggle or Mendeley download, "
        "or a resized copy with the same layout); see bundle/docs/EVALUATION.md, 'Real chest X-rays'."
    )


def read_split(split_dir: Path) -> list[XrayFile]:
    """Every image of an official split with its patient and finding, sorted by path.

    Raises:
        ValueError: an image whose name carries no patient (named), since the split by patient needs one.
    """
    files, unknown = [], []
    for folder in ("NORMAL", "PNEUMONIA"):
        for path in sorted((split_dir / folder).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
                continue
            match = (_NORMAL if folder == "NORMAL" else _PNEUMONIA).match(path.name)
            if match is None:
                unknown.append(str(path))
                continue
            finding = "normal" if folder == "NORMAL" else match.group(2)
            files.append(XrayFile(path.resolve(), match.group(1), finding))
    if unknown:
        raise ValueError(
            f"{len(unknown)} file(s) whose name gives no patient (expected IM-NNNN-*, NORMAL2-IM-NNNN-* or "
            f"personN_bacteria_* / personN_virus_*): {unknown[:5]}{' ...' if len(unknown) > 5 else ''}"
        )
    return files


def draw_subset(train: Sequence[XrayFile], setting: Setting, exclude_patients: set[str], seed: int) -> dict[str, list]:
    """Each class's train images, drawn patient by patient in a seeded order until the class has its share.

    A class with ratio 1.0 of ``normal`` ... : the target count of class ``c`` is ``round(ratio_c * n_normal)``,
    ``n_normal`` the train normal images of patients not in ``exclude_patients``. Whole patients are taken in a
    seeded random order; a patient's images of the class are all taken (the last patient may overshoot by a few).
    """
    rng = np.random.default_rng(seed)
    usable = [f for f in train if f.patient not in exclude_patients]
    n_normal = sum(f.finding == "normal" for f in usable)
    chosen: dict[str, list[XrayFile]] = {}
    for name, findings in setting.classes.items():
        target = round(setting.ratios[name] * n_normal)
        by_patient: dict[str, list[XrayFile]] = {}
        for f in usable:
            if f.finding in findings:
                by_patient.setdefault(f.patient, []).append(f)
        patients = sorted(by_patient)
        picked: list[XrayFile] = []
        for i in rng.permutation(len(patients)):
            if len(picked) >= target:
                break
            picked += by_patient[patients[i]]
        chosen[name] = picked
    return chosen


def check_disjoint(train: dict[str, list[XrayFile]], test: dict[str, list[XrayFile]]) -> None:
    """Refuse a test split that shares a patient or a file's content (SHA-256) with the train subset.

    Raises:
        ValueError: naming up to ten overlapping test files and what they share.
    """
    train_files = [f for fs in train.values() for f in fs]
    patients = {f.patient: f for f in train_files}
    digests = {file_sha256(f.path): f for f in train_files}
    overlap = []
    for f in (f for fs in test.values() for f in fs):
        if f.patient in patients:
            overlap.append(f"{f.path} (patient {f.patient}, also in train: {patients[f.patient].path})")
        elif (d := file_sha256(f.path)) in digests:
            overlap.append(f"{f.path} (same content as train image {digests[d].path})")
    if overlap:
        raise ValueError(
            f"{len(overlap)} test image(s) overlap the train subset: "
            + "; ".join(overlap[:10])
            + (" ..." if len(overlap) > 10 else "")
        )


def write_setting(data_dir: str | Path, name: str, out_dir: str | Path, seed: int = 0) -> tuple[Path, Path, dict]:
    """Write ``out_dir/train.csv`` and ``out_dir/test.csv`` (columns ``path``, ``class``) of setting ``name``.

    The test split is the whole official test split with the setting's classes; the train subset is drawn by
    patient (:func:`draw_subset`) from the official train split without the test split's patients, and
    :func:`check_disjoint` checks both.

    Returns:
        the two CSV paths and a summary (counts per class and split, patients, excluded train images, seed).
    """
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; the settings are {list(SETTINGS)}.")
    setting = SETTINGS[name]
    train_dir, test_dir = find_splits(data_dir)
    train_files, test_files = read_split(train_dir), read_split(test_dir)
    test_patients = {f.patient for f in test_files}
    train = draw_subset(train_files, setting, test_patients, seed)
    test = {c: [f for f in test_files if f.finding in findings] for c, findings in setting.classes.items()}
    check_disjoint(train, test)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, chosen in (("train", train), ("test", test)):
        path = out / f"{split}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("path", "class"))
            writer.writerows((str(x.path), c) for c, files in chosen.items() for x in files)
        paths.append(path)
    summary = {
        "setting": name,
        "seed": seed,
        "train_dir": str(train_dir),
        "test_dir": str(test_dir),
        "train_counts": {c: len(v) for c, v in train.items()},
        "train_patients": {c: len({f.patient for f in v}) for c, v in train.items()},
        "test_counts": {c: len(v) for c, v in test.items()},
        "excluded_train_images_of_test_patients": sum(f.patient in test_patients for f in train_files),
    }
    return paths[0], paths[1], summary
