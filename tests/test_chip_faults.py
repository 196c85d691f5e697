"""Faults: tearing mid-read, slow chip, corrupted MAC (through pcscd), and the chip's own SM checks (in process)."""
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from drivers.emrtd import apdu
from drivers.emrtd.apdu import ChipTimeout, Command, Response
from drivers.emrtd.bac import Bac
from drivers.emrtd.pcsc import CardAbsent, PcscReader
from drivers.emrtd.reader import read_document
from drivers.emrtd.sm import SmError
from simulators.chip.applet import ChipProfile, EmrtdApplet
from tests.chip_helpers import CARD_DEADLINE_S, KEY, exclusive_vpcd, inserted, synthetic_files


@pytest.fixture(autouse=True)
def _one_test_run_on_vpcd_at_a_time():
    with exclusive_vpcd():
        yield


def test_tearing_mid_read_is_reported_and_the_next_read_works(vpcd_ports):
    files = synthetic_files()
    applet = EmrtdApplet(files, KEY, ChipProfile(tear_at=("DG2", 12_000)))
    with inserted(applet) as (card, reader):
        with reader.connect() as chip, pytest.raises(CardAbsent):
            read_document(chip, KEY)
        reader.wait_for_card(CARD_DEADLINE_S, present=False)
        card.faults.clear("unplug")  # the traveller puts the passport back
        reader.wait_for_card(CARD_DEADLINE_S)
        with reader.connect() as chip:
            assert read_document(chip, KEY).files == files


def test_slow_chip_costs_one_timeout_not_a_hang(vpcd_ports):
    applet = EmrtdApplet(synthetic_files(), KEY)
    with inserted(applet) as (card, _):
        reader = PcscReader("Virtual PCD 00 00", apdu_timeout_s=0.3)
        with reader.connect() as chip:
            read_document(chip, KEY)  # healthy first
            card.faults.inject("slow", delay_s=1.5)
            start = time.monotonic()
            with pytest.raises(ChipTimeout, match="0.30s"):
                read_document(chip, KEY)
            assert time.monotonic() - start < 1.2  # well before the 1.5 s answer, with room for a loaded CI
            with pytest.raises(ChipTimeout, match="earlier exchange"):
                chip.transmit(bytes.fromhex("0084000008"))
        card.faults.clear("slow")
        # connecting waits for the abandoned exchange to release the card (its slow answer is due within 1.5 s)
        with PcscReader("Virtual PCD 00 00", apdu_timeout_s=3.0).connect() as chip:
            read_document(chip, KEY)


def test_slow_chip_within_the_timeout_still_reads(vpcd_ports):
    files = synthetic_files(dg2_size=2_000)
    with inserted(EmrtdApplet(files, KEY)) as (card, reader):
        card.faults.inject("slow", delay_s=0.01)
        with reader.connect() as chip:
            assert read_document(chip, KEY).files == files


def test_slow_chip_within_each_timeout_still_meets_the_read_deadline(vpcd_ports):
    with inserted(EmrtdApplet(synthetic_files(), KEY)) as (card, reader):
        card.faults.inject("slow", delay_s=0.05)
        start = time.monotonic()
        with reader.connect() as chip, pytest.raises(ChipTimeout, match="longer than 0.5s"):
            read_document(chip, KEY, deadline_s=0.5)
        assert time.monotonic() - start < 1.5


def test_corrupted_response_mac_is_detected(vpcd_ports):
    files = synthetic_files()
    with inserted(EmrtdApplet(files, KEY)) as (card, reader):
        card.faults.inject("corrupt_crc", count=1)
        with reader.connect() as chip, pytest.raises(SmError, match="MAC does not verify"):
            read_document(chip, KEY)
        with reader.connect() as chip:
            assert read_document(chip, KEY).files == files


# ---- the chip's side of secure messaging, in process


def _authenticated(applet):
    sm = Bac(KEY).establish(lambda cmd: Response.decode(applet.process(cmd.encode())))
    return sm


def test_chip_rejects_a_bad_command_mac_with_6988_and_closes_the_session():
    applet = EmrtdApplet(synthetic_files(), KEY)
    assert applet.process(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
    sm = _authenticated(applet)
    raw = bytearray(sm.protect(Command(0x00, 0xA4, 0x02, 0x0C, b"\x01\x01")).encode())
    raw[-2] ^= 0x40  # last MAC byte
    assert applet.process(bytes(raw)) == b"\x69\x88"
    sm.ssc += 1
    assert applet.process(sm.protect(Command(0x00, 0xA4, 0x02, 0x0C, b"\x01\x01")).encode()) == b"\x69\x87"


def test_chip_ends_the_session_on_a_plain_command():
    applet = EmrtdApplet(synthetic_files(), KEY)
    applet.process(bytes.fromhex("00A4040C07A0000002471001"))
    sm = _authenticated(applet)
    assert applet.process(bytes.fromhex("00A4020C020101")) == b"\x69\x82"
    with pytest.raises(apdu.SmObjectsIncorrect):
        sm.unprotect(Response.decode(applet.process(sm.protect(Command(0, 0xB0, 0, 0, le=4)).encode())), "READ")


def test_chip_needs_a_fresh_challenge_per_authentication():
    applet = EmrtdApplet(synthetic_files(), KEY)
    applet.process(bytes.fromhex("00A4040C07A0000002471001"))
    assert applet.process(bytes.fromhex("0082000028") + bytes(40) + b"\x28") == b"\x69\x85"


def test_tampered_commands_never_crash_the_chip():
    applet = EmrtdApplet(synthetic_files(), KEY)
    applet.process(bytes.fromhex("00A4040C07A0000002471001"))
    sm = _authenticated(applet)
    good = sm.protect(Command(0x00, 0xB0, 0, 0, le=4)).encode()
    for i in range(len(good)):
        for bit in (0x01, 0x80):
            raw = bytearray(good)
            raw[i] ^= bit
            assert len(applet.process(bytes(raw))) >= 2


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=80), max_size=6))
def test_arbitrary_commands_never_crash_the_chip(commands):
    applet = EmrtdApplet(synthetic_files(dg2_size=2_000), KEY)
    for raw in [bytes.fromhex("00A4040C07A0000002471001"), *commands]:
        answer = applet.process(raw)
        assert len(answer) >= 2
