"""MultiScaleGanTrainer: the MSG-SAGAN training loop as a MONAI/Ignite engine."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from ignite.engine import Events
from monai.engines import Trainer
from torch.optim import Optimizer
from torch.utils.data import DataLoader

from monai_msgsagan.distributed import all_gather_object, is_distributed, select_rank_state
from monai_msgsagan.engines.augment import PyramidDiffAugment
from monai_msgsagan.engines.events import GanIterationEvents, GanOutputKeys
from monai_msgsagan.generation import sample_latent
from monai_msgsagan.losses import AdversarialLoss, GradientPenalty, R1Penalty, get_adversarial_loss
from monai_msgsagan.networks.generator import check_labels
from monai_msgsagan.transforms.pyramid import image_pyramid

__all__ = ["MultiScaleGanTrainer", "NonFiniteLossError", "cpu_has_native_bf16"]

logger = logging.getLogger(__name__)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively, as torch reports it from CPUID: AMX tiles (Intel Xeon from Sapphire
    Rapids on) or AVX512-BF16 dot products (Intel Xeon Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and
    later). oneDNN runs bf16 autocast faster than float32 there (see the "Speed" section of the bundle docs); on any
    other CPU (AVX2, plain AVX-512, Arm) bf16 would be emulated and slower, so ``amp`` leaves the CPU step in
    float32."""
    queries = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in queries)


class NonFiniteLossError(RuntimeError):
    """Raised when too many consecutive training steps had a non-finite loss or gradient."""


