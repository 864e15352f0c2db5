"""MSG-SAGAN networks: multi-scale generator and discriminator with SAGAN self-attention."""

from monai_msgsagan.networks.blocks import (
    DEFAULT_ATTENTION_RESOLUTIONS,
    MinibatchStdDev,
    PixelNorm,
    SelfAttention2d,
    default_channels,
)
from monai_msgsagan.networks.discriminator import MultiScaleDiscriminator
from monai_msgsagan.networks.generator import InferenceGenerator, MultiScaleGenerator

__all__ = [
    "DEFAULT_ATTENTION_RESOLUTIONS",
    "InferenceGenerator",
    "MinibatchStdDev",
    "MultiScaleDiscriminator",
    "MultiScaleGenerator",
    "PixelNorm",
    "SelfAttention2d",
    "default_channels",
]
