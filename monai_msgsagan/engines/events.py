"""The custom Ignite events :class:`~monai_msgsagan.engines.MultiScaleGanTrainer` fires inside an iteration, and the
names of its output keys."""

from __future__ import annotations

from ignite.engine import EventEnum
from monai.utils.enums import StrEnum

__all__ = ["GanIterationEvents", "GanOutputKeys"]


class GanIterationEvents(EventEnum):
    """Fired inside every iteration, between the discriminator and generator updates (as MONAI's
    ``AdversarialIterationEvents`` are in ``AdversarialTrainer``).

    ``engine.state.output`` is filled as the iteration goes: at ``D_STEP_COMPLETED`` it holds the discriminator
    values (means over the D steps done so far in this iteration), at ``G_STEP_COMPLETED`` the generator's too.

    - ``D_STEP_COMPLETED``: after each discriminator update (``d_train_steps`` times per iteration), before G's.
    - ``G_STEP_COMPLETED``: after the generator update, before ``ITERATION_COMPLETED`` handlers (EMA, logging).
    """

    D_STEP_COMPLETED = "d_step_completed"
    G_STEP_COMPLETED = "g_step_completed"


class GanOutputKeys(StrEnum):
    """Keys of ``engine.state.output`` (0-dim float tensors on the training device; ``AUGMENT_P`` a float);
    members compare and hash equal to their string values.

    - ``D_LOSS``: adversarial discriminator loss (mean over the D steps of the iteration).
    - ``G_LOSS``: adversarial generator loss.
    - ``PENALTY``: R1 / gradient penalty (0 on iterations where the lazy penalty is not due).
    - ``MODE_SEEKING``: the mode-seeking regulariser's term of the generator loss.
    - ``REAL_LOGIT`` / ``FAKE_LOGIT``: mean discriminator logits on the real and the generated batch.
    - ``D_REAL_ACC`` / ``D_FAKE_ACC``: D's accuracy, loss-agnostic (any logit offset, relativistic losses too):
      the fraction of real logits above the fake batch's mean logit, and of fake logits below the real batch's.
      About 0.5 when D cannot tell them apart, 1.0 when it separates them perfectly.
    - ``D_CLASS_LOSS`` / ``G_CLASS_LOSS``: with an auxiliary classification loss, the cross-entropy of D's class
      head on the real batch (what D learns) and on the generated batch (what G is pushed by); 0 without.
    - ``AUGMENT_P``: probability of the differentiable augmentation (ADA).
    - ``SKIPPED``: 1.0 when a D or G step of the iteration was skipped as non-finite, else 0.0.
    """

    D_LOSS = "d_loss"
    G_LOSS = "g_loss"
    PENALTY = "penalty"
    MODE_SEEKING = "mode_seeking"
    REAL_LOGIT = "real_logit"
    FAKE_LOGIT = "fake_logit"
    D_REAL_ACC = "d_real_acc"
    D_FAKE_ACC = "d_fake_acc"
    D_CLASS_LOSS = "d_class_loss"
    G_CLASS_LOSS = "g_class_loss"
    AUGMENT_P = "augment_p"
    SKIPPED = "skipped"
