"""The downstream classifier of the utility study: a MONAI 2-D DenseNet trained by MONAI's ``SupervisedTrainer``.

Every arm of the study trains this same classifier with the same budget (optimizer steps x batch size), the same
radiograph-safe augmentation (:class:`~monai_msgsagan.transforms.RandXrayAugmentd`) and the same seeds; arms
differ only in their training images and in how those are sampled or weighted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedTrainer
from monai.networks.nets import DenseNet
from monai.utils import set_determinism
from torch import nn
from torch.utils.data import RandomSampler, WeightedRandomSampler

from monai_msgsagan.transforms import RandXrayAugmentd

__all__ = [
    "ClassifierSettings",
    "classifier_features",
    "fixed_threads",
    "build_classifier",
    "class_balanced_weights",
    "class_weights",
    "predict_probabilities",
    "stack_items",
    "train_classifier",
]


@dataclass(frozen=True)
class ClassifierSettings:
    """Size and training budget of the downstream classifier.

    Attributes:
        init_features, growth_rate, block_config: :class:`monai.networks.nets.DenseNet` size (DenseNet121 is
            64, 32, (6, 12, 24, 16); the default is a small DenseNet that trains in about half a minute at 64 px on
            one CPU core).
        num_steps: optimizer steps, the same for every arm.
        batch_size: images per step.
        learning_rate, weight_decay: AdamW settings.
        augment: apply :class:`~monai_msgsagan.transforms.RandXrayAugmentd` to training images.
        num_threads: CPU threads of the classifier's training and prediction. Float sums split over another
            number of threads round differently, and over hundreds of steps that changes the trained classifier as
            much as another seed does; a fixed count makes a seed's classifier the same on any machine with the same
            CPU kernels, whatever ``OMP_NUM_THREADS`` the process has (run studies side by side to use more cores).
    """

    init_features: int = 16
    growth_rate: int = 16
    block_config: tuple[int, ...] = (3, 3, 3)
    num_steps: int = 300
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    augment: bool = True
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.num_steps < 1 or self.batch_size < 1 or self.num_threads < 1:
            raise ValueError(
                "num_steps, batch_size and num_threads must be >= 1, got "
                f"{self.num_steps}, {self.batch_size} and {self.num_threads}."
            )
        object.__setattr__(self, "block_config", tuple(int(b) for b in self.block_config))


@contextmanager
def fixed_threads(num_threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(num_threads)`` and restore the process's count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_classifier(num_classes: int, settings: ClassifierSettings, in_channels: int = 1) -> DenseNet:
    """A 2-D DenseNet: ``(B, in_channels, H, W)`` in [-1, 1] -> logits ``(B, num_classes)``."""
    return DenseNet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=num_classes,
        init_features=settings.init_features,
        growth_rate=settings.growth_rate,
        block_config=settings.block_config,
    )


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights ``N / (K * n_k)`` (scikit-learn's "balanced"), ``(num_classes,)``.

    Raises:
        ValueError: a class without images.
    """
    counts = torch.bincount(labels, minlength=num_classes).double()
    if bool((counts == 0).any()):
        raise ValueError(f"every class needs training images for class weights, counts are {counts.long().tolist()}.")
    return (counts.sum() / (num_classes * counts)).float()


def class_balanced_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Draw weights ``1 / n_class`` per image ``(N,)``: every class is drawn equally often."""
    counts = torch.bincount(labels, minlength=num_classes).double().clamp(min=1)
    return (1.0 / counts)[labels]


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    settings: ClassifierSettings,
    seed: int,
    sample_weights: torch.Tensor | None = None,
    loss_weights: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Train a fresh classifier on ``images`` for exactly ``settings.num_steps`` steps.

    Args:
        images: ``(N, C, R, R)`` float32 in [-1, 1].
        labels: ``(N,)`` int64 class indices in ``[0, num_classes)``.
        num_classes: number of classes (output logits).
        settings: network size and budget.
        seed: seeds the weights, the sampling order and the augmentation.
        sample_weights: ``(N,)`` relative probability of drawing each image (``WeightedRandomSampler``, with
            replacement), e.g. :func:`class_balanced_weights`; None draws uniformly over images.
        loss_weights: per-class cross-entropy weights ``(num_classes,)`` (e.g. :func:`class_weights`), or None.
        device: training device.

    Returns:
        the trained network in eval mode.
    """
    if images.ndim != 4 or len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need (N, C, R, R) images with N labels, got {tuple(images.shape)} and {len(labels)} labels.")
    device = torch.device(device)
    with fixed_threads(settings.num_threads):
        set_determinism(seed=seed)
        network = build_classifier(num_classes, settings, images.shape[1]).to(device)
        transform = RandXrayAugmentd("image").set_random_state(seed) if settings.augment else None
        data = [{"image": img, "label": int(lb)} for img, lb in zip(images, labels)]
        num_samples = settings.num_steps * settings.batch_size
        generator = torch.Generator().manual_seed(seed)
        if sample_weights is not None:
            if sample_weights.shape != labels.shape:
                raise ValueError(f"sample_weights must be ({len(labels)},), got {tuple(sample_weights.shape)}.")
            sampler = WeightedRandomSampler(sample_weights.double(), num_samples, replacement=True, generator=generator)
        else:
            sampler = RandomSampler(data, replacement=True, num_samples=num_samples, generator=generator)
        loader = DataLoader(Dataset(data, transform), batch_size=settings.batch_size, sampler=sampler, num_workers=0)
        optimizer = torch.optim.AdamW(network.parameters(), settings.learning_rate, weight_decay=settings.weight_decay)
        loss = nn.CrossEntropyLoss(weight=None if loss_weights is None else loss_weights.to(device))
        trainer = SupervisedTrainer(
            device=device,
            max_epochs=1,
            train_data_loader=loader,
            network=network,
            optimizer=optimizer,
            loss_function=loss,
            decollate=False,
        )
        trainer.run()
        set_determinism(seed=None)
    return network.eval()


@torch.no_grad()
def predict_probabilities(
    network: nn.Module, images: torch.Tensor, batch_size: int = 64, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Class probabilities ``(N, num_classes)`` (softmax of the logits) of ``images`` ``(N, C, R, R)`` in [-1, 1]."""
    network.eval()
    out = [
        torch.softmax(network(images[i : i + batch_size].to(device)).float(), 1).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, 0)


@torch.no_grad()
def classifier_features(
    network: DenseNet, images: torch.Tensor, batch_size: int = 64, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The classifier's penultimate features ``(N, D)`` (the pooled output of the DenseNet's last block, before the
    linear layer) of ``images`` ``(N, C, R, R)`` in [-1, 1]: a radiograph feature space for FID."""
    network.eval()
    head = network.class_layers[:-1]  # relu, global average pool, flatten
    out = [
        head(network.features(images[i : i + batch_size].to(device))).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def stack_items(items: Sequence[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (N, C, R, R) float32, labels (N,) int64)`` from dataset items ``{"image", "label"}``, as plain
    tensors (MONAI's ``MetaTensor`` metadata is not needed past this point)."""
    images = torch.stack([torch.as_tensor(it["image"]).float() for it in items]).as_subclass(torch.Tensor)
    labels = torch.tensor([int(it["label"]) for it in items], dtype=torch.long)
    return images, labels
