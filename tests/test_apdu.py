"""APDU encoding, status words as typed errors, and the READ BINARY logic against the simulated chip (in process)."""
import pytest
from hypothesis import given, settings, strategies as st

from drivers.emrtd import access, apdu
from drivers.emrtd.apdu import Command, Response, check
from drivers.emrtd.bac import BacKey
from drivers.emrtd.reader import READ_AHEAD, ChipSession, FileTruncated, read_document
from simulators.chip.applet import ChipProfile, EmrtdApplet
from icao9303 import lds
from tests.chip_helpers import KEY, synthetic_files

H = bytes.fromhex


@pytest.mark.parametrize("cmd, raw", [
    (Command(0x00, 0xA4, 0x02, 0x0C, H("011E")), "00A4020C02011E"),          # case 3 short
    (Command(0x00, 0x84, 0, 0, le=8), "0084000008"),                          # case 2 short
    (Command(0x00, 0xB0, 0, 0, le=256), "00B0000000"),                        # Le 256 is 00
    (Command(0x0C, 0xB0, 0, 0, H("970100"), le=256), "0CB0000003970100" "00"),  # case 4 short
    (Command(0x00, 0xB0, 0, 0, le=4096), "00B00000001000"),                   # case 2 extended
    (Command(0x00, 0xB0, 0, 0, le=65536), "00B00000000000"),                  # Le 65536 is 0000
    (Command(0x00, 0x70, 0, 0), "00700000"),                                  # case 1
])
def test_command_encoding_round_trips(cmd, raw):
    assert cmd.encode() == H(raw)
    assert Command.decode(H(raw)) == cmd


def test_extended_case_4():
    cmd = Command(0x0C, 0xB1, 0, 0, bytes(300), le=1000)
    raw = cmd.encode()
    assert raw[4:7] == H("00012C") and raw[-2:] == H("03E8")
    assert Command.decode(raw) == cmd


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=400), st.one_of(st.none(), st.integers(1, 65536)))
def test_any_command_round_trips(ins, p1, data, le):
    cmd = Command(0x00, ins, p1, 0, data, le)
    assert Command.decode(cmd.encode()) == cmd


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_decoding_arbitrary_bytes_gives_a_command_or_a_typed_error(raw):
    try:
        Command.decode(raw)
        Response.decode(raw)
    except apdu.MalformedApdu:
        pass


@pytest.mark.parametrize("sw, err", [
    (0x6700, apdu.WrongLength), (0x6C10, apdu.WrongLe), (0x6982, apdu.SecurityNotSatisfied),
    (0x6988, apdu.SmObjectsIncorrect), (0x6987, apdu.SmObjectsIncorrect), (0x6300, apdu.AuthenticationFailed),
    (0x63C2, apdu.AuthenticationFailed), (0x6A82, apdu.FileNotFound), (0x6B00, apdu.OffsetBeyondFile),
    (0x6F00, apdu.StatusError),
])
def test_status_words_raise_typed_errors(sw, err):
    with pytest.raises(err) as info:
        check(Response(b"", sw), "TEST")
    assert type(info.value) is err and info.value.sw == sw and f"{sw:04X}" in str(info.value)


def test_wrong_le_carries_the_exact_length():
    with pytest.raises(apdu.WrongLe) as info:
        check(Response(b"", 0x6C16), "READ BINARY")
    assert info.value.exact == 0x16


def test_end_of_file_warning_keeps_its_data():
    assert check(Response(b"abc", 0x6282), "READ BINARY").data == b"abc"


class AppletTransport:
    def __init__(self, applet):
        self.applet = applet
        self.sent: list[bytes] = []

    def transmit(self, raw: bytes) -> bytes:
        self.sent.append(raw)
        return self.applet.process(raw)


def _read(profile=ChipProfile(), chunk=231, files=None):
    files = files or synthetic_files()
    link = AppletTransport(EmrtdApplet(files, KEY, profile))
    return files, read_document(link, KEY, chunk=chunk), link


