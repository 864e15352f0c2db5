"""MSG-SAGAN discriminator: takes the image at every scale, merges each into its matching block."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from monai_msgsagan.networks.blocks import (
    LEAKY_SLOPE,
    DiscriminatorBlock,
    MinibatchStdDev,
    SelfAttention2d,
    he_init,
    maybe_spectral_norm,
    resolve_scales,
)

__all__ = ["MultiScaleDiscriminator"]


class MultiScaleDiscriminator(nn.Module):
    """MSG-GAN discriminator (Karnewar & Wang 2020) with SAGAN self-attention and spectral normalisation.

    The finest image enters through a 1x1 convolution; every coarser image is concatenated to the features that
    arrive at its scale (MSG-GAN's ``phi_simple``), so gradients flow to every scale of the generator. The last
    block (4x4) appends the minibatch standard deviation, then a 3x3 and a 4x4 convolution give a feature vector
    ``h``; the logit is ``linear(h)`` plus, when ``num_classes > 0``, the projection term ``<embed(y), h>``
    (Miyato & Koyama 2018). With ``auxiliary_classifier`` a second linear head on ``h`` predicts the class, as in
    AC-GAN (Odena et al. 2017) and CovidGAN (Waheed et al. 2020): :meth:`logits_and_classes` returns both. With
    ``attention_resolutions=()`` this is exactly an MSG-GAN discriminator.

    Args:
        resolution: side of the finest image, a power of two in [16, 1024].
        image_channels: channels ``C`` of every input image.
        channels: feature width of each scale, coarse to fine; default
            :func:`~monai_msgsagan.networks.blocks.default_channels`.
        attention_resolutions: scales whose block starts with a self-attention layer; ``None``: the generator's
            default (:data:`~monai_msgsagan.networks.DEFAULT_ATTENTION_RESOLUTIONS` that the network has).
        num_classes: ``> 0`` for class-conditional (projection) discrimination.
        use_spectral_norm: spectral-normalise every convolution and linear layer (the SAGAN recipe). At the
            small widths of a CPU budget D learns more slowly with it (``bench/discriminator_capacity.py``), so
            the bundle turns it off and regularises D with R1 instead (``d_spectral_norm``, ``r1_gamma``).
        mbstd_group_size: group size of the minibatch standard deviation.
        auxiliary_classifier: add the class head (needs ``num_classes >= 2``).

    Forward:
        ``images``: list coarse to fine, item ``i`` ``(B, C, 2**(i+2), 2**(i+2))``, values in [-1, 1];
        ``labels``: ``(B,)`` int64, required when ``num_classes > 0``.
        Returns logits ``(B,)``.
    """

    def __init__(
        self,
        resolution: int,
        image_channels: int = 1,
        channels: Sequence[int] | None = None,
        attention_resolutions: Sequence[int] | None = None,
        num_classes: int = 0,
        use_spectral_norm: bool = True,
        mbstd_group_size: int = 4,
        auxiliary_classifier: bool = False,
    ) -> None:
        super().__init__()
        if auxiliary_classifier and num_classes < 2:
            raise ValueError(f"an auxiliary classifier needs num_classes >= 2, got {num_classes}.")
        sides, widths, attention = resolve_scales(
            resolution, channels, attention_resolutions, image_channels, num_classes
        )
        self.resolution, self.image_channels, self.num_classes = resolution, image_channels, num_classes
        self.sides, self.attention_resolutions = sides, sorted(attention)
        sn = use_spectral_norm
        # one block per scale above 4x4, named by its side ("8", ..., "64") so no index can be read coarse to fine
        # in one network and fine to coarse in the other; the forward pass runs them fine to coarse
        self.blocks = nn.ModuleDict(
            {
                str(sides[i]): DiscriminatorBlock(
                    in_channels=widths[i],
                    out_channels=widths[i - 1],
                    image_channels=image_channels,
                    finest=i == len(sides) - 1,
                    attention=sides[i] in attention,
                    use_spectral_norm=sn,
                )
                for i in range(1, len(sides))
            }
        )
        final_width = widths[0]
        self.final_attention: nn.Module = nn.Identity()
        if 4 in attention:
            self.final_attention = SelfAttention2d(final_width + image_channels, use_spectral_norm=sn)
        self.mbstd = MinibatchStdDev(mbstd_group_size)
        self.final_conv = maybe_spectral_norm(
            he_init(nn.Conv2d(final_width + image_channels + 1, final_width, 3, padding=1)), sn
        )
        self.final_dense = maybe_spectral_norm(he_init(nn.Conv2d(final_width, final_width, 4)), sn)
        self.act = nn.LeakyReLU(LEAKY_SLOPE, inplace=True)  # on fresh convolution outputs
        self.logit = maybe_spectral_norm(he_init(nn.Linear(final_width, 1)), sn)
        self.class_projection = (
            maybe_spectral_norm(nn.Embedding(num_classes, final_width), sn) if num_classes > 0 else None
        )
        self.class_head = (
            maybe_spectral_norm(he_init(nn.Linear(final_width, num_classes)), sn) if auxiliary_classifier else None
        )

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        """Read checkpoints of bundle <= 0.6, whose blocks were numbered fine to coarse (``blocks.0`` the finest)."""
        old = f"{prefix}blocks."
        if any(k.startswith(f"{old}0.") for k in state_dict):  # no side is 0: an index of the old numbering
            for key in [k for k in state_dict if k.startswith(old)]:
                index, rest = key[len(old) :].split(".", 1)
                state_dict[f"{old}{self.sides[-1 - int(index)]}.{rest}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def check_images(self, images: Sequence[torch.Tensor]) -> None:
        """Raise ``ValueError`` unless ``images`` is the coarse-to-fine list this discriminator expects."""
        if not isinstance(images, (list, tuple)) or len(images) != len(self.sides):
            got = len(images) if isinstance(images, (list, tuple)) else type(images).__name__
            raise ValueError(f"expected a list of {len(self.sides)} images with sides {self.sides}, got {got}.")
        batch = images[0].shape[0]
        for side, img in zip(self.sides, images):
            if img.dim() != 4 or tuple(img.shape[1:]) != (self.image_channels, side, side) or img.shape[0] != batch:
                raise ValueError(
                    f"expected images of shape (B, {self.image_channels}, s, s) for s in {self.sides} with one B, "
                    f"got {[list(i.shape) for i in images]}."
                )

    def _features(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """The feature vector ``h`` ``(B, final_width)`` of a checked coarse-to-fine image list."""
        self.check_images(images)
        features: torch.Tensor | None = None
        for i in range(len(self.sides) - 1, 0, -1):  # fine to coarse
            features = self.blocks[str(self.sides[i])](images[i], features)
        x = torch.cat([features, images[0]], dim=1)
        x = self.final_attention(x)
        x = self.act(self.final_conv(self.mbstd(x)))
        return self.act(self.final_dense(x)).flatten(1)

    def forward(self, images: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        return self._logits(self._features(images), labels)

    def logits_and_classes(
        self, images: Sequence[torch.Tensor], labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits ``(B,)`` of :meth:`forward` and the auxiliary classifier's class logits ``(B, num_classes)``
        from one pass."""
        if self.class_head is None:
            raise ValueError("this discriminator has no auxiliary classifier (auxiliary_classifier=False).")
        h = self._features(images)
        return self._logits(h, labels), self.class_head(h)

    def _logits(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        out = self.logit(h).squeeze(1)
        if self.class_projection is not None:
            if labels is None:
                raise ValueError(f"this discriminator is class-conditional ({self.num_classes} classes): pass labels.")
            if labels.shape != out.shape:
                raise ValueError(f"labels must have shape ({out.shape[0]},), got {list(labels.shape)}.")
            out = out + (self.class_projection(labels.long()) * h).sum(dim=1)
        return out
