"""Exponential moving average of the generator weights (the model that is exported)."""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events

__all__ = ["GeneratorEMA"]


class GeneratorEMA:
    """Keep ``ema_network`` an exponential moving average of ``network`` (Karras et al.; StyleGAN2-ADA).

    After every iteration ``ema = beta * ema + (1 - beta) * network`` for parameters, and buffers are copied.
    ``beta`` follows StyleGAN2-ADA: ``beta = 0.5 ** (batch_size / half_life_images)``, with the half-life ramped up
    as ``min(half_life_images, rampup * images_seen)`` when ``rampup`` is given, so early noise fades quickly.

    ``ema_network`` is initialised from ``network`` when the handler is built, i.e. before a resumed checkpoint is
    loaded into it at ``STARTED``; save it in the checkpoint for exact resume.

    Args:
        network: the generator being trained.
        ema_network: a module with the same state dict keys (e.g. a second ``MultiScaleGenerator``).
        half_life_images: images shown for the average to halve the weight of the past.
        rampup: ramp-up ratio of the half-life (0.05 in StyleGAN2-ADA) or ``None``.
        batch_size: images per iteration (all ranks together).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        ema_network: torch.nn.Module,
        half_life_images: float = 10000.0,
        rampup: float | None = 0.05,
        batch_size: int = 16,
    ) -> None:
        if half_life_images <= 0 or batch_size < 1:
            raise ValueError("half_life_images and batch_size must be positive.")
        self.network = network
        self.ema_network = ema_network
        self.half_life_images = half_life_images
        self.rampup = rampup
        self.batch_size = batch_size
        self.ema_network.load_state_dict(network.state_dict())
        self.ema_network.requires_grad_(False)
        self.ema_network.eval()

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def beta(self, iteration: int) -> float:
        half_life = self.half_life_images
        if self.rampup is not None:
            half_life = min(half_life, iteration * self.batch_size * self.rampup)
        return 0.5 ** (self.batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def __call__(self, engine: Engine) -> None:
        beta = self.beta(engine.state.iteration)
        ema_params, params = list(self.ema_network.parameters()), [p.detach() for p in self.network.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)  # ema + (1 - beta) (p - ema): one fused update
        ema_buffers, buffers = list(self.ema_network.buffers()), list(self.network.buffers())
        if ema_buffers:
            torch._foreach_copy_(ema_buffers, buffers)
