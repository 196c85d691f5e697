"""Secure messaging known-answer tests: ICAO 9303-11 Appendix D.4 worked example, plus the SSC and DO edge cases."""
import pytest
from hypothesis import given, settings, strategies as st

from drivers.emrtd import crypto
from drivers.emrtd.apdu import ChipError, Command, Response, SecurityNotSatisfied
from drivers.emrtd.sm import SecureMessaging, SmError, split_objects

H = bytes.fromhex
KS_ENC = H("979EC13B1CBFE9DCD01AB0FED307EAE5")
KS_MAC = H("F1CB1F1FB5ADF208806B89DC579DC1F8")
SSC = 0x887022120C06C226

# (plain command, protected command, protected response, plain response data) from Appendix D.4
EXCHANGES = [
    ("00A4020C02011E", "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800",
     "990290008E08FA855A5D4C50A8ED9000", ""),
    ("00B0000004", "0CB000000D9701048E08ED6705417E96BA5500",
     "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000", "60145F01"),
    ("00B0000412", "0CB000040D9701128E082EA28A70F3C7B53500",
     "871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000",
     "04303130365F36063034303030305C026175"),
]


def test_worked_example_exchanges():
    sm = SecureMessaging(KS_ENC, KS_MAC, SSC)
    for plain, protected, response, data in EXCHANGES:
        assert sm.protect(Command.decode(H(plain))).encode() == H(protected)
        assert sm.unprotect(Response.decode(H(response)), "test") == Response(H(data), 0x9000)
    assert sm.ssc == 0x887022120C06C22C


def test_intermediate_values_of_select():
    assert crypto.encrypt(KS_ENC, crypto.pad(H("011E"))) == H("6375432908C044F6")
    n = crypto.pad(H("887022120C06C227") + H("0CA4020C80000000") + H("8709016375432908C044F6"))
    assert n == H("887022120C06C2270CA4020C800000008709016375432908C044F68000000000")
    assert crypto.retail_mac(KS_MAC, n) == H("BF8B92D635FF24F8")


def test_tampered_response_mac_is_rejected():
    sm = SecureMessaging(KS_ENC, KS_MAC, SSC)
    sm.protect(Command.decode(H("00A4020C02011E")))
    with pytest.raises(SmError, match="MAC"):
        sm.unprotect(Response.decode(H("990290008E08FA855A5D4C50A8EC9000")), "SELECT")


def test_response_replayed_with_stale_ssc_is_rejected():
    sm = SecureMessaging(KS_ENC, KS_MAC, SSC)
    sm.protect(Command.decode(H("00A4020C02011E")))
    sm.unprotect(Response.decode(H(EXCHANGES[0][2])), "SELECT")
    sm.protect(Command.decode(H("00A4020C02011E")))
    with pytest.raises(SmError, match="MAC"):
        sm.unprotect(Response.decode(H(EXCHANGES[0][2])), "SELECT")


def test_plain_error_status_is_raised_typed():
    sm = SecureMessaging(KS_ENC, KS_MAC, SSC)
    sm.protect(Command(0, 0xB0, 0, 0, le=4))
    with pytest.raises(SecurityNotSatisfied):
        sm.unprotect(Response(b"", 0x6982), "READ BINARY")


def test_response_without_mac_is_rejected():
    sm = SecureMessaging(KS_ENC, KS_MAC, SSC)
    sm.protect(Command(0, 0xB0, 0, 0, le=4))
    with pytest.raises(SmError, match="8-byte MAC object 8E"):
        sm.unprotect(Response(H("99029000"), 0x9000), "READ BINARY")


@pytest.mark.parametrize("ssc, after", [(0x00000000000000FF, "0000000000000100"),
                                        (0xFFFFFFFFFFFFFFFF, "0000000000000000"),
                                        (0x0000000000000000, "0000000000000001")])
def test_ssc_keeps_leading_zero_bytes_and_wraps(ssc, after):
    sm = SecureMessaging(KS_ENC, KS_MAC, ssc)
    cmd = sm.protect(Command(0, 0xB0, 0, 0, le=4))
    assert sm.ssc == (int(after, 16) + 1) % (1 << 64)  # the response's SSC is reserved too
    header = H("0CB0000080000000")
    mac = crypto.retail_mac(KS_MAC, crypto.pad(H(after) + header + H("970104")))
    assert cmd.data == H("970104") + b"\x8e\x08" + mac


def test_odd_ins_uses_do85_without_padding_indicator():
    sm = SecureMessaging(KS_ENC, KS_MAC, SSC)
    cmd = sm.protect(Command(0x00, 0xB1, 0, 0, H("54028000"), le=100))
    (tag85, value, _), (tag97, le, _), (tag8e, _, _) = split_objects(cmd.data)
    assert (tag85, tag97, tag8e, le) == (0x85, 0x97, 0x8E, b"\x64")
    assert crypto.unpad(crypto.decrypt(KS_ENC, value)) == H("54028000")


def test_large_le_goes_extended():
    sm = SecureMessaging(KS_ENC, KS_MAC, SSC)
    cmd = sm.protect(Command(0x00, 0xB0, 0, 0, le=4000))
    assert cmd.extended and cmd.encode()[-2:] == b"\x00\x00"
    assert split_objects(cmd.data)[0][1] == (4000).to_bytes(2, "big")


@pytest.mark.parametrize("raw", ["87", "8705010203", "8E8300000001", "87800000"])
def test_malformed_objects_are_typed_errors(raw):
    with pytest.raises(SmError):
        split_objects(H(raw))


def test_read_ahead_gives_the_same_bytes_as_the_worked_example():
    """All three commands protected before any answer is checked: same wire bytes, same answers."""
    sm = SecureMessaging(KS_ENC, KS_MAC, SSC)
    sent = [sm.protect(Command.decode(H(plain))).encode() for plain, _, _, _ in EXCHANGES]
    assert sent == [H(protected) for _, protected, _, _ in EXCHANGES]
    answers = [sm.unprotect(Response.decode(H(response)), "test").data for _, _, response, _ in EXCHANGES]
    assert answers == [H(data) for _, _, _, data in EXCHANGES]


def test_a_response_without_a_command_is_rejected():
    with pytest.raises(SmError, match="without a protected command"):
        SecureMessaging(KS_ENC, KS_MAC, SSC).unprotect(Response.decode(H(EXCHANGES[0][2])), "SELECT")


@settings(max_examples=300)
@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_arbitrary_responses_give_typed_errors_only(data, sw):
    sm = SecureMessaging(KS_ENC, KS_MAC, SSC)
    sm.protect(Command(0, 0xB0, 0, 0, le=4))
    try:
        sm.unprotect(Response(data, sw), "READ BINARY")
    except ChipError:
        pass
