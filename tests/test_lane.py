"""The lane simulator: one lane up in the zero-latency profile, its config valid and pointing at live devices."""
from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import pytest
import serial

from drivers.emrtd.bac import BacKey
from drivers.emrtd.pcsc import PcscReader
from drivers.emrtd.reader import read_document
from drivers.mrz_reader import protocol as mrzp
from gate.config import load_gate
from icao9303 import mrz as mrzmod
from icao9303 import pa
from icao9303.trust import TrustStore
from simulators.lane import ENROLMENT_IMPRESSIONS, PEOPLE, Lane, LaneError
from tests.serial_helpers import wait_for

pytestmark = pytest.mark.services

CARD_DEADLINE_S = 10.0
ROOT = Path(__file__).resolve().parents[1]


def _lines(proc) -> queue.Queue:
    out: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [out.put(line) for line in proc.stdout], daemon=True).start()
    return out


# First in the module: the CLI's lane needs the vpcd slot lock the module's own lane holds later.
def test_cli_runs_a_lane_and_sends_travellers_through_its_control_socket(vpcd_ports, tmp_path):
    work = tmp_path / "cli"
    written = tmp_path / "old-gate.toml"
    written.write_text("# replaced: --force was given\n")
    egate = [sys.executable, "-m", "gate", "sim"]
    proc = subprocess.Popen(egate + ["lane", "--workdir", str(work), "--profile", "zero-latency", "--json",
                                     "--write-config", str(written), "--force"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = json.loads(_lines(proc).get(timeout=150))   # the lane may wait for the slot lock
        where = {row["device"]: row["where"] for row in ready["devices"]}
        assert where["door"] == str(work / "door.tty") and where["control"] == ready["control"]
        assert ready["config"] == str(written) and not (work / "gate.toml").exists()
        assert load_gate(ready["config"]).devices.camera.source == where["camera"]
        sent = subprocess.run(egate + ["traveller", "no_show", "--count", "2", "--patience", "0.05",
                                       "--workdir", str(work), "--json"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        summaries = [json.loads(line) for line in sent.stdout.splitlines()]
        assert [s["outcome"] for s in summaries] == ["no_show", "no_show"]
        assert [e["event"] for e in summaries[0]["timeline"]][:2] == ["arrived", "passport_presented"]
        nowhere = subprocess.run(egate + ["traveller", "genuine", "--workdir", str(tmp_path / "none")],
                                 cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert nowhere.returncode == 2 and "no lane running" in nowhere.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert not (work / "control.sock").exists()


@pytest.fixture(scope="module")
def lane(vpcd_ports, tmp_path_factory):
    with Lane(tmp_path_factory.mktemp("lane"), profile="zero-latency") as lane:
        yield lane


def test_config_validates_and_names_every_simulated_device(lane):
    cfg = load_gate(lane.config_path)
    d = cfg.devices
    assert d.door.port == lane.door.path == str(lane.workdir / "door.tty")
    assert d.mrz_reader.port == lane.mrz.path
    assert d.fingerprint.port == lane.fingerprint.path
    assert d.camera.source == lane.camera.url
    assert d.chip_reader.reader == "Virtual PCD 00 00"
    assert cfg.pki.csca_dir == cfg.pki.crl_dir == lane.pki.trust_dir
    assert cfg.storage.data_dir == lane.workdir / "gate-data"
    assert cfg.sync.central_url == ""  # the sync agent is not built yet: the lane configures none
    table = {row["device"]: row["where"] for row in lane.devices()}
    assert table["door"] == d.door.port and table["camera"] == d.camera.source
    assert table["chip_reader"] == d.chip_reader.reader and table["config"] == str(lane.config_path)


def test_serial_devices_answer_on_their_ptys(lane):
    cfg = load_gate(lane.config_path)
    # MRZ reader: ?VERSION answered on the pty.
    with serial.serial_for_url(cfg.devices.mrz_reader.port, timeout=0.05) as port:
        parser = mrzp.MrzReaderProtocol()
        port.write(mrzp.encode_message(mrzp.Query("VERSION")))
        got = []
        wait_for(lambda: got.extend(parser.feed(port.read(256))) or any(isinstance(m, mrzp.Version) for m in got),
                 5, what="MRZ reader version")
    # Door controller and fingerprint scanner: something arrives on the pty once we speak their protocol.
    from drivers.door.driver import DoorController
    from drivers.fingerprint.driver import FingerprintScanner
    door = DoorController(cfg.devices.door.port, watchdog_ms=cfg.devices.door.watchdog_ms)
    door.start()
    try:
        wait_for(lambda: door.state.entry is not None and door.state.beams is not None, 5, what="door STATUS")
        assert door.state.beams.count == cfg.devices.door.beams
    finally:
        door.stop()
    scanner = FingerprintScanner(cfg.devices.fingerprint.port).start()
    try:
        assert scanner.connect(timeout_s=5).width > 0
    finally:
        scanner.stop()


def test_camera_url_serves_frames_to_opencv(lane):
    lane.camera.set_scene("traveller", face=lane.face_index("devries"))
    cap = cv2.VideoCapture(load_gate(lane.config_path).devices.camera.source)
    try:
        ok, frame = wait_for(lambda: (lambda r: r if r[0] else None)(cap.read()), 10, what="a camera frame")
    finally:
        cap.release()
        lane.camera.set_scene("no_face")
    assert frame.shape == (480, 640, 3)


def test_presented_passport_is_a_card_in_pcscd_whose_chip_passes_passive_authentication(lane):
    trust = TrustStore.from_dir(lane.pki.trust_dir)
    reader = PcscReader(load_gate(lane.config_path).devices.chip_reader.reader)
    for key, variant, passes in (("lin", "genuine", True), ("devries", "genuine", True),
                                 ("chen", "tampered_dg1", False)):
        doc = lane.passport(key, variant)
        lane.present_passport(doc)
        reader.wait_for_card(CARD_DEADLINE_S)
        with reader.connect() as chip:
            result = read_document(chip, BacKey.from_mrz(mrzmod.parse(doc.mrz_lines)))
        assert result.files == doc.files
        dgs = {int(n[2:]): v for n, v in result.files.items() if n.startswith("DG")}
        verdict = pa.verify(result.files["EF.SOD"], dgs, trust, mrz=doc.mrz_lines)
        assert verdict.passed is passes, (key, variant, verdict.reasons)
        lane.take_passport()
        reader.wait_for_card(CARD_DEADLINE_S, present=False)
    assert lane.card is None and lane.mrz.document is None


def test_people_database(lane):
    assert {p.national for p in PEOPLE} == {True, False}
    assert any(p.child for p in PEOPLE)
    assert len({p.finger_id for p in PEOPLE}) == len({p.document_number for p in PEOPLE}) == len(PEOPLE)
    for p in PEOPLE:
        m = mrzmod.parse(p.mrz_lines())
        assert m.valid and m.nationality == p.nationality and p.traveller_id == f"{m.issuer}:{m.document_number}"
    assert lane.fingerprint.first_impression == ENROLMENT_IMPRESSIONS
    with pytest.raises(LaneError):
        lane.passport("lin", "photocopy")
    with pytest.raises(KeyError):
        lane.passport("nobody")