@pytest.mark.parametrize("chunk", [231, 4096, 65536])
def test_full_read_short_and_extended(chunk):
    files, result, link = _read(chunk=chunk)
    assert result.files == files and result.access_control == "BAC"
    assert list(result.timings_s) == ["select", "BAC", "EF.COM", "DG1", "DG2", "EF.SOD"]
    assert any(len(raw) > 5 and raw[4] == 0 for raw in link.sent) == (chunk > 231)


def test_offsets_beyond_32k_use_odd_ins():
    files, result, link = _read(files=synthetic_files(dg2_size=60_000))
    assert result.files["DG2"] == files["DG2"]
    b1 = [raw for raw in link.sent if raw[1] == 0xB1]
    assert b1 and all(raw[2:4] == b"\x00\x00" for raw in b1)
    assert not any(raw[1] == 0xB0 and (raw[2] << 8 | raw[3]) > 0x7FFF for raw in link.sent)


def test_chip_demanding_exact_le_gets_it():
    files, result, _ = _read(ChipProfile(exact_le=True))
    assert result.files == files


def test_chip_with_small_buffer_shrinks_the_chunk():
    files, result, _ = _read(ChipProfile(max_response=100))
    assert result.files == files


def test_chip_without_extended_length_drops_session_and_reader_recovers():
    files, result, link = _read(ChipProfile(extended_length=False), chunk=4096)
    assert result.files == files
    assert sum(raw[1] == 0x82 for raw in link.sent) == 2  # authenticated again after the chip closed SM


def test_file_shorter_than_its_header_is_reported():
    files = synthetic_files()
    files["EF.SOD"] = files["EF.SOD"][:-100]
    with pytest.raises(FileTruncated, match="EF.SOD"):
        _read(files=files)


def test_plain_data_group_read_is_refused():
    session = ChipSession(AppletTransport(EmrtdApplet(synthetic_files(), KEY)))
    session.select_application()
    with pytest.raises(apdu.SecurityNotSatisfied):
        session.read_file("DG1")


def test_wrong_document_keys_give_authentication_failed():
    link = AppletTransport(EmrtdApplet(synthetic_files(), KEY))
    with pytest.raises(apdu.AuthenticationFailed):
        read_document(link, BacKey("L898902C", "690807", "940623"))


def test_eac_data_groups_are_not_read_under_bac():
    files = synthetic_files()
    files["EF.COM"] = lds.build_com([1, 2, 3])
    files["DG3"] = H("630100")
    _, result, _ = _read(files=files)
    assert "DG3" not in result.files
    session = ChipSession(AppletTransport(EmrtdApplet(files, KEY)))
    session.select_application()
    session.authenticate(access.for_document(KEY))
    with pytest.raises(apdu.SecurityNotSatisfied):
        session.read_file("DG3")


class QueuedTransport:
    """A transport with `submit`, like PC/SC's: commands queue up and are answered in order."""

    def __init__(self, applet):
        self.applet = applet
        self.queue: list[list] = []
        self.most_in_flight = 0

    def submit(self, raw: bytes):
        slot = [raw, None]
        self.queue.append(slot)
        self.most_in_flight = max(self.most_in_flight, len(self.queue))

        def answer():
            while slot[1] is None:
                head = self.queue.pop(0)
                head[1] = self.applet.process(head[0])
            return slot[1]
        return answer

    def transmit(self, raw: bytes) -> bytes:
        return self.submit(raw)()


@pytest.mark.parametrize("profile", [ChipProfile(), ChipProfile(exact_le=True), ChipProfile(max_response=100)])
def test_read_ahead_keeps_commands_in_flight_and_reads_the_same(profile):
    files = synthetic_files(dg2_size=40_000)
    for depth in (1, READ_AHEAD, 4):
        link = QueuedTransport(EmrtdApplet(files, KEY, profile))
        assert read_document(link, KEY, read_ahead=depth).files == files
        assert link.most_in_flight == depth and not link.queue
