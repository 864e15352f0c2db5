"""The exported (TorchScript) generator: loading it with its identity, and generating images with it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from monai_msgsagan.networks import sample_latent

__all__ = ["ModelError", "ExportedGenerator", "find_model_file", "load_exported_generator", "generate"]

# the bundle metadata that `python -m monai.bundle ckpt_export` stores in the TorchScript zip (name, version, ...)
_METADATA_FILE = "metadata.json"
_RANGE_TOLERANCE = 1e-2


class ModelError(ValueError):
    """A model path that holds no usable exported generator; the message names the file and the reason."""


@dataclass
class ExportedGenerator:
    """A loaded TorchScript generator and what identifies it.

    Attributes:
        module: scripted ``InferenceGenerator``: ``z`` (B, latent_dim) [+ ``labels`` (B,) int64] ->
            (B, 1, resolution, resolution) in [-1, 1].
        path: the TorchScript file.
        sha256: hex SHA-256 of that file (the model's identity in reports and DICOM).
        name, version: from the bundle ``metadata.json`` stored in the file (``name``/``version``), else the file
            stem and "unknown".
        latent_dim, num_classes, resolution: read from the scripted module's attributes.
        class_names: ``class_names`` of the stored metadata, else the class indices as strings.
    """

    module: torch.jit.ScriptModule
    path: Path
    sha256: str
    name: str
    version: str
    latent_dim: int
    num_classes: int
    resolution: int
    class_names: list[str] = field(default_factory=list)

    def identity(self) -> dict[str, Any]:
        """JSON-ready description of the model (no weights)."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "name": self.name,
            "version": self.version,
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "resolution": self.resolution,
            "class_names": self.class_names,
        }

    def class_index(self, requested: str | int | None) -> int | None:
        """The label index for a requested class name/index (None: the model's default class or unconditional).

        Raises:
            ModelError: a class for an unconditional model, or a class the model does not know.
        """
        if requested is None:
            return None
        if self.num_classes == 0:
            raise ModelError(f"field 'class' given ({requested!r}) but {self.path} is an unconditional generator.")
        if isinstance(requested, int):
            if not 0 <= requested < self.num_classes:
                raise ModelError(f"field 'class' index {requested} is outside [0, {self.num_classes}).")
            return requested
        if requested not in self.class_names:
            raise ModelError(f"field 'class' {requested!r} is not one of the model's classes {self.class_names}.")
        return self.class_names.index(requested)

    def class_label(self, index: int | None) -> str | None:
        """Class name for reports and DICOM (None for an unconditional model)."""
        if self.num_classes == 0:
            return None
        default = getattr(self.module, "default_class", 0)
        return self.class_names[default if index is None else index]


def find_model_file(model_path: str | Path) -> Path:
    """The one model file at ``model_path`` (a file, or a folder holding exactly one file, at any depth).

    Raises:
        ModelError: the path does not exist, or the folder holds no file or several.
    """
    path = Path(model_path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ModelError(f"model path {path} does not exist.")
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if len(files) != 1:
        found = ", ".join(str(f.relative_to(path)) for f in files) or "nothing"
        raise ModelError(f"model folder {path} must hold exactly one TorchScript file, found {found}.")
    return files[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _int_attribute(module: torch.nn.Module, name: str, path: Path) -> int:
    value = getattr(module, name, None)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelError(
            f"{path}: the scripted generator has no integer attribute '{name}' (is it an InferenceGenerator?)."
        )
    return value


def load_exported_generator(model_path: str | Path, device: torch.device | str = "cpu") -> ExportedGenerator:
    """Load the TorchScript generator written by ``python -m monai.bundle ckpt_export`` (or ``torch.jit.save``).

    Raises:
        ModelError: missing path, not a TorchScript file, or a module without the generator's attributes.
    """
    path = find_model_file(model_path)
    # monai.data.load_net_with_metadata is not used: it fails on a TorchScript file saved without metadata.json
    # instead of treating the metadata as absent
    extra = {_METADATA_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as e:  # torch.jit.load raises RuntimeError/ValueError variants for non-TorchScript files
        raise ModelError(f"{path} is not a TorchScript model ({type(e).__name__}: {str(e).splitlines()[0]}).") from e
    if not isinstance(module, torch.jit.ScriptModule):
        raise ModelError(f"{path} did not load as a TorchScript module.")
    try:
        metadata = json.loads(extra[_METADATA_FILE]) if extra[_METADATA_FILE] else {}
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: stored {_METADATA_FILE} is not JSON ({e}).") from e
    latent_dim = _int_attribute(module, "latent_dim", path)
    num_classes = _int_attribute(module, "num_classes", path)
    resolution = _int_attribute(module, "resolution", path)
    if latent_dim < 1 or num_classes < 0 or resolution < 4 or resolution & (resolution - 1):
        raise ModelError(
            f"{path}: implausible generator attributes latent_dim={latent_dim}, num_classes={num_classes}, "
            f"resolution={resolution} (resolution must be a power of two >= 4)."
        )
    class_names = [str(c) for c in metadata.get("class_names", [])] or [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ModelError(f"{path}: metadata lists {len(class_names)} class_names for a {num_classes}-class generator.")
    return ExportedGenerator(
        module=module.eval(),
        path=path,
        sha256=_sha256(path),
        name=str(metadata.get("name", path.stem)),
        version=str(metadata.get("version", "unknown")),
        latent_dim=latent_dim,
        num_classes=num_classes,
        resolution=resolution,
        class_names=class_names,
    )


@torch.no_grad()
def generate(
    generator: ExportedGenerator,
    num_images: int,
    seed: int,
    batch_size: int,
    class_index: int | None = None,
    device: torch.device | str = "cpu",
    half_precision: bool = False,
) -> torch.Tensor:
    """Generate ``num_images`` images, ``batch_size`` at a time.

    The latents are drawn on the CPU from ``torch.Generator().manual_seed(seed)``, so a seed gives the same
    latents on every device and the same images within floating-point tolerance.

    Args:
        half_precision: run the generator in float16 (CUDA only; outputs are returned as float32).

    Returns:
        (num_images, 1, resolution, resolution) float32 CPU tensor in [-1, 1].

    Raises:
        ModelError: the model's output has the wrong shape, is not finite, or leaves [-1, 1].
    """
    device = torch.device(device)
    dtype = torch.float16 if half_precision and device.type == "cuda" else torch.float32
    module = generator.module.to(device=device, dtype=dtype)
    z_all = sample_latent(num_images, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    expected = (1, generator.resolution, generator.resolution)
    out = []
    for start in range(0, num_images, batch_size):
        z = z_all[start : start + batch_size].to(device=device, dtype=dtype)
        labels = (
            None if class_index is None else torch.full((z.shape[0],), class_index, dtype=torch.long, device=device)
        )
        images = module(z, labels)
        if not isinstance(images, torch.Tensor) or tuple(images.shape) != (z.shape[0], *expected):
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ModelError(f"{generator.path}: generator output is {got}, expected {(z.shape[0], *expected)}.")
        images = images.float().cpu()
        if not torch.isfinite(images).all():
            raise ModelError(f"{generator.path}: generator output contains NaN or infinite values.")
        if images.abs().max() > 1 + _RANGE_TOLERANCE:
            raise ModelError(f"{generator.path}: generator output leaves [-1, 1] (max |x| = {images.abs().max():.3f}).")
        out.append(images.clamp_(-1, 1))
    return torch.cat(out)
