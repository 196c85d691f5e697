"""PACE known-answer tests (../shared/PACE_CA_AA.md): ICAO 9303-11 App. G.1 (ECDH-GM, brainpoolP256r1,
AES-128) byte for byte, the DH-GM worked example, a real 3DES GM trace (NZ), a real AES trace whose
secure-messaging APDUs and answers check AES SM, the BSI SM MAC; domain parameters; EF.CardAccess."""
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings, strategies as st

from drivers.emrtd import crypto, groups
from drivers.emrtd.apdu import Command, Response
from drivers.emrtd.bac import BacKey
from drivers.emrtd.pace import Can, Pace, PaceError, PaceProtocol, choose, password_key, public_key_token
from drivers.emrtd.sm import SecureMessaging, SmError
from icao9303 import eckeys, secinfo

H = bytes.fromhex


def _h(s: str) -> bytes:
    return H("".join(s.split()))


# ------------------------------------------------------------------ ICAO 9303-11 App. G.1
G1_CARD_ACCESS = H("31143012060A04007F0007020204020202010202010D")
G1_KEY = BacKey("T22000129", "640812", "101031")
G1 = dict(
    k=H("7E2D2A41C74EA0B38CD36F863939BFA8E9032AAD"),
    k_pi=H("89DED1B26624EC1E634C1989302849DD"),
    z=H("95A3A016522EE98D01E76CB6B98B42C3"),
    s=H("3F00C4D39D153F2B2A214A078D899B22"),
    sk_map=0x7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99,
    pk_map_ifd=_h("047ACF3EFC982EC45565A4B155129EFBC74650DCBFA6362D896FC70262E0C2CC5E"
                  "544552DCB6725218799115B55C9BAA6D9F6BC3A9618E70C25AF71777A9C4922D"),
    pk_map_ic=_h("04824FBA91C9CBE26BEF53A0EBE7342A3BF178CEA9F45DE0B70AA601651FBA3F57"
                 "30D8C879AAA9C9F73991E61B58F4D52EB87A0A0C709A49DC63719363CCD13C54"),
    sk_map_ic=0x498FF49756F2DC1587840041839A85982BE7761D14715FB091EFA7BCE9058560,
    h=(0x60332EF2450B5D247EF6D3868397D398852ED6E8CAF6FFEEF6BF85CA57057FD5,
       0x0840CA7415BAF3E43BD414D35AA4608B93A2CAF3A4E3EA4E82C9C13D03EB7181),
    g_mapped=(0x8CED63C91426D4F0EB1435E7CB1D74A46723A0AF21C89634F65A9AE87A9265E2,
              0x8C879506743F8611AC33645C5B985C80B5F09A0B83407C1B6A4D857AE76FE522),
    sk_ifd=0xA73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595,
    pk_ifd=_h("042DB7A64C0355044EC9DF190514C625CBA2CEA48754887122F3A5EF0D5EDD301C"
              "3556F3B3B186DF10B857B58F6A7EB80F20BA5DC7BE1D43D9BF850149FBB36462"),
    sk_ic=0x107CF58696EF6155053340FD633392BA81909DF7B9706F226F32086C7AFF974A,
    pk_ic=_h("049E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB"
             "7764B22277A2EDDC3C265A9F018F9CB852E111B768B326904B59A0193776F094"),
    shared=H("28768D20701247DAE81804C9E780EDE582A9996DB4A315020B2733197DB84925"),
    ks_enc=H("F5F0E35C0D7161EE6724EE513A0D9A7F"),
    ks_mac=H("FE251C7858B356B24514B3BD5F4297D1"),
    t_ifd=H("C2B0BD78D94BA866"),
    t_ic=H("3ABB9674BCE93C08"),
)
# (command, answer) of the whole App. G.1 exchange
G1_TRACE = [
    ("0022C1A40F800A04007F00070202040202830101", "9000"),
    ("10860000027C0000", "7C12801095A3A016522EE98D01E76CB6B98B42C39000"),
    ("10860000457C43814104" + G1["pk_map_ifd"][1:].hex() + "00", "7C43824104" + G1["pk_map_ic"][1:].hex() + "9000"),
    ("10860000457C43834104" + G1["pk_ifd"][1:].hex() + "00", "7C43844104" + G1["pk_ic"][1:].hex() + "9000"),
    ("008600000C7C0A8508C2B0BD78D94BA86600", "7C0A86083ABB9674BCE93C089000"),
]


def _replay(trace, pace: Pace):
    """Drive `pace` against a recorded exchange: each command must equal the recorded one byte for byte."""
    steps = iter(trace)

    def send(cmd: Command) -> Response:
        expected, answer = next(steps)
        assert cmd.encode().hex().upper() == expected.upper()
        return Response.decode(H(answer))
    return pace, send


def _run(protocol: PaceProtocol, trace) -> SecureMessaging:
    cmds = [protocol.mse_set_at, protocol.encrypted_nonce, protocol.map_nonce, protocol.key_agreement,
            protocol.mutual_authentication]
    answer = b""
    for build, (expected, response) in zip(cmds, trace):
        cmd = build(answer) if build not in (protocol.mse_set_at, protocol.encrypted_nonce) else build()
        assert cmd.encode().hex().upper() == expected.upper()
        answer = Response.decode(H(response)).data
    return protocol.session(answer)


def test_g1_password_and_nonce():
    key, ref, label = password_key(G1_KEY)
    assert (key, ref, label) == (G1["k"], 1, "MRZ")
    assert G1_KEY.mrz_information() == "T22000129364081251010318"
    assert crypto.kdf(key, 3, "AES-128") == G1["k_pi"]
    assert crypto.decrypt_block("AES-128", G1["k_pi"], G1["z"]) == G1["s"]


def test_g1_generic_mapping_values():
    c = groups.standard(13)
    assert c.encode(c.mul(G1["sk_map"], c.generator)) == G1["pk_map_ifd"]
    assert c.encode(c.mul(G1["sk_map_ic"], c.generator)) == G1["pk_map_ic"]
    h = c.mul(G1["sk_map"], c.decode(G1["pk_map_ic"]))
    assert h == G1["h"] == c.mul(G1["sk_map_ic"], c.decode(G1["pk_map_ifd"]))
    g_mapped = c.add(c.mul(int.from_bytes(G1["s"], "big"), c.generator), h)
    assert g_mapped == G1["g_mapped"]
    assert c.encode(c.mul(G1["sk_ifd"], g_mapped)) == G1["pk_ifd"]
    assert c.encode(c.mul(G1["sk_ic"], g_mapped)) == G1["pk_ic"]
    assert c.shared_secret(c.mul(G1["sk_ifd"], c.decode(G1["pk_ic"]))) == G1["shared"]
    assert crypto.kdf(G1["shared"], 1, "AES-128") == G1["ks_enc"]
    assert crypto.kdf(G1["shared"], 2, "AES-128") == G1["ks_mac"]


