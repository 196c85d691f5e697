"""`egate passport read` through pcscd + vpcd: --can, --policy, and the report of the access method
(PACE mapping, curve, cipher, password, or BAC) and of AA, CA and PACE-CAM (passed / failed / not offered)."""
import json

import pytest

from drivers.emrtd.bac import BacKey
from gate import cli
from icao9303 import mrz as mrzmod
from simulators.chip.__main__ import load_aa, load_cam_key, load_document
from simulators.chip.applet import EmrtdApplet
from simulators.testpki import TestPki, clone_chip
from tests.chip_helpers import exclusive_vpcd, inserted

pytestmark = pytest.mark.services

LINES = ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"))


def _chip(doc, directory, can=None) -> EmrtdApplet:
    doc.write(directory, chip_secrets=True)
    files, lines = load_document(directory)
    return EmrtdApplet(files, BacKey.from_mrz(mrzmod.parse(lines)), can=can, aa=load_aa(directory, files),
                       cam_key=load_cam_key(directory), ca_key=load_cam_key(directory, "ca_key.pem"))


def _read(capsys, *args, json_out=True):
    code = cli.main(["passport", "read", "--reader", "Virtual PCD 00 00", *(["--json"] if json_out else []), *args])
    captured = capsys.readouterr()
    out = captured.out
    if not json_out:
        return code, out + captured.err
    return code, json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def test_can_policy_and_chip_authenticity_report(vpcd_ports, pki, tmp_path, capsys):
    doc = pki.personalise(LINES, pace="ECDH-CAM-AES-128/13", data_groups=(1, 2, 14, 15))
    trust = ["--csca", str(pki.trust_dir)]
    with exclusive_vpcd(), inserted(_chip(doc, tmp_path / "genuine", can="123456")):
        code, out = _read(capsys, "--can", "123456", "--mrz", *LINES, *trust)
        assert code == 0, out
        assert out["access"].items() >= {"method": "PACE", "mapping": "CAM", "domain": "brainpoolP256r1",
                                         "cipher": "AES-128", "password": "CAN"}.items(), out["access"]
        auth = out["chip_authenticity"]
        assert auth["pace_cam"]["status"] == "passed" and auth["active_auth"]["status"] == "passed"
        assert auth["chip_auth"]["status"] == "not_checked"

        code, out = _read(capsys, "--policy", "bac_only", "--mrz", *LINES, *trust)
        assert code == 0 and out["access"]["method"] == "BAC" and out["access"]["pace_offered"] is None
        auth = out["chip_authenticity"]
        assert (auth["active_auth"]["status"], auth["chip_auth"]["status"], auth["pace_cam"]["status"]) == \
            ("passed", "passed", "not_offered")

        code, text = _read(capsys, "--can", "123456", *trust, json_out=False)
        assert code == 0, text
        assert "access           PACE CAM brainpoolP256r1 AES-128 with the CAN" in text
        assert "PACE-CAM         PASSED" in text and "active auth      PASSED" in text

    with exclusive_vpcd(), inserted(_chip(clone_chip(doc), tmp_path / "clone")):
        code, out = _read(capsys, "--policy", "pace_only", "--mrz", *LINES, *trust)
        auth = out["chip_authenticity"]
        assert out["passed"] is True  # passive authentication passes a clone: its data are genuine
        assert (auth["pace_cam"]["status"], auth["chip_auth"]["status"], auth["active_auth"]["status"]) == \
            ("failed", "failed", "failed"), auth
