"""BAC known-answer tests: ICAO 9303-11 Appendix D.2-D.3 worked example."""
import pytest

from drivers.emrtd import crypto
from drivers.emrtd.apdu import Command, Response, AuthenticationFailed, SW_AUTH_FAILED
from drivers.emrtd.bac import Bac, BacKey, ChipAuthenticationMismatch, MutualAuthentication, session_keys
from icao9303.mrz import MrzError, compose_td3, parse

H = bytes.fromhex
KEY = BacKey("L898902C", "690806", "940623")
K_ENC = H("AB94FDECF2674FDFB9B391F85D7F76F2")
K_MAC = H("7962D9ECE03D1ACD4C76089DCE131543")
RND_IC = H("4608F91988702212")
RND_IFD = H("781723860C06C226")
K_IFD = H("0B795240CB7049B01C19B33E32804F0B")
EXT_AUTH_DATA = H("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F25F1448EEA8AD90A7")
CHIP_ANSWER = H("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D7449")


def test_mrz_information_and_key_seed():
    assert KEY.mrz_information() == "L898902C<369080619406236"
    assert KEY.seed() == H("239AB9CB282DAF66231DC5A4DF6BFBAE")


def test_document_keys():
    assert KEY.document_keys() == (K_ENC, K_MAC)


def test_parity_adjustment():
    assert crypto.adjust_parity(H("AB94FCEDF2664EDFB9B291F85D7F77F2")) == K_ENC


def test_external_authenticate_command():
    auth = MutualAuthentication(K_ENC, K_MAC, RND_IFD, K_IFD)
    cmd = auth.external_authenticate(RND_IC)
    assert cmd.encode() == H("0082000028") + EXT_AUTH_DATA + H("28")


def test_session_keys_and_ssc_from_chip_answer():
    auth = MutualAuthentication(K_ENC, K_MAC, RND_IFD, K_IFD)
    auth.external_authenticate(RND_IC)
    sm = auth.session(CHIP_ANSWER)
    assert sm.ks_enc == H("979EC13B1CBFE9DCD01AB0FED307EAE5")
    assert sm.ks_mac == H("F1CB1F1FB5ADF208806B89DC579DC1F8")
    assert sm.ssc.to_bytes(8, "big") == H("887022120C06C226")


def test_session_key_seed():
    k_ic = H("0B4F80323EB3191CB04970CB4052790B")
    assert bytes(a ^ b for a, b in zip(K_IFD, k_ic)) == H("0036D272F5C350ACAC50C3F572D23600")
    assert session_keys(K_IFD, k_ic) == (H("979EC13B1CBFE9DCD01AB0FED307EAE5"), H("F1CB1F1FB5ADF208806B89DC579DC1F8"))


def test_chip_answer_with_bad_mac_is_rejected():
    auth = MutualAuthentication(K_ENC, K_MAC, RND_IFD, K_IFD)
    auth.external_authenticate(RND_IC)
    with pytest.raises(ChipAuthenticationMismatch, match="MAC"):
        auth.session(CHIP_ANSWER[:-1] + bytes([CHIP_ANSWER[-1] ^ 1]))


def test_chip_answer_to_another_challenge_is_rejected():
    auth = MutualAuthentication(K_ENC, K_MAC, RND_IFD, K_IFD)
    auth.external_authenticate(bytes(8))
    with pytest.raises(ChipAuthenticationMismatch, match="challenge"):
        auth.session(CHIP_ANSWER)


def test_wrong_mrz_gives_authentication_failed():
    """A chip answers 6300 when the terminal's cryptogram was made with other keys."""
    def chip(cmd: Command) -> Response:
        return Response(RND_IC, 0x9000) if cmd.ins == 0x84 else Response(b"", SW_AUTH_FAILED)
    with pytest.raises(AuthenticationFailed) as err:
        Bac(BacKey("L898902C", "700101", "940623")).establish(chip)
    assert err.value.sw == 0x6300


@pytest.mark.parametrize("fields", [("", "690806", "940623"), ("L898902-", "690806", "940623"),
                                    ("L898902C", "69086", "940623"), ("L898902C", "690806", "94O623")])
def test_bad_key_fields_are_typed_errors(fields):
    with pytest.raises(MrzError):
        BacKey(*fields)


def test_long_document_number_keeps_all_characters():
    """TD1 document numbers over 9 characters: the full number and its own check digit."""
    info = BacKey("D23145890734", "340712", "950712").mrz_information()
    assert info.startswith("D23145890734") and len(info) == 12 + 1 + 14


def test_key_from_a_parsed_mrz():
    parsed = parse(compose_td3(issuer="UTO", surname="ERIKSSON", given_names="ANNA MARIA", document_number="L898902C",
                               nationality="UTO", birth_date="690806", sex="F", expiry_date="940623"))
    assert BacKey.from_mrz(parsed).seed() == H("239AB9CB282DAF66231DC5A4DF6BFBAE")
