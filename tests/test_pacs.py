"""The Deploy app in a hospital pipeline: it sends its series to a real PACS (Orthanc), which stores, finds and
renders it; a PACS that is down or refuses loses nothing.

Orthanc runs in a child process on loopback ports with its own storage (``orthanc_server.py``); the tests skip,
saying why, when Debian's ``orthanc`` is not installed (``scripts/setup.sh`` installs it when run as root).
"""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from bundle_utils import save_generator_artifact
from orthanc_server import CLIENT_AE_TITLE, ORTHANC_AE_TITLE, OrthancServer, find_orthanc
from output import write_series_atomically
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut
from test_deploy_app import CLASSES, NETWORK, _config, _request_dir, _tiny_generator, run_app

from monai_msgsagan.artifact import load_generator
from monai_msgsagan.dicom import SYNTHETIC_PATIENT_NAME
from monai_msgsagan.dicom_send import DicomNode, send_c_store
from monai_msgsagan.generation import generate

ORTHANC = find_orthanc()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        ORTHANC is None,
        reason="Orthanc is not installed (Debian: apt-get install orthanc orthanc-dicomweb; scripts/setup.sh "
        "does it when run as root)",
    ),
]
REQUEST = {"num_images": 4, "class": "covid", "seed": 3, "batch_size": 2}
SYNTHETIC_DATA = "0008,001c"  # Orthanc 1.10's dictionary predates SyntheticData: its tag, not its keyword


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny class-conditional generator of test_deploy_app, exported like ckpt_export with its record."""
    path = tmp_path_factory.mktemp("model") / "msgsagan" / "model.ts"
    return save_generator_artifact(_tiny_generator(), NETWORK, CLASSES, path)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> OrthancServer:
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"), ORTHANC).start()
    yield server
    server.stop()


def _send(
    tmp: Path, model: Path, request: dict, env: dict[str, str], config: Path | None = None
) -> tuple[int, dict, Path, str]:
    """Run the app with a destination; exit code, report, output folder and stderr."""
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / "out"
    result = run_app(_request_dir(tmp, request), out, model, config=config, extra_env=env)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    return result.returncode, report, out, result.stderr


@pytest.fixture(scope="module")
def first_run(orthanc: OrthancServer, model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One app run that sends by C-STORE to the module's Orthanc."""
    code, report, out, stderr = _send(
        tmp_path_factory.mktemp("first"), model, REQUEST, {"XRAY_SYNTHESIS_DICOM_NODE": orthanc.dicom_node}
    )
    assert code == 0, stderr[-3000:]
    files = [out / f for f in report["files"]]
    datasets = [pydicom.dcmread(f) for f in files]
    return {"report": report, "files": files, "datasets": datasets, "study_uid": datasets[0].StudyInstanceUID}


def _study_instances(orthanc: OrthancServer, study_uid: str) -> list[dict]:
    (study,) = orthanc.find_study(study_uid)
    return orthanc.get(f"/studies/{study}/instances")


def test_report_lists_every_instance_as_sent(first_run: dict, orthanc: OrthancServer) -> None:
    send = first_run["report"]["send"]
    assert send["status"] == "sent" and send["sent"] == 4 and send["not_sent"] == 0
    assert send["destinations"]["dicom_node"] == orthanc.dicom_node
    assert [i["sop_instance_uid"] for i in send["instances"]] == [d.SOPInstanceUID for d in first_run["datasets"]]
    for item in send["instances"]:
        assert item["dicom"] == {"sent": True, "attempts": 1, "reason": None, "status": "0x0000"}
    assert first_run["report"]["timing_s"]["send"] > 0


def test_orthanc_stores_every_instance_as_synthetic(first_run: dict, orthanc: OrthancServer) -> None:
    instances = _study_instances(orthanc, first_run["study_uid"])
    local = {d.SOPInstanceUID: d for d in first_run["datasets"]}
    assert sorted(i["MainDicomTags"]["SOPInstanceUID"] for i in instances) == sorted(local)
    for instance in instances:
        tags = orthanc.get(f"/instances/{instance['ID']}/tags")
        assert tags[SYNTHETIC_DATA]["Value"] == "YES"
        assert tags["0010,0010"]["Value"] == SYNTHETIC_PATIENT_NAME  # PatientName
        assert tags["0010,0020"]["Value"] == local[tags["0008,0018"]["Value"]].PatientID  # PatientID
        assert tags["0008,0060"]["Value"] == "OT" and tags["0008,0064"]["Value"] == "SYN"  # Modality, ConversionType
    patient = orthanc.get(f"/studies/{orthanc.find_study(first_run['study_uid'])[0]}/patient")
    assert patient["MainDicomTags"]["PatientID"].startswith("SYNTHETIC-")


