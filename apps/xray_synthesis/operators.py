"""Holoscan operators of the synthesis app, one concern each: request -> generate -> gate -> DICOM -> send -> report.

A run's state is one :class:`RunState` passed along the chain. An operator whose step fails records ``status``
"failed" (or "refused" for the gate) and the reason; later operators pass the state on untouched, and the report
operator writes the report and sets the application's exit code. Sending never changes ``status``: the files are
written whatever the PACS does, and what it did is in the report's ``send`` section (and exit code 4 when not all
sent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from destinations import SendSettings
from holoscan.conditions import CountCondition
from monai.deploy.core import Fragment, Operator, OperatorSpec
from output import new_run_id, remove_stale_partials, write_run_report, write_series_atomically
from request import DEFAULT_MAX_REQUEST_BYTES, SynthesisRequest, load_request

from monai_msgsagan import __version__
from monai_msgsagan.artifact import GeneratorArtifact, ModelError, load_generator
from monai_msgsagan.dicom_send import send_c_store, send_stow_rs
from monai_msgsagan.generation import generate
from monai_msgsagan.metrics.gate import diversity_gate

APP_NAME = "xray_synthesis"
EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_NOT_SENT = 0, 1, 3, 4
logger = logging.getLogger(APP_NAME)


@dataclass
class RunState:
    """One run's state; each operator fills in its part (``None``: that step has not set it)."""

    run_id: str
    #: "running", then "written", "failed" or "refused" (the gate)
    status: str = "running"
    reason: str | None = None
    timing_s: dict[str, float] = field(default_factory=dict)
    request: SynthesisRequest | None = None
    generator: GeneratorArtifact | None = None
    device: str | None = None
    precision: str | None = None
    class_name: str | None = None
    #: ``(N, 1, R, R)`` float32 in [-1, 1]
    images: torch.Tensor | None = None
    diversity: dict[str, Any] | None = None
    #: written DICOM files, relative to the output folder
    files: list[str] = field(default_factory=list)
    send: dict[str, Any] | None = None
    removed_stale: list[str] = field(default_factory=list)
    cleanup_error: str | None = None


def _run_step(state: RunState, name: str, step: Callable[[], None]) -> None:
    """Run ``step`` unless the run already failed; time it and record a failure with its reason."""
    if state.status != "running":
        return
    start = time.perf_counter()
    try:
        step()
    except Exception as e:  # every failure ends in report.json and a non-zero exit, never a bare stack trace
        state.status = "failed"
        state.reason = f"{name}: {e}" if isinstance(e, (ValueError, OSError)) else f"{name}: {type(e).__name__}: {e}"
        logger.error(state.reason)
    finally:
        state.timing_s[name] = round(time.perf_counter() - start, 6)


class StateOperator(Operator):
    """An operator in the middle of the chain: receives the run state on ``state`` and emits it on ``state``."""

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("state")
        spec.output("state")


class RequestOperator(Operator):
    """Reads and validates the request (``request.json`` in the input folder, else the app.yaml defaults).

    Emits the run state with ``request`` (a :class:`request.SynthesisRequest`).
    """

    def __init__(
        self, fragment: Fragment, *args: Any, input_path: Path, defaults: Mapping[str, Any], limits: Mapping, **kwargs
    ) -> None:
        self.input_path = Path(input_path)
        self.defaults = dict(defaults)
        self.limits = dict(limits)
        super().__init__(fragment, CountCondition(fragment, 1), *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.output("state")

    def compute(self, op_input, op_output, context) -> None:
        state = RunState(new_run_id())

        def step() -> None:
            state.request = load_request(
                self.input_path,
                self.defaults,
                int(self.limits["max_images"]),
                int(self.limits["max_batch_size"]),
                int(self.limits.get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES)),
            )

        _run_step(state, "request", step)
        op_output.emit(state, "state")


