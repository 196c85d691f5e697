"""Chip Authentication v1 (DG14) known answers: real AT (AES-128, no keyId), DE (AES-128, keyId C3) and
MY (3DES) sessions from gmrtd's tests (../shared/PACE_CA_AA.md §7), byte for byte; DG14 key choice;
the simulated chip (genuine passes, a clone fails and the read goes on)."""
import pytest
from cryptography.hazmat.primitives import serialization

from drivers.emrtd import chipauth
from drivers.emrtd.apdu import Command, Response
from drivers.emrtd.reader import read_document
from drivers.emrtd.sm import SecureMessaging
from icao9303 import mrz as mrzmod, pa, secinfo, trust
from simulators.chip.applet import EmrtdApplet
from simulators.testpki import TestPki, clone_chip

H = bytes.fromhex
BP256_EXPLICIT = (
    "3081EC06072A8648CE3D02013081E0020101302C06072A8648CE3D0101022100A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D526"
    "20282013481D1F6E5377304404207D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9042026DC5C6CE94A"
    "4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B60441048BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A"
    "4453BD9ACE3262547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997022100A9FB57DBA1EEA9BC3E660A90"
    "9D838D718C397AA3B561A6F7901E0E82974856A7020101")

CASES = {
    "AT": dict(
        dg14="6E82017E3182017A300D060804007F0007020202020101300F060A04007F000702020302020201013012060A04007F000702"
             "0204020202010202010D30820142060904007F00070202010230820133" + BP256_EXPLICIT +
             "034200041983917269AC877C0B61544C2C022000D2A5ABA723E2D80141E648B40911DC3459761F27480E4B57181A53D8FE1190"
             "EA86C939AC14363178CAFFC621F0F905C3",
        cipher="AES-128", ks=("524170DE3419B7AF2F23E45AD6EF9595", "97893F5FDC29A5C13A924FE7D8ED44FD"), ssc=0xF0,
        sk=0x80EBAFC8A51BECD4D90BB640EE38C9FD5C12748D28AAA37096B98C4533C4F5F5,
        trace=[("0C2241A41D8711015D8F69B1EA365CCE4304970DB12421F38E085340D338128085E700", "990290008E083F5136E82A6C34779000"),
               ("0C860000608751019E18F1BA79D805379752BB560EB70AAC3CE3BC5AFE2FDD4AEB325CA8B578B4A93B9F66A5DF40005F8E8785"
                "35251D33DD974AAF77FB858773E5799FA9DC1034E89B1150EC7F0BB3DB4BF37A1B9EA4458A9701008E089D204D950C0B95DB00",
                "8711010B0A5DFFC7432DE4DEB604291377A05B990290008E08B3384A1F5D1579739000"),
               ("0CA4020C1D8711011B2EE500E84960DF7F37AFE7ADFF53838E084500F3B43E192A5700", "990290008E0803C4B125B4218CEF9000")],
        new=("C8E27260EFD3F318D18C080CBF11C7E6", "A942190365204A21409EB28B52BF9160"), new_cipher="AES-128", key_id=None),
    "DE": dict(
        dg14="6E82019A31820196300D060804007F00070202020201013012060A04007F0007020204020202010202010D3012060A04007F00"
             "07020204060202010202010D3013060A04007F00070202030202020101020200C330820146060904007F00070202010230820133"
             + BP256_EXPLICIT + "034200047036BC5D0BCF31913B59103BB6F2C0C98C99EF4C19B9517340B76BFE4EE2194C76C3F3314E021D"
             "4B092DB5A32AB7D6E297F2FBEAE45AA28DEFC4DA750FEAD54E020200C3",
        cipher="AES-128", ks=("CC86415F2ED7E8FD663B754265695AE1", "581E84B8EE06C4D3EEE30461498D7FB3"), ssc=0xBA,
        sk=0x84A5145885678EE9307C28C52736896267511203B7B8009C5FE27ABCBAECDCAA,
        trace=[("0C2241A41D871101980953D37F67558690045D78A853B18A8E08929767A2CEF172E200", "990290008E08FC873EBB62219C8A9000"),
               ("0C8600006087510161912C367A6322D24AA1D4522DC47A7345369257672DF1D1163D506EB6489395D8083FAD393A394297CE87"
                "03C42F22C864C1F4C8E70EE1CF9B497ACF6579190D90F36CF9E16FE2149FF57247285D9E1E9701008E08A1D7A16EFBFD932C00",
                "87110123E7159AC9B0EF92CE1F6755B89697E3990290008E088972F1595E1508C29000"),
               ("0CA4020C1D871101FAD37EADBCDE7E6A0833035A9FFF5B708E0836560BBCE1FECD5F00", "990290008E0829D0E1EBBB61BE7A9000")],
        new=("AF0EEDB52E87B945FC5503B1C6875C1C", "CEB85BEDCECFF1DD1E25DFB672C4A5BF"), new_cipher="AES-128", key_id=0xC3),
    "MY": dict(
        dg14="6E82016A3182016630820142060904007F00070202010230820133" + BP256_EXPLICIT +
             "03420004A04F85AFDFC316FB5E9F33F94CA45837D20D9D91AD5002307C3F124B6EF5B92565D018A6B7F69DB73976BFBB427875"
             "7405C64E96104D161649E8A94078EAEFCE300F060A04007F00070202030201020101300D060804007F0007020202020101",
        cipher="3DES", ks=("896de34a942c7076fec207207acb79c2", "d6c47ff4677ac8ae91cb49f4ce673432"), ssc=0x9646c154bfb7be79,
        sk=0x3a31f4e18418312fcb40f3efbe719182c046a9719e1ed8c376197aa9e8ed7465,
        trace=[("0C2241A41D8711019D1E70C6F5EE06A7CA1E98FBF5C945C98E087AC379DC78702E6300", "990290008E08643C2C3AC66585E49000"),
               ("0C86000058874901A9C6BF370C62AA43CA1EC9B97071727654822361DEB8BA4E5719AA05D8E86AA36164DFA5E506DBF60DC741"
                "8858179FD25DAC5E9E49393DDE37E29652444941B562142AB5F19AEA919701008E085083316637060C4D00",
                "87090108166157B375BC1E990290008E08FF8A254C50179F519000"),
               ("0CA4020C1587090106904D37288D69488E08A13B74E87B87E44600", "990290008E08C2BF01FDDD1D599D9000")],
        new=("75b95468910849cdf1a1a2ae5452ce9b", "cd0bef85d5a82a7ae0fbc12368a41fef"), new_cipher="3DES", key_id=None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_chip_authentication_sessions(name):
    case = CASES[name]
    infos = secinfo.parse_dg14(H(case["dg14"]))
    info, key, curve, point = chipauth.choose_ca(infos)
    assert curve.name == "brainpoolP256r1"
    ca = chipauth.ChipAuthentication(info, key, curve, point, scalars=iter([case["sk"]]))
    assert ca.key_id == case["key_id"] and ca.cipher == case["new_cipher"]
    sm = SecureMessaging(H(case["ks"][0]), H(case["ks"][1]), case["ssc"], case["cipher"])
    (mse, mse_answer), (ga, ga_answer), (select, select_answer) = case["trace"]
    assert sm.protect(ca.mse_set_at()).encode() == H(mse)
    sm.unprotect(Response.decode(H(mse_answer)), "MSE:Set AT")
    assert sm.protect(ca.general_authenticate()).data == Command.decode(H(ga)).data
    answer = sm.unprotect(Response.decode(H(ga_answer)), "GENERAL AUTHENTICATE").data
    assert answer == H("7C00")
    new = ca.session(answer)
    assert (new.ks_enc, new.ks_mac, new.ssc, new.cipher) == (H(case["new"][0]), H(case["new"][1]), 0, case["new_cipher"])
    assert new.protect(Command.decode(H("00A4020C02010E"))).encode() == H(select)
    assert new.unprotect(Response.decode(H(select_answer)), "SELECT DG14").sw == 0x9000
    assert new.ssc == 2


def test_dg14_without_a_usable_key():
    with pytest.raises(chipauth.ChipAuthenticationError, match="no chip-authentication key"):
        chipauth.choose_ca(secinfo.SecurityInfoSet(b""))


# ------------------------------------------------------------------ against the simulated chip
from tests.chip_helpers import LINES, MRZ_KEY, AppletLink as Link  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"))


def _applet(doc):
    from simulators.chip.documents import chip_keys
    return EmrtdApplet(doc.files, MRZ_KEY, ca_key=chip_keys(doc)["ca_key"])


@pytest.mark.parametrize("pace", [None, "ECDH-GM-AES-128/13", "ECDH-GM-3DES/12"])
def test_genuine_chip_passes_chip_authentication_and_clone_fails(pki, pace):
    doc = pki.personalise(LINES, pace=pace, data_groups=(1, 2, 14))
    result = read_document(Link(_applet(doc)), MRZ_KEY, names=["DG1", "DG2"])
    assert result.chip_auth.passed and result.chip_auth.method.startswith("CA-ECDH-AES-128"), result.chip_auth
    assert {k: result.files[k] for k in ("DG1", "DG2", "DG14", "EF.SOD")} == {
        k: doc.files[k] for k in ("DG1", "DG2", "DG14", "EF.SOD")}
    assert "CA" in result.timings_s
    store = trust.TrustStore.from_dir(pki.trust_dir)
    groups_read = {int(k[2:]): v for k, v in result.files.items() if k.startswith("DG")}
    assert pa.verify(result.files["EF.SOD"], groups_read, store, mrz=mrzmod.parse(LINES)).passed

    clone = clone_chip(doc)
    result = read_document(Link(_applet(clone)), MRZ_KEY, names=["DG1", "DG2"])
    assert result.chip_auth.status == "failed", result.chip_auth
    assert result.files["DG2"] == doc.files["DG2"]  # the read went on after re-opening the chip


@pytest.mark.parametrize("ca,cipher", [("ecdh-brainpoolP256r1", "3DES"), ("ecdh-secp384r1", "AES-256"),
                                       ("dh-2048", "AES-128"), ("dh-1024", "3DES"), ("dh-2048", "AES-192")])
def test_chip_authentication_with_dh_and_every_cipher(pki, ca, cipher):
    """CA v1 with DH (RFC 5114 groups, X9.42 keys in DG14) as well as ECDH, 3DES and AES; over BAC
    and over PACE; the genuine chip passes, a clone (another key, same DG14) fails."""
    for pace in (None, "ECDH-GM-AES-128/13"):
        doc = pki.personalise(LINES, pace=pace, data_groups=(1, 2, 14), ca=ca, ca_cipher=cipher)
        result = read_document(Link(_applet(doc)), MRZ_KEY, names=["DG1"])
        agreement = "DH" if ca.startswith("dh") else "ECDH"
        assert result.chip_auth.passed, result.chip_auth
        assert result.chip_auth.method.startswith(f"CA-{agreement}-{cipher}"), result.chip_auth.method
        assert result.files["EF.SOD"] == doc.files["EF.SOD"]  # read on under the CA keys
        clone = read_document(Link(_applet(clone_chip(doc))), MRZ_KEY, names=["DG1"])
        assert clone.chip_auth.status == "failed" and clone.files["DG1"] == doc.files["DG1"]


def test_chip_authentication_can_be_skipped(pki):
    doc = pki.personalise(LINES, data_groups=(1, 2, 14))
    link = Link(_applet(doc))
    result = read_document(link, MRZ_KEY, names=["DG1"], chip_authentication=False)
    assert result.chip_auth is None and not any(raw[1] == 0x22 for raw in link.sent)
