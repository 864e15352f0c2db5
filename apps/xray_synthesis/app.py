"""MONAI Deploy application: synthetic chest X-rays from the exported MSG-SAGAN generator, as DICOM.

Run it the MONAI Deploy way::

    python apps/xray_synthesis -i INPUT -o OUTPUT -m MODEL
    # or with HOLOSCAN_INPUT_PATH / HOLOSCAN_OUTPUT_PATH / HOLOSCAN_MODEL_PATH set

Settings live in ``app.yaml`` (or the file named by ``HOLOSCAN_CONFIG_PATH``), the request in ``INPUT``.
Exit status: 0 written, 1 failed (bad request, model or output; reason in report.json or on stderr),
2 bad command line, 3 refused by the diversity gate.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from monai.deploy.core import Application
from operators import (
    EXIT_FAILED,
    DicomWriterOperator,
    DiversityGateOperator,
    GeneratorOperator,
    ReportOperator,
    RequestOperator,
)

from monai_msgsagan.synthesis import check_output_dir

DEFAULT_CONFIG = Path(__file__).resolve().with_name("app.yaml")


class XraySynthesisApp(Application):
    """request -> generate -> diversity gate -> DICOM writer -> report, run once per invocation."""

    def __init__(self, *args, **kwargs) -> None:
        self.exit_code = EXIT_FAILED  # until the report operator sets it
        super().__init__(*args, **kwargs)

    def set_exit_code(self, code: int) -> None:
        self.exit_code = code

    def compose(self) -> None:
        context = Application.init_app_context(self.argv)
        output_path = check_output_dir(context.output_path)
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
        report_op = ReportOperator(self, output_path=output_path, on_exit_code=self.set_exit_code, name="report")
        self.add_flow(request_op, generator_op, {("state", "state")})
        self.add_flow(generator_op, gate_op, {("state", "state")})
        self.add_flow(gate_op, writer_op, {("state", "state")})
        self.add_flow(writer_op, report_op, {("state", "state")})


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
