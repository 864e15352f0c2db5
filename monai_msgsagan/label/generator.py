"""A trained MSG-SAGAN generator loaded for augmentation: TorchScript export or bundle checkpoint."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_msgsagan.networks import InferenceGenerator, sample_latent

__all__ = ["SyntheticGenerator", "file_sha256", "image_seed"]


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the cache key of everything generated from that model)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def image_seed(seed: int, class_index: int, index: int) -> int:
    """Seed of the ``index``-th synthetic image of a class: independent streams from one run seed.

    numpy's ``SeedSequence`` mixes the three integers (plain ``seed + index`` would make neighbouring run seeds share
    images), so image ``i`` of class ``c`` is the same whatever the number of images asked for, and a larger request
    only adds images to the cache.
    """
    return int(np.random.SeedSequence([seed, class_index, index]).generate_state(1, dtype=np.uint64)[0]) >> 1


class SyntheticGenerator:
    """A class-conditional MSG-SAGAN generator ready to make images from seeds.

    Args:
        network: an :class:`~monai_msgsagan.networks.InferenceGenerator` or its TorchScript export; it must have the
            integer attributes ``latent_dim``, ``num_classes``, ``resolution`` and ``image_channels``.
        sha256: SHA-256 of the file the network came from (cache key).
        source: that file, for messages.
        device: where to run the network.

    Use :meth:`from_file` to load one.
    """

    def __init__(
        self, network: torch.nn.Module, sha256: str, source: str | Path, device: str | torch.device = "cpu"
    ) -> None:
        for name in ("latent_dim", "num_classes", "resolution", "image_channels"):
            if not isinstance(getattr(network, name, None), int):
                raise ValueError(
                    f"{source}: the network has no integer attribute {name!r}; export a "
                    "monai_msgsagan.networks.InferenceGenerator (bundle network_def)."
                )
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.sha256 = sha256
        self.source = str(source)
        self.latent_dim: int = network.latent_dim
        self.num_classes: int = network.num_classes
        self.resolution: int = network.resolution
        self.image_channels: int = network.image_channels

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        network_args: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> SyntheticGenerator:
        """Load a generator file.

        Args:
            path: a TorchScript file (``python -m monai.bundle ckpt_export`` of the bundle's ``network_def``,
                or ``torch.jit.save`` of a scripted InferenceGenerator) when ``network_args`` is ``None``;
                otherwise a checkpoint (the bundle's ``models/model.pt``): a flat generator state dict or
                ``{"model": state_dict}``.
            network_args: keyword arguments of :class:`~monai_msgsagan.networks.InferenceGenerator` for a
                checkpoint (the bundle's ``network_def`` without ``_target_``).
            device: where to run it.

        Raises:
            ValueError: missing or unreadable file, or weights that do not fit ``network_args``, naming the file.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"generator model {path} does not exist.")
        if network_args is None:
            try:
                network = torch.jit.load(str(path), map_location="cpu")
            except (RuntimeError, ValueError) as e:
                raise ValueError(
                    f"{path}: not a TorchScript generator ({str(e).splitlines()[0]}); for a bundle checkpoint "
                    "(models/model.pt) give the network arguments too."
                ) from e
        else:
            network = _load_checkpoint(path, network_args)
        return cls(network, file_sha256(path), path, device)

    def __call__(self, class_index: int, seeds: Sequence[int]) -> torch.Tensor:
        """Images of one class, one per seed.

        Returns:
            ``(len(seeds), C, R, R)`` float32 on the CPU, values in [-1, 1]; the image for a seed does not depend on
            the other seeds in the call.
        """
        if not 0 <= class_index < max(self.num_classes, 1):
            raise ValueError(f"{self.source}: class index {class_index} outside [0, {self.num_classes}).")
        if len(seeds) == 0:
            return torch.zeros(0, self.image_channels, self.resolution, self.resolution)
        z = torch.cat([sample_latent(1, self.latent_dim, torch.Generator().manual_seed(s)) for s in seeds])
        labels = torch.full((len(seeds),), class_index, dtype=torch.long)
        with torch.no_grad():
            images = self.network(z.to(self.device), labels.to(self.device))
        return images.float().clamp(-1.0, 1.0).cpu()


def _load_checkpoint(path: Path, network_args: Mapping[str, Any]) -> torch.nn.Module:
    args = {k: v for k, v in network_args.items() if k != "_target_"}
    try:
        network = InferenceGenerator(**args)
    except (TypeError, ValueError) as e:
        raise ValueError(f"network arguments {args} for {path} do not build an InferenceGenerator: {e}") from e
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for files that are not checkpoints
        raise ValueError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e}).") from e
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        state = state["model"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a generator state dict, got {type(state).__name__}.")
    try:
        network.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights do not fit {args}: {str(e).splitlines()[0]}") from e
    return network