def test_g1_tokens():
    info = secinfo.parse_card_access(G1_CARD_ACCESS).pace[0]
    c = groups.standard(13)
    t_ifd_in = public_key_token(info, c, G1["pk_ic"])
    assert t_ifd_in.hex().upper().startswith("7F494F060A04007F000702020402028641049E880F84")
    assert crypto.mac8("AES-128", G1["ks_mac"], t_ifd_in) == G1["t_ifd"]
    assert crypto.mac8("AES-128", G1["ks_mac"], public_key_token(info, c, G1["pk_ifd"])) == G1["t_ic"]


def test_g1_whole_exchange_byte_for_byte():
    info = choose(secinfo.parse_card_access(G1_CARD_ACCESS))
    assert (info.mapping, info.agreement, info.cipher, info.parameter_id) == ("GM", "ECDH", "AES-128", 13)
    protocol = PaceProtocol(info, G1_KEY, scalars=iter([G1["sk_map"], G1["sk_ifd"]]), send_parameter_id=False)
    sm = _run(protocol, G1_TRACE)
    assert protocol.nonce == G1["s"] and protocol.mapped_generator == G1["g_mapped"]
    assert protocol.shared_secret == G1["shared"]
    assert (sm.ks_enc, sm.ks_mac, sm.ssc, sm.cipher) == (G1["ks_enc"], G1["ks_mac"], 0, "AES-128")


def test_g1_with_parameter_id_in_mse_set_at():
    info = choose(secinfo.parse_card_access(G1_CARD_ACCESS))
    protocol = PaceProtocol(info, G1_KEY)
    assert protocol.mse_set_at().encode() == H("0022C1A412800A04007F0007020204020283010184010D")


def test_g1_wrong_chip_token_is_refused():
    trace = G1_TRACE[:-1] + [(G1_TRACE[-1][0], "7C0A86083ABB9674BCE93C099000")]
    protocol = PaceProtocol(choose(secinfo.parse_card_access(G1_CARD_ACCESS)), G1_KEY,
                            scalars=iter([G1["sk_map"], G1["sk_ifd"]]), send_parameter_id=False)
    with pytest.raises(PaceError, match="token"):
        _run(protocol, trace)


def test_g1_point_off_the_curve_is_refused():
    bad = bytearray(G1["pk_map_ic"])
    bad[-1] ^= 1
    trace = G1_TRACE[:2] + [(G1_TRACE[2][0], "7C43824104" + bytes(bad[1:]).hex() + "9000")] + G1_TRACE[3:]
    protocol = PaceProtocol(choose(secinfo.parse_card_access(G1_CARD_ACCESS)), G1_KEY,
                            scalars=iter([G1["sk_map"], G1["sk_ifd"]]), send_parameter_id=False)
    with pytest.raises(groups.GroupError, match="not on the curve"):
        _run(protocol, trace)


def test_g1_reflected_public_key_is_refused():
    trace = G1_TRACE[:3] + [(G1_TRACE[3][0], "7C43844104" + G1["pk_ifd"][1:].hex() + "9000")] + G1_TRACE[4:]
    protocol = PaceProtocol(choose(secinfo.parse_card_access(G1_CARD_ACCESS)), G1_KEY,
                            scalars=iter([G1["sk_map"], G1["sk_ifd"]]), send_parameter_id=False)
    with pytest.raises(PaceError, match="our own public key"):
        _run(protocol, trace)


# ------------------------------------------------------------------ DH-GM worked example (RFC 5114 1024/160)
DH = dict(
    z=H("854D8DF5827FA6852D1A4FA701CDDDCA"), s=H("FA5B7E3E49753A0DB9178B7B9BD898C8"),
    x_map=0x5265030F751F4AD18B08AC565FC7AC952E41618D,
    pk_map_ifd=_h("23FB3749EA030D2A25B278D2A562047ADE3F01B74F17A15402CB7352CA7D2B3EB71C343DB13D1DEBCE9A3666DBCFC920"
                  "B49174A602CB47965CAA73DC702489A44D41DB914DE9613DC5E98C94160551C0DF86274B9359BC0490D01B03AD54022D"
                  "CB4F57FAD6322497D7A1E28D46710F461AFE710FBBBC5F8BA166F4311975EC6C"),
    pk_map_ic=_h("78879F57225AA8080D52ED0FC890A4B25336F699AA89A2D3A189654AF70729E623EA5738B26381E4DA19E004706FACE7"
                 "B235C2DBF2F38748312F3C98C2DD4882A41947B324AA1259AC22579DB93F7085655AF30889DBB845D9E6783FE42C9F24"
                 "49400306254C8AE8EE9DD812A804C0B66E8CAFC14F84D8258950A91B44126EE6"),
    h=_h("5BABEBEF5B74E5BA94B5C063FDA15F1F1CDE94873EE0A5D3A2FCAB49F258D07F544F13CB66658C3AFEE9E727389BE3F6CB"
         "BBD32128A8C21DD6EEA3CF7091CDDFB08B8D007D40318DCCA4FFBF51208790FB4BD111E5A968ED6B6F08B26CA87C410B3CE0C3"
         "10CE104EABD16629AA48620C1279270CB0750C0D37C57FFFE302AE7F"),
    g_mapped=_h("7C9CBFE98F9FBDDA8D143506FA7D9306F4CB17E3C71707AFF5E1C1A12370249684D64EE37AF44B8DBD9D45BF6023919C"
                "BAA027AB97ACC771666C8E98FF483301BFA4872DEDE9034EDFACB70814166B7F360676829B826BEA57291B5AD69FBC84EF"
                "1E779032A305803F74341793E869742D401325B37EE8565FFCDEE618342DC5"),
    x_ifd=0x89CCD99B0E8D3B1F11E1296DCA68EC53411CF2CA,
    pk_ifd=_h("907D89E2D425A178AA81AF4A7774EC8E388C115CAE67031E85EECE520BD911551B9AE4D04369F29A02626C86FBC6747C"
              "C7BC352645B6161A2A42D44EDA80A08FA8D61B76D3A154AD8A5A51786B0BC07147057871A922212C5F67F43173172236B7"
              "747D1671E6D692A3C7D40A0C3C5CE397545D015C175EB5130551EDBC2EE5D4"),
    pk_ic=_h("075693D9AE941877573E634B6E644F8E60AF17A0076B8B123D9201074D36152BD8B3A213F53820C42ADC79AB5D0AEEC3AE"
             "FB91394DA476BD97B9B14D0A65C1FC71A0E019CB08AF55E1F729005FBA7E3FA5DC41899238A250767A6D46DB974064386CD4"
             "56743585F8E5D90CC8B4004B1F6D866C79CE0584E49687FF61BC29AEA1"),
    shared=_h("6BABC7B3A72BCD7EA385E4C62DB2625BD8613B24149E146A629311C4CA6698E38B834B6A9E9CD7184BA8834AFF5043D43695"
              "0C4C1E7832367C10CB8C314D40E5990B0DF7013E64B4549E2270923D06F08CFF6BD3E977DDE6ABE4C31D55C0FA2E465E553E77"
              "BDF75E3193D3834FC26E8EB1EE2FA1E4FC97C18C3F6CFFFE2607FD"),
    ks_enc=H("2F7F46ADCC9E7E521B45D192FAFA9126"), ks_mac=H("805A1D27D45A5116F73C54469462B7D8"),
    t_ifd=H("B46DD9BD4D98381F"), t_ic=H("917F37B5C0E6D8D1"),
)


