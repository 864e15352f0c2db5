"""Helpers shared by the benchmark scripts (they import it as ``bench_utils``: a script's own folder is on
``sys.path``). Helpers shared with the tests live in ``tests/bundle_utils.py``."""

from __future__ import annotations

import torch


def sync(device: torch.device) -> None:
    """Wait until ``device`` has run all its queued work, so that a timer read next measures that work (CUDA runs
    asynchronously); on the CPU there is nothing to wait for."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
