"""How fast can the discriminator learn? Spectral norm vs He-initialised plain D, on a fixed task.

The bundle's default D (64 px, widths ``[64, 64, 64, 32, 16]``, attention at 16x16, 2 classes) is trained alone,
with Adam (beta1 = 0, beta2 = 0.99), to tell procedural phantoms from the same phantoms blurred (Gaussian,
sigma 1.5 px): the fine detail a GAN generator misses first. Printed every ``--report`` steps for each variant:
the loss, the mean logits of the two sets and the fraction of images on the right side of the other set's mean
logit (0.5 is chance). The variants, all in one run:

- ``SN, PyTorch init``: every layer spectral-normalised (SAGAN), PyTorch's default initialisation, hinge loss:
  the discriminator of bundle 0.1.0;
- ``SN, He init``: the same with He initialisation (the package default since 0.2.0);
- ``plain, PyTorch init``: no spectral norm, PyTorch's default initialisation, logistic loss;
- ``plain, He init``: no spectral norm, He initialisation, logistic loss: the bundle's discriminator.

    python bench/discriminator_capacity.py                 # 200 steps, lr 4e-4
    python bench/discriminator_capacity.py --steps 400 --lr 1e-3
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from monai_msgsagan.data.phantoms import make_phantom
from monai_msgsagan.losses import get_adversarial_loss
from monai_msgsagan.networks import MultiScaleDiscriminator
from monai_msgsagan.transforms import image_pyramid

RESOLUTION, CHANNELS, ATTENTION = 64, [64, 64, 64, 32, 16], (16,)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, 1, H, W)`` with replicate padding."""
    radius = int(3 * sigma)
    k = torch.exp(-(torch.arange(-radius, radius + 1.0) ** 2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))


def pytorch_default_init(d: torch.nn.Module) -> None:
    """Undo He init: ``reset_parameters()`` restores PyTorch's default initialisation of every layer (a spectral
    norm is taken off first and put back after, so its power-iteration vectors match the new weights)."""
    for m in d.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            normalised = parametrize.is_parametrized(m, "weight")
            if normalised:
                parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
            m.reset_parameters()
            if normalised:
                spectral_norm(m)


def run_variant(name: str, images: torch.Tensor, blurred: torch.Tensor, labels: torch.Tensor, args) -> None:
    torch.manual_seed(args.seed)
    spectral = name.startswith("SN")
    d = MultiScaleDiscriminator(
        RESOLUTION, channels=CHANNELS, attention_resolutions=ATTENTION, num_classes=2, use_spectral_norm=spectral
    )
    if name.endswith("PyTorch init"):
        pytorch_default_init(d)
    loss = get_adversarial_loss("hinge" if spectral else "logistic")
    opt = torch.optim.Adam(d.parameters(), lr=args.lr, betas=(0.0, 0.99))
    num_scales = len(CHANNELS)
    draw = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        i = torch.randint(0, images.shape[0], (args.batch,), generator=draw)
        j = torch.randint(0, images.shape[0], (args.batch,), generator=draw)
        real = d(image_pyramid(images[i], num_scales), labels[i])
        fake = d(image_pyramid(blurred[j], num_scales), labels[j])
        value = loss.discriminator_loss(real, fake)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        if step % args.report == 0:
            real, fake = real.detach(), fake.detach()
            right = 0.5 * (float((real > fake.mean()).float().mean()) + float((fake < real.mean()).float().mean()))
            print(
                f"{name:22s} step {step:4d}  loss {float(value):6.3f}  D(real) {float(real.mean()):7.3f}  "
                f"D(blurred) {float(fake.mean()):7.3f}  separated {right:.2f}  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--report", type=int, default=50)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--num_images", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    images = torch.stack([torch.from_numpy(make_phantom(RESOLUTION, i % 2, 5000 + i)) for i in range(args.num_images)])
    labels = torch.arange(args.num_images) % 2
    blurred = gaussian_blur(images, 1.5)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, lr {args.lr}, batch {args.batch}")
    for name in ("SN, PyTorch init", "SN, He init", "plain, PyTorch init", "plain, He init"):
        run_variant(name, images, blurred, labels, args)


if __name__ == "__main__":
    main()