class MultiScaleGanTrainer(Trainer):
    """MSG-SAGAN training as a :class:`monai.engines.Trainer` (an Ignite engine).

    Each iteration takes a batch of real images, builds their pyramid (or takes the pyramid the data pipeline
    made), then runs ``d_train_steps`` discriminator updates on real vs fake pyramids and one generator update.
    Losses are the multi-scale losses of :mod:`monai_msgsagan.losses`; optional R1 or WGAN-GP penalty with lazy
    regularisation; optional differentiable augmentation (:class:`PyramidDiffAugment`) of both pyramids before the
    discriminator. Two-timescale learning rates are set on the optimizers (D faster than G).

    The step runs without host stalls (as stylegan2-ada-pytorch's and MONAI's trainers): nothing is read back from
    the device in a normal iteration. A step whose loss or gradients are not finite is skipped, decided on the
    device: a fused optimizer (``torch.optim.Adam(..., fused=True)``, as the bundle builds them) receives the flag
    as ``found_inf`` (the protocol of ``torch.amp.GradScaler``) and leaves parameters and optimizer state
    unchanged; any other optimizer cannot take it, so for those the flag is read on the host before ``step()``
    (free on CPU, a sync per step on GPU). Skips are counted on the device and read every ``check_interval``
    iterations and at the last iteration of every epoch, inside the iteration, so before any checkpoint
    handler runs: once ``max_nonfinite_steps`` consecutive steps were skipped the run stops with
    :class:`NonFiniteLossError`. Skipping alone does not catch a run whose finite updates blow the weights up
    (``lr_g`` 1e30): that is left to :class:`~monai_msgsagan.handlers.GanCheckpointSaver`, which refuses to write
    weights that are not finite or whose generator renders non-finite images. Class labels are checked on the
    host (:func:`~monai_msgsagan.networks.generator.check_labels`) before they are moved to the device.

    When ``torch.distributed`` is initialised, parameters and buffers (spectral-norm vectors included) are
    broadcast from rank 0 when the run starts and gradients are averaged across ranks before every optimizer
    step, so all ranks hold the same G, D (and hence EMA) at all times. This replaces
    ``DistributedDataParallel``, whose single-forward reducer does not fit the several discriminator passes of
    a GAN step.

    Args:
        device: device to train on.
        max_epochs: epochs to train.
        train_data_loader: yields dicts with ``"image"``: real images ``(B, C, R, R)`` in [-1, 1] (or their
            coarse-to-fine pyramid as a list) and, for class-conditional training, ``"label"``: ``(B,)`` int64.
        g_network: :class:`~monai_msgsagan.networks.MultiScaleGenerator`.
        g_optimizer: optimizer of G.
        d_network: :class:`~monai_msgsagan.networks.MultiScaleDiscriminator`.
        d_optimizer: optimizer of D.
        loss: an :class:`~monai_msgsagan.losses.AdversarialLoss` or its name (``logistic``, the bundle's
            default, ``rahinge``, ``hinge``, ``wgan``).
        penalty: ``None``, an :class:`~monai_msgsagan.losses.R1Penalty` or a
            :class:`~monai_msgsagan.losses.GradientPenalty`.
        augment: optional :class:`PyramidDiffAugment` applied to real and fake pyramids before D.
        mode_seeking_weight: weight ``lambda`` of the mode-seeking regulariser (Mao et al. 2019, MSGAN), 0 to
            turn it off. The generator step pairs sample ``i`` of each batch with sample ``i + B/2`` (same class
            label in a conditional model) and adds ``lambda / (d_img / d_z + 1e-5)`` to the generator loss, with
            ``d_img`` the mean absolute difference of the paired finest images and ``d_z`` that of their
            latents: mapping different latents to the same image, the signature of mode collapse, costs the
            generator directly.
        class_loss_weight: weight of the auxiliary classification loss (AC-GAN, Odena et al. 2017), 0 to turn it off;
            needs a discriminator built with ``auxiliary_classifier=True``. D's class head learns the class of the
            real images (cross-entropy added to D's loss); the generator is pushed to make images that head calls
            their class (cross-entropy on the fakes added to G's loss), so synthetic images carry what tells the
            classes apart in real ones. D's head never learns from fakes, so it cannot learn generated artefacts
            as a class cue.
        d_train_steps: discriminator updates per iteration (each on the same real batch, fresh fakes).
        accumulation_steps: split every batch into this many micro-batches and accumulate their gradients. With
            one micro-batch the G step reuses the fakes of the last D step (same latents and labels, their graph
            kept: G is unchanged in between; the original MSG-GAN code also uses one latent batch for both), so G
            runs forward once per D step; with more, every micro-batch is generated again for the G step so
            memory stays bounded by it.
        seed: seed of the trainer's ``torch.Generator`` (latents, augmentation, WGAN-GP mixing).
        amp: bf16 autocast on CUDA, and on CPUs that compute bf16 natively (:func:`cpu_has_native_bf16`: AMX or
            AVX512-BF16); ignored on other CPUs, where it would be emulated and slower. ``False`` is float32
            everywhere.
        channels_last: channels-last memory format for G, D and the images (on CPU too: faster for the bundle's
            networks, see ``bench/step_options.py``).
        compile: wrap G and D forward in ``torch.compile`` (the R1 / gradient penalty's double backward runs the
            eager D, which ``torch.compile`` cannot differentiate twice).
        max_nonfinite_steps: consecutive skipped steps after which the run stops.
        check_interval: iterations between host reads of the skip counters (also read at every epoch's end).
        epoch_length, non_blocking, train_handlers: as in :class:`monai.engines.Trainer`.

    ``engine.state.output`` holds 0-dim float tensors on the training device under the
    :class:`~monai_msgsagan.engines.GanOutputKeys` names (``augment_p`` is a float). Handlers read them
    (``float()``) at their logging interval, not every iteration, so the step stays asynchronous. With
    ``measure_scale_gradients`` set, ``scale_gradient_norms`` holds the norm of the adversarial gradient reaching
    each scale of G's output in the last G step, a ``(num_scales,)`` tensor, coarse to fine. Inside every
    iteration the trainer fires :class:`~monai_msgsagan.engines.GanIterationEvents`.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: DataLoader,
        g_network: torch.nn.Module,
        g_optimizer: Optimizer,
        d_network: torch.nn.Module,
        d_optimizer: Optimizer,
        loss: AdversarialLoss | str = "logistic",
        penalty: R1Penalty | GradientPenalty | None = None,
        augment: PyramidDiffAugment | None = None,
        mode_seeking_weight: float = 0.0,
        class_loss_weight: float = 0.0,
        d_train_steps: int = 1,
        accumulation_steps: int = 1,
        seed: int = 0,
        amp: bool = False,
        channels_last: bool = False,
        compile: bool = False,
        max_nonfinite_steps: int = 10,
        check_interval: int = 10,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        train_handlers: Sequence | None = None,
    ) -> None:
        if min(d_train_steps, accumulation_steps, max_nonfinite_steps, check_interval) < 1:
            raise ValueError(
                "d_train_steps, accumulation_steps, max_nonfinite_steps and check_interval must be >= 1, got "
                f"{d_train_steps}, {accumulation_steps}, {max_nonfinite_steps}, {check_interval}."
            )
        if mode_seeking_weight < 0:
            raise ValueError(f"mode_seeking_weight must be >= 0, got {mode_seeking_weight}.")
        if class_loss_weight < 0:
            raise ValueError(f"class_loss_weight must be >= 0, got {class_loss_weight}.")
        if class_loss_weight > 0 and getattr(d_network, "class_head", None) is None:
            raise ValueError(
                "class_loss_weight > 0 needs a class-conditional discriminator with an auxiliary classifier "
                "(MultiScaleDiscriminator(..., auxiliary_classifier=True))."
            )
        super().__init__(
            device, max_epochs, train_data_loader, epoch_length, non_blocking,
            handlers=train_handlers, decollate=False, event_names=[GanIterationEvents],
        )  # fmt: skip
        self.g_network, self.g_optimizer = g_network, g_optimizer
        self.d_network, self.d_optimizer = d_network, d_optimizer
        self.loss = get_adversarial_loss(loss) if isinstance(loss, str) else loss
        self.penalty, self.augment, self.mode_seeking_weight = penalty, augment, mode_seeking_weight
        self.class_loss_weight = class_loss_weight
        self.d_train_steps, self.accumulation_steps = d_train_steps, accumulation_steps
        self.max_nonfinite_steps, self.check_interval = max_nonfinite_steps, check_interval
        device_type = torch.device(device).type
        self.amp = amp and (device_type == "cuda" or (device_type == "cpu" and cpu_has_native_bf16()))
        self.channels_last = channels_last
        if self.channels_last:
            g_network.to(memory_format=torch.channels_last)
            d_network.to(memory_format=torch.channels_last)
        self._g_forward: Callable[..., list[torch.Tensor]] = torch.compile(g_network) if compile else g_network
        self._d_forward: Callable[..., torch.Tensor] = torch.compile(d_network) if compile else d_network
        self.rng = torch.Generator(device="cpu").manual_seed(seed)
        self.num_scales = len(g_network.blocks)
        self.latent_dim = g_network.latent_dim
        self.num_classes = g_network.num_classes
        self.d_steps_done = 0
        # on the device, read every check_interval iterations: the current run of skipped steps, its longest
        # length since the last read, and the steps skipped since the last read
        zero = torch.zeros((), dtype=torch.int64, device=self.state.device)
        self._nonfinite_run, self._nonfinite_peak, self._nonfinite_skipped = zero, zero, zero
        self._g_updates = zero  # generator updates applied (not skipped) since the trainer was built
        #: set to True (e.g. by a health monitor) to measure, in the next G steps, the gradient reaching each scale
        self.measure_scale_gradients = False
        #: ``(num_scales,)`` gradient norms (coarse to fine, on the device) of the last measured G step, else None
        self.scale_gradient_norms: torch.Tensor | None = None
        self.add_event_handler(Events.STARTED, self._sync_ranks)

    @property
    def generator_updates(self) -> int:
        """Generator updates applied (steps not skipped as non-finite) since this trainer was built, i.e. in this
        process's run, resumed or not (one host read of a device counter). A checkpoint saver exports the
        generator only when this grew since its last export."""
        return int(self._g_updates)

    # ------------------------------------------------------------------ distributed
    def _sync_ranks(self, _engine: Any = None) -> None:
        """Broadcast G and D parameters and buffers from rank 0 (identical start, identical spectral norms)."""
        if not is_distributed():
            return
        for net in (self.g_network, self.d_network):
            for tensor in list(net.parameters()) + list(net.buffers()):
                dist.broadcast(tensor.data, src=0)

    def _average_gradients(self, network: torch.nn.Module) -> None:
        if not is_distributed():
            return
        world = dist.get_world_size()
        for p in network.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad.div_(world)

    # ------------------------------------------------------------------ helpers
    def _autocast(self) -> AbstractContextManager:
        return torch.autocast(self.state.device.type, dtype=torch.bfloat16) if self.amp else nullcontext()

    def _fakes_and_latents(
        self, batch_size: int, labels: torch.Tensor | None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        z = sample_latent(batch_size, self.latent_dim, self.rng, self.state.device)
        return [f.float() for f in self._g_forward(z, labels)], z

    @staticmethod
    def _paired_labels(labels: torch.Tensor | None) -> torch.Tensor | None:
        """Labels whose second half repeats the first (``labels[i + B/2] = labels[i]``) for mode seeking."""
        if labels is None:
            return None
        half = labels.shape[0] // 2
        return torch.cat([labels[:half], labels[:half], labels[2 * half :]])

    def _mode_seeking_loss(self, fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``weight / (d_img / d_z + eps)`` over the pairs ``(i, i + B/2)``.

        ``fake``: finest generated images ``(B, C, R, R)`` in [-1, 1]; ``z``: their latents ``(B, L)``.
        """
        half = z.shape[0] // 2
        d_img = (fake[:half] - fake[half : 2 * half]).abs().mean()
        d_z = (z[:half] - z[half : 2 * half]).abs().mean()
        return self.mode_seeking_weight / (d_img / d_z + 1e-5)

    def _d_input(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.augment is not None:
            images = self.augment(images, self.rng)
        if self.channels_last:
            images = [x.contiguous(memory_format=torch.channels_last) for x in images]
        return images

    def _d_logits(self, images: list[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        return self._d_forward(self._d_input(images), labels).float()

    def _d_logits_and_class_loss(
        self, images: list[torch.Tensor], labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits ``(B,)`` and, with a class loss, the cross-entropy of its class head against ``labels``
        (a 0-dim tensor; 0 without)."""
        if self.class_loss_weight == 0 or labels is None:
            logits = self._d_logits(images, labels)
            return logits, torch.zeros((), device=logits.device)
        logits, classes = self.d_network.logits_and_classes(self._d_input(images), labels)
        return logits.float(), F.cross_entropy(classes.float(), labels)

    @staticmethod
    def _d_accuracy(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fractions (0-dim tensors) of real logits above the mean fake logit and of fake logits below the mean
        real logit; ``real_logits``, ``fake_logits``: ``(B,)``."""
        real_acc = (real_logits > fake_logits.mean()).float().mean()
        fake_acc = (fake_logits < real_logits.mean()).float().mean()
        return real_acc, fake_acc

    @staticmethod
    def _scale_gradient_norms(g_loss: torch.Tensor, fake: list[torch.Tensor]) -> torch.Tensor:
        """Per scale (coarse to fine), the mean per-image L2 norm of the adversarial loss gradient reaching G's
        output there, scaled by the batch size so it is that of each image's own loss (batch-size independent).
        Returns ``(num_scales,)`` on the device."""
        grads = torch.autograd.grad(g_loss, fake, retain_graph=True, allow_unused=True)
        zero = g_loss.new_zeros(())
        return torch.stack(
            [zero if g is None else g.detach().flatten(1).norm(dim=1).mean() * g.shape[0] for g in grads]
        )

    def _step(self, network: torch.nn.Module, optimizer: Optimizer, losses: list[torch.Tensor]) -> torch.Tensor:
        """Average gradients across ranks, then update unless a loss or gradient is not finite.

        ``losses``: the 0-dim losses whose gradients were accumulated. Returns whether the update was applied, a
        0-dim bool tensor on the device, and counts a skip. A fused optimizer takes the decision as ``found_inf``
        (no host sync); any other optimizer needs it on the host first.
        """
        self._average_gradients(network)
        grads = [p.grad for p in network.parameters() if p.grad is not None]
        checks = [torch.isfinite(v).all() for v in losses]
        if grads:  # the largest |gradient| of every tensor, finite or not (a norm could overflow)
            checks.append(torch.isfinite(torch.stack(torch._foreach_norm(grads, float("inf")))).all())
        applied = torch.stack(checks).all()
        if all(group.get("fused") for group in optimizer.param_groups):
            optimizer.found_inf, optimizer.grad_scale = (~applied).float(), None  # type: ignore[attr-defined]
            try:
                optimizer.step()
            finally:
                del optimizer.found_inf, optimizer.grad_scale  # type: ignore[attr-defined]
        elif bool(applied):
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        skipped = (~applied).long()
        self._nonfinite_run = (self._nonfinite_run + 1) * skipped
        self._nonfinite_peak = torch.maximum(self._nonfinite_peak, self._nonfinite_run)
        self._nonfinite_skipped = self._nonfinite_skipped + skipped
        return applied

    def _check_nonfinite(self) -> None:
        """Read the skip counters (one host sync); log skips, stop after ``max_nonfinite_steps`` in a row."""
        peak, skipped = torch.stack([self._nonfinite_peak, self._nonfinite_skipped]).tolist()
        self._nonfinite_peak, self._nonfinite_skipped = self._nonfinite_run, torch.zeros_like(self._nonfinite_skipped)
        if skipped:
            logger.warning(
                "%d training steps skipped by iteration %d: non-finite loss or gradient, weights unchanged "
                "(longest run %d).",
                skipped,
                self.state.iteration,
                peak,
            )
        if peak >= self.max_nonfinite_steps:
            raise NonFiniteLossError(
                f"at least {self.max_nonfinite_steps} consecutive training steps had a non-finite loss or gradient "
                f"({peak} in a row by iteration {self.state.iteration}); stopping. Skipped steps leave the weights "
                "unchanged, and checkpoints are only written when all their tensors and the generator's images "
                "are finite; lower the learning rates, enable a gradient penalty or check the data for NaN."
            )

    # ------------------------------------------------------------------ iteration
    def _iteration(self, engine: MultiScaleGanTrainer, batchdata: dict[str, Any]) -> dict[str, torch.Tensor | float]:
        if batchdata is None:
            raise ValueError("must provide batch data for current iteration.")
        images = batchdata["image"]
        device, non_blocking = engine.state.device, engine.non_blocking
        if isinstance(images, (list, tuple)):
            real_all = image_pyramid([x.to(device, non_blocking=non_blocking).float() for x in images], self.num_scales)
        else:
            real_all = image_pyramid(images.to(device, non_blocking=non_blocking).float(), self.num_scales)
        if self.channels_last:
            real_all = [x.contiguous(memory_format=torch.channels_last) for x in real_all]
        labels_all = None
        if self.num_classes > 0:
            if "label" not in batchdata:
                raise ValueError("class-conditional training needs a 'label' entry in every batch.")
            labels_all = torch.as_tensor(batchdata["label"]).long().view(-1)
            check_labels(labels_all, self.num_classes)  # on the host, before the copy: no device sync
            labels_all = labels_all.to(device, non_blocking=non_blocking)
        batch_size = real_all[0].shape[0]
        chunks = min(self.accumulation_steps, batch_size)
        splits = [t.tensor_split(chunks) for t in real_all]
        real_chunks = [[s[i] for s in splits] for i in range(chunks)]
        label_chunks = labels_all.tensor_split(chunks) if labels_all is not None else [None] * chunks

        self.g_network.train()
        self.d_network.train()
        keys = GanOutputKeys
        zero = torch.zeros((), device=device)
        out: dict[str, torch.Tensor | float] = dict.fromkeys(
            (keys.D_LOSS, keys.G_LOSS, keys.PENALTY, keys.MODE_SEEKING, keys.REAL_LOGIT, keys.FAKE_LOGIT)
            + (keys.D_REAL_ACC, keys.D_FAKE_ACC, keys.D_CLASS_LOSS, keys.G_CLASS_LOSS, keys.SKIPPED),
            zero,
        )
        out[keys.AUGMENT_P] = self.augment.probability if self.augment is not None else 0.0
        engine.state.output = out  # filled as the iteration goes, for GanIterationEvents handlers

        # discriminator
        d_sums = dict.fromkeys(
            (keys.D_LOSS, keys.PENALTY, keys.REAL_LOGIT, keys.FAKE_LOGIT, keys.D_REAL_ACC, keys.D_FAKE_ACC)
            + (keys.D_CLASS_LOSS,),
            zero,
        )
        # fakes are drawn with the labels of the G step (paired for mode seeking); with one micro-batch the last D
        # step generates them with their graph and the G step reuses them, as G has not changed in between
        # (one G forward less per iteration; with accumulation the G step generates each micro-batch again, so
        # memory stays bounded by the micro-batch)
        mode_seeking = self.mode_seeking_weight > 0 and batch_size // chunks >= 2
        fake_label_chunks = [self._paired_labels(y) if mode_seeking else y for y in label_chunks]
        shared: tuple[list[torch.Tensor], torch.Tensor] | None = None
        for step in range(self.d_train_steps):
            self.d_network.requires_grad_(True)
            d_losses = []
            apply_penalty = self.penalty is not None and self.penalty.is_due(self.d_steps_done)
            share = chunks == 1 and step == self.d_train_steps - 1
            for real, labels, fake_labels in zip(real_chunks, label_chunks, fake_label_chunks):
                with self._autocast():
                    with torch.set_grad_enabled(share):
                        fake_with_graph, z = self._fakes_and_latents(real[0].shape[0], fake_labels)
                    shared = (fake_with_graph, z) if share else None
                    fake = [f.detach() for f in fake_with_graph]
                    real_logits, class_loss = self._d_logits_and_class_loss(real, labels)
                    fake_logits = self._d_logits(fake, fake_labels)
                    d_loss = self.loss.discriminator_loss(real_logits, fake_logits)
                    penalty = zero
                    if apply_penalty and isinstance(self.penalty, R1Penalty):
                        penalty = self.penalty(self.d_network, real, labels)
                    elif apply_penalty and isinstance(self.penalty, GradientPenalty):
                        penalty = self.penalty(self.d_network, real, fake, labels, self.rng)
                total = (d_loss + penalty.float() + self.class_loss_weight * class_loss) / chunks
                total.backward()
                d_losses.append(total.detach())
                if self.augment is not None:
                    self.augment.update(real_logits)
                real_acc, fake_acc = self._d_accuracy(real_logits.detach(), fake_logits.detach())
                for key, value in (
                    (keys.D_LOSS, d_loss.detach()),
                    (keys.PENALTY, penalty.detach().float()),
                    (keys.REAL_LOGIT, real_logits.detach().mean()),
                    (keys.FAKE_LOGIT, fake_logits.detach().mean()),
                    (keys.D_REAL_ACC, real_acc),
                    (keys.D_FAKE_ACC, fake_acc),
                    (keys.D_CLASS_LOSS, class_loss.detach()),
                ):
                    d_sums[key] = d_sums[key] + value / chunks
            applied = self._step(self.d_network, self.d_optimizer, d_losses)
            out[keys.SKIPPED] = torch.maximum(out[keys.SKIPPED], (~applied).float())
            self.d_steps_done += 1
            out.update({k: v / (step + 1) for k, v in d_sums.items()})
            engine.fire_event(GanIterationEvents.D_STEP_COMPLETED)

        # generator (D frozen so its weights get no gradient from the G step)
        self.d_network.requires_grad_(False)
        g_losses = []
        scale_norms = torch.zeros(self.num_scales, device=device)
        for real, labels, fake_labels in zip(real_chunks, label_chunks, fake_label_chunks):
            with self._autocast():
                fake, z = shared if shared is not None else self._fakes_and_latents(real[0].shape[0], fake_labels)
                fake_logits, g_class_loss = self._d_logits_and_class_loss(fake, fake_labels)
                real_logits = self._d_logits(real, labels) if self.loss.uses_real_in_generator_loss else None
                g_loss = self.loss.generator_loss(fake_logits, real_logits)
                ms_loss = self._mode_seeking_loss(fake[-1], z) if mode_seeking else torch.zeros_like(g_loss)
                total = g_loss + ms_loss + self.class_loss_weight * g_class_loss
            if self.measure_scale_gradients:
                scale_norms = scale_norms + self._scale_gradient_norms(g_loss, fake) / chunks
            (total / chunks).backward()
            g_losses.append(total.detach())
            out[keys.G_LOSS] = out[keys.G_LOSS] + g_loss.detach() / chunks
            out[keys.MODE_SEEKING] = out[keys.MODE_SEEKING] + ms_loss.detach() / chunks
            out[keys.G_CLASS_LOSS] = out[keys.G_CLASS_LOSS] + g_class_loss.detach() / chunks
        self.d_network.requires_grad_(True)
        applied = self._step(self.g_network, self.g_optimizer, g_losses)
        self._g_updates = self._g_updates + applied.long()
        out[keys.SKIPPED] = torch.maximum(out[keys.SKIPPED], (~applied).float())
        out[keys.AUGMENT_P] = self.augment.probability if self.augment is not None else 0.0
        self.scale_gradient_norms = scale_norms if self.measure_scale_gradients else None
        iteration, epoch_length = engine.state.iteration, engine.state.epoch_length
        if iteration % self.check_interval == 0 or (epoch_length is not None and iteration % epoch_length == 0):
            self._check_nonfinite()
        engine.fire_event(GanIterationEvents.G_STEP_COMPLETED)
        return out

    # ------------------------------------------------------------------ resume
    def _rank_state(self) -> dict[str, Any]:
        """What differs between ranks: the latent/augmentation generator and the ADA state (local logits)."""
        state: dict[str, Any] = {"rng": self.rng.get_state()}
        if self.augment is not None:
            state["augment"] = self.augment.state_dict()
        return state

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """Ignite engine state plus the trainer's generator, penalty counter and augmentation state.

        In a multi-process run this is collective: every rank's generator and augmentation state are gathered
        into ``"per_rank"`` so that each rank resumes with its own.
        """
        state = dict(super().state_dict())
        local = self._rank_state()
        state.update(local)
        state["d_steps_done"] = self.d_steps_done
        if is_distributed():
            state["per_rank"] = all_gather_object(local)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        state = dict(state_dict)
        ranked = {k: state.pop(k) for k in ("rng", "augment", "per_rank") if k in state}
        d_steps = state.pop("d_steps_done", None)
        super().load_state_dict(state)
        ranked = select_rank_state(ranked, "trainer generator and augmentation states")
        if "rng" in ranked:
            self.rng.set_state(ranked["rng"])
        if d_steps is not None:
            self.d_steps_done = int(d_steps)
        if "augment" in ranked and self.augment is not None:
            self.augment.load_state_dict(ranked["augment"])
