"""Adversarial losses against hand-computed values; penalties over every scale."""

from __future__ import annotations

import math

import pytest
import torch

from monai_msgsagan.losses import (
    GradientPenalty,
    HingeLoss,
    NonSaturatingLogisticLoss,
    R1Penalty,
    RelativisticAverageHingeLoss,
    WassersteinLoss,
    get_adversarial_loss,
)
from monai_msgsagan.networks import MultiScaleDiscriminator

REAL = torch.tensor([2.0, 0.0])
FAKE = torch.tensor([-1.0, 1.0])


def test_relativistic_average_hinge_by_hand():
    # mean(real)=1, mean(fake)=0: dr = [2, 0], df = [-2, 0]
    loss = RelativisticAverageHingeLoss()
    # D: mean(relu(1 - [2, 0])) + mean(relu(1 + [-2, 0])) = 0.5 + 0.5
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx(1.0)
    # G: mean(relu(1 + [2, 0])) + mean(relu(1 - [-2, 0])) = 2 + 2
    assert loss.generator_loss(FAKE, REAL).item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="needs the logits of real"):
        loss.generator_loss(FAKE)


def test_hinge_by_hand():
    loss = HingeLoss()
    # mean(relu(1 - [2, 0])) + mean(relu(1 + [-1, 1])) = 0.5 + 1.0
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx(1.5)
    assert loss.generator_loss(FAKE).item() == pytest.approx(0.0)
    assert loss.generator_loss(torch.tensor([1.0, 2.0])).item() == pytest.approx(-1.5)


def test_logistic_by_hand():
    loss = NonSaturatingLogisticLoss()
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected_d = (sp(-2.0) + sp(0.0)) / 2 + (sp(-1.0) + sp(1.0)) / 2
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    assert loss.generator_loss(FAKE).item() == pytest.approx((sp(1.0) + sp(-1.0)) / 2, rel=1e-6)


def test_wasserstein_by_hand():
    loss = WassersteinLoss(drift=0.1)
    # mean(fake) - mean(real) + 0.1 * mean(real^2) = 0 - 1 + 0.1 * 2
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx(-0.8)
    assert loss.generator_loss(FAKE).item() == pytest.approx(0.0)


def test_factory_and_forward():
    assert isinstance(get_adversarial_loss("rahinge"), RelativisticAverageHingeLoss)
    loss = get_adversarial_loss("hinge")
    assert loss(REAL, FAKE).item() == pytest.approx(1.5)
    assert loss(REAL, FAKE, for_discriminator=False).item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown adversarial loss 'lsgan'"):
        get_adversarial_loss("lsgan")


class LinearCritic(torch.nn.Module):
    """D(x_0..x_S) = sum_s <w_s, x_s> + b * label: its input gradient at scale s is w_s, known by hand."""

    def __init__(self, sides):
        super().__init__()
        self.w = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.full((1, 1, s, s), 0.5 * (i + 1))) for i, s in enumerate(sides)]
        )

    def forward(self, images, labels=None):
        return sum((w * x).flatten(1).sum(1) for w, x in zip(self.w, images))


def pyramid(batch, sides, value):
    return [torch.full((batch, 1, s, s), value) for s in sides]


def test_r1_penalty_by_hand_uses_every_scale():
    sides = (4, 8)
    critic = LinearCritic(sides)
    # ||grad||^2 = 16 * 0.5^2 + 64 * 1.0^2 = 68 per sample; gamma/2 * 68 with gamma = 2
    penalty = R1Penalty(gamma=2.0)(critic, pyramid(3, sides, 0.3))
    assert penalty.item() == pytest.approx(68.0)
    finest_only = 64 * 1.0**2
    assert penalty.item() != pytest.approx(finest_only)
    # lazy: every 4 iterations, scaled by 4
    lazy = R1Penalty(gamma=2.0, interval=4)
    assert [lazy.is_due(i) for i in range(5)] == [True, False, False, False, True]
    assert lazy(critic, pyramid(3, sides, 0.3)).item() == pytest.approx(4 * 68.0)


def test_gradient_penalty_by_hand_uses_every_scale():
    sides = (4, 8)
    critic = LinearCritic(sides)
    # ||grad|| = sqrt(68) for every sample and every alpha: weight * (sqrt(68) - 1)^2
    gp = GradientPenalty(weight=10.0)
    value = gp(critic, pyramid(2, sides, 1.0), pyramid(2, sides, -1.0), generator=torch.Generator().manual_seed(0))
    assert value.item() == pytest.approx(10.0 * (math.sqrt(68.0) - 1.0) ** 2, rel=1e-5)
    with pytest.raises(ValueError, match="differ in length"):
        gp(critic, pyramid(2, sides, 1.0), pyramid(2, sides[:1], 1.0))


def test_penalties_backpropagate_into_a_real_discriminator():
    torch.manual_seed(0)
    d = MultiScaleDiscriminator(16, channels=[16, 16, 16], attention_resolutions=(8,), num_classes=2)
    real = [torch.rand(4, 1, s, s) * 2 - 1 for s in (4, 8, 16)]
    fake = [torch.rand(4, 1, s, s) * 2 - 1 for s in (4, 8, 16)]
    labels = torch.tensor([0, 1, 0, 1])
    for penalty in (
        R1Penalty(1.0)(d, real, labels),
        GradientPenalty(1.0)(d, real, fake, labels, torch.Generator().manual_seed(0)),
    ):
        d.zero_grad()
        penalty.backward()
        assert penalty.item() > 0
        assert d.blocks["16"].conv1.parametrizations.weight.original.grad.abs().sum() > 0  # the finest block


def test_bad_penalty_arguments():
    with pytest.raises(ValueError, match="interval must be >= 1"):
        R1Penalty(1.0, interval=0)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        GradientPenalty(-1.0)
