"""The reader against chips that differ the way real ones do (each a simulator variant): no extended
length, reads past the end answered 6282 / 6B00 / 6700 / 6Cxx, lengths known only from the header,
SELECT by file id versus short-EF-id reads, EF.CardAccess only by SELECT or only by SFI, a chip that
takes seconds per APDU, and the field dropping mid-read with a retry within the passage's budget."""
import types

import pytest

from drivers.emrtd import reader as reader_mod
from drivers.emrtd.apdu import ChipTimeout
from drivers.emrtd.pcsc import PcscReader
from drivers.emrtd.reader import HEADER_PROBE, read_document, read_with_retry
from simulators.chip.applet import ChipProfile, EmrtdApplet
from simulators.chip.timing import ContactlessTiming, ModelledLink
from simulators.testpki import build_card_access
from tests.chip_helpers import KEY, AppletLink, exclusive_vpcd, inserted, synthetic_files

PACE = {"EF.CardAccess": build_card_access("ECDH-GM-AES-128/13")}


def _read(profile: ChipProfile, *, files=None, chunk=231, pace=False):
    files = files or synthetic_files(dg2_size=3_000)
    if pace:
        files = dict(files, **PACE)
    link = AppletLink(EmrtdApplet(files, KEY, profile))
    result = read_document(link, KEY, chunk=chunk)
    assert {n: result.files[n] for n in files if n != "EF.CardAccess"} == \
        {n: d for n, d in files.items() if n != "EF.CardAccess"}
    return result, link


def _reads(link):
    return [a for a in link.sent if len(a) > 3 and a[1] in (0xB0, 0xB1)]


@pytest.mark.parametrize("pace", [False, True], ids=["BAC", "PACE"])
def test_chip_without_extended_length(pace):
    result, link = _read(ChipProfile(extended_length=False), chunk=1024, pace=pace)
    assert result.access_control == ("PACE" if pace else "BAC")


@pytest.mark.parametrize("past_end", ["6282", "6B00", "6700"])
@pytest.mark.parametrize("pace", [False, True], ids=["BAC", "PACE"])
def test_read_past_the_end_answered_6282_6b00_or_6700(past_end, pace):
    """EF.COM and DG1 are shorter than one chunk: a chip that refuses the over-long first read makes
    the reader take the length from a HEADER_PROBE-byte read, without shrinking its chunk."""
    result, _ = _read(ChipProfile(past_end=past_end), pace=pace)
    baseline, _ = _read(ChipProfile(), pace=pace)
    # 6282: nothing extra; refused: a refusal and a header probe per file shorter than its first read
    # (EF.CardAccess, EF.COM, DG1), never a smaller chunk for the long ones
    assert result.apdus - baseline.apdus == (0 if past_end == "6282" else 2 * (3 if pace else 2))


def test_exact_le_chip_answers_6cxx():
    _read(ChipProfile(exact_le=True))


def test_length_only_from_the_header_reads_a_probe_then_exact_lengths():
    """A chip that refuses any READ BINARY crossing the end (6B00) of a file that fits one chunk: the
    reader reads the 4-byte header, then exactly the announced rest."""
    files = synthetic_files(dg2_size=1_000, sod_size=200)
    applet = EmrtdApplet(files, KEY, ChipProfile(past_end="6B00"))
    link = AppletLink(applet)
    from drivers.emrtd.reader import ChipSession
    from drivers.emrtd.bac import Bac
    session = ChipSession(link)
    session.open(Bac(KEY))
    assert session.read_file("EF.SOD") == files["EF.SOD"]
    assert session.chunk == session.sm.max_short_le  # not shrunk by the refusals
    assert HEADER_PROBE == 4


def test_chip_that_refuses_select_of_an_ef_is_read_by_short_ef_identifier():
    result, link = _read(ChipProfile(ef_select=False))
    sfi_reads = [a for a in _reads(link) if a[2] & 0x80]
    assert len(sfi_reads) >= 4  # EF.COM, DG1, DG2, EF.SOD: each opened by SFI after the first refusal


