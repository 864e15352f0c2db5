"""The process-wide random states as one checkpointable object, for exact resume on 1 and N processes."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from monai_msgsagan.distributed import all_gather_object, is_distributed, select_rank_state

__all__ = ["GlobalRandomState"]


class GlobalRandomState:
    """The process-wide random states (torch CPU and CUDA, numpy, Python) as a checkpointable object.

    The state dict holds only tensors and plain numbers, so it loads with ``torch.load(weights_only=True)``.
    In a multi-process run ``state_dict`` is collective: it gathers every rank's states into ``"per_rank"``, and
    ``load_state_dict`` restores each rank's own (so a resumed ``torchrun`` draws what an uninterrupted one would).
    Data order is not part of it: samplers should derive their order from (seed, epoch), like
    ``DistributedSampler`` (which MONAI workflows ``set_epoch`` every epoch), so that it does not depend on when
    an iterator was created.
    """

    @staticmethod
    def _local_state() -> dict[str, Any]:
        np_state = np.random.get_state()
        py_version, py_internal, py_gauss = random.getstate()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "numpy_pos": int(np_state[2]),
            "numpy_has_gauss": int(np_state[3]),
            "numpy_gauss": float(np_state[4]),
            "python_version": py_version,
            "python_internal": torch.tensor(py_internal, dtype=torch.int64),
            "python_gauss": py_gauss,
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def state_dict(self) -> dict[str, Any]:
        state = self._local_state()
        if is_distributed():
            state["per_rank"] = all_gather_object(state)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = select_rank_state(state, "random states")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        keys = state["numpy_keys"].numpy().astype(np.uint32)
        np.random.set_state(("MT19937", keys, state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"]))
        random.setstate((state["python_version"], tuple(state["python_internal"].tolist()), state["python_gauss"]))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
