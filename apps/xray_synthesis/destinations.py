"""Where the app sends its series: the ``send`` section of app.yaml, overridden by environment variables.

MONAI Deploy apps take their paths from ``HOLOSCAN_*`` variables; a site points the same MAP at its PACS the same
way, without rebuilding it:

- ``XRAY_SYNTHESIS_DICOM_NODE=AE_TITLE@host:port`` replaces ``send.dicom_node`` (C-STORE);
- ``XRAY_SYNTHESIS_STOW_RS_URL=http://host:port/dicom-web/studies`` replaces ``send.stow_rs_url``;
- ``XRAY_SYNTHESIS_CALLING_AE_TITLE`` replaces ``send.calling_ae_title``.

A variable set to an empty string turns that destination off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from monai_msgsagan.dicom_send import DicomNode, check_retry_settings

ENV_DICOM_NODE = "XRAY_SYNTHESIS_DICOM_NODE"
ENV_STOW_RS_URL = "XRAY_SYNTHESIS_STOW_RS_URL"
ENV_CALLING_AE_TITLE = "XRAY_SYNTHESIS_CALLING_AE_TITLE"


@dataclass(frozen=True)
class SendSettings:
    """The resolved destinations (None: not sent there) and the retry policy."""

    dicom_node: DicomNode | None = None
    stow_rs_url: str | None = None
    calling_ae_title: str = "MSGSAGAN"
    attempts: int = 3
    retry_delay_s: float = 2.0
    timeout_s: float = 30.0

    @property
    def enabled(self) -> bool:
        return self.dicom_node is not None or self.stow_rs_url is not None

    def describe(self) -> dict[str, Any]:
        """JSON-ready form for the report."""
        return {**asdict(self), "dicom_node": None if self.dicom_node is None else str(self.dicom_node)}


def send_settings(section: Mapping[str, Any] | None, environ: Mapping[str, str] = os.environ) -> SendSettings:
    """Resolve the ``send`` section of app.yaml (absent: nothing is sent) and the environment overrides.

    Raises:
        ValueError: a malformed node, URL or retry setting; the message names the setting.
    """
    section = dict(section or {})
    unknown = sorted(set(section) - {f.name for f in fields(SendSettings)})
    if unknown:
        raise ValueError(f"app.yaml: unknown setting send.{unknown[0]}.")
    node: Any = section.get("dicom_node")
    where = "app.yaml send.dicom_node"
    if ENV_DICOM_NODE in environ:
        node, where = environ[ENV_DICOM_NODE].strip() or None, ENV_DICOM_NODE
    try:
        if isinstance(node, str):
            node = DicomNode.parse(node)
        elif isinstance(node, Mapping):
            node = DicomNode(node.get("ae_title"), node.get("host"), node.get("port"))
        elif node is not None:
            raise ValueError(f"expected AE_TITLE@host:port or {{ae_title, host, port}}, got {node!r}.")
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from e
    url = section.get("stow_rs_url")
    if ENV_STOW_RS_URL in environ:
        url = environ[ENV_STOW_RS_URL].strip() or None
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise ValueError(f"STOW-RS URL (send.stow_rs_url or {ENV_STOW_RS_URL}) must be an http(s) URL, got {url!r}.")
    calling = environ.get(ENV_CALLING_AE_TITLE) or section.get("calling_ae_title") or "MSGSAGAN"
    try:
        DicomNode(calling, "calling", 1)
    except ValueError as e:
        raise ValueError(f"send.calling_ae_title: {e}") from e
    attempts = section.get("attempts", 3)
    delay, timeout = float(section.get("retry_delay_s", 2.0)), float(section.get("timeout_s", 30.0))
    try:
        check_retry_settings(attempts, delay, timeout)
    except ValueError as e:
        raise ValueError(f"app.yaml send.{e}") from e
    return SendSettings(node, url, calling, attempts, delay, timeout)