def test_orthanc_renders_the_generated_pixels(first_run: dict, orthanc: OrthancServer, model: Path) -> None:
    """Orthanc decodes each stored instance itself; its 8-bit preview must correlate with the generator output."""
    expected = generate(load_generator(model).network, 4, 3, CLASSES.index("covid")).numpy()[:, 0]
    by_uid = {d.SOPInstanceUID: int(d.InstanceNumber) - 1 for d in first_run["datasets"]}
    for instance in _study_instances(orthanc, first_run["study_uid"]):
        png = orthanc.get_bytes(f"/instances/{instance['ID']}/preview")
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size == (32, 32), (image.format, image.size)
        rendered = np.asarray(image.convert("L"), dtype=np.float64)
        assert rendered.max() - rendered.min() > 100  # a real image, not a flat or blank one
        target = expected[by_uid[instance["MainDicomTags"]["SOPInstanceUID"]]]
        correlation = np.corrcoef(rendered.ravel(), target.ravel())[0, 1]
        assert correlation > 0.99, correlation
    # and the stored file gives back the generated values exactly (within the 16-bit step)
    stored = pydicom.dcmread(io.BytesIO(orthanc.get_bytes(f"/instances/{instance['ID']}/file")))
    np.testing.assert_allclose(apply_modality_lut(stored.pixel_array, stored), target, atol=1e-4)


def test_c_find_finds_the_study(first_run: dict, orthanc: OrthancServer) -> None:
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = first_run["study_uid"]
    query.PatientName = ""
    query.PatientID = ""
    query.NumberOfStudyRelatedInstances = ""
    ae = AE(ae_title=CLIENT_AE_TITLE)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title=ORTHANC_AE_TITLE)
    assert assoc.is_established
    try:
        responses = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    finally:
        assoc.release()
    matches = [identifier for status, identifier in responses if status.Status in (0xFF00, 0xFF01)]
    assert responses[-1][0].Status == 0x0000 and len(matches) == 1
    assert matches[0].StudyInstanceUID == first_run["study_uid"]
    assert str(matches[0].PatientName) == SYNTHETIC_PATIENT_NAME
    assert matches[0].PatientID == first_run["datasets"][0].PatientID
    assert int(matches[0].NumberOfStudyRelatedInstances) == 4


def test_second_run_makes_a_new_study(first_run: dict, orthanc: OrthancServer, model: Path, tmp_path: Path) -> None:
    first = orthanc.find_study(first_run["study_uid"])[0]
    before = {i["ID"]: orthanc.get_bytes(f"/instances/{i['ID']}/attachments/dicom/md5") for i in
              orthanc.get(f"/studies/{first}/instances")}  # fmt: skip
    code, report, out, stderr = _send(tmp_path, model, REQUEST, {"XRAY_SYNTHESIS_DICOM_NODE": orthanc.dicom_node})
    assert code == 0 and report["send"]["status"] == "sent", stderr[-3000:]
    second = pydicom.dcmread(out / report["files"][0])
    assert second.StudyInstanceUID != first_run["study_uid"] and second.PatientID != first_run["datasets"][0].PatientID
    assert len(_study_instances(orthanc, second.StudyInstanceUID)) == 4
    # the first study is untouched: same instances, same stored bytes
    after = {i["ID"]: orthanc.get_bytes(f"/instances/{i['ID']}/attachments/dicom/md5") for i in
             orthanc.get(f"/studies/{first}/instances")}  # fmt: skip
    assert after == before and len(after) == 4


def test_stow_rs_to_orthanc(orthanc: OrthancServer, model: Path, tmp_path: Path) -> None:
    if not orthanc.dicomweb:
        pytest.skip("Orthanc's DICOMweb plugin is not installed (Debian: apt-get install orthanc-dicomweb)")
    code, report, out, stderr = _send(tmp_path, model, REQUEST, {"XRAY_SYNTHESIS_STOW_RS_URL": orthanc.stow_rs_url})
    assert code == 0, stderr[-3000:]
    assert report["send"]["status"] == "sent" and report["send"]["destinations"]["dicom_node"] is None
    assert all(i["stow_rs"]["sent"] and i["stow_rs"]["status"] == "200" for i in report["send"]["instances"])
    study_uid = pydicom.dcmread(out / report["files"][0]).StudyInstanceUID
    assert len(_study_instances(orthanc, study_uid)) == 4


def _retry_config(tmp_path: Path) -> Path:
    send = {"dicom_node": None, "calling_ae_title": "MSGSAGAN", "stow_rs_url": None, "attempts": 2,
            "retry_delay_s": 0.1, "timeout_s": 10}  # fmt: skip
    return _config(tmp_path, send=send)


def _assert_every_file_kept(out: Path, report: dict) -> None:
    assert len(report["files"]) == 4 and report["status"] == "written"
    for name in report["files"]:
        assert pydicom.dcmread(out / name).SyntheticData == "YES"
    assert (out / f"report_{report['run_id']}.json").is_file()


