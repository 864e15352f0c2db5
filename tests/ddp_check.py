"""Run by ``torchrun`` in tests: the multi-GPU bundle config on CPU (gloo), then compare every rank's networks.

Usage: torchrun --nproc_per_node 2 tests/ddp_check.py BUNDLE_ROOT OUT_JSON key=value ...
"""

from __future__ import annotations

import hashlib
import json
import sys

import torch
import torch.distributed as dist
from monai.bundle import ConfigWorkflow

from monai_msgsagan.handlers import ResumeFromLatest


def digest(module: torch.nn.Module) -> str:
    """Hash of a state dict: parameters and buffers (spectral-norm u/v vectors included)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    bundle_root, out_json, *pairs = sys.argv[1:]
    overrides = {k: json.loads(v) for k, v in (p.split("=", 1) for p in pairs)}
    workflow = ConfigWorkflow(
        config_file=[f"{bundle_root}/configs/train.json", f"{bundle_root}/configs/multi_gpu_train.json"],
        meta_file=f"{bundle_root}/configs/metadata.json",
        workflow_type="train",
        bundle_root=bundle_root,
        **overrides,
    )
    workflow.initialize()
    workflow.run()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    resume = [h for h in workflow.parser.get_parsed_content("train#handlers") if isinstance(h, ResumeFromLatest)]
    mine = {
        "resumed_from": resume[0].loaded_from.name if resume and resume[0].loaded_from else None,
        "rank": dist.get_rank(),
        "iterations": trainer.state.iteration,
        "generator": digest(trainer.g_network),
        "discriminator": digest(trainer.d_network),
        "ema_generator": digest(workflow.parser.get_parsed_content("train#ema_net")),
        "sampler_indices": list(iter(trainer.data_loader.sampler)),
    }
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    if dist.get_rank() == 0:
        with open(out_json, "w") as f:
            json.dump(gathered, f)
    workflow.finalize()


if __name__ == "__main__":
    main()
