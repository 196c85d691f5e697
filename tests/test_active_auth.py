"""Active Authentication: ISO/IEC 9796-2 known answers (ICAO worked example, gmrtd's trailer vectors),
a real RSA-1792 AA exchange over 3DES secure messaging, ECDSA plain and DER on several curves, the
hash from DG14, and the simulated chip (genuine passes, a cloned chip fails)."""
import hashlib
import secrets

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from drivers.emrtd import aa, groups
from drivers.emrtd.apdu import Command, Response
from drivers.emrtd.reader import read_document
from drivers.emrtd.sm import SecureMessaging
from icao9303 import lds, mrz as mrzmod, pa, secinfo, tlv, trust
from simulators.chip.applet import EmrtdApplet
from simulators.chip.card_auth import AaSigner
from simulators.testpki import TestPki, clone_chip

H = bytes.fromhex


# ------------------------------------------------------------------ ISO/IEC 9796-2 recovered messages
def test_icao_worked_example_message_representative():
    """ICAO 9303-11 AA worked example (RSA-1024, SHA-1, trailer BC): F = 6A || M1 || H || BC."""
    rnd = H("F173589974BF40C6")
    m1 = H("9D2784A67F8E7C659973EA1AEA25D95B6C8F91E5002F369F0FBDCE8A3CEC1991B543F1696546C5524CF23A5303CD6C98"
           "599F40B79F377B5F3A1406B3B4D8F96784D23AA88DB7E1032A405E69325FA91A6E86F5C71AEA978264C4A207446DAD4E"
           "7292E2DCDA3024B47DA8")
    digest = H("C063AA1E6D22FBD976AB0FE73D94D2D9C6D88127")
    assert hashlib.sha1(m1 + rnd).digest() == digest
    f = b"\x6A" + m1 + digest + b"\xBC"
    assert len(f) == 128
    ok, why, name = aa._check_9796_2(f, rnd)
    assert ok and name == "SHA-1 (trailer BC)"
    assert not aa._check_9796_2(f, H("F173589974BF40C7"))[0]


M1 = H("1234567890ABCDEF1234567890ABCDEF11223344")
TRAILER_VECTORS = [  # gmrtd activeauth TestDecodeF: challenge 0102030405060708
    ("e9b287952a913cc5b60ff74ecfc87e40e81563b1BC", "SHA-1 (trailer BC)"),
    ("aefc05e88f48eb88d367ba3dacb7d6a8543ec02bd315e47ddbe2045d38CC", "SHA-224 (trailer 38CC)"),
    ("783980d44fd3a80f0e4210eb9c73ea399932062d465438f8e1ff13377de8308934CC", "SHA-256 (trailer 34CC)"),
    ("8e0873b0baf595a777b497779981bd94dda3a81fd61cf2d526ab490f2d6cbcecc6eab5804df4e0a70169d4d0d6c07e7536CC",
     "SHA-384 (trailer 36CC)"),
    ("968304e09f0c0ec86be4ade4b82d97d04283e3652b61193856c9ede1dac8962b3da9580fd77e9f9ef18a24c517d8d3b05f4eeb"
     "177e990ae1e80895c8bb28f51635CC", "SHA-512 (trailer 35CC)"),
]


@pytest.mark.parametrize("tail,name", TRAILER_VECTORS)
def test_every_trailer(tail, name):
    ok, why, found = aa._check_9796_2(b"\x6A" + M1 + H(tail), H("0102030405060708"))
    assert ok and found == name, why


@pytest.mark.parametrize("f,reason", [("6B000000", "header 6A"), ("6A000000", "trailer"), ("6A0000CC", "trailer"),
                                      ("6Ab287952a913cc5b60ff74ecfc87e40e81563b1BC", "does not match")])
def test_malformed_representatives(f, reason):
    ok, why, _ = aa._check_9796_2(H(f), H("0102030405060708"))
    assert not ok and reason in why


# ------------------------------------------------------------------ a real passport (gmrtd TestDoActiveAuth)
REAL_DG15 = H(
    "6F8201023081FF300D06092A864886F70D01010105000381ED003081E90281E100BB8F93F4DC95E205CDA17C6927AB1E365B13065D03"
    "CD12E0FCE95D96840529453202F56CC4C13F77CD062930C8BC89A2873B257045C286E601CF3C09323A53103314902804AA10A314628C"
    "E222206A8866946A36B442041BB54AC81E6855DD1D6E16101833D65A191C20AC8B33B8A1A32920F46043F8031CF2BC17417030865FC5"
    "BE5A39DEE423BCBA3CA8177168EB23CFE01BA43EC87711B1CFFF85DB46F300DD8AE317B50D543B573E119E23AF7070D0B2FED6A3B231"
    "3A5EC02A531AAED1741F4390D1013E2A0F081EAC5DC8B0A1B2C6BDB1206F08D30E3643E1E5BDF536110203010001")