def test_pacs_down_keeps_every_file_and_reports_it(model: Path, tmp_path: Path) -> None:
    pacs = OrthancServer(tmp_path / "orthanc", ORTHANC).start()
    pacs.stop()  # its ports are known, nothing listens on them any more
    env = {"XRAY_SYNTHESIS_DICOM_NODE": pacs.dicom_node, "XRAY_SYNTHESIS_STOW_RS_URL": pacs.stow_rs_url}
    code, report, out, stderr = _send(tmp_path / "run", model, REQUEST, env, _retry_config(tmp_path))
    assert code == 4, stderr[-3000:]
    _assert_every_file_kept(out, report)
    send = report["send"]
    assert send["status"] == "not sent" and send["sent"] == 0 and send["not_sent"] == 4
    for item in send["instances"]:
        assert not item["dicom"]["sent"] and item["dicom"]["attempts"] == 2 and item["dicom"]["status"] is None
        assert "no association" in item["dicom"]["reason"] and pacs.dicom_node in item["dicom"]["reason"]
        assert not item["stow_rs"]["sent"] and item["stow_rs"]["attempts"] == 2
        assert "no answer" in item["stow_rs"]["reason"]
    assert "send: not sent, 0/4" in stderr


def test_pacs_refusal_keeps_every_file_and_reports_it(orthanc: OrthancServer, model: Path, tmp_path: Path) -> None:
    """Orthanc accepts associations from MSGSAGAN on 127.0.0.1 only: another calling AE title is rejected."""
    env = {"XRAY_SYNTHESIS_DICOM_NODE": orthanc.dicom_node, "XRAY_SYNTHESIS_CALLING_AE_TITLE": "STRANGER"}
    code, report, out, stderr = _send(tmp_path / "run", model, REQUEST, env, _retry_config(tmp_path))
    assert code == 4, stderr[-3000:]
    _assert_every_file_kept(out, report)
    for item in report["send"]["instances"]:  # a permanent rejection is the PACS's final word: not retried
        assert not item["dicom"]["sent"] and item["dicom"]["attempts"] == 1
        assert (
            "rejected the association (Rejected Permanent: Calling AE title not recognised)" in item["dicom"]["reason"]
        )
    study_uid = pydicom.dcmread(out / report["files"][0]).StudyInstanceUID
    assert orthanc.find_study(study_uid) == []


def test_pacs_refusing_the_transfer_syntax_is_final(tmp_path: Path) -> None:
    """An Orthanc that accepts only JPEG baseline accepts none of our contexts: reported once, not retried."""
    pacs = OrthancServer(tmp_path / "orthanc", ORTHANC)
    config = json.loads(pacs.config.read_text())
    config["AcceptedTransferSyntaxes"] = ["1.2.840.10008.1.2.4.50"]
    pacs.config.write_text(json.dumps(config))
    pacs.start()
    try:
        paths = write_series_atomically(torch.zeros(2, 1, 16, 16), tmp_path, "m", "1")
        results = send_c_store(paths, DicomNode.parse(pacs.dicom_node), CLIENT_AE_TITLE, attempts=3, retry_delay_s=0)
        assert pacs.get("/instances") == []
    finally:
        pacs.stop()
    for result in results:
        assert not result.sent and result.attempts == 1 and result.status is None
        assert "accepted none of the presentation contexts (Secondary Capture Image Storage in " in result.reason
    assert all(p.is_file() for p in paths)


def test_pacs_crashing_mid_series_gets_the_rest_on_retry(tmp_path: Path) -> None:
    """Orthanc is SIGKILLed after a few instances and comes back: the retry sends exactly what was not acknowledged.

    (pynetdicom notices the dead peer only when the DIMSE timeout ends the wait for a response: timeout_s bounds it.)
    """
    pacs = OrthancServer(tmp_path / "orthanc", ORTHANC).start()
    try:
        paths = write_series_atomically(torch.rand(60, 1, 64, 64) * 2 - 1, tmp_path, "m", "1")
        node, results = DicomNode.parse(pacs.dicom_node), []
        sender = threading.Thread(
            target=lambda: results.extend(
                send_c_store(paths, node, CLIENT_AE_TITLE, attempts=3, retry_delay_s=2, timeout_s=5)
            )
        )
        sender.start()
        deadline = time.monotonic() + 60
        while pacs.get("/statistics")["CountInstances"] < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        pacs.kill()
        pacs.start()  # same ports, same storage, within the retry delay
        sender.join(timeout=120)
        assert not sender.is_alive()
        assert all(r.sent and r.status == "0x0000" for r in results), {r.reason for r in results}
        retried = [r.attempts for r in results].count(2)
        assert 0 < retried < 60 and [r.attempts for r in results].count(1) == 60 - retried
        assert pacs.get("/statistics")["CountInstances"] == 60
    finally:
        pacs.stop()
