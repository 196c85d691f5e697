"""End to end through real pcscd + vpcd: the simulated chip is a virtual card, the reader talks PC/SC."""
import json
import threading

import pytest

from drivers.emrtd import apdu
from drivers.emrtd.bac import BacKey
from drivers.emrtd.pcsc import CardAbsent, CardMonitor, PcscReader, ReaderNotFound, list_readers
from drivers.emrtd.reader import ChipSession, read_document
from gate import cli
from drivers.emrtd.config import ChipReaderConfig
from icao9303.mrz import compose_td3, parse
from simulators.chip.__main__ import load_document
from simulators.chip.applet import EmrtdApplet
from simulators.testpki import EXPECTED_FAILURE, TestPki
from tests.chip_helpers import CARD_DEADLINE_S, KEY, exclusive_vpcd, inserted, synthetic_files

pytestmark = pytest.mark.services


@pytest.fixture(autouse=True)
def _one_test_run_on_vpcd_at_a_time():
    with exclusive_vpcd():
        yield


@pytest.mark.parametrize("chunk", [231, 65536])
def test_genuine_chip_reads_through_pcscd(vpcd_ports, chunk):
    files = synthetic_files()
    with inserted(EmrtdApplet(files, KEY)) as (card, reader), reader.connect() as chip:
        result = read_document(chip, KEY, chunk=chunk)
    assert result.files == files
    assert list(result.timings_s) == ["select", "BAC", "EF.COM", "DG1", "DG2", "EF.SOD"]
    assert result.apdus == card.apdus
    assert chip.atr == bytes.fromhex("3B80800101")


def test_wrong_mrz_is_an_authentication_error(vpcd_ports):
    with inserted(EmrtdApplet(synthetic_files(), KEY)) as (_, reader), reader.connect() as chip:
        with pytest.raises(apdu.AuthenticationFailed, match="6300"):
            read_document(chip, BacKey("L898902C", "690806", "940624"))


def test_plain_data_group_read_is_refused_by_the_chip(vpcd_ports):
    with inserted(EmrtdApplet(synthetic_files(), KEY)) as (_, reader), reader.connect() as chip:
        session = ChipSession(chip)
        session.select_application()
        with pytest.raises(apdu.SecurityNotSatisfied, match="6982"):
            session.read_file("DG1")


def test_reader_is_chosen_by_name(vpcd_ports):
    assert {"Virtual PCD 00 00", "Virtual PCD 00 01"} <= set(list_readers())
    assert PcscReader("PCD 00 01").reader == "Virtual PCD 00 01"
    configured = PcscReader.from_config(ChipReaderConfig(reader="Virtual PCD 00 00", apdu_timeout_s=0.5))
    assert (configured.reader, configured.apdu_timeout_s) == ("Virtual PCD 00 00", 0.5)
    status = configured.status()
    assert status.name == "chip_reader" and status.healthy and "Virtual PCD 00 00: listed" in status.detail
    with pytest.raises(ReaderNotFound, match="2 readers"):
        PcscReader("Virtual PCD").reader
    missing = PcscReader("ACS ACR1281")  # a reader missing at boot: the gate starts and waits for it
    with pytest.raises(ReaderNotFound, match="no reader"):
        missing.reader
    assert not missing.status().healthy and "no reader" in missing.status().detail


def test_empty_slot_times_out_instead_of_hanging(vpcd_ports):
    with inserted(EmrtdApplet(synthetic_files(), KEY), slot=0):
        with pytest.raises(CardAbsent, match="no card"):
            PcscReader("Virtual PCD 00 01").wait_for_card(0.3)


def test_monitor_reports_insertion_and_removal(vpcd_ports):
    events: list[bool] = []
    changed = threading.Condition()

    def on_change(present: bool):
        with changed:
            events.append(present)
            changed.notify_all()

    def wait_for(n):
        with changed:
            assert changed.wait_for(lambda: len(events) >= n, CARD_DEADLINE_S), events

    monitor = CardMonitor("Virtual PCD 00 00", on_change).start()
    try:
        wait_for(1)
        assert events == [False]
        with inserted(EmrtdApplet(synthetic_files(), KEY)) as (card, _):
            wait_for(2)
            card.faults.inject("unplug")
            wait_for(3)
            card.faults.clear("unplug")
            wait_for(4)
        wait_for(5)
    finally:
        monitor.stop()
    assert events == [False, True, False, True, False]


