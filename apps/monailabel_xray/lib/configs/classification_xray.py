"""Task config: chest X-ray classifier + synthetic augmentation (every class by default) + generation infer task."""

from __future__ import annotations

import logging
import os
from typing import Any

from monai.networks.nets import DenseNet
from monailabel.interfaces.config import TaskConfig
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.utils.others.generic import strtobool

from lib.infers import XraySynthesisInfer
from lib.trainers import XrayClassificationTrain
from monai_msgsagan.label import SyntheticAugmentSettings

logger = logging.getLogger(__name__)


class ClassificationXray(TaskConfig):
    """App config keys (``--conf key value``): ``synthetic`` (default ``true``) and the ``synthetic_*`` keys of
    :class:`~monai_msgsagan.label.config.SyntheticAugmentSettings` (``synthetic_model`` is required while
    ``synthetic`` is on), ``classes`` (comma-separated; default: the generator's class names from its record;
    required with ``synthetic`` off) and ``spatial_size`` (default 64). A bad setting stops the app at start with a
    ``ValueError`` naming the key.
    """

    def init(self, name: str, model_dir: str, conf: dict[str, str], planner: Any, **kwargs: Any) -> None:
        super().init(name, model_dir, conf, planner, **kwargs)
        classes = [c.strip() for c in conf.get("classes", "").split(",") if c.strip()] or None
        self.settings = None
        if strtobool(conf.get("synthetic", "true")):
            cache = os.path.join(model_dir, "synthetic_cache")
            self.settings = SyntheticAugmentSettings.from_conf(conf, cache, classes)
            classes = list(self.settings.classes)
            generator = self.settings.generator
            logger.info(f"synthetic augmentation with {generator.path} (sha256 {generator.sha256[:16]})")
        self.labels = classes or []
        if len(self.labels) < 2:
            raise ValueError(f"app config 'classes': give at least two class names, got {self.labels}.")
        self.spatial_size = int(conf.get("spatial_size", "64"))
        # a small MONAI DenseNet: 64 px in, one logit per class
        self.network = DenseNet(
            spatial_dims=2,
            in_channels=1,
            out_channels=len(self.labels),
            init_features=16,
            growth_rate=8,
            block_config=(2, 2, 2),
        )
        self.path = os.path.join(model_dir, f"{name}.pt")

    def infer(self) -> dict[str, InferTask]:
        if self.settings is None:
            return {}
        return {f"{self.name}_synthesis": XraySynthesisInfer(self.settings.generator)}

    def trainer(self) -> TrainTask:
        augmenter = self.settings.build() if self.settings is not None else None
        return XrayClassificationTrain(
            model_dir=os.path.join(self.model_dir, self.name),
            network=self.network,
            classes=self.labels,
            spatial_size=self.spatial_size,
            publish_path=self.path,
            augmenter=augmenter,
        )
