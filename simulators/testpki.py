"""Test PKI and document personalisation for the chip simulator and the tests.

`TestPki.create(dir, country="UTO")` makes, and stores under `dir`:

  csca_rsa        RSA-3072 CSCA (sha256WithRSAEncryption), in the trust directory
  csca_ec         brainpoolP384r1 CSCA (ecdsa-with-SHA384), in the trust directory
  csca_foreign    RSA-2048 CSCA of another state (default NLD), in the trust directory
  csca_rogue      RSA-2048 CSCA with the *same subject* as csca_rsa, NOT trusted
  ds_rsa          DS under csca_rsa; SODs signed RSA PKCS#1 v1.5 / SHA-256
  ds_rsa_pss      DS under csca_rsa, itself signed with RSASSA-PSS; SODs signed RSASSA-PSS
  ds_ec           brainpoolP256r1 DS under csca_ec; SODs signed ECDSA / SHA-256
  ds_p256         NIST P-256 DS under csca_ec; SODs signed ECDSA / SHA-384
  ds_expired      DS under csca_rsa whose validity ended yesterday
  ds_revoked      DS under csca_rsa listed in csca_rsa's CRL
  ds_rogue        DS under csca_rogue
  ds_foreign      DS under csca_foreign (country of the other state)
  ml_signer       master-list signer under csca_rsa
  link_rsa_v2     CSCA link certificate: csca_rsa's subject with a new key, signed by csca_rsa's key
  link_rsa_v3     the next rollover: another new key, signed by link_rsa_v2's key
  ds_linked       DS under the newest key (link_rsa_v3): DS → link v3 → link v2 → csca_rsa
  ds_no_sign_usage DS under csca_rsa whose keyUsage lacks digitalSignature
  ds_zero_serial  DS under csca_rsa with serial number 0
  CRLs for the three trusted CSCAs, and an ICAO CSCA master list signed by ml_signer.

Files: ``trust/`` (CSCA certificates + CRLs: pass it as ``--csca``), ``masterlist.ml``,
``certs/*.pem``, ``keys/*.pem`` (unencrypted: a test PKI), ``pki.json``.

`pki.personalise(mrz_lines, face_jpeg, variant=...)` returns a `Document` whose files are the
chip's EF.COM, DG1, DG2 (+ DG11, DG12, DG14, DG15 on request) and EF.SOD.  Variants and the
passive-authentication check each one fails (`EXPECTED_FAILURE`):

  genuine           -
  tampered_dg1      dg1_hash       (DG1 and the printed MRZ altered after signing)
  tampered_dg2      dg2_hash       (face image swapped after signing)
  wrong_signature   sod_signature  (SOD signature bytes corrupted)
  unknown_csca      csca_chain     (DS issued by a CSCA that is not trusted)
  expired_ds        ds_validity
  revoked_ds        revocation
  country_mismatch  issuing_state  (document of `country` signed by another state's DS)
  bad_key_usage     key_usage      (DS keyUsage without digitalSignature)
  signed_outside_ds_validity  signing_time  (SOD signingTime before the DS certificate's validity)
  zero_serial_ds    ds_certificate (DS certificate with serial number 0: refused)

Signer "rsa-linked" signs with ds_linked: a genuine document whose chain runs through two CSCA
link certificates (the trust directory and the master list carry them, as ICAO master lists do).

Chip side (`personalise(..., pace=..., aa=...)`): `pace` writes EF.CardAccess with one PACEInfo per
entry ("ECDH-GM-AES-128/13": agreement, mapping, cipher, parameter id; default parameter id 13
for ECDH, 0 for DH); `aa` picks the Active Authentication key DG15 holds ("rsa-2048", "rsa-1024",
"ecdsa-brainpoolP256r1", "ecdsa-secp256r1", "ecdsa-secp384r1", ...); an ECDSA key adds DG14 with
its ActiveAuthenticationInfo (ecdsa-with-SHA256, or `aa_hash`). `clone_chip(doc)` is the same
document on a chip with another AA key: the data and signatures copied, not the private key.
`Document.write(dir, chip_secrets=True)` adds the chip's AA key (aa_key.pem) for the simulator.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

from asn1crypto import algos, cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from icao9303 import countries, lds, secinfo, tlv
from icao9303 import mrz as _mrz
from icao9303.pa import ID_ICAO_LDS_SECURITY_OBJECT, LdsSecurityObject
from icao9303.trust import ID_ICAO_CSCA_MASTER_LIST, CscaMasterList

AA_KEYS = ("rsa-1024", "rsa-2048", "rsa-3072", "ecdsa-brainpoolP256r1", "ecdsa-brainpoolP384r1",
           "ecdsa-brainpoolP512r1", "ecdsa-secp256r1", "ecdsa-secp384r1", "ecdsa-secp521r1")
_EC_CURVES = {"brainpoolP256r1": ec.BrainpoolP256R1, "brainpoolP384r1": ec.BrainpoolP384R1,
              "brainpoolP512r1": ec.BrainpoolP512R1, "secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1,
              "secp521r1": ec.SECP521R1}
_ECDSA_OIDS = {"sha1": "1.2.840.10045.4.1", "sha224": "1.2.840.10045.4.3.1", "sha256": "1.2.840.10045.4.3.2",
               "sha384": "1.2.840.10045.4.3.3", "sha512": "1.2.840.10045.4.3.4"}
AA_KEY_FILE = "aa_key.pem"
CAM_KEY_FILE = "cam_key.pem"
CA_KEY_FILE = "ca_key.pem"
_PARAMETER_CURVES = {8: ec.SECP192R1, 10: ec.SECP224R1, 12: ec.SECP256R1, 13: ec.BrainpoolP256R1,
                     15: ec.SECP384R1, 16: ec.BrainpoolP384R1, 17: ec.BrainpoolP512R1, 18: ec.SECP521R1}

VARIANTS = ("genuine", "tampered_dg1", "tampered_dg2", "wrong_signature", "unknown_csca",
            "expired_ds", "revoked_ds", "country_mismatch", "bad_key_usage", "signed_outside_ds_validity",
            "zero_serial_ds")
EXPECTED_FAILURE = {"tampered_dg1": "dg1_hash", "tampered_dg2": "dg2_hash",
                    "wrong_signature": "sod_signature", "unknown_csca": "csca_chain",
                    "expired_ds": "ds_validity", "revoked_ds": "revocation",
                    "country_mismatch": "issuing_state", "bad_key_usage": "key_usage",
                    "signed_outside_ds_validity": "signing_time", "zero_serial_ds": "ds_certificate"}
SIGNERS = {"rsa": "ds_rsa", "rsa-pss": "ds_rsa_pss", "ecdsa": "ds_ec", "ecdsa-p256": "ds_p256",
           "rsa-linked": "ds_linked"}
_VARIANT_SIGNER = {"unknown_csca": "ds_rogue", "expired_ds": "ds_expired",
                   "revoked_ds": "ds_revoked", "country_mismatch": "ds_foreign",
                   "bad_key_usage": "ds_no_sign_usage", "zero_serial_ds": "ds_zero_serial"}
LINKS = ("link_rsa_v2", "link_rsa_v3")   # CSCA link certificates of csca_rsa, oldest first
PKI_LAYOUT = 2   # pki.json "layout": a stored PKI of an older layout is made again

_DAY = _dt.timedelta(days=1)


class TestPkiError(Exception):
    """Misuse of the test PKI (unknown variant, signer, missing files)."""

    __test__ = False


@dataclass
class Document:
    files: dict[str, bytes]               # "EF.COM", "DG1", "DG2", ..., "EF.SOD"
    mrz_lines: list[str]                  # what is printed on the data page
    variant: str
    signer: str                           # name of the DS that signed the SOD
    ds_certificate: bytes                 # DER
    aa_private_key: bytes | None = None   # PEM, when DG15 was written
    ca_private_key: bytes | None = None   # PEM, when DG14 was written
    face_jpeg: bytes = b""
    aa_hash: str = "sha256"               # the hash the chip's AA signs with
    cam_private_key: bytes | None = None  # PEM, when EF.CardSecurity was written (PACE-CAM)

    @property
    def data_groups(self) -> dict[int, bytes]:
        return {int(k[2:]): v for k, v in self.files.items() if k.startswith("DG")}

    @property
    def sod(self) -> bytes:
        return self.files["EF.SOD"]

    @property
    def expected_failure(self) -> str | None:
        return EXPECTED_FAILURE.get(self.variant)

    def write(self, directory, *, chip_secrets: bool = False) -> Path:
        """Write the files as `egate passport read --out` names them (EF.COM, DG1.bin, SOD.bin);
        `chip_secrets` adds the chip's AA private key (aa_key.pem) for `python -m simulators.chip`."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (d / lds.BY_NAME[name].out_name).write_bytes(data)
        (d / "mrz.txt").write_text("\n".join(self.mrz_lines) + "\n")
        if chip_secrets and self.aa_private_key:
            (d / AA_KEY_FILE).write_bytes(self.aa_private_key)
        if chip_secrets and self.cam_private_key:
            (d / CAM_KEY_FILE).write_bytes(self.cam_private_key)
        if chip_secrets and self.ca_private_key:
            (d / CA_KEY_FILE).write_bytes(self.ca_private_key)
        return d


