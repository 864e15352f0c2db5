"""A real Orthanc PACS in a child process, for the tests and the benchmark: loopback, free ports, its own storage.

Debian's ``orthanc`` package (``scripts/setup.sh`` installs it when run as root) puts the server at
``/usr/sbin/Orthanc`` and the DICOMweb plugin at ``/usr/share/orthanc/plugins/libOrthancDicomWeb.so``
(package ``orthanc-dicomweb``). The package's own system service is never used: each :class:`OrthancServer` writes
its configuration into a folder of its own and starts its own process.

Orthanc 1.10 has no bind-address option, so it listens on all interfaces; what keeps it to the loopback is its
access control: HTTP requests from other hosts are refused (``RemoteAccessAllowed`` false), and DICOM
associations are accepted only from the AE title ``MSGSAGAN`` on host 127.0.0.1 (``DicomCheckModalityHost``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_AE_TITLE = "ORTHANC"
CLIENT_AE_TITLE = "MSGSAGAN"


def find_orthanc() -> str | None:
    """The Orthanc executable (on PATH or Debian's /usr/sbin/Orthanc), None when absent."""
    return shutil.which("Orthanc") or shutil.which("/usr/sbin/Orthanc")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OrthancServer:
    """One Orthanc process; ``start()`` waits until its REST API answers, ``stop()`` ends it."""

    def __init__(self, folder: Path, executable: str, dicomweb: bool = True, tcp_nodelay: bool = False) -> None:
        """``tcp_nodelay``: start Orthanc with ``TCP_NODELAY=1``, which makes its DCMTK disable Nagle's algorithm
        (Debian's build leaves it on: each C-STORE then waits about 40 ms for a delayed ACK)."""
        self.folder, self.executable = Path(folder), executable
        self.tcp_nodelay = tcp_nodelay
        self.folder.mkdir(parents=True, exist_ok=True)
        self.http_port, self.dicom_port = free_port(), free_port()
        self.dicomweb = dicomweb and DICOMWEB_PLUGIN.is_file()
        self.process: subprocess.Popen | None = None
        self.log = self.folder / "orthanc.log"
        config: dict[str, Any] = {  # Orthanc's defaults apart from these
            "Name": "msgsagan-test-pacs",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAet": ORTHANC_AE_TITLE,
            "DicomPort": self.dicom_port,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomCheckModalityHost": True,
            "DicomModalities": {"msgsagan": {"AET": CLIENT_AE_TITLE, "Host": "127.0.0.1", "Port": free_port()}},
            "SaveJobs": False,
            "ConcurrentJobs": 1,
            "HttpThreadsCount": 4,
            "DicomThreadsCount": 2,
            "Plugins": [str(DICOMWEB_PLUGIN)] if self.dicomweb else [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        }
        self.config = self.folder / "orthanc.json"
        self.config.write_text(json.dumps(config, indent=2))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def stow_rs_url(self) -> str:
        return f"{self.url}/dicom-web/studies"

    @property
    def dicom_node(self) -> str:
        """``AE_TITLE@host:port``, as the app's ``XRAY_SYNTHESIS_DICOM_NODE`` takes it."""
        return f"{ORTHANC_AE_TITLE}@127.0.0.1:{self.dicom_port}"

    def start(self, timeout_s: float = 60.0) -> OrthancServer:
        with open(self.log, "ab") as log:
            env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}
            if self.tcp_nodelay:
                env["TCP_NODELAY"] = "1"
            self.process = subprocess.Popen(
                [self.executable, "--verbose", str(self.config)], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}; log {self.log}:\n{self.tail()}")
            try:
                self.get("/system")
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer /system within {timeout_s} s; log {self.log}:\n{self.tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash or power loss would end it (``start()`` brings it back on the same ports and storage)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def get_bytes(self, path: str, timeout: float = 30.0) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return response.read()

    def get(self, path: str) -> Any:
        return json.loads(self.get_bytes(path))

    def post(self, path: str, data: Any) -> Any:
        request = urllib.request.Request(self.url + path, data=json.dumps(data).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def find_study(self, study_uid: str) -> list[str]:
        """Orthanc ids of the studies with this Study Instance UID."""
        return self.post("/tools/find", {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}})