def test_dh_gm_worked_example():
    info = secinfo.PaceInfo(secinfo.pace_oid("DH", "GM", "AES-128"), 2, 0, "DH", "GM", "AES-128")
    assert secinfo.encode_oid(info.protocol) == H("04007F00070202040102")
    protocol = PaceProtocol(info, G1_KEY, scalars=iter([DH["x_map"], DH["x_ifd"]]))
    g = protocol.group
    cmd = protocol.map_nonce(_h("7C128010") + DH["z"])
    assert protocol.nonce == DH["s"]
    assert cmd.data == bytes.fromhex("7C8183818180") + DH["pk_map_ifd"]
    cmd = protocol.key_agreement(_h("7C8183828180") + DH["pk_map_ic"])
    assert g.encode(g.mul(DH["x_map"], g.decode(DH["pk_map_ic"]))) == DH["h"]
    assert g.encode(protocol.mapped_generator) == DH["g_mapped"]
    assert cmd.data == bytes.fromhex("7C8183838180") + DH["pk_ifd"]
    cmd = protocol.mutual_authentication(_h("7C8183848180") + DH["pk_ic"])
    assert protocol.shared_secret == DH["shared"]
    assert (protocol.ks_enc, protocol.ks_mac) == (DH["ks_enc"], DH["ks_mac"])
    assert cmd.encode() == _h("008600000C7C0A8508") + DH["t_ifd"] + b"\x00"
    sm = protocol.session(_h("7C0A8608") + DH["t_ic"])
    assert sm.ssc == 0


# ------------------------------------------------------------------ NZ passport: ECDH-GM bp256 with 3DES (S1)
NZ_TRACE = [
    ("0022c1a40f800a04007f00070202040201830101", "9000"),
    ("10860000027c0000", "7c128010b88382812290017af1cc906ff00e7f4d9000"),
    ("10860000457c438141047706b2b6246ab4612229b8a11212ddba7fea0568c9c0975dee22c0e3dd3a3f0321e8afee836e373b570d"
     "24000d56fb195104d486e63321ff8c819dd5ee018dcb00",
     "7c43824104780b4edec9b926f9f964fad826d9990a667608d96ba7b397ae8609b6533e0d036d148365ddf4e5ff6611c2b62aa17fc9"
     "899f327bc929db543e7abd0ee724e4be9000"),
    ("10860000457c43834104507a0156efae8fb8acc519036c0b2fe0393c878744c7f91878ee4e07a41412ba5c0753d68a44a91e9f57f3"
     "f992ab689e6c2065d3b2a27c3658a4fd632931ee3800",
     "7c438441042dbaf62e6fdfb31eb66f206493b9e7721586f0e5c93754d7bd5a884ca251ee4d720ab539a60561bc46812fa289b58ac6"
     "9f0c6e32adbaf7241049a31211f80f5b9000"),
    ("008600000c7c0a85088d7c617d43efe09e00", "7c0a8608cb57047c809079f69000"),
]


def test_3des_gm_real_trace():
    info = choose(secinfo.parse_card_access(H("31143012060a04007f0007020204020102010202010d")))
    assert (info.cipher, info.parameter_id) == ("3DES", 13)
    protocol = PaceProtocol(info, BacKey("LM277954", "781214", "271115"), send_parameter_id=False,
                            scalars=iter([0x2808272c0ec20e01a3450030ef32855e9feb5cb17719e985389b1cf47609e69f,
                                          0x8f89449052df6c7983750c7b042c3cea12b36819174424c7cd28153f7b70b402]))
    sm = _run(protocol, NZ_TRACE)
    assert (sm.ks_enc, sm.ks_mac, sm.cipher) == (H("430e4c8c38dfefaed92067b919a897f8"),
                                                 H("c1bc1f075797b970b5a45e64a764b0cb"), "3DES")
    assert sm.ssc == 0


# ------------------------------------------------------------------ AES secure messaging
# German passport (S1 TestDoPace_CAM_ECDH_DE): session keys after PACE, then SELECT EF.CardSecurity and reads
DE_KS = (H("a8e85e938514ec67ae33cda3d43d3c48"), H("27f1adeb705a049a305b0c619b14b9b3"))
DE_SM = [
    ("00A4020C02011D", "0ca4020c1d87110147ee2e3bd440fb596167f2bb6cd6395e8e08a105747484314bcf00",
     "990290008e085f570baddd1002d29000"),
    ("00B0000004", "0cb000000d9701048e085d283ec183cbb99800",
     "871101d688d27a6d16f03619e76dcb59c1f1ec990290008e08b7df9a5982bb17299000"),
    ("00B0000400", "0cb000040d9701008e08a893fca2cd1cb17d00", None),
]


def test_aes_secure_messaging_real_trace():
    sm = SecureMessaging(*DE_KS, 0, "AES-128")
    for plain, protected, answer in DE_SM:
        cmd = sm.protect(Command.decode(H(plain)))
        # same objects and MAC; Le 256 goes extended here (the protected answer may exceed 256 bytes)
        assert cmd.data == Command.decode(H(protected)).data
        if answer:
            assert cmd.encode().hex() == protected
            assert sm.unprotect(Response.decode(H(answer)), "test").sw == 0x9000
    assert sm.ssc == 6  # three commands protected: SSC 1..6, the last answer still due


def test_aes_secure_messaging_first_answer_data():
    sm = SecureMessaging(*DE_KS, 0, "AES-128")
    sm.protect(Command.decode(H("00A4020C02011D")))
    sm.unprotect(Response.decode(H(DE_SM[0][2])), "SELECT")
    sm.protect(Command.decode(H("00B0000004")))
    assert sm.unprotect(Response.decode(H(DE_SM[1][2])), "READ").data == H("30820742")


def test_icao_app_i_aes_commands():
    sm = SecureMessaging(H("0A9DA4DB03BDDE39FC5202BC44B2E89E"), H("4B1C06491ED5140CA2B537D344C6C0B1"), 0, "AES-128")
    assert sm.protect(Command.decode(H("00A4020C02011D"))).encode() == H(
        "0ca4020c1d8711013824f3cb16caa40ddff8459c215cc4988e08158449671fcc718300")
    assert sm.protect(Command.decode(H("00B0000004"))).encode() == H("0cb000000d9701048e081049244eed15563d00")


