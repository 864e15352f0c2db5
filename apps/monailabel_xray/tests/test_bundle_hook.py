"""The hook on MONAI Label's BundleTrainTask: a real bundle trains on the real train split plus synthetic records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CLASSES, NO_MONAILABEL, make_datastore

pytest.importorskip("monailabel", reason=NO_MONAILABEL)

from lib.trainers import SyntheticBundleTrainMixin  # noqa: E402
from monailabel.config import settings  # noqa: E402
from monailabel.datastore.local import LocalDatastore  # noqa: E402
from monailabel.tasks.train.bundle import BundleTrainTask  # noqa: E402

from monai_msgsagan.label import SPLIT_FILENAME, SyntheticAugmentSettings  # noqa: E402

PREPROCESSING = [
    {"_target_": "monai_msgsagan.transforms.xray_preprocess_transforms", "resolution": 32, "label_key": None},
    {"_target_": "SelectItemsd", "keys": ["image", "label"]},
    {"_target_": "EnsureTyped", "keys": "image", "track_meta": False},
    {"_target_": "monai_msgsagan.label.ClassIndexd", "keys": "label", "classes": "@classes"},
]

TRAIN_CONFIG = {
    "bundle_root": ".",
    "device": "cpu",
    "classes": CLASSES,
    "network_def": {
        "_target_": "DenseNet",
        "spatial_dims": 2,
        "in_channels": 1,
        "out_channels": 2,
        "init_features": 8,
        "growth_rate": 4,
        "block_config": [2],
    },
    "network": "$@network_def.to(@device)",
    "loss": {"_target_": "torch.nn.CrossEntropyLoss"},
    "optimizer": {"_target_": "torch.optim.Adam", "params": "$@network.parameters()", "lr": 0.001},
    "preprocessing": {"_target_": "Compose", "transforms": PREPROCESSING},
    "train": {
        "dataset": {"_target_": "Dataset", "data": [], "transform": "@preprocessing"},
        "dataloader": {"_target_": "DataLoader", "dataset": "@train#dataset", "batch_size": 1, "shuffle": False},
        "handlers": [],
        "trainer": {
            "_target_": "SupervisedTrainer",
            "max_epochs": 1,
            "device": "@device",
            "train_data_loader": "@train#dataloader",
            "network": "@network",
            "loss_function": "@loss",
            "optimizer": "@optimizer",
            "train_handlers": "@train#handlers",
        },
    },
    "validate": {"dataset": {"_target_": "Dataset", "data": [], "transform": "@preprocessing"}},
    "run": ["$@train#trainer.run()", "$print('bundle-train-iterations', @train#trainer.state.iteration)"],
}


class XrayBundleTrain(SyntheticBundleTrainMixin, BundleTrainTask):
    """What a bundle app declares to get the hook."""


def test_bundle_train_task_trains_on_synthetic_records(figure1_dir, generator_file, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    (bundle / "configs" / "train.json").write_text(json.dumps(TRAIN_CONFIG))
    (bundle / "configs" / "metadata.json").write_text(json.dumps({"version": "0.1.0", "description": "tiny"}))
    studies = make_datastore(figure1_dir, tmp_path / "studies", n_covid=5, n_other=2)
    datastore = LocalDatastore(str(studies), extensions=[*settings.MONAI_LABEL_DATASTORE_FILE_EXT, "*.cls.json"])
    settings_ = SyntheticAugmentSettings.from_conf({"synthetic_model": str(generator_file)}, tmp_path / "c")
    task = XrayBundleTrain(str(bundle), {}, augmenter=settings_.build())
    assert task.is_valid() and task.config()["synthetic_augment"] is True

    request = {"model": "xray_bundle", "device": "cpu", "max_epochs": 1, "val_split": 0.3, "multi_gpu": False}
    task(request, datastore)

    split = json.loads((bundle / "logs" / SPLIT_FILENAME).read_text())
    synthetic = [r for r in split["train"] if r.get("synthetic")]
    assert {r["label"] for r in synthetic} == {0, 1}  # the every-class mix
    assert split["validation"] and not any(r.get("synthetic") for r in split["validation"])
    # the bundle's trainer ran one iteration per record (batch size 1): real train records plus the synthetic ones
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("bundle-train-iterations")]
    assert printed == [f"bundle-train-iterations {len(split['train'])}"]
    assert len(split["train"]) > len(synthetic) > 0
    assert Path(synthetic[0]["image"]).is_file()
