"""MONAI Deploy application: synthetic chest X-rays from the exported MSG-SAGAN generator, as DICOM.

Run it the MONAI Deploy way::

    python apps/xray_synthesis -i INPUT -o OUTPUT -m MODEL
    # or with HOLOSCAN_INPUT_PATH / HOLOSCAN_OUTPUT_PATH / HOLOSCAN_MODEL_PATH set

Settings live in ``app.yaml`` (or the file named by ``HOLOSCAN_CONFIG_PATH``), the request in ``INPUT``; the
destinations of the ``send`` section may be overridden by ``XRAY_SYNTHESIS_DICOM_NODE`` /
``XRAY_SYNTHESIS_STOW_RS_URL`` (see ``destinations.py``).
Exit status: 0 written (and sent, when a destination is configured), 1 failed (bad request, model, output or
settings; reason in report.json or on stderr), 2 bad command line, 3 refused by the diversity gate, 4 written
but not every instance acknowledged by every destination (the files stay in OUTPUT; see report.json ``send``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from destinations import send_settings
from monai.deploy.core import Application
from operators import (
    EXIT_FAILED,
    DicomWriterOperator,
    DiversityGateOperator,
    GeneratorOperator,
    ReportOperator,
    RequestOperator,
    SendOperator,
)
from output import check_output_dir

DEFAULT_CONFIG = Path(__file__).resolve().with_name("app.yaml")


class XraySynthesisApp(Application):
    """request -> generate -> diversity gate -> DICOM writer -> send -> report, run once per invocation."""

    def __init__(self, *args, **kwargs) -> None:
        self.exit_code = EXIT_FAILED  # until the report operator sets it
        super().__init__(*args, **kwargs)

    def set_exit_code(self, code: int) -> None:
        self.exit_code = code

    def compose(self) -> None:
        context = Application.init_app_context(self.argv)
        output_path = check_output_dir(context.output_path)
        settings = send_settings(self.kwargs("send"))  # before any work: a misconfigured destination fails fast
        generation = self.kwargs("generation")
        request_op = RequestOperator(
            self,
            input_path=Path(context.input_path),
            defaults=self.kwargs("request_defaults"),
            limits=self.kwargs("limits"),
            name="request",
        )
        generator_op = GeneratorOperator(
            self, model_path=Path(context.model_path), half_precision=generation["half_precision"], name="generate"
        )
        gate_op = DiversityGateOperator(self, **self.kwargs("diversity_gate"), name="diversity_gate")
        writer_op = DicomWriterOperator(
            self, output_path=output_path, bits_allocated=self.kwargs("dicom")["bits_allocated"], name="dicom_writer"
        )
        send_op = SendOperator(self, output_path=output_path, settings=settings, name="send")
        report_op = ReportOperator(self, output_path=output_path, on_exit_code=self.set_exit_code, name="report")
        self.add_flow(request_op, generator_op, {("state", "state")})
        self.add_flow(generator_op, gate_op, {("state", "state")})
        self.add_flow(gate_op, writer_op, {("state", "state")})
        self.add_flow(writer_op, send_op, {("state", "state")})
        self.add_flow(send_op, report_op, {("state", "state")})


def main() -> int:
    """Run the app once; returns the exit status."""
    app = XraySynthesisApp()
    app.config(os.environ.get("HOLOSCAN_CONFIG_PATH") or str(DEFAULT_CONFIG))
    try:
        app.run()
    except (OSError, ValueError) as e:
        logging.getLogger("xray_synthesis").error(str(e))
        print(f"xray_synthesis: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    return app.exit_code
