"""Throughput of the synthesis app at 256 px: images/s end to end and the time split (load, generate, gate, write,
send).

Two measurements in one run, on an exported (untrained, full-size) InferenceGenerator:

1. the app's steps in process (``load_generator`` -> ``generate`` -> diversity gate -> DICOM write,
   then ``monai_msgsagan.dicom_send``: C-STORE and STOW-RS of the written series to a real Orthanc), timed one by
   one; the baseline is the generator alone (``generate``), so the numbers show what the gate, the DICOM writing
   and the sending cost on top of the network;
2. the real app (``python apps/xray_synthesis``) in a subprocess, whose wall time adds Python/Holoscan start-up,
   with the split it reports in ``report.json`` (sending to the same Orthanc by C-STORE).

Orthanc is Debian's (``/usr/sbin/Orthanc``), started by ``orthanc_server.py`` (beside this script) on loopback
ports with its own temporary storage, so the send times are loopback times to a PACS writing to this machine's
disk; without Orthanc (or with ``--no-pacs``) the send steps are skipped, saying so.

Runs on CUDA (float32 and the app's float16) when present, else on the CPU::

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/app.py --num-images 32 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from bench_utils import sync
from bundle_utils import save_generator_artifact  # the artifact helper shared with the tests
from orthanc_server import CLIENT_AE_TITLE, OrthancServer, find_orthanc  # the tests' PACS too

from monai_msgsagan.artifact import load_generator
from monai_msgsagan.dicom_send import DicomNode, send_c_store, send_stow_rs
from monai_msgsagan.generation import generate
from monai_msgsagan.metrics.gate import diversity_gate
from monai_msgsagan.networks import InferenceGenerator, default_channels

REPO = Path(__file__).resolve().parents[1]
#: the app's writer (apps/xray_synthesis is a script folder, not a package: its module is run from its file)
write_series_atomically = runpy.run_path(str(REPO / "apps" / "xray_synthesis" / "output.py"))["write_series_atomically"]


def export_generator(folder: Path, resolution: int) -> Path:
    """An untrained full-size generator exported like ``ckpt_export``, with its record (weights do not change the
    speed)."""
    torch.manual_seed(0)
    attention = list(InferenceGenerator(resolution).attention_resolutions)  # the default's scales of this size
    args = {
        "resolution": resolution,
        "latent_dim": 128,
        "channels": default_channels(resolution),
        "attention_resolutions": attention,
        "num_classes": 0,
    }
    path = folder / "models" / "msgsagan" / "model.ts"
    return save_generator_artifact(InferenceGenerator(**args).eval(), args, [], path, name="bench", version="0")


def in_process(
    model: Path, out: Path, n: int, batch: int, device: torch.device, half: bool, pacs: OrthancServer | None
) -> dict[str, float]:
    """Seconds per step of the app's pipeline, run in this process (one warm-up generation first)."""
    times = {}
    start = time.perf_counter()
    network = load_generator(model, device).network
    sync(device)
    times["load"] = time.perf_counter() - start
    generate(network, batch, 0, batch_size=batch, device=device, half_precision=half)  # warm-up: profiling, CUDA init
    sync(device)
    start = time.perf_counter()
    images = generate(network, n, 1, batch_size=batch, device=device, half_precision=half)
    sync(device)
    times["generate"] = time.perf_counter() - start
    start = time.perf_counter()
    gate = diversity_gate(images, threshold=1.0, max_pairs=2016)
    times["gate"] = time.perf_counter() - start
    start = time.perf_counter()
    paths = write_series_atomically(images, out, "bench", "0")
    times["write"] = time.perf_counter() - start
    times["pairs"] = gate.pairs
    if pacs is not None:
        node = DicomNode.parse(pacs.dicom_node)
        start = time.perf_counter()
        results = send_c_store(paths, node, CLIENT_AE_TITLE, attempts=1)
        times["c_store"] = time.perf_counter() - start
        times["c_store_acknowledged"] = sum(r.sent for r in results)
        if pacs.dicomweb:  # a second series of the same images (new UIDs): Orthanc skips instances it already has
            fresh = write_series_atomically(images, out, "bench", "0")
            start = time.perf_counter()
            results = send_stow_rs(fresh, pacs.stow_rs_url, attempts=1)
            times["stow_rs"] = time.perf_counter() - start
            times["stow_rs_acknowledged"] = sum(r.sent for r in results)
        times["bytes_per_image"] = sum(p.stat().st_size for p in paths) / len(paths)
    return times


