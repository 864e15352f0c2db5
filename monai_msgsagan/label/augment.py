"""Class balancing of a classification datalist with cached synthetic minority-class images."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_msgsagan.label.files import atomic_write_text, write_png
from monai_msgsagan.label.generator import SyntheticGenerator, image_seed
from monai_msgsagan.label.records import SYNTHETIC_KEY, class_counts

__all__ = ["SyntheticAugmenter", "plan_synthetic_counts", "CACHE_FORMAT_VERSION"]

#: Bumped whenever the way a cached image is made changes, so old caches are not reused.
CACHE_FORMAT_VERSION = 1


def plan_synthetic_counts(
    counts: Sequence[int],
    balance: float = 1.0,
    max_ratio: float | None = None,
    augment: Sequence[int] | None = None,
) -> list[int]:
    """How many synthetic images each class gets.

    Every class in ``augment`` (default: all) is filled up to ``ceil(balance * max(counts))`` images, so with
    ``balance=1`` the minority classes reach the majority count; the majority class itself gets none.
    ``max_ratio`` caps the synthetic images of a class at ``floor(max_ratio * real count)`` (``0`` turns the
    augmentation off; a class without real images then gets none).

    Args:
        counts: real images per class, in class index order.
        balance: target size of each class as a fraction of the largest class, in (0, 1].
        max_ratio: most synthetic images per real image of the same class, ``>= 0``; ``None`` for no cap.
        augment: class indices that may receive synthetic images.

    Raises:
        ValueError: ``balance`` outside (0, 1], ``max_ratio < 0``, a negative count or an unknown class index.
    """
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
        extra = max(0, target - n) if c in chosen else 0
        if max_ratio is not None:
            extra = min(extra, math.floor(max_ratio * n))
        plan.append(extra)
    return plan


class SyntheticAugmenter:
    """Adds class-conditional synthetic images of the minority classes to a classification datalist.

    The images come from a trained MSG-SAGAN generator and are written as 8-bit grayscale PNG into
    ``cache_dir/<model sha256[:16]>-<settings hash>/<class index>/<image index>.png``. Image ``i`` of class ``c`` is
    made from its own seed (:func:`~monai_msgsagan.label.generator.image_seed`), so a second run with the same model
    and settings reuses every file, and a run that needs more images only adds the missing ones.

    The returned records are ``{image_key: <png path>, label_key: <class index>, "synthetic": True,
    "class_name": <name>, "generator_sha256": <sha>}``; the ``"synthetic"`` flag keeps them apart from real data.

    Args:
        generator: the loaded class-conditional generator (``generator.num_classes == len(classes)``).
        classes: class names in the generator's index order.
        cache_dir: folder for the generated PNG files.
        balance: target size of each augmented class as a fraction of the largest class, in (0, 1].
        max_ratio: most synthetic images per real image of the same class (``>= 0``), ``None`` for no cap.
        augment_classes: names of the classes that may receive synthetic images; default all.
        seed: run seed; the images are a function of (model, seed, class, index).
        batch_size: images per generator call.
        image_key: datalist key of the image path.
        label_key: datalist key of the class label (index, class name or label file; see
            :func:`~monai_msgsagan.label.records.read_class_index`).

    Raises:
        ValueError: a generator that is not class-conditional or has another number of classes, an unknown class
            name, or a bad ``balance``/``max_ratio``/``batch_size``.
    """

    def __init__(
        self,
        generator: SyntheticGenerator,
        classes: Sequence[str],
        cache_dir: str | Path,
        balance: float = 1.0,
        max_ratio: float | None = None,
        augment_classes: Sequence[str] | None = None,
        seed: int = 0,
        batch_size: int = 16,
        image_key: str = "image",
        label_key: str = "label",
    ) -> None:
        if generator.num_classes < 1:
            raise ValueError(f"{generator.source}: the generator is not class-conditional (num_classes=0).")
        if generator.num_classes != len(classes):
            raise ValueError(
                f"{generator.source}: the generator has {generator.num_classes} classes but {len(classes)} class "
                f"names were given: {list(classes)}."
            )
        if len(set(classes)) != len(classes):
            raise ValueError(f"class names must be unique, got {list(classes)}.")
        unknown = [c for c in (augment_classes or []) if c not in classes]
        if unknown:
            raise ValueError(f"augment_classes {unknown} are not classes of {list(classes)}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        plan_synthetic_counts([0] * len(classes), balance, max_ratio)  # validates balance and max_ratio
        self.generator = generator
        self.classes = list(classes)
        self.balance = float(balance)
        self.max_ratio = None if max_ratio is None else float(max_ratio)
        self.augment = None if augment_classes is None else [self.classes.index(c) for c in augment_classes]
        self.seed = int(seed)
        self.batch_size = batch_size
        self.image_key = image_key
        self.label_key = label_key
        settings = {"seed": self.seed, "format": "png-uint8", "version": CACHE_FORMAT_VERSION}
        settings_hash = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        self.settings = settings
        self.cache_folder = Path(cache_dir) / f"{generator.sha256[:16]}-{settings_hash}"

    def plan(self, datalist: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Synthetic images per class name for this datalist (its synthetic records are not counted)."""
        counts = class_counts(datalist, self.classes, self.label_key)
        extra = plan_synthetic_counts(counts, self.balance, self.max_ratio, self.augment)
        return dict(zip(self.classes, extra))

    def generate(self, class_index: int, count: int) -> list[Path]:
        """The first ``count`` cached PNG files of a class, generating those not in the cache yet."""
        folder = self.cache_folder / f"{class_index:03d}"
        files = [folder / f"{i:05d}.png" for i in range(count)]
        missing = [i for i, f in enumerate(files) if not f.is_file()]
        if missing:
            folder.mkdir(parents=True, exist_ok=True)
            self._write_manifest()
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            images = self.generator(class_index, [image_seed(self.seed, class_index, i) for i in batch])
            for i, image in zip(batch, images):
                write_png(image.numpy(), files[i])
        return files

    def __call__(self, datalist: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The synthetic records that balance ``datalist`` (only the new records, not the real ones)."""
        records = []
        for name, count in self.plan(datalist).items():
            index = self.classes.index(name)
            for path in self.generate(index, count):
                records.append(
                    {
                        self.image_key: str(path),
                        self.label_key: index,
                        SYNTHETIC_KEY: True,
                        "class_name": name,
                        "generator_sha256": self.generator.sha256,
                    }
                )
        return records

    def augment_datalist(self, datalist: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``datalist`` followed by its synthetic records."""
        return [dict(r) for r in datalist] + self(datalist)

    def _write_manifest(self) -> None:
        manifest = {
            "generator": self.generator.source,
            "generator_sha256": self.generator.sha256,
            "classes": self.classes,
            "resolution": self.generator.resolution,
            **self.settings,
        }
        atomic_write_text(self.cache_folder / "manifest.json", json.dumps(manifest, indent=2))