def test_bsi_worked_example_sm_mac():
    # BSI EAC worked example: SSC = 2, response DO'99' 9000 under KS_MAC 73FF...
    mac = crypto.AesCmac(H("73FF268784F72AF833FDC9464049AFC9")).mac(
        crypto.pad((2).to_bytes(16, "big") + H("99029000"), 16))
    assert mac == H("A89570A68664A7D6")


def test_aes_response_with_wrong_mac_is_refused():
    sm = SecureMessaging(*DE_KS, 0, "AES-128")
    sm.protect(Command.decode(H("00A4020C02011D")))
    with pytest.raises(SmError, match="MAC"):
        sm.unprotect(Response.decode(H("990290008e085f570baddd1002d39000")), "SELECT")


@pytest.mark.parametrize("cipher,length", [("AES-128", 16), ("AES-192", 24), ("AES-256", 32)])
def test_aes_kdf_lengths(cipher, length):
    secret = bytes(range(32))
    key = crypto.kdf(secret, 1, cipher)
    assert len(key) == length
    digest = hashlib.sha1 if cipher == "AES-128" else hashlib.sha256
    assert key == digest(secret + b"\x00\x00\x00\x01").digest()[:length]


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300), cipher=st.sampled_from(["AES-128", "AES-192", "AES-256", "3DES"]))
def test_protect_then_card_side_unwrap_roundtrip(data, cipher):
    """Terminal protect, then the answer built as a card would: data and status come back."""
    length = crypto.CIPHERS[cipher][0]
    ks_enc, ks_mac = bytes(range(length)), bytes(range(100, 100 + length))
    sm = SecureMessaging(ks_enc, ks_mac, 41, cipher)
    sm.protect(Command(0, 0xB0, 0, 0, le=len(data) or 1))
    block = 8 if cipher == "3DES" else 16
    ssc = (43).to_bytes(block, "big")
    body = b""
    if data:
        if cipher == "3DES":
            cryptogram = crypto.encrypt(ks_enc, crypto.pad(data))
        else:
            aes = crypto.Aes(ks_enc)
            cryptogram = aes.encrypt(crypto.pad(data, 16), aes.iv_for(ssc))
        body = b"\x87" + _len(len(cryptogram) + 1) + b"\x01" + cryptogram
    body += H("99029000")
    mac = (crypto.retail_mac(ks_mac, crypto.pad(ssc + body)) if cipher == "3DES"
           else crypto.AesCmac(ks_mac).mac(crypto.pad(ssc + body, 16)))
    resp = sm.unprotect(Response(body + b"\x8e\x08" + mac, 0x9000), "READ")
    assert resp.data == data


def _len(n: int) -> bytes:
    return bytes((n,)) if n < 0x80 else (b"\x81" + bytes((n,)) if n < 256 else b"\x82" + n.to_bytes(2, "big"))


# ------------------------------------------------------------------ domain parameters
@pytest.mark.parametrize("pid", sorted(groups.STANDARD))
def test_standard_domain_parameters(pid):
    g = groups.STANDARD[pid]
    if g.kind == "DH":
        assert pid in (0, 1, 2) and pow(g.g, g.q, g.p) == 1 and g.g > 1
        assert g.p.bit_length() == int(g.name.split("/")[0]) and g.q.bit_length() == int(g.name.split("/")[1])
        return
    assert g.contains(g.generator)
    assert g.mul(g.n - 1, g.generator) == g.negate(g.generator)
    assert g.add(g.mul(g.n - 1, g.generator), g.generator) is None
    if g.name in eckeys.CURVES:
        oid, p, a, b, gx, n = eckeys.CURVES[g.name]
        assert (g.oid, g.p, g.a, g.b, g.gx, g.n) == (oid, p, a, b, gx, n)


CRYPTOGRAPHY_CURVES = {12: ec.SECP256R1(), 13: ec.BrainpoolP256R1(), 15: ec.SECP384R1(), 16: ec.BrainpoolP384R1(),
                       17: ec.BrainpoolP512R1(), 18: ec.SECP521R1(), 10: ec.SECP224R1(), 8: ec.SECP192R1()}


@pytest.mark.parametrize("pid", sorted(CRYPTOGRAPHY_CURVES))
def test_scalar_multiplication_agrees_with_openssl(pid):
    g = groups.STANDARD[pid]
    for k in (1, 2, 3, g.n - 2, g.random_scalar()):
        key = ec.derive_private_key(k, CRYPTOGRAPHY_CURVES[pid])
        pub = key.public_key().public_numbers()
        assert g.mul(k, g.generator) == (pub.x, pub.y)


def test_parameter_id_table():
    names = {pid: g.name for pid, g in groups.STANDARD.items()}
    assert names == {0: "1024/160", 1: "2048/224", 2: "2048/256", 8: "secp192r1", 9: "brainpoolP192r1",
                     10: "secp224r1", 11: "brainpoolP224r1", 12: "secp256r1", 13: "brainpoolP256r1",
                     14: "brainpoolP320r1", 15: "secp384r1", 16: "brainpoolP384r1", 17: "brainpoolP512r1",
                     18: "secp521r1"}


def test_short_coordinates_are_left_padded():
    c = groups.standard(13)
    pt = None
    for k in range(1, 2000):  # a point whose x has a leading zero byte
        pt = c.mul(k, c.generator)
        if pt[0] < 1 << 248:
            break
    assert pt[0] < 1 << 248
    assert len(c.encode(pt)) == 65 and len(c.shared_secret(pt)) == 32


# ------------------------------------------------------------------ EF.CardAccess
def test_card_access_with_two_pace_infos():
    infos = secinfo.parse_card_access(H(
        "31283012060a04007f000702020402040201020201103012060a04007f00070202040604020102020110"))
    assert [(p.mapping, p.cipher, p.parameter_id) for p in infos.pace] == [("GM", "AES-256", 16), ("CAM", "AES-256", 16)]
    assert choose(infos).mapping == "CAM"  # chip authentication comes with it


def test_card_access_choice_prefers_ecdh_and_aes():
    infos = secinfo.SecurityInfoSet(b"", pace=(
        secinfo.PaceInfo(secinfo.pace_oid("DH", "GM", "AES-256"), 2, 2, "DH", "GM", "AES-256"),
        secinfo.PaceInfo(secinfo.pace_oid("ECDH", "GM", "3DES"), 2, 13, "ECDH", "GM", "3DES"),
        secinfo.PaceInfo(secinfo.pace_oid("ECDH", "GM", "AES-128"), 2, 12, "ECDH", "GM", "AES-128"),
        secinfo.PaceInfo(secinfo.pace_oid("ECDH", "GM", "AES-256"), 2, 99, "ECDH", "GM", "AES-256"),
    ))
    chosen = choose(infos)
    assert (chosen.cipher, chosen.parameter_id) == ("AES-128", 12)


