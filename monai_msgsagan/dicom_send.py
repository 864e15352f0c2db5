"""Sending DICOM files to a PACS: DIMSE C-STORE (pynetdicom) and DICOMweb STOW-RS, per instance, bounded retries.

This is what a hospital site without a MONAI Deploy Informatics Gateway does with an application's output: push
the written series to a DICOM node (AE title, host, port) and/or a STOW-RS endpoint. Neither function ever
touches the files; each returns one :class:`InstanceResult` per file saying whether the destination acknowledged
it, after how many attempts, and why not.

Retries are bounded and only for failures that may pass: no association (connection refused, timed out,
rejected transiently), a connection lost mid-association, HTTP 5xx or no HTTP answer. A destination that answers
and refuses (a permanent association rejection, no acceptable presentation context, a DIMSE failure status, a
STOW-RS FailedSOPSequence entry or an HTTP 4xx) has the final word.

"Sent" means acknowledged: a success (or warning) status or a STOW-RS ReferencedSOPSequence entry. A PACS may
acknowledge an instance and still not keep it (Orthanc 1.10 answers success for instances its Lua
``ReceivedInstanceFilter`` discards); DICOM Storage Commitment is the way to ask it to take responsibility.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pydicom
from monai.utils import optional_import

pynetdicom, _has_pynetdicom = optional_import("pynetdicom")
_STORAGE_STATUS, _ = optional_import("pynetdicom.status", name="STORAGE_SERVICE_CLASS_STATUS")

__all__ = ["DicomNode", "InstanceResult", "check_retry_settings", "send_c_store", "send_stow_rs"]

logger = logging.getLogger(__name__)

_AE_TITLE = re.compile(r"^[ -\[\]-~]{1,16}$")  # 1-16 printable ASCII characters, no backslash
_WARNING_STATUSES = {0xB000, 0xB006, 0xB007}  # stored, with coercion / elements discarded / not matching the SOP class


@dataclass(frozen=True)
class DicomNode:
    """A DICOM application entity to C-STORE to.

    Attributes:
        ae_title: its AE title (called AE title), 1-16 characters.
        host: host name or address.
        port: TCP port, in [1, 65535].
    """

    ae_title: str
    host: str
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.ae_title, str) or not _AE_TITLE.match(self.ae_title) or not self.ae_title.strip():
            raise ValueError(
                f"AE title must be 1-16 printable ASCII characters without backslash, got {self.ae_title!r}."
            )
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError(f"DICOM node host must be a non-empty string, got {self.host!r}.")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"DICOM node port must be an integer in [1, 65535], got {self.port!r}.")

    @classmethod
    def parse(cls, text: str) -> DicomNode:
        """``AE_TITLE@host:port`` (the notation of dcm4che's tools), for example ``ORTHANC@127.0.0.1:4242``."""
        match = re.fullmatch(r"(.{1,16})@(.+):(\d{1,5})", text.strip())
        if not match:
            raise ValueError(f"a DICOM node is written AE_TITLE@host:port, got {text[:80]!r}.")
        return cls(match.group(1), match.group(2), int(match.group(3)))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass
class InstanceResult:
    """What became of one file at one destination.

    Attributes:
        file: the file, as given.
        sop_instance_uid: its SOP Instance UID (None when the file could not be read).
        sent: True when the destination acknowledged it (DIMSE success or warning status; STOW-RS referenced it).
        attempts: how many times it was offered (0: never, for example an unreadable file).
        reason: why it was not sent, or the warning it was stored with; None when stored cleanly.
        status: the destination's answer: the DIMSE status as ``0xNNNN``, or the HTTP status of STOW-RS (plus the
            failure reason code of its FailedSOPSequence entry); None when there was no answer.
    """

    file: str
    sop_instance_uid: str | None
    sent: bool = False
    attempts: int = 0
    reason: str | None = "not sent"
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_headers(files: Sequence[str | Path]) -> tuple[list[InstanceResult], dict[int, pydicom.Dataset]]:
    """A result per file, and the header of every readable one (by index); unreadable files fail at once."""
    results, headers = [], {}
    for i, path in enumerate(files):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            uid = str(ds.SOPInstanceUID)
            _ = (ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)  # both are needed to send it
        except Exception as e:  # pydicom raises InvalidDicomError, OSError, AttributeError, ...
            results.append(InstanceResult(str(path), None, reason=f"{path}: not a readable DICOM file ({e})."))
            continue
        results.append(InstanceResult(str(path), uid))
        headers[i] = ds
    return results, headers


def check_retry_settings(attempts: int, retry_delay_s: float, timeout_s: float) -> None:
    """The retry settings of :func:`send_c_store` and :func:`send_stow_rs`; ``ValueError`` naming a bad one."""
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
        raise ValueError(f"attempts must be an integer in [1, 10], got {attempts!r}.")
    if not 0 <= retry_delay_s <= 600:
        raise ValueError(f"retry_delay_s must be in [0, 600], got {retry_delay_s!r}.")
    if not 0 < timeout_s <= 3600:
        raise ValueError(f"timeout_s must be in (0, 3600], got {timeout_s!r}.")


def _attempts(pending: list[int], attempts: int, retry_delay_s: float) -> Iterator[int]:
    """Attempt numbers 1, 2, ... ``attempts`` while ``pending`` (emptied by the caller) holds files, waiting between."""
    for attempt in range(1, attempts + 1):
        if not pending:
            return
        if attempt > 1:
            time.sleep(retry_delay_s)
        yield attempt


def _no_association(assoc: Any) -> tuple[str, bool]:
    """Why no association was established, and whether that is the peer's final word (then nothing is retried).

    Final: an A-ASSOCIATE-RJ with result "rejected (permanent)" (for example an unknown calling AE title), or an
    association that the peer accepted with none of the proposed presentation contexts. Anything else (no TCP
    connection, a transient rejection, a timeout) may pass.
    """
    if assoc.is_rejected:
        primitive = getattr(assoc.acceptor, "primitive", None)
        permanent = getattr(primitive, "result", None) == 0x01
        detail = "" if primitive is None else f" ({primitive.result_str}: {primitive.reason_str})"
        return f"rejected the association{detail}", permanent
    if assoc.rejected_contexts and not assoc.accepted_contexts:
        refused = "; ".join(
            f"{cx.abstract_syntax.name} in {', '.join(ts.name for ts in cx.transfer_syntax)}"
            for cx in assoc.rejected_contexts
        )
        return f"accepted none of the presentation contexts ({refused})", True
    return "no association (connection refused, unreachable or timed out)", False


def _disable_nagle(assoc: Any) -> None:
    """Set TCP_NODELAY on the association's socket (pynetdicom leaves Nagle's algorithm on): small PDUs held back
    by Nagle's algorithm wait for the peer's delayed ACK (40 ms on Linux)."""
    try:
        assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError) as e:  # a pynetdicom without these attributes, or a non-TCP socket: only slower
        logger.debug(f"could not set TCP_NODELAY on the association socket: {e}")


