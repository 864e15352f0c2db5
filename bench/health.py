"""Live GAN health diagnosis on the default recipe and three deliberately broken ones (phantoms, CPU-sized).

Each recipe trains the real MultiScaleGanTrainer (with EMA, DiversityMonitor every epoch and TrainingHealthMonitor
every epoch) on procedural chest phantoms and prints the diagnosis timeline and the last check's evidence:

- ``default``: the bundle's recipe (``train.json``: logistic loss + lazy R1, mode seeking 0.05, adaptive
  DiffAugment, lr G 1e-4 / D 4e-4, Adam betas (0, 0.99)).
- ``collapse``: meant to collapse: no mode seeking, augmentation or R1, hinge loss, G 50x faster than D
  (lr G 5e-3, D 1e-4), betas (0.5, 0.999).
- ``vanishing``: meant to starve G: the original saturating minimax loss (G minimises log(1 - D(G(z))), whose
  gradient fades as D wins; defined here, not in the package), D 5 steps per iteration at lr 2e-3, no R1,
  augmentation or mode seeking.
- ``unstable``: meant not to converge: lr 1e-2 for both, betas (0.9, 0.999), no R1, augmentation or mode seeking.

The networks are the bundle's at 16 or 32 px (latent 64, widths 32 to 16), on the bundle's phantom data loader.
Whether a broken recipe really shows its failure within a short CPU run is what the bench measures; the
diagnosis reports what the signals show, not what the recipe was meant to do.

    python bench/health.py                        # 4 recipes, 32 px, 8 epochs of 256 phantoms
    python bench/health.py --recipes default collapse --epochs 4 --json health_bench.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from bundle_recipe import bundle_recipe

from monai_msgsagan.handlers import TrainingHealthMonitor
from monai_msgsagan.losses import NonSaturatingLogisticLoss


class SaturatingMinimaxLoss(NonSaturatingLogisticLoss):
    """Goodfellow et al.'s original loss: D as the logistic loss, G minimises ``mean(log(1 - sigmoid(fake)))`` =
    ``-mean(softplus(fake))``, whose gradient ``sigmoid(fake)`` vanishes as D pushes the fake logits down."""

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()


#: overrides of the bundle's recipe (``train.json``); ``default`` is the recipe itself
UNREGULARISED = {"r1_gamma": 0.0, "diffaugment": False, "mode_seeking_weight": 0.0}
RECIPES: dict[str, dict] = {
    "default": {},
    "collapse": {**UNREGULARISED, "loss": "hinge", "lr_g": 5e-3, "lr_d": 1e-4, "betas": [0.5, 0.999]},
    "vanishing": {**UNREGULARISED, "train#trainer#loss": SaturatingMinimaxLoss(), "lr_d": 2e-3,
                  "train#trainer#d_train_steps": 5},
    "unstable": {**UNREGULARISED, "lr_g": 1e-2, "lr_d": 1e-2, "betas": [0.9, 0.999]},
}  # fmt: skip


def run(name: str, recipe: dict, args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    per_epoch = args.phantoms // args.batch
    channels = [32, 32, 32, 16][: {16: 3, 32: 4}[args.resolution]]
    attention = [16] if args.resolution >= 32 else [8]
    parser = bundle_recipe(
        {"device": "cpu", "seed": args.seed, "num_phantoms": args.phantoms, "batch_size": args.batch,
         "max_epochs": args.epochs, "ema_half_life_images": 500, "resolution": args.resolution, "latent_dim": 64,
         "channels": channels, "attention_resolutions": attention,
         "train#diversity_monitor#num_samples": 16, "train#diversity_monitor#epoch_interval": 1,
         "train#diversity_monitor#summary_writer": None, "train#diversity_monitor#log_path": None,
         "train#trainer#max_nonfinite_steps": 10**6,  # let a broken run keep going so the monitor can see it
         **recipe},
        handlers={"GeneratorEMA": {}, "TrainingHealthMonitor": {"interval": per_epoch, "window": 2 * per_epoch,
                  "summary_writer": None, "log_path": None, "best_model_path": None, "record": None}},
    )  # fmt: skip
    trainer = parser.get_parsed_content("train#trainer")
    health = next(h for h in parser.get_parsed_content("train#handlers") if isinstance(h, TrainingHealthMonitor))
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
    results = [run(name, RECIPES[name], args) for name in args.recipes]
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
