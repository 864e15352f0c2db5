"""MONAI Label app: chest X-ray classification whose training split gets synthetic radiographs (every class by default).

Start it with ``.venv-monailabel/bin/python -m monailabel.main start_server --app apps/monailabel_xray --studies
<datastore> --conf synthetic_model <bundle>/models/model.pt`` (see README.md). The datastore holds the radiographs
(``*.png``/``*.jpg``) and, per labelled image, ``labels/final/<image id>.cls.json`` = ``{"label": "<class name>"}``.
"""

from __future__ import annotations

import logging
import os

import monailabel
from lib.configs import ClassificationXray
from monailabel.config import settings
from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

logger = logging.getLogger(__name__)

#: Task configs of this app by name (``--conf models <name,...>`` picks some; default all).
CONFIGS = {"classification_xray": ClassificationXray}

#: Class label files of the datastore (``labels/final/<id>.cls.json``), beside MONAI Label's image patterns.
LABEL_FILE_PATTERN = "*.cls.json"


class MyApp(MONAILabelApp):
    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.model_dir = conf.get("model_dir") or os.path.join(app_dir, "model")
        names = [m.strip() for m in conf.get("models", "all").split(",") if m.strip()]
        names = list(CONFIGS) if names == ["all"] else names
        unknown = [n for n in names if n not in CONFIGS]
        if unknown:
            raise ValueError(f"app config 'models': unknown {unknown}; available: {list(CONFIGS)} or 'all'.")
        self.models = {}
        for name in names:
            config = CONFIGS[name]()
            config.init(name, self.model_dir, conf, None)
            self.models[name] = config
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="MONAI Label - chest X-ray classification with MSG-SAGAN synthetic augmentation",
            description="Class-conditional synthetic radiographs added to every class of the training split",
            version=monailabel.__version__,
        )

    def init_datastore(self) -> Datastore:
        extensions = [*settings.MONAI_LABEL_DATASTORE_FILE_EXT, LABEL_FILE_PATTERN]
        return LocalDatastore(
            self.studies,
            extensions=extensions,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_infers(self) -> dict[str, InferTask]:
        return {name: task for config in self.models.values() for name, task in config.infer().items()}

    def init_trainers(self) -> dict[str, TrainTask]:
        return {name: config.trainer() for name, config in self.models.items()}