def send_c_store(
    files: Sequence[str | Path],
    node: DicomNode,
    calling_ae_title: str = "MSGSAGAN",
    attempts: int = 3,
    retry_delay_s: float = 2.0,
    timeout_s: float = 30.0,
) -> list[InstanceResult]:
    """C-STORE every file to ``node``, one association per attempt, retrying what may pass.

    Args:
        files: DICOM Part 10 files.
        node: the destination (called AE title, host, port).
        calling_ae_title: our AE title (the PACS may accept only known ones).
        attempts: offers per instance at most, in [1, 10]; only failures without the destination's verdict are
            retried (no association, transient rejection, connection lost, no response).
        retry_delay_s: wait between attempts.
        timeout_s: ACSE, DIMSE and network timeout.

    Returns:
        one result per file, in order.

    Raises:
        RuntimeError: pynetdicom is not installed.
        ValueError: bad settings.
    """
    if not _has_pynetdicom:
        raise RuntimeError("sending by C-STORE needs pynetdicom: pip install 'monai-msgsagan[deploy]'.")
    DicomNode(calling_ae_title, "calling", 1)  # validates the calling AE title the same way
    check_retry_settings(attempts, retry_delay_s, timeout_s)
    results, headers = _read_headers(files)
    pending = sorted(headers)
    for attempt in _attempts(pending, attempts, retry_delay_s):
        ae = pynetdicom.AE(ae_title=calling_ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = timeout_s
        contexts: dict[str, set[str]] = {}
        for i in pending:
            contexts.setdefault(str(headers[i].SOPClassUID), set()).add(str(headers[i].file_meta.TransferSyntaxUID))
        for sop_class, syntaxes in sorted(contexts.items()):
            ae.add_requested_context(sop_class, sorted(syntaxes | {pydicom.uid.ExplicitVRLittleEndian}))
        assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
        if not assoc.is_established:
            why, final = _no_association(assoc)
            for i in pending:
                results[i].attempts, results[i].reason, results[i].status = attempt, f"{node}: {why}.", None
            logger.warning(f"C-STORE to {node}, attempt {attempt}/{attempts}: {why}")
            if final:
                break
            continue
        _disable_nagle(assoc)
        try:
            for i in list(pending):
                result = results[i]
                result.attempts = attempt
                if not assoc.is_established:
                    result.reason = f"{node}: the association ended before this instance was sent."
                    continue
                try:
                    status = assoc.send_c_store(Path(files[i]))
                except (ValueError, RuntimeError) as e:
                    if not assoc.is_established:  # the connection dropped just now: retried
                        result.reason = f"{node}: the association ended ({e})."
                        continue
                    # no accepted presentation context for this SOP class / transfer syntax: the PACS's final word
                    result.reason, result.status = f"{node}: not sendable ({e}).", None
                    pending.remove(i)
                    continue
                if "Status" not in status:
                    result.reason = f"{node}: no response (connection lost or DIMSE timeout)."
                    continue
                code = int(status.Status)
                result.status = f"0x{code:04X}"
                pending.remove(i)
                if code == 0x0000:
                    result.sent, result.reason = True, None
                elif code in _WARNING_STATUSES:
                    result.sent, result.reason = True, f"{node}: stored with warning status 0x{code:04X}."
                else:
                    meaning = _STORAGE_STATUS.get(code, ("Failure", "unknown status"))
                    comment = f" ({status.ErrorComment})" if "ErrorComment" in status else ""
                    result.reason = f"{node}: refused with status 0x{code:04X}: {meaning[1]}{comment}."
        finally:
            if assoc.is_established:
                assoc.release()
    return results


def _multipart(files: Sequence[str | Path], pending: list[int]) -> tuple[bytes, str]:
    boundary = f"msgsagan-{uuid.uuid4().hex}"
    parts = []
    for i in pending:
        parts.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        parts.append(Path(files[i]).read_bytes())
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f'multipart/related; type="application/dicom"; boundary={boundary}'


def _stow_uids(body: bytes, tag: str) -> dict[str, str | None]:
    """SOP Instance UID -> failure reason code (or None) of the items of ``tag`` in a STOW-RS JSON response."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    data = data[0] if isinstance(data, list) and data else data
    out = {}
    for item in (data.get(tag) or {}).get("Value", []) if isinstance(data, dict) else []:
        uid = (item.get("00081155") or {}).get("Value", [None])[0]
        reason = (item.get("00081197") or {}).get("Value", [None])[0]
        if uid:
            out[str(uid)] = None if reason is None else f"0x{int(reason):04X}"
    return out


def send_stow_rs(
    files: Sequence[str | Path],
    url: str,
    attempts: int = 3,
    retry_delay_s: float = 2.0,
    timeout_s: float = 30.0,
    headers: dict[str, str] | None = None,
) -> list[InstanceResult]:
    """POST the files to a DICOMweb STOW-RS endpoint in one multipart request per attempt.

    Args:
        files: DICOM Part 10 files.
        url: the studies resource, for example ``http://pacs:8042/dicom-web/studies``.
        attempts, retry_delay_s, timeout_s: as for :func:`send_c_store`; HTTP 5xx and no answer are retried.
        headers: extra HTTP headers (for example ``Authorization``).

    Returns:
        one result per file, in order. An instance is sent when the response's ReferencedSOPSequence lists it (or,
        for an HTTP 200 without a body, when none failed).
    """
    if not re.match(r"^https?://", url):
        raise ValueError(f"STOW-RS URL must start with http:// or https://, got {url[:80]!r}.")
    check_retry_settings(attempts, retry_delay_s, timeout_s)
    results, dicom_headers = _read_headers(files)
    pending = sorted(dicom_headers)
    for attempt in _attempts(pending, attempts, retry_delay_s):
        body, content_type = _multipart(files, pending)
        http_headers = {"Content-Type": content_type, "Accept": "application/dicom+json", **(headers or {})}
        request = urllib.request.Request(url, data=body, method="POST", headers=http_headers)
        for i in pending:
            results[i].attempts = attempt
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                code, answer = response.status, response.read()
        except urllib.error.HTTPError as e:
            code, answer = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            for i in pending:
                results[i].reason, results[i].status = f"{url}: no answer ({reason}).", None
            logger.warning(f"STOW-RS to {url}, attempt {attempt}/{attempts}: no answer ({reason})")
            continue
        referenced, failed = _stow_uids(answer, "00081199"), _stow_uids(answer, "00081198")
        retry = code >= 500
        for i in list(pending):
            result, uid = results[i], results[i].sop_instance_uid
            result.status = str(code)
            if uid in referenced or (code == 200 and not answer.strip() and not failed):
                result.sent, result.reason = True, None
            elif uid in failed:
                result.status = f"{code} {failed[uid] or ''}".strip()
                result.reason = f"{url}: refused (HTTP {code}, failure reason {failed[uid]})."
            else:
                result.reason = f"{url}: not acknowledged (HTTP {code})."
                if retry:
                    continue
            pending.remove(i)
        if retry:
            logger.warning(f"STOW-RS to {url}, attempt {attempt}/{attempts}: HTTP {code}")
    return results
