"""PACE and Active Authentication end to end through real pcscd + vpcd: the simulated chip (loaded from a
document directory as `python -m simulators.chip` does) is a virtual card, the reader talks PC/SC."""
import pytest

from drivers.emrtd.bac import BacKey
from drivers.emrtd.reader import read_document
from icao9303 import mrz as mrzmod, pa, trust
from icao9303 import card_security
from simulators.chip.__main__ import load_aa, load_cam_key, load_document
from simulators.chip.applet import ChipProfile, EmrtdApplet
from simulators.testpki import TestPki, clone_chip
from tests.chip_helpers import exclusive_vpcd, inserted

pytestmark = pytest.mark.services

LINES = ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"]
KEY = BacKey.from_mrz(mrzmod.parse(LINES))


@pytest.fixture(autouse=True)
def _one_test_run_on_vpcd_at_a_time():
    with exclusive_vpcd():
        yield


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"))


def _chip(doc, directory, profile=None) -> EmrtdApplet:
    """The applet as the standalone simulator builds it from `Document.write(dir, chip_secrets=True)`."""
    doc.write(directory, chip_secrets=True)
    files, lines = load_document(directory)
    return EmrtdApplet(files, BacKey.from_mrz(mrzmod.parse(lines)), profile, aa=load_aa(directory, files),
                       cam_key=load_cam_key(directory), ca_key=load_cam_key(directory, "ca_key.pem"))


def _passive(pki, result):
    groups = {int(k[2:]): v for k, v in result.files.items() if k.startswith("DG")}
    return pa.verify(result.files["EF.SOD"], groups, trust.TrustStore.from_dir(pki.trust_dir), mrz=mrzmod.parse(LINES))


@pytest.mark.parametrize("pace,aa", [("ECDH-GM-AES-128/13", "rsa-2048"), ("ECDH-GM-AES-256/12", "ecdsa-brainpoolP256r1"),
                                     ("ECDH-GM-3DES/14", "rsa-1024")])
def test_pace_read_pa_and_aa_through_pcscd(vpcd_ports, pki, tmp_path, pace, aa):
    doc = pki.personalise(LINES, pace=pace, aa=aa)
    with inserted(_chip(doc, tmp_path / "genuine")) as (card, reader), reader.connect() as chip:
        result = read_document(chip, KEY, names=["DG1", "DG2"])
    assert result.access_control == "PACE" and result.fallback is None
    assert result.access["protocol"] == "PACE-" + pace.split("/")[0]
    assert result.apdus == card.apdus
    assert {k: result.files[k] for k in ("DG1", "DG2", "EF.SOD", "DG15")} == {
        k: doc.files[k] for k in ("DG1", "DG2", "EF.SOD", "DG15")}
    assert list(result.timings_s)[:3] == ["EF.CardAccess", "PACE", "select"] and list(result.timings_s)[-1] == "AA"
    assert _passive(pki, result).passed
    assert result.active_auth.passed, result.active_auth.reason

    clone = clone_chip(doc)
    with inserted(_chip(clone, tmp_path / "clone")) as (_, reader), reader.connect() as chip:
        cloned = read_document(chip, KEY, names=["DG1", "DG2"])
    assert cloned.access_control == "PACE"
    assert _passive(pki, cloned).passed            # the copied data and signatures pass ...
    assert cloned.active_auth.status == "failed"   # ... the chip does not


def test_failed_pace_falls_back_to_bac_through_pcscd(vpcd_ports, pki, tmp_path):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13", aa="rsa-1024")
    with inserted(_chip(doc, tmp_path / "doc", ChipProfile(pace_fault="bad_token"))) as (_, reader), \
            reader.connect() as chip:
        result = read_document(chip, KEY, names=["DG1", "DG2"])
    assert result.access_control == "BAC" and "token" in result.fallback
    assert result.active_auth.passed and _passive(pki, result).passed


def test_pace_cam_through_pcscd(vpcd_ports, pki, tmp_path):
    doc = pki.personalise(LINES, pace=["ECDH-GM-AES-256/16", "ECDH-CAM-AES-256/16"])
    store = trust.TrustStore.from_dir(pki.trust_dir)
    with inserted(_chip(doc, tmp_path / "genuine")) as (_, reader), reader.connect() as chip:
        result = read_document(chip, KEY, names=["DG1", "DG2"])
    assert result.access["protocol"] == "PACE-ECDH-CAM-AES-256" and result.chip_auth.passed
    assert card_security.verify(result.files["EF.CardSecurity"], store).passed and _passive(pki, result).passed
    with inserted(_chip(clone_chip(doc), tmp_path / "clone")) as (_, reader), reader.connect() as chip:
        cloned = read_document(chip, KEY, names=["DG1", "DG2"])
    assert cloned.chip_auth.status == "failed" and _passive(pki, cloned).passed


def test_chip_authentication_and_aa_through_pcscd(vpcd_ports, pki, tmp_path):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13", aa="rsa-1024", data_groups=(1, 2, 14))
    with inserted(_chip(doc, tmp_path / "genuine")) as (_, reader), reader.connect() as chip:
        result = read_document(chip, KEY, names=["DG1", "DG2"])
    assert result.chip_auth.passed and result.active_auth.passed and _passive(pki, result).passed
    with inserted(_chip(clone_chip(doc), tmp_path / "clone")) as (_, reader), reader.connect() as chip:
        cloned = read_document(chip, KEY, names=["DG1", "DG2"])
    assert cloned.chip_auth.status == "failed" and cloned.active_auth.status == "failed"
    assert _passive(pki, cloned).passed