def test_card_access_roundtrip_and_other_infos():
    der = secinfo.encode_set([secinfo.encode_pace_info(secinfo.pace_oid("ECDH", "GM", "AES-256"), 14),
                              secinfo.encode_active_auth_info("1.2.840.10045.4.3.2")])
    infos = secinfo.parse_card_access(der + b"\x00\x00")  # padding after the SET
    assert infos.pace[0].parameter_id == 14 and infos.active_auth.hash_name == "sha256"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_card_access_parser_only_raises_its_error(data):
    try:
        secinfo.parse_card_access(data)
    except secinfo.SecurityInfoError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3, 4, 6, 7]), st.integers(0, 5), st.integers(-1, 300)), max_size=4))
def test_card_access_parser_on_wellformed_sets(entries):
    infos = [secinfo.encode_pace_info(f"{secinfo.ID_PACE}.{k}.{c}", pid) for k, c, pid in entries]
    try:
        parsed = secinfo.parse_card_access(secinfo.encode_set(infos))
    except secinfo.SecurityInfoError:
        return
    for p in parsed.pace:
        assert p.mapping in ("GM", "IM", "CAM")


def test_can_password():
    key, ref, label = password_key(Can("123456"))
    assert (key, ref, label) == (b"123456", 2, "CAN")
    assert crypto.kdf(key, 3, "AES-128") == H("591468CDA83D65219CCCB8560233600F")
    with pytest.raises(PaceError):
        Can("12a456")


# ------------------------------------------------------------------ the reader against the simulated chip
from cryptography.hazmat.primitives import serialization  # noqa: E402

from drivers.emrtd import access  # noqa: E402
from drivers.emrtd.apdu import AuthenticationFailed, StatusError  # noqa: E402
from drivers.emrtd.reader import read_document  # noqa: E402
from icao9303 import mrz as mrzmod, pa, trust  # noqa: E402
from simulators.chip.applet import ChipProfile, EmrtdApplet  # noqa: E402
from simulators.chip.card_auth import AaSigner  # noqa: E402
from simulators.testpki import TestPki, build_card_access  # noqa: E402

from tests.chip_helpers import LINES, MRZ_KEY, AppletLink as Link  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def trust_store(pki):
    return trust.TrustStore.from_dir(pki.trust_dir)


def _applet(doc, profile=None, **kw):
    aa = AaSigner(serialization.load_pem_private_key(doc.aa_private_key, None)) if doc.aa_private_key else None
    return EmrtdApplet(doc.files, MRZ_KEY, profile, aa=aa, **kw)


@pytest.mark.parametrize("pace", ["ECDH-GM-AES-128/13", "ECDH-GM-AES-128/12", "ECDH-GM-AES-256/14",
                                  "ECDH-GM-3DES/13", "ECDH-GM-AES-192/16", "DH-GM-AES-128/0", "DH-GM-3DES/2"])
def test_pace_read_against_the_simulated_chip(pki, trust_store, pace):
    doc = pki.personalise(LINES, pace=pace)
    link = Link(_applet(doc))
    result = read_document(link, MRZ_KEY)
    assert result.files == doc.files
    assert result.access_control == "PACE" and result.fallback is None and result.pace_offered is True
    spec, _, pid = pace.partition("/")
    assert result.access["protocol"] == f"PACE-{spec}" and result.access["parameter_id"] == int(pid)
    assert result.access["domain"] == groups.standard(int(pid)).name and result.access["password"] == "MRZ"
    assert list(result.timings_s) == ["EF.CardAccess", "PACE", "select", "EF.COM", "DG1", "DG2", "EF.SOD"]
    # MSE:Set AT carries the parameter id; the application is selected under secure messaging
    mse = next(raw for raw in link.sent if raw[1] == 0x22)
    assert mse.endswith(bytes((0x84, 0x01, int(pid))))
    select_app = [raw for raw in link.sent if raw[1] == 0xA4 and raw[2] == 0x04]
    assert select_app and all(raw[0] == 0x0C for raw in select_app)
    checked = pa.verify(result.files["EF.SOD"], {int(k[2:]): v for k, v in result.files.items() if k.startswith("DG")},
                        trust_store, mrz=mrzmod.parse(LINES))
    assert checked.passed


def test_pace_with_can(pki):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13")
    result = read_document(Link(_applet(doc, can="123456")), MRZ_KEY, can=Can("123456"))
    assert result.access_control == "PACE" and result.access["password"] == "CAN"
    with pytest.raises(AuthenticationFailed):
        read_document(Link(_applet(doc, can="123456")), Can("654321"), policy="pace_only")


def test_aes_reads_stay_within_short_apdus(pki):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13")
    link = Link(_applet(doc, ChipProfile(extended_length=False)))
    result = read_document(link, MRZ_KEY)
    assert result.files == doc.files
    assert all(not (len(raw) > 5 and raw[4] == 0) for raw in link.sent)  # never extended


def test_failed_pace_falls_back_to_bac_and_says_so(pki):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13")
    result = read_document(Link(_applet(doc, ChipProfile(pace_fault="bad_token"))), MRZ_KEY)
    assert result.access_control == "BAC" and result.files == doc.files
    assert result.fallback.startswith("PACE failed (PaceError") and "token" in result.fallback
    assert list(result.timings_s)[:4] == ["EF.CardAccess", "PACE (failed)", "select", "BAC"]
    result = read_document(Link(_applet(doc, ChipProfile(pace_fault="refuse"))), MRZ_KEY)
    assert result.access_control == "BAC" and "6A80" in result.fallback


def test_pace_only_never_falls_back(pki):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13")
    with pytest.raises(PaceError, match="token"):
        read_document(Link(_applet(doc, ChipProfile(pace_fault="bad_token"))), MRZ_KEY, policy="pace_only")
    bac_doc = pki.personalise(LINES)
    with pytest.raises(access.AccessRefused, match="EF.CardAccess absent"):
        read_document(Link(_applet(bac_doc)), MRZ_KEY, policy="pace_only")


def test_bac_only_does_not_look_at_card_access(pki):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13")
    link = Link(_applet(doc))
    result = read_document(link, MRZ_KEY, policy="bac_only")
    assert result.access_control == "BAC" and result.pace_offered is None and "EF.CardAccess" not in result.files
    assert not any(raw[1] in (0x22, 0x86) for raw in link.sent)


def test_bac_chip_under_the_default_policy(pki):
    doc = pki.personalise(LINES)
    link = Link(_applet(doc))
    result = read_document(link, MRZ_KEY)
    assert result.access_control == "BAC" and result.pace_offered is False and result.fallback is None
    assert result.access_note == "EF.CardAccess absent"
    assert list(result.timings_s) == ["select", "BAC", "EF.COM", "DG1", "DG2", "EF.SOD"]
    assert link.sent[0] == H("00A4020C02011C")  # one probe, answered 6A82


def test_pace_only_chip(pki):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13")
    result = read_document(Link(_applet(doc, ChipProfile(bac=False))), MRZ_KEY)
    assert result.access_control == "PACE"
    with pytest.raises(StatusError, match="6D00"):
        read_document(Link(_applet(doc, ChipProfile(bac=False))), MRZ_KEY, policy="bac_only")