def _pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(country2: str, cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country2),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ski(key) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


class TestPki:
    """A small national PKI plus the rogue and foreign parts the forged variants need."""

    __test__ = False   # not a pytest test class

    def __init__(self, directory: Path, country: str, foreign_country: str,
                 keys: dict, certs: dict, crls: dict):
        self.dir = Path(directory)
        self.country = country
        self.foreign_country = foreign_country
        self.keys = keys          # name -> private key
        self.certs = certs        # name -> x509.Certificate
        self.crls = crls          # csca name -> x509.CertificateRevocationList
        self.layout = PKI_LAYOUT

    # ----------------------------------------------------------------- creation
    @classmethod
    def create(cls, directory, country: str = "UTO", *, foreign_country: str = "NLD",
               now: _dt.datetime | None = None) -> "TestPki":
        now = (now or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0)
        c2 = countries.alpha2(country)
        f2 = countries.alpha2(foreign_country)
        if not c2 or not f2:
            raise TestPkiError(f"need ISO alpha-2 codes for {country} and {foreign_country}")
        org = f"{country} Test PKI"
        keys: dict = {}
        certs: dict = {}

        def key(kind):
            if kind == "rsa3072":
                return rsa.generate_private_key(65537, 3072)
            if kind == "rsa2048":
                return rsa.generate_private_key(65537, 2048)
            if kind == "bp384":
                return ec.generate_private_key(ec.BrainpoolP384R1())
            if kind == "bp256":
                return ec.generate_private_key(ec.BrainpoolP256R1())
            if kind == "p256":
                return ec.generate_private_key(ec.SECP256R1())
            raise ValueError(kind)

        def sign_args(issuer_key, pss=False):
            if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
                h = hashes.SHA384() if issuer_key.curve.key_size >= 384 else hashes.SHA256()
                return {"algorithm": h}
            if pss:
                return {"algorithm": hashes.SHA256(),
                        "rsa_padding": padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                   salt_length=32)}
            return {"algorithm": hashes.SHA256()}

        def csca(name, kind, subject):
            k = key(kind)
            b = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                 .public_key(k.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(now - 5 * 365 * _DAY).not_valid_after(now + 15 * 365 * _DAY)
                 .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                 .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                              False, False), critical=True)
                 .add_extension(_ski(k), critical=False))
            keys[name], certs[name] = k, b.sign(k, **sign_args(k))

        def link(name, previous):
            """A CSCA link certificate: the CSCA's subject, a new key, signed by the previous key."""
            k = key("rsa3072")
            pk, pc = keys[previous], certs[previous]
            b = (x509.CertificateBuilder().subject_name(pc.subject).issuer_name(pc.subject)
                 .public_key(k.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(now - 200 * _DAY).not_valid_after(now + 14 * 365 * _DAY)
                 .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                 .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                              False, False), critical=True)
                 .add_extension(_ski(k), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pk.public_key()),
                                critical=False))
            keys[name], certs[name] = k, b.sign(pk, **sign_args(pk))

        def ds(name, kind, issuer, subject, nb, na, pss=False, sign_usage=True):
            k = key(kind)
            ik, ic = keys[issuer], certs[issuer]
            b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ic.subject)
                 .public_key(k.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(nb).not_valid_after(na)
                 .add_extension(x509.KeyUsage(sign_usage, not sign_usage, False, False, False, False, False,
                                              False, False), critical=True)
                 .add_extension(_ski(k), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                     ik.public_key()), critical=False))
            keys[name], certs[name] = k, b.sign(ik, **sign_args(ik, pss))

        csca_subject = _name(c2, f"CSCA {country}", org)
        csca("csca_rsa", "rsa3072", csca_subject)
        csca("csca_ec", "bp384", _name(c2, f"CSCA {country} brainpool", org))
        csca("csca_foreign", "rsa2048", _name(f2, f"CSCA {foreign_country}",
                                              f"{foreign_country} Test PKI"))
        csca("csca_rogue", "rsa2048", csca_subject)      # same name, different key: a forgery
        valid = (now - 30 * _DAY, now + 10 * 365 * _DAY)
        ds("ds_rsa", "rsa2048", "csca_rsa", _name(c2, f"DS {country} 01", org), *valid)
        ds("ds_rsa_pss", "rsa2048", "csca_rsa", _name(c2, f"DS {country} PSS", org), *valid,
           pss=True)
        ds("ds_ec", "bp256", "csca_ec", _name(c2, f"DS {country} brainpool", org), *valid)
        ds("ds_p256", "p256", "csca_ec", _name(c2, f"DS {country} P-256", org), *valid)
        ds("ds_expired", "rsa2048", "csca_rsa", _name(c2, f"DS {country} expired", org),
           now - 3 * 365 * _DAY, now - _DAY)
        ds("ds_revoked", "rsa2048", "csca_rsa", _name(c2, f"DS {country} revoked", org), *valid)
        ds("ds_rogue", "rsa2048", "csca_rogue", _name(c2, f"DS {country} 01", org), *valid)
        ds("ds_foreign", "rsa2048", "csca_foreign",
           _name(f2, f"DS {foreign_country} 01", f"{foreign_country} Test PKI"), *valid)
        ds("ml_signer", "rsa2048", "csca_rsa", _name(c2, f"Master List Signer {country}", org),
           *valid)
        link("link_rsa_v2", "csca_rsa")
        link("link_rsa_v3", "link_rsa_v2")
        ds("ds_linked", "rsa2048", "link_rsa_v3", _name(c2, f"DS {country} 02", org), *valid)
        ds("ds_no_sign_usage", "rsa2048", "csca_rsa", _name(c2, f"DS {country} no signing", org), *valid,
           sign_usage=False)
        ds("ds_zero_serial", "rsa2048", "csca_rsa", _name(c2, f"DS {country} serial 0", org), *valid)
        certs["ds_zero_serial"] = with_serial(certs["ds_zero_serial"], 0, keys["csca_rsa"])

        crls = {}
        for name, revoked in (("csca_rsa", ["ds_revoked"]), ("csca_ec", []),
                              ("csca_foreign", [])):
            b = (x509.CertificateRevocationListBuilder().issuer_name(certs[name].subject)
                 .last_update(now - _DAY).next_update(now + 365 * _DAY)
                 .add_extension(x509.CRLNumber(1), critical=False))
            for r in revoked:
                b = b.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(certs[r].serial_number)
                    .revocation_date(now - _DAY).build())
            crls[name] = b.sign(keys[name], **sign_args(keys[name]))

        pki = cls(Path(directory), country, foreign_country, keys, certs, crls)
        pki.save()
        return pki

    # ----------------------------------------------------------------- persistence
    def save(self) -> None:
        d = self.dir
        for sub in ("keys", "certs"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        for name, k in self.keys.items():
            (d / "keys" / f"{name}.pem").write_bytes(_pem(k))
        for name, c in self.certs.items():
            (d / "certs" / f"{name}.pem").write_bytes(c.public_bytes(serialization.Encoding.PEM))
        (d / "crls").mkdir(exist_ok=True)
        for name, crl in self.crls.items():
            (d / "crls" / f"{name}.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))
        self.write_trust_dir(d / "trust")
        self.write_master_list(d / "masterlist.ml")
        (d / "pki.json").write_text(json.dumps({
            "country": self.country, "foreign_country": self.foreign_country,
            "trust_dir": "trust", "master_list": "masterlist.ml",
            "variants": list(VARIANTS), "signers": SIGNERS, "layout": PKI_LAYOUT}, indent=2) + "\n")

    @classmethod
    def load(cls, directory) -> "TestPki":
        d = Path(directory)
        try:
            meta = json.loads((d / "pki.json").read_text())
            keys = {p.stem: serialization.load_pem_private_key(p.read_bytes(), None)
                    for p in (d / "keys").glob("*.pem")}
            import warnings
            with warnings.catch_warnings():  # ds_zero_serial's serial: on purpose
                warnings.simplefilter("ignore")
                certs = {p.stem: x509.load_pem_x509_certificate(p.read_bytes())
                         for p in (d / "certs").glob("*.pem")}
            crls = {p.stem: x509.load_der_x509_crl(p.read_bytes())
                    for p in (d / "crls").glob("*.crl")}
        except (OSError, ValueError, KeyError) as exc:
            raise TestPkiError(f"{d}: not a test PKI directory: {exc}") from exc
        pki = cls(d, meta["country"], meta["foreign_country"], keys, certs, crls)
        pki.layout = meta.get("layout", 1)
        return pki

    @classmethod
    def load_or_create(cls, directory, country: str = "UTO") -> "TestPki":
        d = Path(directory)
        if (d / "pki.json").exists():
            pki = cls.load(d)
            now = _dt.datetime.now(_dt.timezone.utc)
            if all(c.next_update_utc and c.next_update_utc > now + 7 * _DAY
                   for c in pki.crls.values()) and pki.country == country and pki.layout == PKI_LAYOUT:
                return pki
        return cls.create(d, country)

    def write_trust_dir(self, path, *, include_crls: bool = True,
                        include_foreign: bool = True) -> Path:
        """CSCA certificates (and CRLs) a gate trusts: give this directory as ``--csca``."""
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        names = ["csca_rsa", "csca_ec"] + (["csca_foreign"] if include_foreign else []) + \
            [n for n in LINKS if n in self.certs]
        for n in names:
            (p / f"{n}.pem").write_bytes(self.certs[n].public_bytes(serialization.Encoding.PEM))
            if include_crls and n in self.crls:
                (p / f"{n}.crl").write_bytes(
                    self.crls[n].public_bytes(serialization.Encoding.DER))
        return p

    def master_list(self) -> bytes:
        """ICAO CSCA master list (CMS SignedData) of the trusted CSCAs, signed by ml_signer."""
        from asn1crypto import x509 as ax509
        certs = [ax509.Certificate.load(self.certs[n].public_bytes(serialization.Encoding.DER))
                 for n in ("csca_rsa", "csca_ec", "csca_foreign", *LINKS) if n in self.certs]
        content = CscaMasterList({"version": 0, "cert_list": certs}).dump()
        return sign_cms(content, ID_ICAO_CSCA_MASTER_LIST, self.keys["ml_signer"],
                        self.certs["ml_signer"], "sha256")

    def write_master_list(self, path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(self.master_list())
        return p

    @property
    def trust_dir(self) -> Path:
        return self.dir / "trust"

    @property
    def master_list_path(self) -> Path:
        return self.dir / "masterlist.ml"

    # ----------------------------------------------------------------- personalisation
    def personalise(self, mrz_lines, face_jpeg: bytes | None = None, variant: str = "genuine",
                    *, signer: str = "rsa", dg2_container: str = lds.ISO19794_5,
                    data_groups=(1, 2), dg11: dict | None = None, dg12: dict | None = None,
                    hash_algorithm: str = "sha256", pace=None, aa: str | None = None,
                    aa_hash: str = "sha256", ca: str = "ecdh-brainpoolP256r1", ca_cipher: str = "AES-128") -> Document:
        """Chip files for one document.  `data_groups` may add 11, 12, 14, 15; `aa` (a key kind of
        `AA_KEYS`) adds DG15 (default rsa-2048 when 15 is asked for), ECDSA AA adds DG14;
        `pace`: PACEInfos for EF.CardAccess ("ECDH-GM-AES-128/13" or a list of them).
        `ca`: the DG14 chip-authentication key when 14 is asked for: "ecdh-<curve>" or "dh-1024" /
        "dh-2048" (RFC 5114 groups, X9.42 key); `ca_cipher`: its ChipAuthenticationInfo's cipher."""
        if variant not in VARIANTS:
            raise TestPkiError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
        if signer not in SIGNERS:
            raise TestPkiError(f"unknown signer {signer!r}; one of {', '.join(SIGNERS)}")
        lines = [x.strip() for x in mrz_lines]
        _mrz.parse(lines)      # a genuine document starts from a valid MRZ
        face = face_jpeg if face_jpeg is not None else synth_face_jpeg(
            seed=int.from_bytes(hashlib.sha256("".join(lines).encode()).digest()[:4], "big"))
        if aa is not None and aa not in AA_KEYS:
            raise TestPkiError(f"unknown AA key {aa!r}; one of {', '.join(AA_KEYS)}")
        if aa is None and 15 in data_groups:
            aa = "rsa-2048"
        ecdsa_aa = aa is not None and aa.startswith("ecdsa-")
        dgs = sorted(set(data_groups) | {1, 2} | ({15} if aa else set()) | ({14} if ecdsa_aa else set()))
        files: dict[str, bytes] = {"EF.COM": lds.build_com(dgs)}
        files["DG1"] = lds.build_dg1(lines)
        files["DG2"] = lds.build_dg2(face, container=dg2_container)
        aa_key = ca_key = None
        if 11 in dgs:
            files["DG11"] = lds.build_dg11(dg11 or _default_dg11(lines))
        if 12 in dgs:
            files["DG12"] = lds.build_dg12(dg12 or {"issuing_authority": f"{self.country} PASSPORT OFFICE",
                                                    "date_of_issue": _dt.date.today().isoformat()})
        if 15 in dgs:
            aa_key = make_aa_key(aa)
            files["DG15"] = lds.build_dg15(aa_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
        if 14 in dgs:
            ca_key = make_ca_key(ca) if 14 in data_groups else None
            files["DG14"] = lds.build_dg14(_dg14_security_infos(
                ca_key, secinfo.encode_active_auth_info(_ECDSA_OIDS[aa_hash]) if ecdsa_aa else None, ca_cipher))
        for n in dgs:
            if n not in (1, 2, 11, 12, 14, 15):
                raise TestPkiError(f"DG{n} is not supported by the personaliser")
        ordered = {k: files[k] for k in ["EF.COM"] + [f"DG{n}" for n in dgs]}
        cam_key = None
        if pace:
            ordered["EF.CardAccess"] = build_card_access(pace)
            cam = [p for p in secinfo.parse_card_access(ordered["EF.CardAccess"]).pace if p.mapping == "CAM"]
            if cam:
                curve = _PARAMETER_CURVES.get(cam[0].parameter_id)
                if curve is None:
                    raise TestPkiError(f"no CAM key on parameter id {cam[0].parameter_id} in the test PKI")
                cam_key = ec.generate_private_key(curve())

        ds_name = _VARIANT_SIGNER.get(variant, SIGNERS[signer])
        signing_time = None
        if variant == "expired_ds":     # signed while the DS was valid; it has expired since
            signing_time = self.certs[ds_name].not_valid_before_utc + _DAY
        elif variant == "signed_outside_ds_validity":
            signing_time = self.certs[ds_name].not_valid_before_utc - 10 * _DAY
        sod = self.build_sod({n: ordered[f"DG{n}"] for n in dgs}, ds_name, hash_algorithm,
                             pss=(ds_name == "ds_rsa_pss"), signing_time=signing_time)
        if variant == "wrong_signature":
            sod = _corrupt_signature(sod)
        ordered["EF.SOD"] = lds.build_sod(sod)
        if cam_key is not None:
            ordered["EF.CardSecurity"] = self.build_card_security(ordered["EF.CardAccess"], cam_key, ds_name)

        if variant == "tampered_dg1":
            lines = tamper_mrz(lines)
            ordered["DG1"] = lds.build_dg1(lines)
        elif variant == "tampered_dg2":
            ordered["DG2"] = lds.build_dg2(_tamper_face(face), container=dg2_container)
        der = self.certs[ds_name].public_bytes(serialization.Encoding.DER)
        return Document(ordered, lines, variant, ds_name, der,
                        _pem(aa_key) if aa_key else None, _pem(ca_key) if ca_key else None, face, aa_hash,
                        _pem(cam_key) if cam_key else None)

    def build_card_security(self, card_access: bytes, cam_key, ds_name: str = "ds_rsa") -> bytes:
        """EF.CardSecurity: the PACEInfos, the chip-authentication public key (keyId = the CAM
        parameter id) and its ChipAuthenticationInfo, in CMS SignedData (id-SecurityObject) by the DS."""
        infos = secinfo.parse_card_access(card_access)
        key_id = next(p.parameter_id for p in infos.pace if p.mapping == "CAM")
        spki = cam_key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        pk_info = tlv.encode(0x30, [tlv.encode(0x06, secinfo.encode_oid(secinfo.ID_PK + ".2")), spki,
                                    secinfo._der_int(key_id)])
        ca_info = tlv.encode(0x30, [tlv.encode(0x06, secinfo.encode_oid(secinfo.ID_CA + ".2.2")),
                                    secinfo._der_int(1), secinfo._der_int(key_id)])
        content = secinfo.encode_set([info.encode() for info in _raw_infos(card_access)] + [pk_info, ca_info])
        return sign_cms(content, secinfo.ID_SECURITY_OBJECT, self.keys[ds_name], self.certs[ds_name], "sha256",
                        pss=(ds_name == "ds_rsa_pss"))

    def build_sod(self, data_groups: dict[int, bytes], ds_name: str = "ds_rsa",
                  hash_algorithm: str = "sha256", *, pss: bool = False,
                  signing_time: _dt.datetime | None = None) -> bytes:
        """CMS ContentInfo of an LDSSecurityObject over `data_groups`, signed by `ds_name`."""
        lso = LdsSecurityObject({
            "version": 0,
            "hash_algorithm": {"algorithm": hash_algorithm},
            "data_group_hash_values": [
                {"data_group_number": n,
                 "data_group_hash_value": hashlib.new(hash_algorithm, data).digest()}
                for n, data in sorted(data_groups.items())],
        }).dump()
        return sign_cms(lso, ID_ICAO_LDS_SECURITY_OBJECT, self.keys[ds_name],
                        self.certs[ds_name], "sha256", pss=pss, signing_time=signing_time)


def with_serial(cert: x509.Certificate, serial: int, issuer_key) -> x509.Certificate:
    """`cert` with another serial number (zero or negative too, which `cryptography`'s builder
    refuses), signed again by `issuer_key` (RSA PKCS#1 v1.5 / SHA-256 or ECDSA)."""
    from asn1crypto import x509 as ax509
    ac = ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    tbs = ac["tbs_certificate"]
    tbs["serial_number"] = serial
    alg = {"algorithm": "sha256_rsa" if isinstance(issuer_key, rsa.RSAPrivateKey) else "sha256_ecdsa"}
    tbs["signature"] = alg
    data = tbs.dump(force=True)
    sig = issuer_key.sign(data, padding.PKCS1v15(), hashes.SHA256()) if isinstance(issuer_key, rsa.RSAPrivateKey) \
        else issuer_key.sign(data, ec.ECDSA(hashes.SHA256()))
    new = ax509.Certificate({"tbs_certificate": tbs, "signature_algorithm": alg, "signature_value": sig})
    import warnings
    with warnings.catch_warnings():  # a serial <= 0 is what the caller asked for
        warnings.simplefilter("ignore")
        return x509.load_der_x509_certificate(new.dump())


def sign_cms(content: bytes, content_type: str, key, cert: x509.Certificate,
             digest: str = "sha256", *, pss: bool = False, signing_time: _dt.datetime | None = None) -> bytes:
    """CMS SignedData (ContentInfo DER) over `content` with signed attributes."""
    from asn1crypto import x509 as ax509
    acert = ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    attrs = [cms.CMSAttribute(a) for a in (
        {"type": "content_type", "values": [content_type]},
        {"type": "message_digest", "values": [hashlib.new(digest, content).digest()]},
        {"type": "signing_time", "values": [cms.Time({"utc_time": signing_time or _dt.datetime.now(_dt.timezone.utc)})]},
    )]
    # DER: a SET OF is ordered by the encodings of its elements.
    signed_attrs = cms.CMSAttributes(sorted(attrs, key=lambda a: a.dump()))
    to_sign = signed_attrs.dump()
    h = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512(),
         "sha1": hashes.SHA1(), "sha224": hashes.SHA224()}[digest]
    if isinstance(key, rsa.RSAPrivateKey):
        if pss:
            salt = h.digest_size
            signature = key.sign(to_sign, padding.PSS(mgf=padding.MGF1(h), salt_length=salt), h)
            sig_alg = {"algorithm": "rsassa_pss", "parameters": algos.RSASSAPSSParams({
                "hash_algorithm": {"algorithm": digest},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": digest}},
                "salt_length": salt, "trailer_field": "trailer_field_bc"})}
        else:
            signature = key.sign(to_sign, padding.PKCS1v15(), h)
            sig_alg = {"algorithm": f"{digest}_rsa"}
    else:
        signature = key.sign(to_sign, ec.ECDSA(h))
        sig_alg = {"algorithm": f"{digest}_ecdsa"}
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": acert.issuer, "serial_number": acert.serial_number})}),
        "digest_algorithm": {"algorithm": digest},
        "signed_attrs": signed_attrs,
        "signature_algorithm": sig_alg,
        "signature": signature,
    })
    sd = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": digest}],
        "encap_content_info": {"content_type": content_type,
                               "content": core.ParsableOctetString(content)},
        "certificates": [acert],
        "signer_infos": [signer_info],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump()


def _corrupt_signature(content_info: bytes) -> bytes:
    info = cms.ContentInfo.load(content_info)
    sd = info["content"]
    si = sd["signer_infos"][0]
    sig = bytearray(si["signature"].native)
    sig[len(sig) // 2] ^= 0x5A
    si["signature"] = core.OctetString(bytes(sig))
    return cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump()


def tamper_mrz(lines: list[str]) -> list[str]:
    """The same MRZ with the birth year moved by 10 years, check digits recomputed - the kind
    of change an impostor makes; the result is itself a valid MRZ."""
    m = _mrz.parse(lines, repair=False)
    yy = (int(m.birth_date_raw[:2]) + 90) % 100
    birth = f"{yy:02d}{m.birth_date_raw[2:]}"
    if m.format != "TD3":
        raise TestPkiError("tamper_mrz supports TD3 documents")
    return _mrz.compose_td3(doc_type=m.doc_type, issuer=m.issuer, surname=m.surname,
                            given_names=m.given_names, document_number=m.document_number,
                            nationality=m.nationality, birth_date=birth, sex=m.sex,
                            expiry_date=m.expiry_date_raw, personal_number=m.optional_data)


def _tamper_face(jpeg: bytes) -> bytes:
    import cv2
    import numpy as np
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    cv2.rectangle(img, (w // 4, h // 3), (3 * w // 4, h // 2), (40, 40, 40), -1)  # other eyes
    ok, out = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return bytes(out)


def _default_dg11(lines: list[str]) -> dict:
    m = _mrz.parse(lines, repair=False)
    out = {"full_name": f"{m.surname.replace(' ', '<')}<<{m.given_names.replace(' ', '<')}",
           "place_of_birth": "ZENITH"}
    if m.birth_date:
        out["full_date_of_birth"] = m.birth_date.isoformat()
    return out


_CA_CIPHERS = {"3DES": 1, "AES-128": 2, "AES-192": 3, "AES-256": 4}


def make_ca_key(kind: str):
    """A chip-authentication private key: "ecdh-<curve>" (e.g. ecdh-brainpoolP256r1) or "dh-1024" /
    "dh-2048" (the RFC 5114 groups 1024/160 and 2048/224)."""
    from cryptography.hazmat.primitives.asymmetric import dh
    if kind.startswith("ecdh-") and kind[5:] in _EC_CURVES:
        return ec.generate_private_key(_EC_CURVES[kind[5:]]())
    if kind in ("dh-1024", "dh-2048"):
        from drivers.emrtd import groups
        import warnings
        g = groups.standard(0 if kind == "dh-1024" else 1)
        with warnings.catch_warnings():  # cryptography deprecates FFDH; passports still carry DH keys
            warnings.simplefilter("ignore")
            return dh.DHParameterNumbers(g.p, g.g, g.q).parameters().generate_private_key()
    raise TestPkiError(f"unknown chip-authentication key {kind!r}: ecdh-<curve>, dh-1024 or dh-2048")


def _dg14_security_infos(key, aa_info: bytes | None = None, cipher: str = "AES-128") -> bytes:
    """SecurityInfos: for chip authentication ChipAuthenticationPublicKeyInfo (id-PK-ECDH or id-PK-DH)
    and ChipAuthenticationInfo (id-CA-(EC)DH-<cipher>, version 1); ActiveAuthenticationInfo."""
    def oid(dotted: str) -> bytes:
        return core.ObjectIdentifier(dotted).dump()
    infos = []
    if key is not None:
        agreement = 2 if isinstance(key, ec.EllipticCurvePrivateKey) else 1
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        infos.append(tlv.encode(0x30, [oid(f"0.4.0.127.0.7.2.2.1.{agreement}"), spki]))
        infos.append(tlv.encode(0x30, [oid(f"0.4.0.127.0.7.2.2.3.{agreement}.{_CA_CIPHERS[cipher]}"),
                                       core.Integer(1).dump()]))
    if aa_info is not None:
        infos.append(aa_info)
    return tlv.encode(0x31, infos)


def make_aa_key(kind: str):
    """A fresh Active Authentication private key of `kind` (one of `AA_KEYS`)."""
    if kind.startswith("rsa-"):
        return rsa.generate_private_key(65537, int(kind[4:]))
    return ec.generate_private_key(_EC_CURVES[kind[6:]]())


def aa_kind(private_pem: bytes) -> str:
    key = serialization.load_pem_private_key(private_pem, None)
    if isinstance(key, rsa.RSAPrivateKey):
        return f"rsa-{key.key_size}"
    return f"ecdsa-{key.curve.name}"


def build_card_access(pace) -> bytes:
    """EF.CardAccess with one PACEInfo per entry "AGREEMENT-MAPPING-CIPHER[/parameter id]"
    (e.g. "ECDH-GM-AES-128/13", "DH-GM-3DES/0")."""
    entries = [pace] if isinstance(pace, str) else list(pace)
    infos = []
    for entry in entries:
        spec, _, pid = entry.partition("/")
        agreement, mapping, cipher = spec.split("-", 2)
        parameter_id = int(pid) if pid else (13 if agreement == "ECDH" else 0)
        try:
            infos.append(secinfo.encode_pace_info(secinfo.pace_oid(agreement, mapping, cipher), parameter_id))
        except KeyError:
            raise TestPkiError(f"unknown PACE protocol {entry!r}") from None
    return secinfo.encode_set(infos)


def clone_chip(doc: Document) -> Document:
    """The same document on another chip: every file and signature copied, different AA and
    PACE-CAM keys (a cloner cannot read the private keys out of the genuine chip)."""
    if not doc.aa_private_key and not doc.cam_private_key and not doc.ca_private_key:
        raise TestPkiError("the document has no AA, CA or PACE-CAM key to differ from")
    aa_pem = _pem(make_aa_key(aa_kind(doc.aa_private_key))) if doc.aa_private_key else None
    cam_pem = None
    if doc.cam_private_key:
        curve = serialization.load_pem_private_key(doc.cam_private_key, None).curve
        cam_pem = _pem(ec.generate_private_key(type(curve)()))
    ca_pem = None
    if doc.ca_private_key:
        import warnings
        with warnings.catch_warnings():  # cryptography deprecates FFDH
            warnings.simplefilter("ignore")
            genuine = serialization.load_pem_private_key(doc.ca_private_key, None)
            ca_pem = _pem(ec.generate_private_key(type(genuine.curve)()) if hasattr(genuine, "curve")
                          else genuine.parameters().generate_private_key())
    return replace(doc, files=dict(doc.files), variant="cloned_chip", aa_private_key=aa_pem,
                   cam_private_key=cam_pem, ca_private_key=ca_pem)


def _raw_infos(der: bytes) -> list[tlv.Tlv]:
    return list(tlv.parse_single(der, 0x31).children or ())


def synth_face_jpeg(seed: int = 0, *, width: int = 413, height: int = 531,
                    target_bytes: int = 22_000) -> bytes:
    """A passport-style synthetic face (OpenCV drawing plus skin texture), JPEG-encoded at
    the quality that brings it closest to `target_bytes` (DG2 on real chips: 15-30 KB)."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    top, bottom = np.array([235, 225, 215]), np.array([200, 195, 190])
    for y in range(height):
        img[y, :] = (top + (bottom - top) * y / height).astype(np.uint8)
    cx, cy = width // 2, int(height * 0.48)
    skin = tuple(int(v) for v in rng.integers([120, 150, 190], [160, 190, 235]))
    hair = tuple(int(v) for v in rng.integers(10, 80, 3))
    cv2.ellipse(img, (cx, int(height * 0.95)), (int(width * 0.45), int(height * 0.25)), 0, 180,
                360, tuple(int(v) for v in rng.integers(40, 160, 3)), -1)        # shoulders
    cv2.rectangle(img, (cx - width // 12, cy + height // 6), (cx + width // 12, cy + height // 3),
                  skin, -1)                                                        # neck
    cv2.ellipse(img, (cx, cy - height // 12), (width // 4 + 12, height // 4), 0, 180, 360, hair, -1)
    cv2.ellipse(img, (cx, cy), (width // 4, int(height * 0.27)), 0, 0, 360, skin, -1)
    eye_y = cy - height // 20
    for dx in (-width // 9, width // 9):
        cv2.ellipse(img, (cx + dx, eye_y), (width // 22, height // 60), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(img, (cx + dx, eye_y), height // 70, tuple(int(v) for v in rng.integers(20, 120, 3)), -1)
        cv2.line(img, (cx + dx - width // 18, eye_y - height // 30),
                 (cx + dx + width // 18, eye_y - height // 28), hair, 4)
    cv2.line(img, (cx, eye_y + 10), (cx - 6, cy + height // 14), (90, 110, 150), 2)
    cv2.ellipse(img, (cx, cy + height // 8), (width // 12, height // 60), 0, 0, 180, (80, 80, 160), 3)
    noise = rng.normal(0, 9, img.shape)
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    best = None
    for q in (95, 90, 85, 80, 75, 70, 60, 50, 40, 30):
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        data = bytes(enc)
        if best is None or abs(len(data) - target_bytes) < abs(len(best) - target_bytes):
            best = data
        if len(data) <= target_bytes:
            break
    return best