def find_model_file(model_path: Path) -> Path:
    """The one model file at ``model_path`` (a file, or a folder holding exactly one file, at any depth).

    Raises:
        ModelError: the path does not exist, or the folder holds no file or several.
    """
    if model_path.is_file():
        return model_path
    if not model_path.is_dir():
        raise ModelError(f"model path {model_path} does not exist.")
    files = sorted(p for p in model_path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if len(files) != 1:
        found = ", ".join(str(f.relative_to(model_path)) for f in files) or "nothing"
        raise ModelError(f"model folder {model_path} must hold exactly one TorchScript file, found {found}.")
    return files[0]


class GeneratorOperator(StateOperator):
    """Loads the TorchScript generator (its record embedded) and generates the requested images (GPU when present).

    Adds ``generator`` (its identity, incl. SHA-256, goes into the report), ``device``, ``precision`` and
    ``images`` (N, 1, R, R) in [-1, 1].
    """

    def __init__(self, fragment: Fragment, *args: Any, model_path: Path, half_precision: bool, **kwargs) -> None:
        self.model_path = Path(model_path)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.half_precision = bool(half_precision) and self.device.type == "cuda"
        super().__init__(fragment, *args, **kwargs)

    def compute(self, op_input, op_output, context) -> None:
        state: RunState = op_input.receive("state")
        state.device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        state.precision = "float16" if self.half_precision else "float32"

        def load() -> None:
            state.generator = load_generator(find_model_file(self.model_path), self.device)

        def run() -> None:
            request, generator = state.request, state.generator
            index, state.class_name = generator.resolve_class(request.class_name)
            state.images = generate(
                generator.network,
                request.num_images,
                request.seed,
                index,
                batch_size=request.batch_size,
                device=self.device,
                half_precision=self.half_precision,
            )  # a CPU tensor: the generation has finished when it returns

        _run_step(state, "load", load)
        _run_step(state, "generate", run)
        op_output.emit(state, "state")


class DiversityGateOperator(StateOperator):
    """Refuses a mode-collapsed batch: mean pairwise MS-SSIM above the configured threshold."""

    def __init__(
        self, fragment: Fragment, *args: Any, max_mean_ms_ssim: float, max_pairs: int | None, **kwargs
    ) -> None:
        self.threshold = float(max_mean_ms_ssim)
        self.max_pairs = None if max_pairs is None else int(max_pairs)
        super().__init__(fragment, *args, **kwargs)

    def compute(self, op_input, op_output, context) -> None:
        state: RunState = op_input.receive("state")

        def step() -> None:
            result = diversity_gate(state.images, self.threshold, self.max_pairs, seed=state.request.seed)
            state.diversity = result.to_dict()
            if not result.passed:
                state.status, state.reason = "refused", result.reason
                logger.error(result.reason)

        _run_step(state, "gate", step)
        op_output.emit(state, "state")


class DicomWriterOperator(StateOperator):
    """Writes the accepted batch as one synthetic Secondary Capture series, all or nothing.

    First, whatever the run's status, removes the hidden folders of earlier runs that were killed while writing
    (listed in the report as ``removed_stale``).
    """

    def __init__(self, fragment: Fragment, *args: Any, output_path: Path, bits_allocated: int, **kwargs) -> None:
        self.output_path = Path(output_path)
        self.bits_allocated = int(bits_allocated)
        super().__init__(fragment, *args, **kwargs)

    def compute(self, op_input, op_output, context) -> None:
        state: RunState = op_input.receive("state")
        try:
            state.removed_stale = remove_stale_partials(self.output_path)
            if state.removed_stale:
                logger.warning(f"removed the unfinished series of killed runs: {', '.join(state.removed_stale)}")
        except OSError as e:  # not this run's failure: report it and write the series all the same
            logger.warning(str(e))
            state.cleanup_error = str(e)

        def step() -> None:
            generator = state.generator
            paths = write_series_atomically(
                state.images,
                self.output_path,
                generator.name,
                generator.version,
                run_id=state.run_id,
                class_name=state.class_name,
                model_sha256=generator.sha256,
                bits_allocated=self.bits_allocated,
            )
            state.files = [str(p.relative_to(self.output_path)) for p in paths]

        _run_step(state, "write", step)
        op_output.emit(state, "state")


class SendOperator(StateOperator):
    """Sends the written series to the configured DICOM node (C-STORE) and/or STOW-RS endpoint.

    Adds ``send``: None when no destination is configured, else the destinations, ``status`` ("sent", "partly
    sent", "not sent" or "nothing to send" when the run wrote no series), counts, and per instance what each
    destination answered. The files stay in the output folder in every case.
    """

    def __init__(self, fragment: Fragment, *args: Any, output_path: Path, settings: SendSettings, **kwargs) -> None:
        self.output_path = Path(output_path)
        self.settings = settings
        super().__init__(fragment, *args, **kwargs)

    def _send(self, files: list[Path]) -> dict[str, Any]:
        settings = self.settings
        retry = {key: getattr(settings, key) for key in ("attempts", "retry_delay_s", "timeout_s")}
        instances = [{"file": str(f.relative_to(self.output_path)), "sop_instance_uid": None} for f in files]
        senders = {}
        if settings.dicom_node is not None:
            senders["dicom"] = lambda: send_c_store(files, settings.dicom_node, settings.calling_ae_title, **retry)
        if settings.stow_rs_url is not None:
            senders["stow_rs"] = lambda: send_stow_rs(files, settings.stow_rs_url, **retry)
        errors = {}
        for name, send in senders.items():
            try:
                results = send()
            except Exception as e:  # e.g. pynetdicom missing: nothing sent there, and it ends in the report
                errors[name] = f"{type(e).__name__}: {e}"
                logger.error(f"send to {name}: {errors[name]}")
                for item in instances:
                    item[name] = {"sent": False, "attempts": 0, "reason": errors[name], "status": None}
                continue
            for item, result in zip(instances, results):
                item["sop_instance_uid"] = result.sop_instance_uid
                item[name] = {k: v for k, v in result.to_dict().items() if k not in ("file", "sop_instance_uid")}
        sent = sum(all(item[name]["sent"] for name in senders) for item in instances)
        status = "sent" if sent == len(instances) else ("not sent" if sent == 0 else "partly sent")
        out = {"destinations": settings.describe(), "status": status, "sent": sent, "not_sent": len(instances) - sent}
        if errors:
            out["errors"] = errors
        out["instances"] = instances
        return out

    def compute(self, op_input, op_output, context) -> None:
        state: RunState = op_input.receive("state")
        if self.settings.enabled:
            if state.status != "running" or not state.files:
                state.send = {"destinations": self.settings.describe(), "status": "nothing to send"}
            else:
                start = time.perf_counter()
                state.send = self._send([self.output_path / f for f in state.files])
                state.timing_s["send"] = round(time.perf_counter() - start, 6)
                level = logging.INFO if state.send["status"] == "sent" else logging.ERROR
                logger.log(
                    level,
                    f"send: {state.send['status']}, {state.send['sent']}/{len(state.files)} instance(s) "
                    f"acknowledged; the files stay in {self.output_path}",
                )
        op_output.emit(state, "state")


class ReportOperator(Operator):
    """Writes the run's report (request, model identity, device, timing, diversity, verdict, files) and the exit code.

    ``report_<run id>.json`` stays; ``report.json`` is replaced by the latest run's report.
    """

    def __init__(
        self, fragment: Fragment, *args: Any, output_path: Path, on_exit_code: Callable[[int], None], **kwargs
    ) -> None:
        self.output_path = Path(output_path)
        self.on_exit_code = on_exit_code
        self.started = time.perf_counter()
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("state")

    def compute(self, op_input, op_output, context) -> None:
        state: RunState = op_input.receive("state")
        if state.status == "running":
            state.status = "written"
        report = {
            "app": {"name": APP_NAME, "version": __version__},
            "run_id": state.run_id,
            "status": state.status,
            "reason": state.reason,
            "request": state.request.to_dict() if state.request is not None else None,
            "model": None if state.generator is None else state.generator.identity(),
            "device": state.device,
            "precision": state.precision,
            "class": state.class_name,
            "timing_s": {**state.timing_s, "total_in_graph": round(time.perf_counter() - self.started, 6)},
            "diversity": state.diversity,
            "gate": None if state.diversity is None else ("passed" if state.diversity["passed"] else "refused"),
            "files": state.files,
            "send": state.send,
            "removed_stale": state.removed_stale,
        }
        if state.cleanup_error is not None:
            report["cleanup_error"] = state.cleanup_error
        write_run_report(report, self.output_path, state.run_id)
        codes = {"written": EXIT_OK, "refused": EXIT_REFUSED}
        code = codes.get(state.status, EXIT_FAILED)
        if code == EXIT_OK and state.send and state.send["status"] != "sent":
            code = EXIT_NOT_SENT
        self.on_exit_code(code)
        logger.info(f"{APP_NAME}: {state.status}, {len(state.files)} DICOM file(s) in {self.output_path}")
