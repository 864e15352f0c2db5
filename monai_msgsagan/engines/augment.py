"""Differentiable augmentation of image pyramids for data-efficient GAN training.

DiffAugment (Zhao et al. 2020) applies the same random colour, translation and cutout to real and fake images
before the discriminator, so the generator is not pushed to reproduce the augmentation. Here one random draw is
shared by every scale of a pyramid (a shift or hole covers the same fraction of the image at 4x4 and RxR), and
the probability ``p`` of augmenting a sample can adapt as in StyleGAN2-ADA (Karras et al. 2020): it rises while
the discriminator is over-confident on real images (``E[sign(D(real))] > target``) and falls otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

__all__ = ["PyramidDiffAugment"]

POLICIES = ("color", "translation", "cutout")


@dataclass(eq=False)
class PyramidDiffAugment:
    """Differentiable colour / translation / cutout augmentation of a coarse-to-fine image pyramid.

    Args:
        policy: subset of ``("color", "translation", "cutout")``.
        probability: initial per-sample probability of augmenting (1.0 is plain DiffAugment).
        adaptive: adapt ``probability`` towards ``target`` (ADA heuristic ``r_t = E[sign(D(real))]``).
        target: the ``r_t`` the adaptation aims for (0.6 in StyleGAN2-ADA).
        adjust_speed_images: images shown for ``probability`` to move from 0 to 1 (500k in ADA; small data sets
            with short runs want far less).
        interval: discriminator steps between adjustments.
        translation_ratio: largest shift as a fraction of the side.
        cutout_ratio: side of the cut-out square as a fraction of the side.

    Calling it on a list of ``(B, C, s, s)`` tensors in [-1, 1] returns the augmented list (same shapes; values
    may leave [-1, 1] after the colour jitter, as in DiffAugment). Random draws come from the ``torch.Generator``
    passed to the call, so a seeded run is reproducible; :meth:`state_dict` holds the adaptive state for resume.
    """

    policy: Sequence[str] = POLICIES
    probability: float = 1.0
    adaptive: bool = False
    target: float = 0.6
    adjust_speed_images: int = 20000
    interval: int = 4
    translation_ratio: float = 0.125
    cutout_ratio: float = 0.5
    _sign_sum: float | torch.Tensor = field(default=0.0, init=False, repr=False)
    _sign_count: int = field(default=0, init=False, repr=False)
    _steps: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.policy) - set(POLICIES)
        if unknown:
            raise ValueError(f"unknown augmentation policy {sorted(unknown)}; expected a subset of {POLICIES}.")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must lie in [0, 1], got {self.probability}.")
        if self.adjust_speed_images < 1 or self.interval < 1:
            raise ValueError("adjust_speed_images and interval must be >= 1.")
        self.policy = tuple(self.policy)
        self.probability = float(self.probability)

    def __call__(self, images: Sequence[torch.Tensor], generator: torch.Generator | None = None) -> list[torch.Tensor]:
        images = list(images)
        if self.probability <= 0 or not self.policy:
            return images
        ref = images[-1]
        b = ref.shape[0]
        gen_device = generator.device if generator is not None else torch.device("cpu")

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator, device=gen_device).to(ref.device, ref.dtype)

        apply = (rand(b) < self.probability).to(ref.dtype).view(b, 1, 1, 1)
        out = images
        if "color" in self.policy:
            brightness, saturation, contrast = rand(b, 1, 1, 1) - 0.5, rand(b, 1, 1, 1) * 2, rand(b, 1, 1, 1) + 0.5
            out = [self._color(x, brightness, saturation, contrast) for x in out]
        if "translation" in self.policy:
            shift = (rand(b, 2) * 2 - 1) * self.translation_ratio  # fraction of the side, per sample
            out = [self._translate(x, shift) for x in out]
        if "cutout" in self.policy:
            centre = rand(b, 2)
            out = [self._cutout(x, centre) for x in out]
        return [apply * a + (1 - apply) * x for a, x in zip(out, images)]

    @staticmethod
    def _color(
        x: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor, contrast: torch.Tensor
    ) -> torch.Tensor:
        x = x + brightness
        if x.shape[1] > 1:
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * saturation + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * contrast + mean

    @staticmethod
    def _translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Integer shift by ``shift * side`` pixels with zero (black, -1) padding, via a gather."""
        b, c, h, w = x.shape
        dy = (shift[:, 0] * h).round().long().view(b, 1, 1)
        dx = (shift[:, 1] * w).round().long().view(b, 1, 1)
        ys = torch.arange(h, device=x.device).view(1, h, 1) - dy
        xs = torch.arange(w, device=x.device).view(1, 1, w) - dx
        valid = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).unsqueeze(1)
        idx = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).view(b, 1, h * w).expand(b, c, h * w)
        moved = x.flatten(2).gather(2, idx).view(b, c, h, w)
        return torch.where(valid, moved, torch.full_like(moved, -1.0))

    def _cutout(self, x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        half = self.cutout_ratio / 2
        ys = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h
        xs = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w
        cy, cx = centre[:, 0].view(b, 1, 1), centre[:, 1].view(b, 1, 1)
        hole = ((ys.view(1, h, 1) - cy).abs() < half) & ((xs.view(1, 1, w) - cx).abs() < half)
        return torch.where(hole.unsqueeze(1), torch.full_like(x, -1.0), x)

    def update(self, real_logits: torch.Tensor) -> None:
        """Accumulate ``sign(D(real))`` (``real_logits``: ``(B,)``) and, every ``interval`` calls, move
        ``probability`` towards the target."""
        if not self.adaptive:
            return
        # summed on the logits' device and read once per interval: the only host sync of the augmentation
        self._sign_sum = self._sign_sum + torch.sign(real_logits.detach()).sum()
        self._sign_count += real_logits.numel()
        self._steps += 1
        if self._steps % self.interval == 0 and self._sign_count > 0:
            r_t = float(self._sign_sum) / self._sign_count
            step = self._sign_count / self.adjust_speed_images
            self.probability = min(1.0, max(0.0, self.probability + (step if r_t > self.target else -step)))
            self._sign_sum, self._sign_count = 0.0, 0

    def state_dict(self) -> dict[str, float | int]:
        return {
            "probability": self.probability,
            "sign_sum": float(self._sign_sum),
            "sign_count": self._sign_count,
            "steps": self._steps,
        }

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.probability = float(state["probability"])
        self._sign_sum = float(state["sign_sum"])
        self._sign_count = int(state["sign_count"])
        self._steps = int(state["steps"])
