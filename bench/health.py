"""Live GAN health diagnosis on the default recipe and three deliberately broken ones (phantoms, CPU-sized).

Each recipe trains the real MultiScaleGanTrainer (with EMA, DiversityMonitor every epoch and TrainingHealthMonitor
every epoch) on procedural chest phantoms and prints the diagnosis timeline and the last check's evidence:

- ``default``: the bundle's recipe (logistic loss + lazy R1, mode seeking 0.05, adaptive DiffAugment,
  lr G 1e-4 / D 4e-4, Adam betas (0, 0.99)).
- ``collapse``: meant to collapse: no mode seeking, augmentation or R1, hinge loss, G 50x faster than D
  (lr G 5e-3, D 1e-4), betas (0.5, 0.999).
- ``vanishing``: meant to starve G: the original saturating minimax loss (G minimises log(1 - D(G(z))), whose
  gradient fades as D wins; defined here, not in the package), D 5 steps per iteration at lr 2e-3, no R1 or
  augmentation.
- ``unstable``: meant not to converge: lr 1e-2 for both, betas (0.9, 0.999), no R1 or augmentation.

Whether a broken recipe really shows its failure within a short CPU run is what the bench measures; the
diagnosis reports what the signals show, not what the recipe was meant to do.

    python bench/health.py                        # 4 recipes, 32 px, 8 epochs of 256 phantoms
    python bench/health.py --recipes default collapse --epochs 4 --json health_bench.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monai_msgsagan.data import PhantomDataset, real_image_sample  # noqa: E402
from monai_msgsagan.engines import MultiScaleGanTrainer, PyramidDiffAugment  # noqa: E402
from monai_msgsagan.handlers import DiversityMonitor, GeneratorEMA, TrainingHealthMonitor  # noqa: E402
from monai_msgsagan.losses import NonSaturatingLogisticLoss, R1Penalty  # noqa: E402
from monai_msgsagan.networks import MultiScaleDiscriminator, MultiScaleGenerator  # noqa: E402

RECIPES: dict[str, dict] = {
    "default": dict(
        loss="logistic", r1=True, augment=True, mode_seeking=0.05, lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.99), d_steps=1
    ),
    "collapse": dict(
        loss="hinge", r1=False, augment=False, mode_seeking=0.0, lr_g=5e-3, lr_d=1e-4, betas=(0.5, 0.999), d_steps=1
    ),
    "vanishing": dict(
        loss="minimax", r1=False, augment=False, mode_seeking=0.0, lr_g=1e-4, lr_d=2e-3, betas=(0.0, 0.99), d_steps=5
    ),
    "unstable": dict(
        loss="logistic", r1=False, augment=False, mode_seeking=0.0, lr_g=1e-2, lr_d=1e-2, betas=(0.9, 0.999), d_steps=1
    ),
}


class SaturatingMinimaxLoss(NonSaturatingLogisticLoss):
    """Goodfellow et al.'s original loss: D as the logistic loss, G minimises ``mean(log(1 - sigmoid(fake)))`` =
    ``-mean(softplus(fake))``, whose gradient ``sigmoid(fake)`` vanishes as D pushes the fake logits down."""

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()


def run(name: str, recipe: dict, args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    channels = [32, 32, 32, 16][: {16: 3, 32: 4}[args.resolution]]
    attention = (16,) if args.resolution >= 32 else (8,)
    g = MultiScaleGenerator(args.resolution, 64, channels=channels, attention_resolutions=attention, num_classes=2)
    ema = MultiScaleGenerator(args.resolution, 64, channels=channels, attention_resolutions=attention, num_classes=2)
    d = MultiScaleDiscriminator(args.resolution, channels=channels, attention_resolutions=attention, num_classes=2)
    opt_g = torch.optim.Adam(g.parameters(), recipe["lr_g"], betas=recipe["betas"])
    opt_d = torch.optim.Adam(d.parameters(), recipe["lr_d"], betas=recipe["betas"])
    data = PhantomDataset(args.phantoms, args.resolution, num_classes=2, seed=args.seed)
    sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=args.seed)
    loader = DataLoader(data, batch_size=args.batch, sampler=sampler, drop_last=True)
    per_epoch = len(loader)
    diversity = DiversityMonitor(ema, num_samples=16, real_images=real_image_sample(data, 32, args.seed))
    health = TrainingHealthMonitor(
        interval=per_epoch, window=2 * per_epoch, diversity_monitor=diversity, attach_diversity_monitor=True
    )
    trainer = MultiScaleGanTrainer(
        "cpu",
        args.epochs,
        loader,
        g,
        opt_g,
        d,
        opt_d,
        loss=SaturatingMinimaxLoss() if recipe["loss"] == "minimax" else recipe["loss"],
        penalty=R1Penalty(1.0, 16) if recipe["r1"] else None,
        augment=PyramidDiffAugment(adaptive=True, probability=0.0) if recipe["augment"] else None,
        mode_seeking_weight=recipe["mode_seeking"],
        d_train_steps=recipe["d_steps"],
        seed=args.seed,
        max_nonfinite_steps=10**6,  # let a broken run keep going so the monitor can see it
        train_handlers=[GeneratorEMA(g, ema, half_life_images=500, batch_size=args.batch), health],
    )
    start = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - start
    timeline = [(h["epoch"], h["diagnosis"]) for h in health.history]
    last = health.history[-1]
    keys = ("d_real_acc", "d_fake_acc", "logit_margin", "g_loss_variation", "grad_finest_relative")
    keys += ("diversity_retained_all", "skipped_fraction")
    summary = {
        "recipe": name,
        "seconds": round(seconds, 1),
        "timeline": timeline,
        "final": last["diagnosis"],
        "evidence": last["evidence"],
        "signals": {k: round(last[k], 4) for k in keys if isinstance(last.get(k), float)},
    }
    print(f"\n== {name} ({seconds:.0f} s, {args.epochs} epochs x {per_epoch} iterations)")
    print("   timeline: " + ", ".join(f"e{e}:{diag}" for e, diag in timeline))
    print(f"   final: {last['diagnosis']} -- {last['evidence']}")
    print(f"   signals: {summary['signals']}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--resolution", type=int, default=32, choices=[16, 32])
    parser.add_argument("--phantoms", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the summaries here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ignite").setLevel(logging.ERROR)
    logging.getLogger("monai_msgsagan.engines.trainer").setLevel(logging.ERROR)  # skipped-step warnings
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = [run(name, RECIPES[name], args) for name in args.recipes]
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
