"""Small ``torch.distributed`` helpers shared by the trainer and the checkpoint handlers.

Every helper is a no-op (or returns the single-process answer) when ``torch.distributed`` is not initialised or
runs with one process, so the same code serves single-device and ``torchrun`` runs. The collective ones
(:func:`all_gather_object`, :func:`broadcast_object`) must be called by every rank.
"""

from __future__ import annotations

import logging
from typing import Any

import torch.distributed as dist

__all__ = [
    "is_distributed",
    "get_rank",
    "get_world_size",
    "all_gather_object",
    "broadcast_object",
    "select_rank_state",
]

logger = logging.getLogger(__name__)


def is_distributed() -> bool:
    """``True`` when ``torch.distributed`` is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def all_gather_object(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` when not distributed). Collective."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself when not distributed). Collective."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def select_rank_state(state: dict[str, Any], what: str) -> dict[str, Any]:
    """This rank's entry of ``state["per_rank"]``; ``state`` itself (less ``per_rank``) when one process saved it.

    A checkpoint saved by a different number of processes cannot be resumed exactly: ranks that have a saved
    entry take it, the others get ``{}`` (keep their freshly seeded state), and a warning says so.
    """
    per_rank = state.get("per_rank")
    saved = per_rank if per_rank is not None else [{k: v for k, v in state.items() if k != "per_rank"}]
    rank, world = get_rank(), get_world_size()
    if len(saved) != world:
        logger.warning(
            "%s were saved by %d process(es), this run has %d: ranks without a saved state keep their fresh one, "
            "so resume is not exact.",
            what,
            len(saved),
            world,
        )
    return saved[rank] if rank < len(saved) else {}