def test_card_access_readable_only_by_sfi(pki):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13")
    link = Link(_applet(doc, ChipProfile(card_access_select=False)))
    result = read_document(link, MRZ_KEY)
    assert result.access_control == "PACE" and result.files["EF.CardAccess"] == doc.files["EF.CardAccess"]
    assert link.sent[1][:4] == H("00B09C00")


def test_unsupported_pace_only_offer_uses_bac_with_a_note(pki):
    doc = pki.personalise(LINES)
    files = dict(doc.files, **{"EF.CardAccess": secinfo.encode_set([
        secinfo.encode_pace_info(secinfo.pace_oid("ECDH", "GM", "AES-128"), 40)])})
    result = read_document(Link(EmrtdApplet(files, MRZ_KEY)), MRZ_KEY)
    assert result.access_control == "BAC" and result.pace_offered is True
    assert "unsupported PACE" in result.access_note and result.fallback is None


def test_several_pace_infos_pick_one_and_name_it(pki):
    doc = pki.personalise(LINES, pace=["ECDH-GM-3DES/13", "ECDH-GM-AES-256/16", "DH-GM-AES-128/0"])
    link = Link(_applet(doc))
    result = read_document(link, MRZ_KEY)
    assert result.access["protocol"] == "PACE-ECDH-GM-AES-256" and result.access["parameter_id"] == 16


def test_wrong_mrz_fails_pace_then_bac(pki):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13")
    with pytest.raises(AuthenticationFailed):
        read_document(Link(_applet(doc)), BacKey("L898902C", "740812", "120416"))


def test_policy_names():
    assert access.POLICIES == ("pace_then_bac", "pace_only", "bac_only")
    with pytest.raises(ValueError):
        access.plan(MRZ_KEY, None, "pace_first")
    infos = secinfo.parse_card_access(build_card_access("ECDH-GM-AES-128/13"))
    p = access.plan(MRZ_KEY, infos, "pace_then_bac")
    assert p.primary.name == "PACE" and p.fallback.name == "BAC"
    assert access.plan(MRZ_KEY, infos, "pace_only").fallback is None
    assert access.for_document(MRZ_KEY).name == "BAC"


@pytest.mark.parametrize("pid", [12, 13, 14])
def test_many_random_pace_runs(pid):
    """Random keys on both sides, many times: catches fixed-length encoding bugs (pitfall 5)."""
    files = {"EF.COM": b"\x60\x00", "EF.CardAccess": build_card_access(f"ECDH-GM-AES-128/{pid}")}
    info = choose(secinfo.parse_card_access(files["EF.CardAccess"]))
    for _ in range(25):
        applet = EmrtdApplet(files, MRZ_KEY)
        sm = Pace(info, MRZ_KEY).establish(lambda cmd: Response.decode(applet.process(cmd.encode())))
        assert sm.ssc == 0 and applet.session is not None and applet.session.ks_mac == sm.ks_mac


# ------------------------------------------------------------------ ICAO 9303-11 App. I: PACE-CAM (bp256, AES-128)
I_CARD_ACCESS = H("31143012060A04007F0007020204060202010202010D")
I_KEY = BacKey("C11T002JM", "960812", "231031")
I = dict(
    k_pi=H("4E6F6FBF7BE748B932C7B74161BBA9DF"),
    z=H("CB60E8E0D85B76A9BD304747C2AD42E2"), s=H("658B860BC94DF6F044FCE6D5C82CF8E5"),
    sk_map=0x5D8BB87BD74D985A4B7D4325B9F7B976FE835122773400798914AA22738135CC,
    pk_map_ifd=_h("047F1D410ADB7DDB3B84BF1030800981A9105D7457B4A3ADE002384F3086C67EDE1AB889104A27DB6D842B019020FBF3CE"
                  "ACB0DC627F7BDCAC29969E19D0E553C1"),
    pk_map_ic=_h("04A234236AA9B9621E8EFB73B5245C0E09D2576E5277183C1208BDD55280CAE8B304F365713A356E65A451E165ECC9AC0A"
                 "C46E3771342C8FE5AEDD092685338E23"),
    sk_ifd=0x76ECFDAA9841C323A3F5FC5E88B88DB3EFF7E35EBF57A7E6946CB630006C2120,
    pk_ifd=_h("04446C934084D9DAB863944F219520076C29EE3F7AE6722B11FF319EC1C7728F955483400BFF60BF0C5929270009277DC2"
              "A515E12575010AD9BA916CF1BF86FEFC"),
    pk_ic=_h("0402AD566F3C6EC7F9324509AD50A51FA52030782A4968FCFEDF737DAEA993333111C3B9B4C2287789BD137E7F8AA882E2A3"
             "C633CCD6ECC2C63C57AD401A09C2E1"),
    ks_enc=H("0A9DA4DB03BDDE39FC5202BC44B2E89E"), ks_mac=H("4B1C06491ED5140CA2B537D344C6C0B1"),
    ca_ic=H("85DC3FA93D0952BFA82F5FD189EE75BD82F11D1F0B8ED4BF5319AC9B53C426B3"),
    card_security_content=H(
        "31643062060904007F0007020201023052300C060704007F0007010202010D034200041872709494399E7470A6431BE25E83EE"
        "E24FEA568C2ED28DB48E05DB3A610DC884D256A40E35EFCB59BF6753D3A489D28C7A4D973C2DA138A6E7A4A08F68E16F02010D"),
)
I_TRACE = [
    ("0022C1A40F800A04007F00070202040602830101", "9000"),
    ("10860000027C0000", "7C128010" + I["z"].hex() + "9000"),
    ("10860000457C43814104" + I["pk_map_ifd"][1:].hex() + "00", "7C43824104" + I["pk_map_ic"][1:].hex() + "9000"),
    ("10860000457C43834104" + I["pk_ifd"][1:].hex() + "00", "7C43844104" + I["pk_ic"][1:].hex() + "9000"),
    ("008600000C7C0A8508E86BD06018A1CD3B00",
     "7C3C86088596CF055C67C1A38A301EEA964DAAE372AC990E3EFDE6333353BFC89A6704D93DA8798CF77F5B7A54BD10CBA372B42BE0"
     "B9B5F28AA8DE2F4F929000"),
]


def test_cam_worked_example_byte_for_byte():
    info = choose(secinfo.parse_card_access(I_CARD_ACCESS))
    assert (info.mapping, info.cipher, info.parameter_id) == ("CAM", "AES-128", 13)
    protocol = PaceProtocol(info, I_KEY, scalars=iter([I["sk_map"], I["sk_ifd"]]), send_parameter_id=False)
    assert protocol.k_pi == I["k_pi"]
    sm = _run(protocol, I_TRACE)
    assert protocol.nonce == I["s"]
    assert (sm.ks_enc, sm.ks_mac) == (I["ks_enc"], I["ks_mac"])
    assert protocol.chip_auth_data == I["ca_ic"]
    key_info = secinfo.parse(I["card_security_content"]).chip_auth_keys[0]
    assert key_info.key_id == 13
    curve, static = groups.ec_public_key(key_info.public_key_der)
    assert curve.name == "brainpoolP256r1"
    assert protocol.verify_chip_authentication(static)
    other = curve.mul(curve.random_scalar(), curve.generator)
    assert not protocol.verify_chip_authentication(other)


