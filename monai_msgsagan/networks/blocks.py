"""Building blocks shared by the MSG-SAGAN generator and discriminator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "SelfAttention2d",
    "PixelNorm",
    "MinibatchStdDev",
    "GeneratorBlock",
    "DiscriminatorBlock",
    "maybe_spectral_norm",
    "he_init",
    "default_channels",
    "network_sides",
    "check_resolution",
    "resolve_scales",
    "DEFAULT_ATTENTION_RESOLUTIONS",
]

#: the finest sides the networks support
MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024


def check_resolution(value: int, name: str = "resolution", minimum: int = 4, maximum: int | None = None) -> int:
    """The one validation of image sides in the package: ``value`` must be an ``int`` power of two in
    ``[minimum, maximum]`` (no upper bound when ``maximum`` is ``None``). Returns ``log2(value)``; raises
    ``ValueError`` naming ``name`` otherwise."""
    upper = "" if maximum is None else f", {maximum}"
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
        or value & (value - 1)
    ):
        raise ValueError(f"{name} must be a power of two in [{minimum}{upper or ', ...'}], got {value!r}.")
    return value.bit_length() - 1


def network_sides(resolution: int) -> list[int]:
    """The scales of a network of finest side ``resolution`` (a power of two in [16, 1024]), coarse to fine:
    ``[4, 8, ..., resolution]``; index ``i`` is side ``4 * 2**i`` in both networks."""
    return [1 << k for k in range(2, check_resolution(resolution, "resolution", MIN_RESOLUTION, MAX_RESOLUTION) + 1)]


def default_channels(resolution: int, channel_base: int = 4096, max_channels: int = 256) -> list[int]:
    """Channel widths for the scales 4, 8, ..., ``resolution`` (coarse to fine).

    Width at side ``s`` is ``min(max_channels, channel_base // s)`` but never below 8, the StyleGAN schedule
    that halves the width each time the side doubles once the cap is no longer reached.
    """
    return [max(8, min(max_channels, channel_base // side)) for side in network_sides(resolution)]


#: SAGAN-style attention at the middle scales, used when ``attention_resolutions`` is ``None``: only the scales a
#: network has are kept (a 16 px network gets none). A given sequence must name scales the network has.
DEFAULT_ATTENTION_RESOLUTIONS: tuple[int, ...] = (32, 64)


def resolve_scales(
    resolution: int,
    channels: Sequence[int] | None,
    attention_resolutions: Sequence[int] | None,
    image_channels: int = 1,
    num_classes: int = 0,
) -> tuple[list[int], list[int], set[int]]:
    """Validate the arguments the generator and discriminator share.

    Returns the scale sides ``[4, 8, ..., resolution]``, one channel width per scale and the set of attention
    scales (``None``: :data:`DEFAULT_ATTENTION_RESOLUTIONS` that the network has); raises ``ValueError`` saying
    what was expected.
    """
    if image_channels < 1 or num_classes < 0:
        raise ValueError(f"image_channels must be >= 1 and num_classes >= 0, got {image_channels}, {num_classes}.")
    sides = network_sides(resolution)
    widths = list(channels) if channels is not None else default_channels(resolution)
    if len(widths) != len(sides) or any(int(c) < 1 for c in widths):
        raise ValueError(
            f"channels must give one positive width per scale {sides} (coarse to fine), got {list(widths)}."
        )
    if attention_resolutions is None:
        attention = {s for s in DEFAULT_ATTENTION_RESOLUTIONS if s in sides}
    else:
        attention = set(attention_resolutions)
        missing = sorted(attention - set(sides))
        if missing:
            raise ValueError(f"attention_resolutions {missing} are not scales of this network; it has {sides}.")
    return sides, [int(c) for c in widths], attention


LayerT = TypeVar("LayerT", nn.Conv2d, nn.ConvTranspose2d, nn.Linear)

#: negative slope of every LeakyReLU in the networks (ProGAN / MSG-GAN)
LEAKY_SLOPE = 0.2


def he_init(layer: LayerT, fan_in: int | None = None) -> LayerT:
    """He (Kaiming) normal initialisation for a layer followed by LeakyReLU(0.2), zero bias; returns ``layer``.

    ``std = sqrt(2 / (1 + 0.2**2)) / sqrt(fan_in)`` keeps activations at unit scale through the plain convolution
    stacks of both networks (ProGAN / MSG-GAN). PyTorch's default initialisation shrinks them by about 1/sqrt(3)
    a layer (see the tests), too weak a discriminator to tell phantoms from blurred copies
    (``bench/discriminator_capacity.py``). ``fan_in`` defaults to ``in_features`` (linear) or
    ``in_channels * kernel area`` (convolutions); pass it for a transposed convolution on a 1x1 input, where each
    output sees ``in_channels`` values.
    """
    if fan_in is None:
        fan_in = layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels * math.prod(layer.kernel_size)
    std = math.sqrt(2.0 / (1.0 + LEAKY_SLOPE**2)) / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.normal_(0.0, std)
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` in spectral normalisation (Miyato et al.) when ``enabled``."""
    return spectral_norm(module) if enabled else module


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit mean square (ProGAN / MSG-GAN generator):
    ``x * rsqrt(mean_c(x**2) + eps)``.

    A channels-last input (the training step's layout) goes through :func:`torch.nn.functional.rms_norm` over its
    innermost (channel) dimension: the same formula in one fused kernel, whose backward on the CPU is faster than
    that of the four element-wise kernels of the composite formula. Any other input takes the composite formula,
    as the fused kernel would first copy it to channels-last.

    Input and output: ``(B, C, H, W)`` (or ``(B, C)``), in the input's memory format.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return F.rms_norm(x.permute(0, 2, 3, 1), [x.shape[1]], eps=self.eps).permute(0, 3, 1, 2)
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class SelfAttention2d(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019) over the spatial positions of a feature map.

    ``out = x + gamma * W_o(softmax(Q K^T) V)`` with query/key/value 1x1 convolutions, ``gamma`` a learned scalar
    that starts at 0 (so a fresh block is the identity). The attention is computed with
    :func:`torch.nn.functional.scaled_dot_product_attention` (``scale=1`` as in SAGAN), so fused memory-efficient
    kernels are used where the backend has them instead of materialising the ``(HW, HW)`` matrix (query and key
    are zero-padded to the value width, which leaves ``Q K^T`` unchanged, because the fused kernels need equal
    head sizes).

    Args:
        channels: number of input (and output) channels ``C``.
        qk_reduction: query/key width is ``C // qk_reduction`` (8 in SAGAN).
        value_reduction: value width is ``C // value_reduction`` (2 in BigGAN's SAGAN block); an output 1x1
            convolution maps it back to ``C``.
        use_spectral_norm: spectral-normalise the four convolutions (SAGAN uses it in both networks).

    Input and output: ``(B, C, H, W)``.
    """

    def __init__(
        self, channels: int, qk_reduction: int = 8, value_reduction: int = 2, use_spectral_norm: bool = False
    ) -> None:
        super().__init__()
        if channels < qk_reduction:
            raise ValueError(f"SelfAttention2d needs at least {qk_reduction} channels, got {channels}.")
        qk = channels // qk_reduction
        v = max(1, channels // value_reduction)
        self.query = maybe_spectral_norm(he_init(nn.Conv2d(channels, qk, 1, bias=False)), use_spectral_norm)
        self.key = maybe_spectral_norm(he_init(nn.Conv2d(channels, qk, 1, bias=False)), use_spectral_norm)
        self.value = maybe_spectral_norm(he_init(nn.Conv2d(channels, v, 1, bias=False)), use_spectral_norm)
        self.out = maybe_spectral_norm(he_init(nn.Conv2d(v, channels, 1, bias=False)), use_spectral_norm)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # (B, 1, HW, d): one head, positions as the sequence
        q = self.query(x).flatten(2).transpose(1, 2).unsqueeze(1)
        k = self.key(x).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.value(x).flatten(2).transpose(1, 2).unsqueeze(1).contiguous()  # fused kernels need stride 1
        pad = v.shape[-1] - q.shape[-1]
        if pad > 0:
            # zero-padding q and k leaves q k^T unchanged but gives the fused (flash) kernels the equal head
            # sizes they need, faster than the math fallback and with memory O(HW)
            q = F.pad(q, (0, pad))
            k = F.pad(k, (0, pad))
        attended = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        attended = attended.squeeze(1).transpose(1, 2).reshape(b, -1, h, w)
        return x + self.gamma * self.out(attended)


class MinibatchStdDev(nn.Module):
    """Append the mean standard deviation over a group of samples as one extra channel (ProGAN).

    Input ``(B, C, H, W)``, output ``(B, C + 1, H, W)``. The group is ``min(group_size, B)`` samples; when ``B`` is
    not divisible by it, the whole batch forms one group.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = group_size
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        group = min(self.group_size, b)
        if b % group != 0:
            group = b
        y = x.reshape(group, b // group, c, h, w)
        y = (y.var(dim=0, unbiased=False) + self.eps).sqrt()  # (B/G, C, H, W)
        y = y.mean(dim=(1, 2, 3)).reshape(1, b // group, 1, 1, 1)
        y = y.expand(group, b // group, 1, h, w).reshape(b, 1, h, w)
        return torch.cat([x, y], dim=1)


def upsample_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv2d(interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)`` as one stride-2
    transposed convolution at the input's resolution, with 4x4 the arithmetic of 9x9 (the same function up to
    float rounding; ``tests/test_networks.py`` checks values and gradients against the two-step form).

    Along each axis, the even output ``2i`` sees input ``i-1`` through tap 0 and input ``i`` through taps 1 + 2, the
    odd output ``2i+1`` input ``i`` through taps 0 + 1 and input ``i+1`` through tap 2: the 3-tap kernel
    ``(k0, k1, k2)`` becomes the 4-tap transposed kernel ``(k2, k1 + k2, k0 + k1, k0)``.

    ``x``: ``(B, C_in, H, W)``; ``weight``: ``(C_out, C_in, 3, 3)``; ``bias``: ``(C_out,)`` or None.
    Returns ``(B, C_out, 2H, 2W)``.
    """
    w = torch.stack(
        [weight[:, :, 2], weight[:, :, 1] + weight[:, :, 2], weight[:, :, 0] + weight[:, :, 1], weight[:, :, 0]], 2
    )
    w = torch.stack([w[..., 2], w[..., 1] + w[..., 2], w[..., 0] + w[..., 1], w[..., 0]], 3)
    return F.conv_transpose2d(x, w.transpose(0, 1), bias, stride=2, padding=1)


class GeneratorBlock(nn.Module):
    """One generator scale: (optional nearest 2x upsample) -> two 3x3 convolutions -> optional self-attention.

    The first block (``first=True``) maps the latent vector ``(B, L)`` to a ``4x4`` map with a 4x4 transposed
    convolution as in ProGAN/MSG-GAN. Every block keeps LeakyReLU(0.2) + pixel norm after each convolution and
    owns a 1x1 ``to_image`` head mapping its features to an image in [-1, 1] (tanh).

    Input: ``(B, L)`` for the first block, else ``(B, C_in, s/2, s/2)``. Output features ``(B, C_out, s, s)``.
    """

    def __init__(self, in_channels: int, out_channels: int, image_channels: int, first: bool, attention: bool) -> None:
        super().__init__()
        self.first = first
        if first:
            self.conv1: nn.Module = he_init(nn.ConvTranspose2d(in_channels, out_channels, 4), fan_in=in_channels)
        else:
            self.conv1 = he_init(nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.conv2 = he_init(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.act = nn.LeakyReLU(LEAKY_SLOPE, inplace=True)  # on fresh convolution outputs
        self.norm = PixelNorm()
        self.attention: nn.Module = SelfAttention2d(out_channels) if attention else nn.Identity()
        self.image_head = he_init(nn.Conv2d(out_channels, image_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.first:
            x = self.conv1(x.reshape(x.shape[0], x.shape[1], 1, 1))
        else:  # nearest 2x upsampling, then conv1
            x = upsample_conv3x3(x, self.conv1.weight, self.conv1.bias)
        x = self.norm(self.act(x))
        x = self.norm(self.act(self.conv2(x)))
        return self.attention(x)

    def to_image(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, C_out, s, s)`` -> image ``(B, image_channels, s, s)`` in [-1, 1]."""
        return torch.tanh(self.image_head(x))


class DiscriminatorBlock(nn.Module):
    """One discriminator scale: [features ; image at this scale] -> optional attention -> two 3x3 convs -> 2x down.

    The image of the block's scale is concatenated to the incoming features (MSG-GAN's ``phi_simple`` combine);
    the finest block has no incoming features and maps the image with a 1x1 ``from_image`` convolution first.
    All convolutions are spectral-normalised when ``use_spectral_norm``.

    Input: image ``(B, image_channels, s, s)`` and features ``(B, C_in, s, s)`` (or ``None`` for the finest block).
    Output: ``(B, C_out, s/2, s/2)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        image_channels: int,
        finest: bool,
        attention: bool,
        use_spectral_norm: bool,
    ) -> None:
        super().__init__()
        self.finest = finest
        sn = use_spectral_norm
        if finest:
            self.from_image: nn.Module = maybe_spectral_norm(he_init(nn.Conv2d(image_channels, in_channels, 1)), sn)
            conv_in = in_channels
        else:
            self.from_image = nn.Identity()
            conv_in = in_channels + image_channels
        self.attention: nn.Module = SelfAttention2d(conv_in, use_spectral_norm=sn) if attention else nn.Identity()
        self.conv1 = maybe_spectral_norm(he_init(nn.Conv2d(conv_in, in_channels, 3, padding=1)), sn)
        self.conv2 = maybe_spectral_norm(he_init(nn.Conv2d(in_channels, out_channels, 3, padding=1)), sn)
        self.act = nn.LeakyReLU(LEAKY_SLOPE, inplace=True)  # on fresh convolution outputs

    def forward(self, image: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        if features is None:
            x = self.act(self.from_image(image))
        else:
            x = torch.cat([features, image], dim=1)
        x = self.attention(x)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        return F.avg_pool2d(x, 2)
