"""Adversarial losses and gradient penalties for multi-scale GANs.

Every loss takes discriminator logits of shape ``(B,)``. Penalties take the list of images a
:class:`~monai_msgsagan.networks.MultiScaleDiscriminator` consumes (coarse to fine, values in [-1, 1]) and
differentiate with respect to **every scale** of it: penalising the finest image alone leaves the coarse inputs
unregularised (a known bug of public MSG-GAN code).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = [
    "AdversarialLoss",
    "RelativisticAverageHingeLoss",
    "HingeLoss",
    "NonSaturatingLogisticLoss",
    "WassersteinLoss",
    "R1Penalty",
    "GradientPenalty",
    "get_adversarial_loss",
    "ADVERSARIAL_LOSSES",
]

Discriminator = Callable[..., torch.Tensor]


class AdversarialLoss(nn.Module):
    """Base class: ``discriminator_loss(real, fake)`` and ``generator_loss(fake, real)`` on ``(B,)`` logits.

    ``uses_real_in_generator_loss`` tells a trainer whether the generator step needs logits of real images too
    (relativistic losses do).
    """

    uses_real_in_generator_loss: bool = False

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor, for_discriminator: bool = True
    ) -> torch.Tensor:
        if for_discriminator:
            return self.discriminator_loss(real_logits, fake_logits)
        return self.generator_loss(fake_logits, real_logits)


class RelativisticAverageHingeLoss(AdversarialLoss):
    """Relativistic average hinge loss (Jolicoeur-Martineau 2019), the MSG-GAN loss.

    With ``dr = real - mean(fake)`` and ``df = fake - mean(real)``:
    ``L_D = mean(relu(1 - dr)) + mean(relu(1 + df))`` and ``L_G = mean(relu(1 + dr)) + mean(relu(1 - df))``.
    """

    uses_real_in_generator_loss = True

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        dr = real_logits - fake_logits.mean()
        df = fake_logits - real_logits.mean()
        return F.relu(1.0 - dr).mean() + F.relu(1.0 + df).mean()

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        if real_logits is None:
            raise ValueError("the relativistic average hinge generator loss needs the logits of real images.")
        dr = real_logits - fake_logits.mean()
        df = fake_logits - real_logits.mean()
        return F.relu(1.0 + dr).mean() + F.relu(1.0 - df).mean()


class HingeLoss(AdversarialLoss):
    """Hinge loss (SAGAN): ``L_D = mean(relu(1 - real)) + mean(relu(1 + fake))``, ``L_G = -mean(fake)``."""

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return -fake_logits.mean()


class NonSaturatingLogisticLoss(AdversarialLoss):
    """Non-saturating logistic loss (Goodfellow et al., StyleGAN2; pair it with :class:`R1Penalty`).

    ``L_D = mean(softplus(-real)) + mean(softplus(fake))``, ``L_G = mean(softplus(-fake))``.
    """

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()


class WassersteinLoss(AdversarialLoss):
    """Wasserstein loss (pair it with :class:`GradientPenalty`, WGAN-GP).

    ``L_D = mean(fake) - mean(real) + drift * mean(real^2)`` (the ProGAN drift term keeps logits near 0),
    ``L_G = -mean(fake)``.
    """

    def __init__(self, drift: float = 1e-3) -> None:
        super().__init__()
        if drift < 0:
            raise ValueError(f"drift must be >= 0, got {drift}.")
        self.drift = drift

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean() + self.drift * real_logits.pow(2).mean()

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return -fake_logits.mean()


ADVERSARIAL_LOSSES: dict[str, type[AdversarialLoss]] = {
    "rahinge": RelativisticAverageHingeLoss,
    "hinge": HingeLoss,
    "logistic": NonSaturatingLogisticLoss,
    "wgan": WassersteinLoss,
}


def get_adversarial_loss(name: str) -> AdversarialLoss:
    """The loss called ``name``: one of ``rahinge`` (MSG-GAN), ``hinge`` (SAGAN), ``logistic``, ``wgan``."""
    if name not in ADVERSARIAL_LOSSES:
        raise ValueError(f"unknown adversarial loss {name!r}; expected one of {sorted(ADVERSARIAL_LOSSES)}.")
    return ADVERSARIAL_LOSSES[name]()


class _LazyPenalty:
    """Shared lazy-regularisation logic: a penalty is computed every ``interval`` iterations and then scaled by
    ``interval`` so its average strength does not depend on the interval (StyleGAN2)."""

    def __init__(self, weight: float, interval: int) -> None:
        if weight < 0:
            raise ValueError(f"penalty weight must be >= 0, got {weight}.")
        if interval < 1:
            raise ValueError(f"penalty interval must be >= 1, got {interval}.")
        self.weight = weight
        self.interval = interval

    def is_due(self, iteration: int) -> bool:
        """Whether the penalty is applied at this (0-based) discriminator iteration."""
        return self.weight > 0 and iteration % self.interval == 0


def _differentiable_logits(
    discriminator: Discriminator, inputs: Sequence[torch.Tensor], labels: torch.Tensor | None
) -> torch.Tensor:
    """``discriminator(inputs, labels)`` with the math attention kernel: the penalty backpropagates through its
    own gradient (double backward), which the fused (flash / memory-efficient) SDPA kernels do not implement."""
    with sdpa_kernel([SDPBackend.MATH]):
        return discriminator(list(inputs), labels)


def _squared_grad_norm(outputs: torch.Tensor, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-sample squared norm ``(B,)`` of d(sum outputs)/d(inputs), summed over every tensor of ``inputs``."""
    grads = torch.autograd.grad(outputs.sum(), list(inputs), create_graph=True)
    return sum(g.pow(2).flatten(1).sum(1) for g in grads)  # type: ignore[return-value]