REAL_RND = H("96302b0f3d7e7864")
REAL_CAPDU = H("0c88000020871101ed7f8cb47a4eea086324a7f9dd7427809701008e0897f54bae49aa71f800")
REAL_RAPDU = H(
    "8781e901d04ca80f527df94f4a430d3d6e6cb6c2af4c6756c068a93132d147fa27833125304132981b8bd8009448e89f259eec8552b5"
    "4285cef9d8f1b7fb31b9f279221c7e925f4951811f3fe2e01d76e68dbc7cde9c873c5f61862f3c5469792a72f92c8943b890436f5e9f"
    "eaead9f2a361fcd7a615493d1b3519865f32ee9a125886588eb21fee0e709353d0731139fdc958d6b2127fad6947b438998b52681980"
    "3f70f78614cd42f4a6619c6af95dfd2ab09bedf71e707abc39a250aee68006d522ad37d159674984a07d11c001022c853aeb7acdb059"
    "ede5721a3b9f20441bda7e242ee8df1369d25316990290008e08fd2493147866f0ed9000")
REAL_SIGNATURE_HEAD = H("474256306840c0ab")


class _Session:
    """A ChipSession stand-in over a recorded exchange."""

    def __init__(self, sm, exchanges):
        self.sm, self.exchanges = sm, list(exchanges)

    def send(self, cmd, what):
        protected = self.sm.protect(cmd)
        expected, answer = self.exchanges.pop(0)
        assert protected.data == Command.decode(expected).data  # same objects and MAC
        return self.sm.unprotect(Response.decode(answer), what)


def test_real_rsa_1792_exchange_over_3des_sm():
    sm = SecureMessaging(H("b99d546108eaa251570876b6d3456dce"), H("e3857ca24946251c151c540e13f2cd51"), 0xCC)
    session = _Session(sm, [(REAL_CAPDU, REAL_RAPDU)])
    result = aa.authenticate(session, {"DG15": REAL_DG15}, challenge=REAL_RND)
    assert result.passed, result.reason
    assert result.algorithm == "RSA-1792 ISO 9796-2 SHA-256 (trailer 34CC)"
    assert sm.ssc == 0xCE


def test_real_signature_against_another_challenge_fails():
    sm = SecureMessaging(H("b99d546108eaa251570876b6d3456dce"), H("e3857ca24946251c151c540e13f2cd51"), 0xCC)
    sm.protect(aa.internal_authenticate(REAL_RND))
    signature = sm.unprotect(Response.decode(REAL_RAPDU), "INTERNAL AUTHENTICATE").data
    assert signature[:8] == REAL_SIGNATURE_HEAD and len(signature) == 224
    spki = lds.parse_dg15(REAL_DG15)
    assert aa.verify(spki, REAL_RND, signature).passed
    failed = aa.verify(spki, H("96302b0f3d7e7865"), signature)
    assert failed.status == "failed" and "does not match" in failed.reason


