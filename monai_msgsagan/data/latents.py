"""Latent vectors as a dataset: what the inference bundle feeds the generator."""

from __future__ import annotations

import torch
from monai.data import Dataset

from monai_msgsagan.generation import image_latents

__all__ = ["LatentDataset"]


class LatentDataset(Dataset):
    """The latent vectors of images ``0 .. num_images - 1`` of one class for a run seed, by the one seeding policy
    of :func:`~monai_msgsagan.generation.generate`: the bundle's inference writes the images ``generate`` makes.

    Item ``i``: ``{"image": (latent_dim,) float32, "index": i, "pred_meta_dict": {...}}`` whose meta dict holds
    ``filename_or_obj = f"{prefix}_{i:05d}"`` and a 2-D identity ``affine`` (3x3), so that
    ``ToMetaTensord("pred")`` + ``SaveImaged("pred")`` write each generated ``(1, R, R)`` image as a 2-D PNG or
    NIfTI file named after its latent. With ``image_size`` the meta dict also holds ``spatial_shape`` and an
    identity ``original_affine``: MONAI 1.6's NIfTI writer needs them (its no-resample path fails on 2-D images),
    and with them ``SaveImaged(resample=True)`` is an exact identity.

    Args:
        num_images: how many latents, at least 1.
        latent_dim: length of a latent vector.
        seed: run seed.
        class_index: the class the images are generated for (0 for an unconditional generator).
        prefix: file name prefix.
        image_size: side of the generated images (for the NIfTI writer).
    """

    def __init__(
        self,
        num_images: int,
        latent_dim: int,
        seed: int = 0,
        class_index: int = 0,
        prefix: str = "synthetic",
        image_size: int | None = None,
    ) -> None:
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}.")
        latents = image_latents(latent_dim, seed, class_index, range(num_images))
        data = []
        for i in range(num_images):
            meta = {"filename_or_obj": f"{prefix}_{i:05d}", "affine": torch.eye(3, dtype=torch.float64)}
            if image_size is not None:
                meta["original_affine"] = torch.eye(3, dtype=torch.float64)
                meta["spatial_shape"] = torch.tensor([image_size, image_size])
            data.append({"image": latents[i], "index": i, "pred_meta_dict": meta})
        super().__init__(data)
