"""Every PACE mapping and cipher, and Chip Authentication with ECDH and DH, end to end through real
pcscd + vpcd, lean: one virtual card stays inserted for the whole module and each case swaps the
applet behind it (a new passport on the same reader without waiting for pcscd to see a card leave
and come)."""
import pytest

from drivers.emrtd.bac import BacKey
from drivers.emrtd.reader import read_document
from icao9303 import mrz as mrzmod
from simulators.chip.__main__ import load_aa, load_cam_key, load_document
from simulators.chip.applet import EmrtdApplet
from simulators.testpki import TestPki, clone_chip
from tests.chip_helpers import exclusive_vpcd, inserted

pytestmark = pytest.mark.services

LINES = ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"]
KEY = BacKey.from_mrz(mrzmod.parse(LINES))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def slot(vpcd_ports):
    """(card, reader): one card inserted for the module; `card.applet` is swapped per case."""
    with exclusive_vpcd(), inserted(EmrtdApplet({"EF.COM": b"\x60\x00"}, KEY)) as (card, reader):
        yield card, reader


def _swap(card, doc, directory):
    doc.write(directory, chip_secrets=True)
    files, lines = load_document(directory)
    card.applet = EmrtdApplet(files, BacKey.from_mrz(mrzmod.parse(lines)), aa=load_aa(directory, files),
                              cam_key=load_cam_key(directory), ca_key=load_cam_key(directory, "ca_key.pem"),
                              faults=card.faults)


PACE = ["ECDH-GM-AES-128/13", "ECDH-GM-AES-192/15", "ECDH-GM-AES-256/17", "ECDH-GM-3DES/9",
        "ECDH-IM-AES-128/12", "ECDH-IM-3DES/13", "ECDH-IM-AES-256/16", "ECDH-CAM-AES-128/13", "ECDH-CAM-AES-256/16",
        "DH-GM-AES-128/0", "DH-GM-3DES/1", "DH-IM-AES-128/2", "DH-IM-AES-192/0"]


@pytest.mark.parametrize("protocol", PACE)
def test_every_pace_mapping_and_cipher_through_pcscd(slot, pki, tmp_path, protocol):
    card, reader = slot
    doc = pki.personalise(LINES, pace=protocol)
    _swap(card, doc, tmp_path)
    with reader.connect() as chip:
        result = read_document(chip, KEY, names=["DG1"])
    assert result.access_control == "PACE" and result.fallback is None
    assert result.access["protocol"] == "PACE-" + protocol.split("/")[0]
    assert result.files["DG1"] == doc.files["DG1"] and result.files["EF.SOD"] == doc.files["EF.SOD"]
    if "CAM" in protocol:
        assert result.cam.passed, result.cam


@pytest.mark.parametrize("ca,cipher", [("ecdh-brainpoolP256r1", "3DES"), ("dh-2048", "AES-128"), ("dh-1024", "3DES")])
def test_chip_authentication_ecdh_and_dh_through_pcscd(slot, pki, tmp_path, ca, cipher):
    card, reader = slot
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13", data_groups=(1, 2, 14), ca=ca, ca_cipher=cipher)
    _swap(card, doc, tmp_path / "genuine")
    with reader.connect() as chip:
        result = read_document(chip, KEY, names=["DG1"])
    assert result.chip_auth.passed and cipher in result.chip_auth.method, result.chip_auth
    _swap(card, clone_chip(doc), tmp_path / "clone")
    with reader.connect() as chip:
        result = read_document(chip, KEY, names=["DG1"])
    assert result.chip_auth.status == "failed" and result.files["DG1"] == doc.files["DG1"]