# ------------------------------------------------------------------ generated keys
def _spki(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("bits,hash_name,two_byte", [(1024, "sha1", False), (1024, "sha1", True),
                                                     (2048, "sha256", True), (2048, "sha512", True),
                                                     (1536, "sha384", True), (2048, "sha224", True)])
def test_rsa_9796_2_roundtrip(bits, hash_name, two_byte):
    key = rsa.generate_private_key(65537, bits)
    signer = AaSigner(key, hash_name, two_byte_trailer=two_byte)
    rnd = secrets.token_bytes(8)
    signature = signer.sign(rnd, secrets.token_bytes)
    result = aa.verify(_spki(key), rnd, signature)
    assert result.passed, result.reason
    assert ("trailer BC" in result.algorithm) == (not two_byte)
    assert not aa.verify(_spki(rsa.generate_private_key(65537, bits)), rnd, signature).passed


CURVES = {"brainpoolP256r1": ec.BrainpoolP256R1(), "secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1(),
          "brainpoolP512r1": ec.BrainpoolP512R1(), "secp521r1": ec.SECP521R1()}
HASHES = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


@pytest.mark.parametrize("curve", sorted(CURVES))
@pytest.mark.parametrize("der", [False, True])
def test_ecdsa_plain_and_der(curve, der):
    key = ec.generate_private_key(CURVES[curve])
    rnd = secrets.token_bytes(8)
    signature = AaSigner(key, "sha256", der_signature=der).sign(rnd, secrets.token_bytes)
    info = secinfo.ActiveAuthenticationInfo(1, "1.2.840.10045.4.3.2")
    result = aa.verify(_spki(key), rnd, signature, info)
    assert result.passed, result.reason
    assert result.algorithm == f"ECDSA {curve} SHA-256 {'DER' if der else 'plain'}"
    assert not aa.verify(_spki(key), bytes(8), signature, info).passed


def test_ecdsa_hash_not_named_is_found_and_reported():
    key = ec.generate_private_key(ec.SECP384R1())  # P-384 with SHA-256, as the Portuguese card does
    rnd = secrets.token_bytes(8)
    signature = AaSigner(key, "sha256").sign(rnd, secrets.token_bytes)
    result = aa.verify(_spki(key), rnd, signature)
    assert result.passed and "hash not named in DG14" in result.algorithm


def test_ecdsa_hash_named_by_dg14_is_binding():
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    rnd = secrets.token_bytes(8)
    signature = AaSigner(key, "sha384").sign(rnd, secrets.token_bytes)
    result = aa.verify(_spki(key), rnd, signature, secinfo.ActiveAuthenticationInfo(1, "1.2.840.10045.4.3.2"))
    assert result.status == "failed" and "SHA-256 named in DG14" in result.reason


def test_ecdsa_on_brainpool_p320_and_explicit_parameters():
    """brainpoolP320r1 (not in `cryptography`): our own signer and a DG15 key with explicit parameters."""
    from asn1crypto import keys as akeys
    curve = groups.CURVES_BY_NAME["brainpoolP320r1"]
    d = curve.random_scalar()
    q = curve.mul(d, curve.generator)
    rnd = secrets.token_bytes(8)
    e = int.from_bytes(hashlib.sha256(rnd).digest(), "big")
    while True:
        k = curve.random_scalar()
        r = curve.mul(k, curve.generator)[0] % curve.n
        s = pow(k, -1, curve.n) * (e + r * d) % curve.n
        if r and s:
            break
    size = curve.order_size
    signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    explicit = akeys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec", "parameters": akeys.ECDomainParameters(name="specified", value={
            "version": "ecdpVer1",
            "field_id": {"field_type": "prime_field", "parameters": curve.p},
            "curve": {"a": curve.a.to_bytes(curve.size, "big"), "b": curve.b.to_bytes(curve.size, "big")},
            "base": curve.encode(curve.generator), "order": curve.n, "cofactor": 1})},
        "public_key": curve.encode(q)}).dump()
    named = akeys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec", "parameters": akeys.ECDomainParameters(name="named", value=curve.oid)},
        "public_key": curve.encode(q)}).dump()
    for spki in (explicit, named):
        result = aa.verify(spki, rnd, signature, secinfo.ActiveAuthenticationInfo(1, "0.4.0.127.0.7.1.1.4.1.3"))
        assert result.passed and result.algorithm == "ECDSA brainpoolP320r1 SHA-256 plain", result.reason


def test_unusable_dg15_is_a_failure_not_a_crash():
    result = aa.verify(b"\x30\x03\x02\x01\x00", bytes(8), bytes(64))
    assert result.status == "failed" and "DG15 key" in result.reason


# ------------------------------------------------------------------ against the simulated chip
from tests.chip_helpers import LINES, MRZ_KEY, AppletLink as Link  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"))


def _applet(doc, **kw):
    key = serialization.load_pem_private_key(doc.aa_private_key, None)
    hash_name = doc.aa_hash
    return EmrtdApplet(doc.files, MRZ_KEY, aa=AaSigner(key, hash_name, **kw))


@pytest.mark.parametrize("kind,pace", [("rsa-2048", "ECDH-GM-AES-128/13"), ("rsa-1024", None),
                                       ("ecdsa-brainpoolP256r1", "ECDH-GM-AES-256/12"),
                                       ("ecdsa-secp384r1", None)])
