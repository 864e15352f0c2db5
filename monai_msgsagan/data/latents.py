"""Latent vectors as a dataset: what the inference bundle feeds the generator."""

from __future__ import annotations

import torch
from monai.data import Dataset

from monai_msgsagan.networks.generator import sample_latent

__all__ = ["LatentDataset"]


class LatentDataset(Dataset):
    """``num_images`` latent vectors drawn once from ``seed``: item ``i`` is the same for any batch size.

    Item ``i``: ``{"image": (latent_dim,) float32, "index": i, "pred_meta_dict": {"filename_or_obj": name}}``
    with ``name = f"{prefix}_{i:05d}"``, so MONAI's ``SaveImaged(keys="pred", meta_keys="pred_meta_dict")`` names
    each generated image after its latent.
    """

    def __init__(self, num_images: int, latent_dim: int, seed: int = 0, prefix: str = "synthetic") -> None:
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}.")
        latents = sample_latent(num_images, latent_dim, torch.Generator().manual_seed(seed))
        data = [
            {"image": latents[i], "index": i, "pred_meta_dict": {"filename_or_obj": f"{prefix}_{i:05d}"}}
            for i in range(num_images)
        ]
        super().__init__(data)