def full_app(model: Path, folder: Path, n: int, batch: int, pacs: OrthancServer | None) -> tuple[float, dict]:
    """Wall time of ``python apps/xray_synthesis`` and the timing split of its report."""
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "request.json").write_text(json.dumps({"num_images": n, "seed": 0, "batch_size": batch}))
    config = folder / "app.yaml"
    settings = yaml.safe_load((REPO / "apps" / "xray_synthesis" / "app.yaml").read_text())
    settings["diversity_gate"]["max_mean_ms_ssim"] = 1.0  # untrained weights: measure speed, not diversity
    config.write_text(yaml.safe_dump(settings))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOLOSCAN_CONFIG_PATH": str(config)}
    if pacs is not None:
        env["XRAY_SYNTHESIS_DICOM_NODE"] = pacs.dicom_node
    cmd = [sys.executable, str(REPO / "apps" / "xray_synthesis"), "-i", str(folder / "input")]
    cmd += ["-o", str(folder / "output"), "-m", str(model.parent.parent)]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"app failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return wall, json.loads((folder / "output" / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--num-images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--skip-app", action="store_true", help="skip the subprocess run of the real app")
    parser.add_argument("--no-pacs", action="store_true", help="do not start Orthanc; skip the send timings")
    parser.add_argument(
        "--pacs-tcp-nodelay",
        action="store_true",
        help="start Orthanc with TCP_NODELAY=1 (its DCMTK then disables Nagle)",
    )
    args = parser.parse_args()
    n, batch = args.num_images, args.batch_size
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device {name} | {args.resolution} px | {n} images, batch {batch} | torch {torch.__version__}")
    orthanc = None if args.no_pacs else find_orthanc()
    if orthanc is None:
        print("no Orthanc (--no-pacs, or Debian's orthanc not installed): send timings skipped")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pacs = None if orthanc is None else OrthancServer(tmp / "orthanc", orthanc, tcp_nodelay=args.pacs_tcp_nodelay)
        if pacs is not None:
            pacs.start()
        try:
            run(args, tmp, device, pacs)
        finally:
            if pacs is not None:
                pacs.stop()


def run(args: argparse.Namespace, tmp: Path, device: torch.device, pacs: OrthancServer | None) -> None:
    """Both measurements, printed."""
    n, batch = args.num_images, args.batch_size
    if pacs is not None:
        version = pacs.get("/system")["Version"]
        print(
            f"PACS: Orthanc {version} on loopback (DICOM port {pacs.dicom_port}, DICOMweb plugin {pacs.dicomweb}, "
            f"TCP_NODELAY {'1' if pacs.tcp_nodelay else 'unset: Nagle on in its DCMTK'})"
        )
    model = export_generator(tmp, args.resolution)
    precisions = [False, True] if device.type == "cuda" else [False]
    for half in precisions:
        out = tmp / f"out_{int(half)}"
        out.mkdir()
        t = in_process(model, out, n, batch, device, half, pacs)
        total = t["load"] + t["generate"] + t["gate"] + t["write"]
        label = "float16" if half else "float32"
        print(
            f"in process {label}: load {t['load']:.3f}s | generate {t['generate']:.3f}s | gate {t['gate']:.3f}s "
            f"({t['pairs']} pairs) | write {t['write']:.3f}s | total {total:.3f}s"
        )
        print(
            f"  baseline generator alone: {n / t['generate']:.1f} images/s | "
            f"app steps end to end: {n / total:.1f} images/s "
            f"({t['generate'] / total:.0%} of the time in the network)"
        )
        print(f"  per image: generate {1e3 * t['generate'] / n:.1f} ms | DICOM write {1e3 * t['write'] / n:.1f} ms")
        for key, protocol in (("c_store", "C-STORE"), ("stow_rs", "STOW-RS")):
            if key in t:
                print(
                    f"  {protocol} to Orthanc ({t['bytes_per_image'] / 1024:.0f} KiB per file): {t[key]:.3f}s, "
                    f"{1e3 * t[key] / n:.1f} ms per image, {t[key + '_acknowledged']}/{n} acknowledged"
                )
    if not args.skip_app:
        wall, report = full_app(model, tmp / "app", n, batch, pacs)
        split = " | ".join(f"{k} {v:.3f}s" for k, v in report["timing_s"].items())
        print(
            f"real app subprocess ({report['device']}, {report['precision']}): "
            f"wall {wall:.2f}s -> {n / wall:.2f} images/s"
        )
        print(f"  report split: {split}")
        if report.get("send"):
            print(f"  send: {report['send']['status']} ({report['send']['sent']}/{n} acknowledged)")


if __name__ == "__main__":
    main()
