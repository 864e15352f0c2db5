"""Chest X-ray classification training (MONAI Label BasicTrainTask) with synthetic images added to its split."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.handlers import ConfusionMatrix, from_engine
from monai.inferers import SimpleInferer
from monai.transforms import Activationsd, AsDiscreted, EnsureTyped, SelectItemsd
from monailabel.tasks.train.basic_train import BasicTrainTask, Context

from lib.trainers.synthetic import SyntheticTrainMixin
from monai_msgsagan.label import ClassIndexd
from monai_msgsagan.transforms import xray_preprocess_transforms


class XrayClassificationTrain(SyntheticTrainMixin, BasicTrainTask):
    """Trains a classifier on the datastore's labelled radiographs plus the hook's synthetic images.

    Real records carry the path of a ``<image id>.cls.json`` label file, synthetic ones the class index;
    :class:`~monai_msgsagan.label.records.ClassIndexd` reads both. Real and synthetic images go through the same
    :func:`~monai_msgsagan.transforms.xray_preprocess_transforms` (``(1, spatial_size, spatial_size)`` in [-1, 1]).
    """

    def __init__(
        self,
        model_dir: str,
        network: torch.nn.Module,
        classes: Sequence[str],
        spatial_size: int = 64,
        description: str = "Chest X-ray classification with synthetic-image augmentation",
        **kwargs,
    ) -> None:
        self._network = network
        self.classes = list(classes)
        self.spatial_size = spatial_size
        config = {
            "max_epochs": 1,
            "val_split": 0.25,
            "train_batch_size": 4,
            "val_batch_size": 4,
            "dataset": "Dataset",
            "dataloader": "DataLoader",
            "tracking": "None",
        }
        super().__init__(model_dir, description, config=config, amp=False, labels=self.classes, tracking=None, **kwargs)

    def network(self, context: Context) -> torch.nn.Module:
        return self._network

    def optimizer(self, context: Context) -> torch.optim.Optimizer:
        return torch.optim.Adam(context.network.parameters(), lr=1e-3)

    def loss_function(self, context: Context) -> torch.nn.Module:
        return torch.nn.CrossEntropyLoss()

    def train_pre_transforms(self, context: Context) -> list:
        return [
            # the project's X-ray pipeline (load, grayscale, normalise to [-1, 1], square side), as for the generator
            xray_preprocess_transforms(self.spatial_size, label_key=None),
            SelectItemsd(keys=["image", "label"]),  # synthetic records carry extra keys; batches need the same keys
            EnsureTyped(keys="image", track_meta=False),
            ClassIndexd(keys="label", classes=self.classes),
        ]

    def train_post_transforms(self, context: Context) -> list:
        n = len(self.classes)
        return [
            Activationsd(keys="pred", softmax=True),
            AsDiscreted(keys=("pred", "label"), argmax=(True, False), to_onehot=(n, n)),
        ]

    def train_key_metric(self, context: Context) -> dict:
        return {
            self.TRAIN_METRIC_ACCURACY: ConfusionMatrix("accuracy", output_transform=from_engine(["pred", "label"]))
        }

    def val_key_metric(self, context: Context) -> dict:
        return {self.VAL_METRIC_ACCURACY: ConfusionMatrix("accuracy", output_transform=from_engine(["pred", "label"]))}

    def val_inferer(self, context: Context) -> SimpleInferer:
        return SimpleInferer()
