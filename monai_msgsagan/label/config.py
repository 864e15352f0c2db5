"""The augmentation settings of an app config (MONAI Label ``--conf key value`` strings), checked at app start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from monai_msgsagan.artifact import GeneratorArtifact, load_generator
from monai_msgsagan.label.augment import (
    DEFAULT_MIX,
    MIXES,
    SyntheticAugmenter,
    generator_classes,
    plan_synthetic_counts,
)

__all__ = ["SyntheticAugmentSettings"]


@dataclass(frozen=True)
class SyntheticAugmentSettings:
    """Everything a :class:`~monai_msgsagan.label.augment.SyntheticAugmenter` needs, validated, with the generator
    loaded.

    The app config keys (all strings, as MONAI Label passes ``--conf``), with ``prefix="synthetic_"``:

    ``synthetic_model``
        the generator: a bundle ``models/model.pt`` (with its ``models/model.json``) or its TorchScript export;
        its network settings and class names come from its record (:func:`~monai_msgsagan.artifact.load_generator`).
    ``synthetic_balance``
        target size of each augmented class as a fraction of the largest class, in (0, 1] (default 1).
    ``synthetic_ratio``
        most synthetic images per real image of the same class, ``>= 0`` (default: no cap).
    ``synthetic_classes``
        comma-separated class names that may be augmented (default: all).
    ``synthetic_mix``
        ``every_class`` (default: every class gets synthetic images and the smaller classes' real images are
        repeated, so "generated" says nothing about the class) or ``minority`` (only the minority classes are
        filled, which the real-data study measured as harmful); see :mod:`monai_msgsagan.label.augment`.
    ``synthetic_seed``, ``synthetic_cache``, ``synthetic_device``
        run seed (default 0), cache folder (default ``default_cache_dir``), torch device (default ``cpu``).
    """

    generator: GeneratorArtifact
    classes: tuple[str, ...]
    cache_dir: Path
    balance: float = 1.0
    max_ratio: float | None = None
    augment_classes: tuple[str, ...] | None = None
    mix: str = DEFAULT_MIX
    seed: int = 0

    @classmethod
    def from_conf(
        cls,
        conf: Mapping[str, Any],
        default_cache_dir: str | Path,
        classes: Sequence[str] | None = None,
        prefix: str = "synthetic_",
    ) -> SyntheticAugmentSettings:
        """Read and check the settings and load the generator; ``ValueError`` naming the config key and the reason.

        Args:
            conf: the app config.
            default_cache_dir: cache folder when ``synthetic_cache`` is not set.
            classes: the app's class names (the datalist's label order), each a class of the generator; ``None``:
                the generator's class names, from its record.
            prefix: prefix of the config keys.
        """

        def key(name: str) -> str:
            return f"{prefix}{name}"

        def number(name: str, kind: type, default: Any) -> Any:
            raw = conf.get(key(name))
            if raw is None or raw == "":
                return default
            try:
                return kind(raw)
            except (TypeError, ValueError):
                raise ValueError(f"app config {key(name)!r}: expected a {kind.__name__}, got {raw!r}.") from None

        model = conf.get(key("model"))
        if not model:
            raise ValueError(f"app config {key('model')!r} is missing: give the generator (model.pt or TorchScript).")
        try:
            generator = load_generator(model, str(conf.get(key("device")) or "cpu"))
        except ValueError as e:
            raise ValueError(f"app config {key('model')!r}: {e}") from e
        try:
            classes = tuple(generator_classes(generator, classes))
        except ValueError as e:
            raise ValueError(f"app config 'classes': {e}") from e
        balance = number("balance", float, 1.0)
        max_ratio = number("ratio", float, None)
        mix = str(conf.get(key("mix")) or DEFAULT_MIX)
        if mix not in MIXES:
            raise ValueError(f"app config {key('mix')!r}: expected one of {list(MIXES)}, got {mix!r}.")
        try:
            plan_synthetic_counts([0] * len(classes), balance, max_ratio)
        except ValueError as e:
            raise ValueError(f"app config {key('balance')!r}/{key('ratio')!r}: {e}") from e
        augment = conf.get(key("classes"))
        if isinstance(augment, str):
            augment = [c.strip() for c in augment.split(",") if c.strip()] or None
        unknown = [c for c in augment or [] if c not in classes]
        if unknown:
            raise ValueError(
                f"app config {key('classes')!r}: unknown classes {unknown}; the classes are {list(classes)}."
            )
        return cls(
            generator=generator,
            classes=classes,
            cache_dir=Path(conf.get(key("cache")) or default_cache_dir),
            balance=balance,
            max_ratio=max_ratio,
            augment_classes=None if augment is None else tuple(augment),
            mix=mix,
            seed=number("seed", int, 0),
        )

    def build(self) -> SyntheticAugmenter:
        """The augmenter (the fields are its arguments, by name)."""
        return SyntheticAugmenter(**{f.name: getattr(self, f.name) for f in fields(self)})