class R1Penalty(_LazyPenalty):
    """R1 penalty (Mescheder et al. 2018): ``gamma / 2 * E[ sum_s ||d D(x) / d x_s||^2 ]`` on real images.

    Args:
        gamma: weight (StyleGAN2 uses 10 at 256 px for FFHQ; small data sets often want less).
        interval: lazy regularisation interval in discriminator iterations; the penalty is multiplied by it.

    ``__call__(discriminator, real_images, labels=None)`` returns a scalar tensor; call it when
    :meth:`is_due`. ``real_images`` is the coarse-to-fine list, each ``(B, C, s, s)``.
    """

    def __init__(self, gamma: float = 10.0, interval: int = 1) -> None:
        super().__init__(gamma, interval)

    def __call__(
        self, discriminator: Discriminator, real_images: Sequence[torch.Tensor], labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        inputs = [img.detach().requires_grad_(True) for img in real_images]
        logits = _differentiable_logits(discriminator, inputs, labels)
        return 0.5 * self.weight * self.interval * _squared_grad_norm(logits, inputs).mean()


class GradientPenalty(_LazyPenalty):
    """WGAN-GP penalty (Gulrajani et al. 2017), multi-scale: ``weight * E[(||grad||_2 - 1)^2]``.

    Each sample gets one mixing factor ``alpha ~ U(0, 1)``, shared by all its scales
    (``x_s = alpha * real_s + (1 - alpha) * fake_s``), and the norm is taken over the gradients of all scales
    together, so the penalty constrains the discriminator as a function of the whole pyramid.

    ``__call__(discriminator, real_images, fake_images, labels=None, generator=None)``: lists coarse to fine;
    ``generator`` is the ``torch.Generator`` that draws ``alpha`` (reproducible runs).
    """

    def __init__(self, weight: float = 10.0, interval: int = 1) -> None:
        super().__init__(weight, interval)

    def __call__(
        self,
        discriminator: Discriminator,
        real_images: Sequence[torch.Tensor],
        fake_images: Sequence[torch.Tensor],
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        if len(real_images) != len(fake_images):
            raise ValueError(f"real and fake pyramids differ in length: {len(real_images)} vs {len(fake_images)}.")
        ref = real_images[0]
        gen_device = generator.device if generator is not None else ref.device
        alpha = torch.rand(ref.shape[0], 1, 1, 1, generator=generator, device=gen_device).to(ref.device, ref.dtype)
        inputs = [
            (alpha * r.detach() + (1.0 - alpha) * f.detach()).requires_grad_(True)
            for r, f in zip(real_images, fake_images)
        ]
        logits = _differentiable_logits(discriminator, inputs, labels)
        norm = (_squared_grad_norm(logits, inputs) + 1e-12).sqrt()
        return self.weight * self.interval * (norm - 1.0).pow(2).mean()
