"""The generation infer task (type ``others``): a synthetic radiograph of a class and seed, for a viewer."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from monai_msgsagan.artifact import GeneratorArtifact
from monai_msgsagan.files import write_png
from monai_msgsagan.generation import generate
from monai_msgsagan.label import read_class_index

__all__ = ["XraySynthesisInfer"]


class XraySynthesisInfer(InferTask):
    """MONAI Label infer task (type ``others``): one synthetic image of a class, reproducible from a seed.

    Request params: ``class`` (name or index, default the first class) and ``seed`` (int, default 0). The image
    is image 0 of :func:`~monai_msgsagan.generation.generate` for that seed and class (the first image bundle
    inference and the Deploy app make for them). The ``image`` of the request is ignored (MONAI Label's infer
    endpoint requires one: pass any image id of the datastore). Returns a PNG of the generator's resolution (the
    ``image`` a viewer shows; MONAI Label deletes it after sending) and ``{"class", "class_index", "seed",
    "synthetic": true, "generator_sha256"}``. The image is never saved into the datastore as a label.

    Args:
        generator: the loaded class-conditional generator.
        classes: the app's class names (each a class of the generator).
        description: shown by MONAI Label clients.
    """

    def __init__(
        self,
        generator: GeneratorArtifact,
        classes: Sequence[str],
        description: str = "Synthetic chest X-ray of a class (MSG-SAGAN), by seed",
    ) -> None:
        super().__init__(
            type=InferType.OTHERS,
            labels=list(classes),
            dimension=2,
            description=description,
            config={"class": list(classes), "seed": 0},
        )
        self.generator = generator
        self.classes = list(classes)

    def is_valid(self) -> bool:
        return True

    def __call__(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        requested = request.get("class", self.classes[0])
        if isinstance(requested, list):  # the config default offers all classes; take the first
            requested = requested[0]
        class_index = read_class_index(requested, self.classes, where="infer param 'class'")
        try:
            seed = int(request.get("seed", 0))
        except (TypeError, ValueError):
            raise ValueError(f"infer param 'seed': expected an integer, got {request.get('seed')!r}.") from None
        # the synthetic image must never be stored as a label of the (real) image named in the request
        request["save_label"] = False
        image = generate(self.generator.network, 1, seed, self.generator.class_index(self.classes[class_index]))[0]
        fd, name = tempfile.mkstemp(suffix=".png", prefix="synthetic_")
        os.close(fd)
        write_png(image.numpy(), name)
        return name, {
            "class": self.classes[class_index],
            "class_index": class_index,
            "seed": seed,
            "synthetic": True,
            "generator_sha256": self.generator.sha256,
        }