def test_cam_is_preferred_when_offered():
    infos = secinfo.parse_card_access(H(
        "31283012060A04007F0007020204020202010202010D3012060A04007F0007020204060202010202010D"))
    assert choose(infos).mapping == "CAM"
    cam_3des = secinfo.PaceInfo(secinfo.pace_oid("ECDH", "CAM", "3DES"), 2, 13, "ECDH", "CAM", "3DES")
    assert choose(secinfo.SecurityInfoSet(b"", pace=(cam_3des,))) is None  # CAM is defined with AES only


# ------------------------------------------------------------------ PACE-CAM against the simulated chip
from icao9303 import card_security  # noqa: E402
from simulators.testpki import clone_chip  # noqa: E402


def _cam_applet(doc, profile=None):
    return EmrtdApplet(doc.files, MRZ_KEY, profile,
                       cam_key=serialization.load_pem_private_key(doc.cam_private_key, None))


@pytest.mark.parametrize("pace", ["ECDH-CAM-AES-128/13", "ECDH-CAM-AES-256/16", "ECDH-CAM-AES-192/12"])
def test_cam_read_passes_and_clone_fails(pki, trust_store, pace):
    doc = pki.personalise(LINES, pace=["ECDH-GM-AES-128/13", pace])
    link = Link(_cam_applet(doc))
    result = read_document(link, MRZ_KEY)
    assert result.access["mapping"] == "CAM" and result.files == doc.files
    assert result.chip_auth.passed and result.chip_auth.key_id == int(pace.split("/")[1])
    assert list(result.timings_s)[:5] == ["EF.CardAccess", "PACE", "EF.CardSecurity", "CAM", "select"]
    assert card_security.verify(result.files["EF.CardSecurity"], trust_store).passed

    clone = clone_chip(doc)
    result = read_document(Link(_cam_applet(clone)), MRZ_KEY)
    assert result.access["mapping"] == "CAM" and result.chip_auth.status == "failed"
    assert card_security.verify(result.files["EF.CardSecurity"], trust_store).passed  # copied, still signed


def test_cam_card_security_forged_by_an_untrusted_signer(pki, trust_store):
    doc = pki.personalise(LINES, pace="ECDH-CAM-AES-128/13", variant="unknown_csca")
    result = read_document(Link(_cam_applet(doc)), MRZ_KEY)
    assert result.chip_auth.passed  # the chip matches the key ...
    checked = card_security.verify(result.files["EF.CardSecurity"], trust_store)
    assert not checked.passed and checked.check("csca_chain").status == "failed"  # ... which nobody vouches for


def test_cam_without_card_security_fails_chip_auth(pki):
    doc = pki.personalise(LINES, pace="ECDH-CAM-AES-128/13")
    files = {k: v for k, v in doc.files.items() if k != "EF.CardSecurity"}
    applet = EmrtdApplet(files, MRZ_KEY, cam_key=serialization.load_pem_private_key(doc.cam_private_key, None))
    result = read_document(Link(applet), MRZ_KEY)
    assert result.access_control == "PACE" and result.chip_auth.status == "failed"
    assert "unreadable" in result.chip_auth.reason and result.files["EF.SOD"] == doc.files["EF.SOD"]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=120))
def test_card_security_parser_only_raises_its_error(data):
    try:
        secinfo.parse_card_security(b"\x30" + bytes((len(data),)) + data if len(data) < 128 else data)
    except secinfo.SecurityInfoError:
        pass


# ------------------------------------------------------------------ Integrated Mapping (ICAO 9303 variant), CAN 123456
IM_EC = dict(
    z=H("143DC40C08C8E891FBED7DEDB92B64AD"), s=H("2923BE84E16CD6AE529049F1F1BBE9EB"), t=H("5DD4CBFC96F5453B130D890A1CDBAE32"),
    r=_h("E4447E2DFB3586BAC05DDB00156B57FBB2179A3949294C97254189800C517BAA8DA0FF397ED8C445D3E421E4FEB57322"),
    g=(0x8E82D31559ED0FDE92A4D0498ADD3C23BABA94FB77691E31E90AEA77FB17D427,
       0x4C1AE14BD0C3DBAC0C871B7F3608169364437CA30AC243A089D3F266C1E60FAD),
    sk_ifd=0xA73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595,
    pk_ifd=_h("0489CBA23FFE96AA18D824627C3E934E54A9FD0B87A95D1471DC1C0ABFDCD640D46755DE9B7B778280B6BEBD57439ADFEB"
              "0E21FD4ED6DF42578C13418A59B34C37"),
    pk_ic=_h("0467F78E5F7F7686082B293E8D087E056916D0F74BC01A5F8957D0DE45691E51E8932B69A962B52A0985AD2C0A271EE6A13A"
             "8ADDDCD1A3A994B9DED257F4D22753"),
    k=H("4F150FDE1D4F0E38E95017B891BAE17133A0DF45B0D3E18B60BA7BEAFDC2C713"),
    ks=(H("0D3FEB33251A6370893D62AE8DAAF51B"), H("B01E89E3D9E8719E586B50B4A7506E0B")),
    t_ifd=H("450F02B86F6A0909"), t_ic=H("75D4D96E8D5B0308"),
)


def test_im_ecdh_worked_example():
    info = secinfo.PaceInfo(secinfo.pace_oid("ECDH", "IM", "AES-128"), 2, 13, "ECDH", "IM", "AES-128")
    assert info.protocol == "0.4.0.127.0.7.2.2.4.4.2"
    protocol = PaceProtocol(info, Can("123456"), scalars=iter([IM_EC["sk_ifd"]]), im_nonce=IM_EC["t"])
    assert H("830102") in protocol.mse_set_at().data  # CAN
    cmd = protocol.map_nonce(H("7C128010") + IM_EC["z"])
    assert protocol.nonce == IM_EC["s"] and cmd.data == H("7C128110") + IM_EC["t"]
    cmd = protocol.key_agreement(H("7C028200"))
    assert protocol.mapped_generator == IM_EC["g"]
    assert cmd.data == H("7C438341") + IM_EC["pk_ifd"]
    cmd = protocol.mutual_authentication(H("7C438441") + IM_EC["pk_ic"])
    assert protocol.shared_secret == IM_EC["k"] and (protocol.ks_enc, protocol.ks_mac) == IM_EC["ks"]
    assert cmd.data == H("7C0A8508") + IM_EC["t_ifd"]
    assert protocol.session(H("7C0A8608") + IM_EC["t_ic"]).ssc == 0


