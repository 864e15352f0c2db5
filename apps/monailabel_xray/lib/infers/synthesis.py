"""The generation infer task (type ``others``): a synthetic radiograph of a class and seed, for a viewer."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from monai_msgsagan.artifact import GeneratorArtifact
from monai_msgsagan.files import write_png
from monai_msgsagan.generation import generate

__all__ = ["XraySynthesisInfer"]


class XraySynthesisInfer(InferTask):
    """MONAI Label infer task (type ``others``): one synthetic image of a class, reproducible from a seed.

    Request params: ``class`` (a name or an index of the generator's classes, resolved by
    :func:`~monai_msgsagan.artifact.resolve_class`; default the class the model was exported for, else its first)
    and ``seed`` (int, default 0). The
    image is image 0 of :func:`~monai_msgsagan.generation.generate` for that seed and class (the first image bundle
    inference and the Deploy app make for them). The ``image`` of the request is ignored (MONAI Label's infer
    endpoint requires one: pass any image id of the datastore). Returns a PNG of the generator's resolution (the
    ``image`` a viewer shows; MONAI Label deletes it after sending) and ``{"class", "class_index", "seed",
    "synthetic": true, "generator_sha256"}``. The image is never saved into the datastore as a label.

    Args:
        generator: the loaded class-conditional generator.
    """

    def __init__(self, generator: GeneratorArtifact) -> None:
        super().__init__(
            type=InferType.OTHERS,
            labels=generator.class_names,
            dimension=2,
            description="Synthetic chest X-ray of a class (MSG-SAGAN), by seed",
            config={"class": generator.class_names, "seed": 0},
        )
        self.generator = generator

    def is_valid(self) -> bool:
        return True

    def __call__(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        requested = request.get("class")
        if isinstance(requested, list):  # the config default offers all classes: the default class
            requested = None
        class_index, class_name = self.generator.resolve_class(requested, "infer param 'class'")
        try:
            seed = int(request.get("seed", 0))
        except (TypeError, ValueError):
            raise ValueError(f"infer param 'seed': expected an integer, got {request.get('seed')!r}.") from None
        # the synthetic image must never be stored as a label of the (real) image named in the request
        request["save_label"] = False
        image = generate(self.generator.network, 1, seed, class_index)[0]
        fd, name = tempfile.mkstemp(suffix=".png", prefix="synthetic_")
        os.close(fd)
        write_png(image.numpy(), name)
        return name, {
            "class": class_name,
            "class_index": class_index,
            "seed": seed,
            "synthetic": True,
            "generator_sha256": self.generator.sha256,
        }
