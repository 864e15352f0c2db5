"""The generation infer task (type ``others``): a synthetic radiograph of a class and seed, for a viewer."""

from __future__ import annotations

from monai_msgsagan.label import SyntheticImageInfer


class XraySynthesisInfer(SyntheticImageInfer):
    """:class:`~monai_msgsagan.label.tasks.SyntheticImageInfer` with this app's description.

    Params: ``class`` (name or index) and ``seed``; returns a PNG. The ``image`` of the request is ignored (MONAI
    Label's infer endpoint requires one: pass any image id of the datastore).
    """

    def __init__(self, generator, classes) -> None:
        super().__init__(generator, classes, description="Synthetic chest X-ray of a class (MSG-SAGAN), by seed")