# ---- a personalised document (test PKI) read with `egate passport read`: chip + passive authentication

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def trust_dir(pki, tmp_path_factory):
    return pki.write_trust_dir(tmp_path_factory.mktemp("trust"))


def _document(pki, variant="genuine"):
    lines = compose_td3(issuer="UTO", surname="ERIKSSON", given_names="ANNA MARIA", document_number="L898902C",
                        nationality="UTO", birth_date="740812", sex="F", expiry_date="340415")
    doc = pki.personalise(lines, variant=variant)
    return doc, EmrtdApplet(doc.files, BacKey.from_mrz(parse(doc.mrz_lines)))


def _passport_read(capsys, *args):
    code = cli.main(["passport", "read", "--reader", "Virtual PCD 00 00", "--json", *args])
    lines = capsys.readouterr().out.splitlines()  # the simulator's log lines share stdout in-process
    return code, json.loads([line for line in lines if line.startswith("{")][-1])


def test_genuine_document_passes_and_out_dir_replays(vpcd_ports, pki, trust_dir, tmp_path, capsys):
    doc, applet = _document(pki)
    with inserted(applet):
        code, out = _passport_read(capsys, "--mrz", *doc.mrz_lines, "--csca", str(trust_dir), "--out", str(tmp_path))
    assert code == 0 and out["passed"] is True
    assert {c["name"]: c["status"] for c in out["passive_authentication"]["checks"]}["dg1_mrz"] == "passed"
    assert all(c["status"] == "passed" for c in out["passive_authentication"]["checks"])
    assert out["document"]["surname"] == "ERIKSSON" and out["access_control"] == "BAC"
    assert {f["name"]: f["bytes"] for f in out["files"]} == {n: len(d) for n, d in doc.files.items()}
    assert 15_000 <= len(doc.files["DG2"]) <= 30_000
    assert {"card", "select", "BAC", "EF.COM", "DG1", "DG2", "EF.SOD", "passive_authentication"} <= set(out["timings_ms"])
    assert (tmp_path / "DG2.bin").read_bytes() == doc.files["DG2"]
    assert (tmp_path / "SOD.bin").read_bytes() == doc.files["EF.SOD"]
    assert load_document(tmp_path) == (doc.files, list(doc.mrz_lines))


def test_master_list_without_crl_or_printed_mrz_passes_with_those_checks_reported_not_checked(
        vpcd_ports, pki, tmp_path, capsys):
    doc, applet = _document(pki)
    with inserted(applet):
        code, out = _passport_read(capsys, "--doc-number", "L898902C", "--birth-date", "740812",
                                   "--expiry-date", "340415", "--master-list", str(pki.write_master_list(tmp_path / "ml")))
    status = {c["name"]: c["status"] for c in out["passive_authentication"]["checks"]}
    assert status.pop("revocation") == "not_checked" and status.pop("dg1_mrz") == "not_checked"
    assert set(status.values()) == {"passed"} and status["csca_chain"] == "passed"
    # A master list carries no CRL and no MRZ was printed: those checks cannot be made, so
    # the tool's policy does not require them, and says so check by check.
    assert code == 0 and out["passed"] is True


@pytest.mark.parametrize("variant", sorted(EXPECTED_FAILURE))
def test_every_forged_variant_fails_with_its_own_reason(vpcd_ports, pki, trust_dir, capsys, variant):
    doc, applet = _document(pki, variant)
    with inserted(applet):
        code, out = _passport_read(capsys, "--mrz", *doc.mrz_lines, "--csca", str(trust_dir))
    assert code == 1 and out["passed"] is False
    failed = {c["name"] for c in out["passive_authentication"]["checks"] if c["status"] == "failed"}
    assert EXPECTED_FAILURE[variant] in failed, failed


def test_wrong_mrz_gives_a_clear_authentication_error(vpcd_ports, pki, trust_dir, capsys):
    doc, applet = _document(pki)
    with inserted(applet):
        code, out = _passport_read(capsys, "--doc-number", "L898902C", "--birth-date", "740813",
                                   "--expiry-date", "340415", "--csca", str(trust_dir))
    assert code == 1
    assert out["error"]["type"] == "AuthenticationFailed" and "wrong document keys" in out["error"]["message"]


def test_empty_reader_is_an_error_within_the_wait(vpcd_ports, capsys):
    code, out = _passport_read(capsys, "--doc-number", "L898902C", "--birth-date", "740812",
                               "--expiry-date", "340415", "--wait", "0.3")
    assert code == 1 and out["error"]["type"] == "CardAbsent"
