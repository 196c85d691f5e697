"""End to end through real pcscd + vpcd: the simulated chip is a virtual card, the reader talks PC/SC."""
import threading

import pytest

from drivers.emrtd import apdu
from drivers.emrtd.bac import BacKey
from drivers.emrtd.pcsc import CardAbsent, CardMonitor, PcscReader, ReaderNotFound, list_readers
from drivers.emrtd.reader import ChipSession, read_document
from simulators.chip.applet import EmrtdApplet
from tests.chip_helpers import CARD_DEADLINE_S, KEY, inserted, synthetic_files

pytestmark = pytest.mark.services


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
    assert PcscReader("PCD 00 01").name == "Virtual PCD 00 01"
    with pytest.raises(ReaderNotFound, match="2 readers"):
        PcscReader("Virtual PCD")
    with pytest.raises(ReaderNotFound, match="no reader"):
        PcscReader("ACS ACR1281")


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
