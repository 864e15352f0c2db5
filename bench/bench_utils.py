"""Helpers shared by the benchmark scripts (they import it as ``bench_utils``: a script's own folder is on
``sys.path``). Helpers shared with the tests live in ``bundle_utils.py`` and ``orthanc_server.py`` beside it."""

from __future__ import annotations

import torch


def sync(device: torch.device) -> None:
    """Wait until ``device`` has run all its queued work, so that a timer read next measures that work (CUDA runs
    asynchronously); on the CPU there is nothing to wait for."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_summary() -> str:
    """One line naming this CPU (``/proc/cpuinfo``'s model name, where there is one), its native bf16 units (AMX,
    AVX512-BF16, as torch reports them), whether ``amp`` runs bf16 on it and torch's thread count, for the first
    line of a benchmark's output."""
    from monai_msgsagan.engines import cpu_has_native_bf16

    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return (
        f"cpu={model!r} amx={torch.cpu._is_amx_tile_supported()} avx512_bf16={torch.cpu._is_avx512_bf16_supported()} "
        f"amp_bf16_on_cpu={cpu_has_native_bf16()} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}"
    )
