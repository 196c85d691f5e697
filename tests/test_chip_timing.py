"""The chip simulator's contactless timing model (simulators.chip.timing)."""
import time

import pytest

from drivers.emrtd.reader import read_document
from simulators.chip.applet import EmrtdApplet
from simulators.chip.timing import ContactlessTiming, ModelledLink
from simulators.testpki import build_card_access
from tests.chip_helpers import KEY, exclusive_vpcd, inserted, synthetic_files


def _bac_read_s(timing: ContactlessTiming, files=None) -> float:
    link = ModelledLink(EmrtdApplet(files or synthetic_files(), KEY), timing)
    result = read_document(link, KEY)
    assert set(result.files) == {"EF.COM", "DG1", "DG2", "EF.SOD"}
    return link.elapsed_s


def test_realistic_bac_read_of_com_dg1_dg2_sod_takes_1_5_to_3_s_at_424_kbit():
    t = _bac_read_s(ContactlessTiming.realistic())
    assert 1.5 <= t <= 3.0, t


def test_slower_bit_rates_take_longer_and_zero_takes_nothing():
    times = [_bac_read_s(ContactlessTiming.realistic(rate)) for rate in (106, 212, 424, 848)]
    assert times == sorted(times, reverse=True)
    assert times[0] > 1.8 * times[2]
    assert _bac_read_s(ContactlessTiming.zero()) == 0.0
    with pytest.raises(ValueError):
        ContactlessTiming.realistic(300)


def test_chaining_costs_an_acknowledgement_per_block():
    t = ContactlessTiming.realistic(fsc=64, fsd=64)
    one = t.transfer_s(61, 64)               # fits one block (3 bytes of PCB + CRC)
    two = t.transfer_s(62, 64)               # two blocks: one more block header and an R(ACK)
    assert two - one == pytest.approx(t.frame_s(3) + 4 * 9 / 424_000 + t.frame_gap_s, rel=1e-6)  # + the extra data byte
    assert t.transfer_s(1000, 256) < t.transfer_s(1000, 64)


def test_public_key_operations_and_long_work_add_time():
    t = ContactlessTiming.realistic()
    plain = t.exchange_s(20, 20)
    ecdh = t.exchange_s(20, 20, ops=[("ec", 256)] * 2)
    assert ecdh - plain > 2 * t.ec_mul_s  # plus the waiting time extensions past FWT
    assert t.exchange_s(20, 20, ops=[("ec", 512)]) > t.exchange_s(20, 20, ops=[("ec", 256)]) * 3
    assert t.exchange_s(20, 20, ops=[("sign", 2048)]) > t.sign_s


def test_pace_reports_its_work_and_takes_about_half_a_second():
    files = dict(synthetic_files(dg2_size=2_000), **{"EF.CardAccess": build_card_access("ECDH-GM-AES-128/13")})
    applet = EmrtdApplet(files, KEY)
    pace = ModelledLink(applet, ContactlessTiming.realistic())
    assert read_document(pace, KEY).access_control == "PACE"
    bac = ModelledLink(EmrtdApplet(synthetic_files(dg2_size=2_000), KEY), ContactlessTiming.realistic())
    assert read_document(bac, KEY).access_control == "BAC"
    assert 0.3 < pace.elapsed_s - bac.elapsed_s < 1.2, (pace.elapsed_s, bac.elapsed_s)


def test_virtual_card_holds_its_answers_for_the_modelled_time(vpcd_ports):
    files = synthetic_files(dg2_size=6_000)
    timing = ContactlessTiming.realistic()
    with exclusive_vpcd(), inserted(EmrtdApplet(files, KEY)) as (card, reader):
        card.timing = timing
        with reader.connect() as chip:
            start = time.monotonic()
            result = read_document(chip, KEY)
            wall = time.monotonic() - start
    assert result.files == files
    assert card.modelled_s > 0.3
    assert wall >= card.modelled_s * 0.98, (wall, card.modelled_s)