def test_chip_that_refuses_sfi_reads_is_read_by_select():
    _read(ChipProfile(sfi_reads=False))
    applet = EmrtdApplet(synthetic_files(), KEY, ChipProfile(sfi_reads=False, ef_select=False))
    with pytest.raises(Exception):
        read_document(AppletLink(applet), KEY)


@pytest.mark.parametrize("profile", [ChipProfile(card_access_select=False), ChipProfile(card_access_sfi=False),
                                     ChipProfile(card_access_select=False, past_end="6B00")],
                         ids=["only-by-SFI", "only-by-SELECT", "only-by-SFI-6B00"])
def test_card_access_only_by_select_or_only_by_sfi(profile):
    result, _ = _read(profile, pace=True)
    assert result.access_control == "PACE" and result.pace_offered


class _Clock:
    def __init__(self):
        self.t = 0.0

    def now(self) -> float:
        return self.t


class _ClockedLink(ModelledLink):
    """The timing model's time, as the reader's clock sees it (no sleeping)."""

    def __init__(self, applet, timing, clock):
        super().__init__(applet, timing)
        self.clock = clock

    def transmit(self, apdu):
        before = self.elapsed_s
        answer = super().transmit(apdu)
        self.clock.t += self.elapsed_s - before
        return answer


def test_chip_taking_seconds_per_apdu_is_read_when_the_budget_allows_and_stopped_when_not(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(reader_mod, "time", types.SimpleNamespace(monotonic=clock.now, perf_counter=clock.now))
    slow = ContactlessTiming.realistic(apdu_s=1.5)
    files = synthetic_files(dg2_size=2_000, sod_size=300)
    link = _ClockedLink(EmrtdApplet(files, KEY), slow, clock)
    result = read_document(link, KEY, deadline_s=120)
    assert result.files["DG2"] == files["DG2"] and clock.t > 20  # ~20 exchanges of 1.5 s
    clock.t = 0.0
    link = _ClockedLink(EmrtdApplet(files, KEY), slow, clock)
    with pytest.raises(ChipTimeout, match="longer than 10.0s"):
        read_document(link, KEY, deadline_s=10)
    assert clock.t < 10 + 2 * 1.6  # no command after the budget; at most the one in flight


def test_field_drop_mid_read_is_retried_within_the_budget(vpcd_ports):
    files = synthetic_files(dg2_size=12_000)
    applet = EmrtdApplet(files, KEY, ChipProfile(tear_at=("DG2", 6_000), tear_back_after_s=0.6))
    with exclusive_vpcd(), inserted(applet) as (card, reader):  # put back after 0.6 s, as a traveller would
        result = read_with_retry(reader, KEY, deadline_s=12)
        assert result.files == files and result.attempts >= 2
        # a card that never comes back: ChipTimeout at the budget, naming the last failure
        applet.profile.tear_at = ("DG2", 6_000)
        card.stop()
        with pytest.raises(ChipTimeout, match="within 1.5s"):
            read_with_retry(PcscReader(reader.reader), KEY, deadline_s=1.5)


def test_card_access_only_from_the_master_file_after_an_earlier_session():
    """PC/SC leaves the card as it was: a chip whose eMRTD application an earlier session selected
    answers SELECT 011C with 6A82 there; the reader selects the MF and finds EF.CardAccess."""
    files = dict(synthetic_files(dg2_size=2_000), **PACE)
    applet = EmrtdApplet(files, KEY)
    assert read_document(AppletLink(applet), KEY).access_control == "PACE"  # leaves the application selected
    assert applet.app_selected
    assert read_document(AppletLink(applet), KEY).access_control == "PACE"
    stubborn = EmrtdApplet(files, KEY, ChipProfile(mf_select=False))
    read_document(AppletLink(stubborn), KEY)
    result = read_document(AppletLink(stubborn), KEY)  # SELECT MF refused: no PACE found, BAC, said so
    assert result.access_control == "BAC" and result.access_note == "EF.CardAccess absent"
