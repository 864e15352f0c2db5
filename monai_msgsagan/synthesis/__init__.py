"""Serving the exported generator: request, generation, diversity gate and all-or-nothing outputs.

The MONAI Deploy application (``apps/xray_synthesis``) wires these steps into Holoscan operators.
"""

from monai_msgsagan.synthesis.gate import GateResult, diversity_gate
from monai_msgsagan.synthesis.generator import (
    ExportedGenerator,
    ModelError,
    find_model_file,
    generate,
    load_exported_generator,
)
from monai_msgsagan.synthesis.output import (
    REPORT_FILENAME,
    OutputError,
    check_output_dir,
    new_run_id,
    remove_stale_partials,
    write_report,
    write_series_atomically,
)
from monai_msgsagan.synthesis.request import (
    DEFAULT_MAX_REQUEST_BYTES,
    REQUEST_FILENAME,
    RequestError,
    SynthesisRequest,
    load_request,
    parse_request,
)

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "REPORT_FILENAME",
    "REQUEST_FILENAME",
    "ExportedGenerator",
    "GateResult",
    "ModelError",
    "OutputError",
    "RequestError",
    "SynthesisRequest",
    "check_output_dir",
    "diversity_gate",
    "find_model_file",
    "generate",
    "load_exported_generator",
    "load_request",
    "new_run_id",
    "parse_request",
    "remove_stale_partials",
    "write_report",
    "write_series_atomically",
]
