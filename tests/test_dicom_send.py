"""monai_msgsagan.dicom_send without a PACS: nothing listening, unreadable files, bad settings.

Sending to a real PACS (Orthanc) is tested in test_pacs.py.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import torch
from output import write_series_atomically  # the Deploy app's writer (see conftest.py)

from monai_msgsagan.dicom_send import DicomNode, send_c_store, send_stow_rs


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: connections to it are refused


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    paths = write_series_atomically(torch.zeros(2, 1, 8, 8), tmp_path, "m", "1")
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not DICOM")
    return [*paths, junk]


def test_nobody_listening_is_retried_a_bounded_number_of_times(files: list[Path]) -> None:
    node = DicomNode("PACS", "127.0.0.1", _closed_port())
    start = time.perf_counter()
    results = send_c_store(files, node, attempts=3, retry_delay_s=0.2, timeout_s=5)
    assert time.perf_counter() - start >= 0.4  # two waits between three attempts
    assert [r.file for r in results] == [str(f) for f in files]
    for result in results[:2]:
        assert not result.sent and result.attempts == 3 and result.status is None and result.sop_instance_uid
        assert result.reason == f"{node}: no association (connection refused, unreachable or timed out)."
    assert results[2].attempts == 0 and results[2].sop_instance_uid is None
    assert "junk.dcm: not a readable DICOM file" in results[2].reason
    stow = send_stow_rs(files, f"http://127.0.0.1:{_closed_port()}/dicom-web/studies", attempts=2, retry_delay_s=0)
    assert [(r.sent, r.attempts) for r in stow] == [(False, 2), (False, 2), (False, 0)]
    assert "no answer" in stow[0].reason


def test_bad_settings_are_refused(files: list[Path]) -> None:
    assert DicomNode.parse(" ORTHANC@localhost:4242 ") == DicomNode("ORTHANC", "localhost", 4242)
    for text in ["ORTHANC@localhost", "@host:1", "A" * 17 + "@h:1", "A@h:0", "A\\B@h:1"]:
        with pytest.raises(ValueError):
            DicomNode.parse(text)
    node = DicomNode("PACS", "127.0.0.1", 104)
    with pytest.raises(ValueError, match="attempts must be an integer in"):
        send_c_store(files, node, attempts=0)
    with pytest.raises(ValueError, match="AE title"):
        send_c_store(files, node, calling_ae_title="")
    with pytest.raises(ValueError, match="must start with http"):
        send_stow_rs(files, "file:///etc/passwd")