def test_genuine_chip_passes_and_clone_fails(pki, kind, pace):
    doc = pki.personalise(LINES, pace=pace, aa=kind)
    result = read_document(Link(_applet(doc)), MRZ_KEY, names=["DG1", "DG2"])
    assert "DG15" in result.files and result.active_auth.passed, result.active_auth.reason
    assert list(result.timings_s)[-1] == "AA"
    store = trust.TrustStore.from_dir(pki.trust_dir)
    groups_read = {int(k[2:]): v for k, v in result.files.items() if k.startswith("DG")}
    checked = pa.verify(result.files["EF.SOD"], groups_read, store, mrz=mrzmod.parse(LINES))
    assert checked.passed and any(c.name == "dg15_hash" and c.status == "passed" for c in checked.checks)

    clone = clone_chip(doc)
    result = read_document(Link(_applet(clone)), MRZ_KEY, names=["DG1", "DG2"])
    assert result.files == {k: v for k, v in doc.files.items() if k in result.files}
    assert result.active_auth.status == "failed"
    # the clone's data still passes passive authentication: only AA tells it apart
    groups_read = {int(k[2:]): v for k, v in result.files.items() if k.startswith("DG")}
    assert pa.verify(result.files["EF.SOD"], groups_read, store, mrz=mrzmod.parse(LINES)).passed


def test_chip_without_aa_key_fails_aa(pki):
    doc = pki.personalise(LINES, aa="rsa-1024")
    result = read_document(Link(EmrtdApplet(doc.files, MRZ_KEY)), MRZ_KEY)
    assert result.active_auth.status == "failed" and "6D00" in result.active_auth.reason


def test_rsa_bc_trailer_chip(pki):
    doc = pki.personalise(LINES, aa="rsa-1024")
    key = serialization.load_pem_private_key(doc.aa_private_key, None)
    applet = EmrtdApplet(doc.files, MRZ_KEY, aa=AaSigner(key, "sha1", two_byte_trailer=False))
    result = read_document(Link(applet), MRZ_KEY)
    assert result.active_auth.passed and "trailer BC" in result.active_auth.algorithm


def test_no_dg15_is_not_offered(pki):
    result = read_document(Link(EmrtdApplet(pki.personalise(LINES).files, MRZ_KEY)), MRZ_KEY)
    assert result.active_auth.status == "not_offered" and "AA" not in result.timings_s


def test_active_auth_can_be_skipped(pki):
    doc = pki.personalise(LINES, aa="rsa-1024")
    link = Link(_applet(doc))
    result = read_document(link, MRZ_KEY, names=["DG1"], active_auth=False)
    assert result.active_auth is None and "DG15" not in result.files
    assert not any(raw[1] == 0x88 for raw in link.sent)


def test_challenges_are_fresh(pki):
    doc = pki.personalise(LINES, aa="rsa-1024")
    seen = {read_document(Link(_applet(doc)), MRZ_KEY, names=["DG1"]).active_auth.challenge for _ in range(3)}
    assert len(seen) == 3 and all(len(c) == 8 for c in seen)


def test_ecdsa_aa_document_carries_its_hash_in_dg14(pki):
    doc = pki.personalise(LINES, aa="ecdsa-secp256r1", aa_hash="sha384")
    info = secinfo.parse_dg14(doc.files["DG14"]).active_auth
    assert info.hash_name == "sha384"
    result = read_document(Link(_applet(doc)), MRZ_KEY)
    assert result.active_auth.passed and result.active_auth.algorithm == "ECDSA secp256r1 SHA-384 plain"


# ------------------------------------------------------------------ chip data never raises
from hypothesis import given, settings, strategies as st  # noqa: E402

_RSA = _spki(rsa.generate_private_key(65537, 1024))
_EC = _spki(ec.generate_private_key(ec.BrainpoolP256R1()))


@settings(max_examples=200, deadline=None)
@given(signature=st.binary(max_size=140), challenge=st.binary(min_size=8, max_size=8), rsa_key=st.booleans(),
       named=st.booleans())
def test_verify_never_raises_on_chip_data(signature, challenge, rsa_key, named):
    info = secinfo.ActiveAuthenticationInfo(1, "1.2.840.10045.4.3.2") if named else None
    result = aa.verify(_RSA if rsa_key else _EC, challenge, signature, info)
    assert result.status == "failed"


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_verify_with_garbage_key_never_raises(spki):
    assert aa.verify(spki, bytes(8), bytes(64)).status == "failed"