def test_im_pseudo_random_function_and_point_encoding():
    from drivers.emrtd.pace import im_map, im_pseudo_random
    c = groups.standard(13)
    r = im_pseudo_random("AES-128", IM_EC["s"], IM_EC["t"], c.p)
    assert r == IM_EC["r"]
    assert int.from_bytes(r, "big") % c.p == 0xA2F8FF2DF50E52C6599F386ADCB595D229F6A167ADE2BE5F2C3296ADD5B7430E
    assert im_map(c, int.from_bytes(r, "big")) == IM_EC["g"]
    for _ in range(20):  # any field element maps onto the curve
        assert c.contains(im_map(c, c.random_scalar()))


def test_im_dh_worked_example():
    info = secinfo.PaceInfo(secinfo.pace_oid("DH", "IM", "AES-128"), 2, 0, "DH", "IM", "AES-128")
    x_ifd = int("4BD0E54740F9A028E6A515BFDAF967848C4F5F5FFF65AA0915947FFD1A0DF2FA6981271BC905F3551457B7E03AC3B806"
                "6DE4AA406C1171FB43DD939C4BA16175103BA3DEE16419AA248118F90CC36A3D6F4C373652E0C3CCE7F0F1D0C5425B3600"
                "F0F0D6A67F004C8BBA33F2B4733C7252445C1DFC4F1107203F71D2EFB28161", 16)
    protocol = PaceProtocol(info, Can("123456"), scalars=iter([x_ifd]), im_nonce=H("B3A6DB3C870C3E99245E0D1C06B747DE"))
    protocol.map_nonce(H("7C128010") + H("9ABB8864CA0FF1551E620D1EF4E13510"))
    assert protocol.nonce == H("FA5B7E3E49753A0DB9178B7B9BD898C8")
    cmd = protocol.key_agreement(H("7C028200"))
    g = protocol.group
    assert g.encode(protocol.mapped_generator) == _h(
        "1D7D767F11E333BCD6DBAEF40E799E7A926B96973550656FF3C830726D118D61C276CDCC61D475CF03A98E0C0E79CAEBA5BE2557"
        "8BD4551D0B10903236F0B0F976852FA78EEA14EA0ACA87D1E91F688FE0DFF897BBE35A472621D343564B262F34223AE8FC59B664"
        "BFEDFA2BFE7516CA5510A6BBB633D517EC25D4E0BBAA16C2")
    pk_ifd = _h("0F0CC62945A8029251FB7EF3C094E12EC68E4EF07F27CB9D9CD04C5C4250FAE0E4F8A951557E929AEB48E5C6DD47F2F5CD7C"
                "351A9BD2CD722C07EDE166770F08FFCB370262CF308DD7B07F2E0DA9CAAA1492344C852906919538C98A4BA4187E76CE9D87"
                "832386D319CE2E043C3343AEAE6EDBA1A9894DC5094D22F7FE1351D5")
    assert cmd.data == H("7C8183838180") + pk_ifd
    pk_ic = _h("928D9A0F9DBA450F13FC859C6F290D1D36E42431138A4378500BEB4E0401854CFF111F71CB6DC1D0335807A11388CC8EAA87B0"
               "7907AAD9FBA6B169AF6D8C26AF8DDDC39ADC3AD2E3FF882B84D23E9768E95A80E4746FB07A9767679FE92133B4D379935C771B"
               "D7FBED6C7BB4B1708B275EA75679524CDC9C6A91370CC662A2F3")
    cmd = protocol.mutual_authentication(H("7C8183848180") + pk_ic)
    assert (protocol.ks_enc, protocol.ks_mac) == (H("01AFC10CF87BE36D8179E87370171F07"), H("23F0FBD05FD6C7B8B88F4C8309669061"))
    assert cmd.data == H("7C0A8508") + H("55D61977CBF5307E")
    protocol.session(H("7C0A8608") + H("C2F04230187E1525"))


@pytest.mark.parametrize("pace", ["ECDH-IM-AES-128/13", "ECDH-IM-AES-128/12", "ECDH-IM-AES-128/16", "DH-IM-AES-128/0"])
def test_im_read_against_the_simulated_chip(pki, trust_store, pace):
    doc = pki.personalise(LINES, pace=pace)
    result = read_document(Link(_applet(doc)), MRZ_KEY)
    assert result.access["mapping"] == "IM" and result.files == doc.files and result.fallback is None


@pytest.mark.parametrize("cipher", ["3DES", "AES-192", "AES-256"])
def test_im_with_3des_and_aes_192_256(cipher):
    """IM beyond ICAO's AES-128 worked examples: 128-bit constants for 3DES (CBC, zero IV, over 16-byte
    nonces), 256-bit ones for AES-192/256 (32-byte chip nonce, the key-length terminal nonce, each
    iteration's key the first key-length bytes); AES-128 with these rules still gives App. H.1's R."""
    from drivers.emrtd.pace import im_nonce_length, im_pseudo_random
    info = secinfo.PaceInfo(secinfo.pace_oid("ECDH", "IM", cipher), 2, 13, "ECDH", "IM", cipher)
    assert choose(secinfo.SecurityInfoSet(b"", pace=(info,))) == info
    p = groups.standard(13).p
    s, t = bytes(range(im_nonce_length(cipher))), bytes(range(100, 100 + {"3DES": 16, "AES-192": 24, "AES-256": 32}[cipher]))
    r = im_pseudo_random(cipher, s, t, p)
    assert len(r) * 8 >= p.bit_length() + 64 and r != im_pseudo_random(cipher, s, bytes(len(t)), p)
    with pytest.raises(PaceError):
        im_pseudo_random(cipher, s[:8], t, p)
    files = {"EF.COM": b"\x60\x00", "EF.CardAccess": build_card_access(f"ECDH-IM-{cipher}/13")}
    for _ in range(3):
        applet = EmrtdApplet(files, MRZ_KEY)
        sm = Pace(info, MRZ_KEY).establish(lambda cmd: Response.decode(applet.process(cmd.encode())))
        assert applet.session.ks_mac == sm.ks_mac and sm.cipher == cipher


def test_card_access_read_with_short_apdus_on_a_chip_without_extended_length(pki):
    doc = pki.personalise(LINES, pace="ECDH-GM-AES-128/13")
    for select in (True, False):
        link = Link(_applet(doc, ChipProfile(extended_length=False, card_access_select=select)))
        result = read_document(link, MRZ_KEY, chunk=65536)
        assert result.access_control == "PACE" and result.files == doc.files


def test_openssl_fast_multiplication_equals_the_ladder():
    """groups.Curve.mul's OpenSSL path (P-256/384/521) gives the ladder's point for any point and scalar."""
    for c in groups.CURVES_BY_NAME.values():
        pt = c.mul_ladder(c.random_scalar(), c.generator)
        for k in (1, 2, c.n - 2, c.n - 1, c.n, c.random_scalar(), c.random_scalar()):
            assert c.mul(k, pt) == c.mul_ladder(k, pt), (c.name, k)
