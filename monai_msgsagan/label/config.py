"""The augmentation settings of an app config (MONAI Label ``--conf key value`` strings), checked at app start."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_msgsagan.label.augment import SyntheticAugmenter, plan_synthetic_counts
from monai_msgsagan.label.generator import SyntheticGenerator

__all__ = ["SyntheticAugmentSettings"]


@dataclass(frozen=True)
class SyntheticAugmentSettings:
    """Everything a :class:`~monai_msgsagan.label.augment.SyntheticAugmenter` needs, validated.

    The app config keys (all strings, as MONAI Label passes ``--conf``), with ``prefix="synthetic_"``:

    ``synthetic_model``
        the generator: TorchScript (``ckpt_export``) or, with ``synthetic_network``, a bundle ``models/model.pt``.
    ``synthetic_network``
        JSON object of :class:`~monai_msgsagan.networks.InferenceGenerator` arguments, for a checkpoint.
    ``synthetic_balance``
        target size of each augmented class as a fraction of the largest class, in (0, 1] (default 1).
    ``synthetic_ratio``
        most synthetic images per real image of the same class, ``>= 0`` (default: no cap).
    ``synthetic_classes``
        comma-separated class names that may be augmented (default: all).
    ``synthetic_seed``, ``synthetic_cache``, ``synthetic_device``
        run seed (default 0), cache folder (default ``default_cache_dir``), torch device (default ``cpu``).
    """

    model: Path
    classes: tuple[str, ...]
    cache_dir: Path
    network: Mapping[str, Any] | None = None
    balance: float = 1.0
    max_ratio: float | None = None
    augment_classes: tuple[str, ...] | None = None
    seed: int = 0
    device: str = "cpu"
    prefix: str = "synthetic_"

    @classmethod
    def from_conf(
        cls,
        conf: Mapping[str, Any],
        classes: Sequence[str],
        default_cache_dir: str | Path,
        prefix: str = "synthetic_",
    ) -> SyntheticAugmentSettings:
        """Read and check the settings; raises ``ValueError`` naming the config key and the reason."""

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
            raise ValueError(f"app config {key('model')!r} is missing: give the generator (TorchScript or model.pt).")
        if not Path(model).is_file():
            raise ValueError(f"app config {key('model')!r}: generator model {model} does not exist.")
        network = conf.get(key("network"))
        if isinstance(network, str) and network:
            try:
                network = json.loads(network)
            except json.JSONDecodeError as e:
                raise ValueError(f"app config {key('network')!r}: not valid JSON ({e}).") from e
        if network is not None and network != "" and not isinstance(network, Mapping):
            raise ValueError(f"app config {key('network')!r}: expected a JSON object of network arguments.")
        balance = number("balance", float, 1.0)
        max_ratio = number("ratio", float, None)
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
            model=Path(model),
            classes=tuple(classes),
            cache_dir=Path(conf.get(key("cache")) or default_cache_dir),
            network=network or None,
            balance=balance,
            max_ratio=max_ratio,
            augment_classes=None if augment is None else tuple(augment),
            seed=number("seed", int, 0),
            device=str(conf.get(key("device")) or "cpu"),
            prefix=prefix,
        )

    def load_generator(self) -> SyntheticGenerator:
        """The generator these settings name; ``ValueError`` for an unusable file or another number of classes."""
        generator = SyntheticGenerator.from_file(self.model, self.network, self.device)
        if generator.num_classes != len(self.classes):
            raise ValueError(
                f"app config '{self.prefix}model': the generator {self.model} has {generator.num_classes} classes but "
                f"{len(self.classes)} class names were given: {list(self.classes)}."
            )
        return generator

    def build(self, generator: SyntheticGenerator | None = None) -> SyntheticAugmenter:
        """The augmenter; loads the generator unless one is given."""
        return SyntheticAugmenter(
            generator if generator is not None else self.load_generator(),
            self.classes,
            self.cache_dir,
            balance=self.balance,
            max_ratio=self.max_ratio,
            augment_classes=self.augment_classes,
            seed=self.seed,
        )
