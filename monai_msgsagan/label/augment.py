"""Synthetic images for a classification datalist, cached: the every-class mix (default) or the minority fill.

The real-data study (``bundle/docs/EVALUATION.md``) decides the default. Adding generated images to the minority
classes only (``mix="minority"``) makes "looks generated" predict "minority class", and on real chest X-rays it
made the classifier worse. The every-class mix (``mix="every_class"``) gives every class the same number of
synthetic images and repeats the real images of the smaller classes up to it, so every class is half synthetic,
half real and as large as any other: whether an image is generated says nothing about its class. It tied the best
classic remedy there; it is the default because it does no measured harm, not because it was shown to help.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_msgsagan.artifact import GeneratorArtifact, resolve_class
from monai_msgsagan.files import atomic_write_text, write_png
from monai_msgsagan.generation import generate
from monai_msgsagan.label.records import REPEAT_KEY, SYNTHETIC_KEY, class_counts, read_class_index

__all__ = [
    "CACHE_FORMAT_VERSION",
    "DEFAULT_MIX",
    "MIXES",
    "REQUEST_KEY",
    "SPLIT_FILENAME",
    "SyntheticAugmenter",
    "augment_split",
    "generator_classes",
    "plan_real_repeats",
    "plan_synthetic_counts",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the way a cached image is made changes, so old caches are not reused.
CACHE_FORMAT_VERSION = 1
#: How synthetic images are added: to every class (with the real images of smaller classes repeated), or to the
#: minority classes only.
MIXES = ("every_class", "minority")
#: The mix the real-data study supports (module docstring).
DEFAULT_MIX = "every_class"


def plan_synthetic_counts(
    counts: Sequence[int],
    balance: float = 1.0,
    max_ratio: float | None = None,
    augment: Sequence[int] | None = None,
    mix: str = "minority",
) -> list[int]:
    """How many synthetic images each class gets.

    With ``mix="minority"`` every class in ``augment`` (default: all) is filled up to
    ``ceil(balance * max(counts))`` images, so with ``balance=1`` the minority classes reach the majority count;
    the majority class itself gets none. With ``mix="every_class"`` every class in ``augment`` gets
    ``ceil(balance * max(counts))`` synthetic images (see :func:`plan_real_repeats` for the real side).
    ``max_ratio`` caps the synthetic images of a class at ``floor(max_ratio * real count)`` (``0`` turns the
    augmentation off; a class without real images then gets none).

    Args:
        counts: real images per class, in class index order.
        balance: target size of each class as a fraction of the largest class, in (0, 1].
        max_ratio: most synthetic images per real image of the same class, ``>= 0``; ``None`` for no cap.
        augment: class indices that may receive synthetic images.
        mix: one of :data:`MIXES`.

    Raises:
        ValueError: ``balance`` outside (0, 1], ``max_ratio < 0``, a negative count, an unknown class index or mix.
    """
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {list(MIXES)}, got {mix!r}.")
    if not 0.0 < balance <= 1.0:
        raise ValueError(f"balance must lie in (0, 1], got {balance}.")
    if max_ratio is not None and max_ratio < 0:
        raise ValueError(f"max_ratio (synthetic per real image) must be >= 0, got {max_ratio}.")
    if any(c < 0 for c in counts):
        raise ValueError(f"class counts must be >= 0, got {list(counts)}.")
    chosen = set(range(len(counts)) if augment is None else augment)
    if not chosen <= set(range(len(counts))):
        raise ValueError(f"augment {sorted(chosen)} names class indices outside [0, {len(counts)}).")
    target = math.ceil(balance * max(counts, default=0))
    plan = []
    for c, n in enumerate(counts):
        extra = (target if mix == "every_class" else max(0, target - n)) if c in chosen else 0
        if max_ratio is not None:
            extra = min(extra, math.floor(max_ratio * n))
        plan.append(extra)
    return plan


def plan_real_repeats(counts: Sequence[int], synthetic: Sequence[int]) -> list[int]:
    """Repeats of real images per class in the every-class mix: a class with fewer real than synthetic images
    repeats its real images (in order, cycling) until they are as many, so every class is at least half real."""
    return [max(0, s - n) if n > 0 else 0 for n, s in zip(counts, synthetic)]


def generator_classes(generator: GeneratorArtifact, classes: Sequence[str] | None = None) -> list[str]:
    """The class names a datalist may use with ``generator``: ``classes`` (default: the generator's, from its
    record), each a class of the class-conditional generator, matched by name.

    Raises:
        ValueError: an unconditional generator, a name it does not have, or a name given twice.
    """
    if generator.num_classes < 1:
        raise ValueError(f"{generator.path}: the generator is not class-conditional (num_classes=0).")
    classes = list(generator.class_names if classes is None else classes)
    unknown = [c for c in classes if c not in generator.class_names]
    if unknown:
        raise ValueError(
            f"classes {unknown} are not classes of the generator {generator.path}, which has "
            f"{generator.class_names} (its models/model.json)."
        )
    if len(set(classes)) != len(classes):
        raise ValueError(f"class names must be unique, got {classes}.")
    return classes


class SyntheticAugmenter:
    """Adds class-conditional synthetic images to a classification datalist: the every-class mix (default) or the
    minority fill (module docstring).

    The images come from a trained MSG-SAGAN generator (:func:`~monai_msgsagan.artifact.load_generator`) and are
    written as 8-bit grayscale PNG into ``cache_dir/<model sha256[:16]>-<settings hash>/<generator class
    index>/<image index>.png``. Image ``i`` of a class is image ``i`` of :func:`~monai_msgsagan.generation.generate`
    for the run seed (the image bundle inference and the Deploy app make for that seed and class), so a second
    run with the same model and settings reuses every file, and a run that needs more images only adds the
    missing ones.

    The returned records are ``{image_key: <png path>, label_key: <class index in classes>, "synthetic": True,
    "class_name": <name>, "generator_sha256": <sha>}``; the ``"synthetic"`` flag keeps them apart from real data.
    In the every-class mix they are followed by the repeats of real records (:func:`plan_real_repeats`), copies
    marked ``"repeat": True``.

    Args:
        generator: the loaded class-conditional generator.
        cache_dir: folder for the generated PNG files.
        classes: the datalist's class names in its label order (default: the generator's, from its record); each
            must be a class of the generator, matched by name.
        balance: target size of each augmented class as a fraction of the largest class, in (0, 1].
        max_ratio: most synthetic images per real image of the same class (``>= 0``), ``None`` for no cap.
        augment_classes: names of the classes that may receive synthetic images; default all.
        mix: one of :data:`MIXES`; default :data:`DEFAULT_MIX`.
        seed: run seed; the images are a function of (model, seed, class, index).
        batch_size: images per generator call.
        image_key: datalist key of the image path.
        label_key: datalist key of the class label (index, class name or label file; see
            :func:`~monai_msgsagan.label.records.read_class_index`).

    Raises:
        ValueError: a generator that is not class-conditional, a class name it does not know, or a bad
            ``balance``/``max_ratio``/``batch_size``.
    """

    def __init__(
        self,
        generator: GeneratorArtifact,
        cache_dir: str | Path,
        classes: Sequence[str] | None = None,
        balance: float = 1.0,
        max_ratio: float | None = None,
        augment_classes: Sequence[str] | None = None,
        mix: str = DEFAULT_MIX,
        seed: int = 0,
        batch_size: int = 16,
        image_key: str = "image",
        label_key: str = "label",
    ) -> None:
        classes = generator_classes(generator, classes)
        unknown = [c for c in (augment_classes or []) if c not in classes]
        if unknown:
            raise ValueError(f"augment_classes {unknown} are not classes of {classes}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        plan_synthetic_counts([0] * len(classes), balance, max_ratio, mix=mix)  # validates balance, max_ratio, mix
        self.generator = generator
        self.mix = mix
        self.classes = classes
        self.balance = float(balance)
        self.max_ratio = None if max_ratio is None else float(max_ratio)
        self.augment = None if augment_classes is None else [self.classes.index(c) for c in augment_classes]
        self.seed = int(seed)
        self.batch_size = batch_size
        self.image_key = image_key
        self.label_key = label_key
        self.settings = {"seed": self.seed, "format": "png-uint8", "version": CACHE_FORMAT_VERSION}
        settings_hash = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:8]
        self.cache_folder = Path(cache_dir) / f"{generator.sha256[:16]}-{settings_hash}"

    def plan(self, datalist: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Synthetic images per class name for this datalist (its synthetic records are not counted)."""
        counts = class_counts(datalist, self.classes, self.label_key)
        extra = plan_synthetic_counts(counts, self.balance, self.max_ratio, self.augment, self.mix)
        return dict(zip(self.classes, extra))

    def generate(self, name: str, count: int) -> list[Path]:
        """The first ``count`` cached PNG files of a class, generating those not in the cache yet."""
        class_index = resolve_class(name, self.generator.class_names)[0]
        folder = self.cache_folder / f"{class_index:03d}"
        files = [folder / f"{i:05d}.png" for i in range(count)]
        missing = [i for i, f in enumerate(files) if not f.is_file()]
        if missing:
            folder.mkdir(parents=True, exist_ok=True)
            self._write_manifest()
        # from the first missing image on; images already in the cache are not rewritten
        for first in range(missing[0] if missing else count, count, self.batch_size):
            num = min(self.batch_size, count - first)
            images = generate(self.generator.network, num, self.seed, class_index, start=first, batch_size=num)
            for i, image in enumerate(images, first):
                if not files[i].is_file():
                    write_png(image.numpy(), files[i])
        return files

    def __call__(self, datalist: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The new records for ``datalist`` (not its own): the synthetic records, then in the every-class mix the
        repeats of its real records."""
        records = []
        plan = self.plan(datalist)
        for name, count in plan.items():
            index = self.classes.index(name)
            for path in self.generate(name, count):
                records.append(
                    {
                        self.image_key: str(path),
                        self.label_key: index,
                        SYNTHETIC_KEY: True,
                        "class_name": name,
                        "generator_sha256": self.generator.sha256,
                    }
                )
        if self.mix == "every_class":
            records += self._real_repeats(datalist, list(plan.values()))
        return records

    def _real_repeats(self, datalist: Sequence[Mapping[str, Any]], synthetic: list[int]) -> list[dict[str, Any]]:
        by_class: list[list[Mapping[str, Any]]] = [[] for _ in self.classes]
        for record in datalist:
            if not record.get(SYNTHETIC_KEY) and not record.get(REPEAT_KEY):
                by_class[read_class_index(record[self.label_key], self.classes)].append(record)
        repeats = plan_real_repeats([len(r) for r in by_class], synthetic)
        return [{**members[i % len(members)], REPEAT_KEY: True}
                for members, n in zip(by_class, repeats) for i in range(n)]  # fmt: skip

    def augment_datalist(self, datalist: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``datalist`` followed by its synthetic records."""
        return [dict(r) for r in datalist] + self(datalist)

    def _write_manifest(self) -> None:
        manifest = {
            "generator": str(self.generator.path),
            "generator_sha256": self.generator.sha256,
            "classes": self.generator.class_names,
            "resolution": self.generator.resolution,
            **self.settings,
        }
        atomic_write_text(self.cache_folder / "manifest.json", json.dumps(manifest, indent=2))


#: File the train tasks write next to their checkpoints: the train and validation records of the last run.
SPLIT_FILENAME = "synthetic_split.json"

#: Train request key that turns the augmentation off for one run (``{"synthetic_augment": false}``).
REQUEST_KEY = "synthetic_augment"


def augment_split(
    augmenter: SyntheticAugmenter | None,
    train: Sequence[Mapping[str, Any]],
    val: Sequence[Mapping[str, Any]] | None,
    request: Mapping[str, Any],
    split_dir: str | Path | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, int]]:
    """Add synthetic records to the train split only.

    Validation keeps real records only: any record marked ``"synthetic"`` is dropped from it. With
    ``augmenter=None`` or ``request["synthetic_augment"]`` false the train split is left as it is.

    Args:
        augmenter: makes (or takes from its cache) the synthetic records.
        train, val: the real train and validation records (``val`` may be ``None``: a bundle then uses its own).
        request: the MONAI Label train request.
        split_dir: where to write :data:`SPLIT_FILENAME` (both lists and the per-class synthetic counts).

    Returns:
        ``(train + synthetic, validation, synthetic images per class name)``.
    """
    train = [dict(r) for r in train]
    real_val = None if val is None else [dict(r) for r in val if not r.get(SYNTHETIC_KEY)]
    if val is not None and len(real_val) != len(val):
        logger.warning(f"dropped {len(val) - len(real_val)} synthetic records from the validation split")
    per_class: dict[str, int] = {}
    if augmenter is not None and _enabled(request.get(REQUEST_KEY, True)):
        per_class = augmenter.plan(train)
        synthetic = augmenter(train)
        train = train + synthetic
        logger.info(
            f"synthetic augmentation: {len(synthetic)} records added to the train split {per_class}; "
            f"cache {augmenter.cache_folder}"
        )
    if split_dir is not None:
        Path(split_dir).mkdir(parents=True, exist_ok=True)
        split = {"train": train, "validation": real_val, "synthetic_per_class": per_class}
        atomic_write_text(Path(split_dir) / SPLIT_FILENAME, json.dumps(split, indent=2, default=str))
    return train, real_val, per_class


def _enabled(value: Any) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on") if isinstance(value, str) else bool(value)
