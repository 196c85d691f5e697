"""Passive authentication (ICAO 9303 Part 11 section 5 / Part 12).

`verify(sod, data_groups, trust, mrz=..., policy=..., now=...)` runs every check and returns
a `PassiveAuthResult` listing each one as passed, failed or not_checked with its reason.  It
never raises on bad chip data: a malformed SOD is a failed ``sod`` check.

Checks (names are stable; `Policy.required` uses them):
  sod            EF.SOD parses: CMS SignedData holding an LDSSecurityObject, supported hash
  ds_certificate the document-signer certificate is in the SOD (or the trust store)
  sod_signature  messageDigest and contentType attributes match, signature verifies with the
                 DS key (RSA PKCS#1 v1.5, RSASSA-PSS, ECDSA incl. brainpool, plain ECDSA);
                 signedAttrs are verified as a DER SET
  csca_chain     the DS certificate chains to a trusted self-signed CSCA, through any number of
                 CSCA link certificates (`TrustStore.chain`)
  ds_validity    the DS certificate is valid at `now`
  csca_validity  every certificate of that chain (CSCA and links) is valid at `now`
  key_usage      the DS has keyUsage digitalSignature and is no CA; every CSCA and link of the chain
                 has keyCertSign
  signing_time   the SOD's signingTime (when present) lies in the DS's validity and private-key
                 usage period and is not in the future; each certificate of the chain was valid when
                 it issued the next (chain model)
  revocation     a current CRL of that CSCA, with a valid signature, does not list the DS (nor a
                 link certificate of the chain)
  dgN_hash       the hash of each data group read equals the SOD's (one check per group);
                 "dg_hashes" in `required` stands for all of them
  dg1_mrz        the chip's DG1 equals the optically read MRZ
  issuing_state  DG1's issuing state matches the DS certificate's country (and the CSCA's)

Verdict: `passed` is true only if every required check passed and no check failed.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
from dataclasses import dataclass

from asn1crypto import algos, core
from cryptography import x509

from icao9303 import cms as _cms
from icao9303 import countries, lds
from icao9303 import mrz as _mrz
from icao9303.trust import Chain, TrustStore, is_ca, key_usage
from core.errors import ParseError

ID_ICAO_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"

PASSED, FAILED, NOT_CHECKED = "passed", "failed", "not_checked"

SOD, DS_CERTIFICATE, SOD_SIGNATURE, CSCA_CHAIN = "sod", "ds_certificate", "sod_signature", "csca_chain"
DS_VALIDITY, CSCA_VALIDITY, REVOCATION = "ds_validity", "csca_validity", "revocation"
DG_HASHES, DG1_MRZ, ISSUING_STATE = "dg_hashes", "dg1_mrz", "issuing_state"
KEY_USAGE, SIGNING_TIME = "key_usage", "signing_time"
ALL_CHECKS = (SOD, DS_CERTIFICATE, SOD_SIGNATURE, CSCA_CHAIN, DS_VALIDITY, CSCA_VALIDITY,
              KEY_USAGE, SIGNING_TIME, REVOCATION, DG_HASHES, DG1_MRZ, ISSUING_STATE)
#: The checks of the signer's certificate and its chain, shared with EF.CardSecurity.
SIGNER_CHECKS = (CSCA_CHAIN, DS_VALIDITY, CSCA_VALIDITY, KEY_USAGE, SIGNING_TIME, REVOCATION)
FUTURE_SKEW = _dt.timedelta(days=1)


class SodError(ParseError):
    """EF.SOD is malformed."""


# --------------------------------------------------------------------------- SOD

class _DataGroupHash(core.Sequence):
    _fields = [("data_group_number", core.Integer), ("data_group_hash_value", core.OctetString)]


class _DataGroupHashValues(core.SequenceOf):
    _child_spec = _DataGroupHash


class _LdsVersionInfo(core.Sequence):
    _fields = [("lds_version", core.PrintableString), ("unicode_version", core.PrintableString)]


class LdsSecurityObject(core.Sequence):
    _fields = [("version", core.Integer), ("hash_algorithm", algos.DigestAlgorithm),
               ("data_group_hash_values", _DataGroupHashValues),
               ("lds_version_info", _LdsVersionInfo, {"optional": True})]


@dataclass(frozen=True, eq=False)
class Sod:
    hash_algorithm: str                     # sha1 .. sha512
    dg_hashes: dict[int, bytes]
    lds_version: str | None
    unicode_version: str | None
    signed_data: _cms.SignedData

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        return self.signed_data.certificates


def parse_sod(data: bytes) -> Sod:
    """EF.SOD (tag 77) or the bare CMS ContentInfo → `Sod`.  Raises `SodError`."""
    if not isinstance(data, (bytes, bytearray)):
        raise SodError(f"EF.SOD: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if data[:1] == b"\x77":
        try:
            data = lds.sod_content(data)
        except lds.LdsError as exc:
            raise SodError(str(exc)) from exc
    try:
        sd = _cms.parse_signed_data(data, ID_ICAO_LDS_SECURITY_OBJECT, "EF.SOD")
    except ParseError as exc:
        raise SodError(str(exc)) from exc
    try:
        lso = LdsSecurityObject.load(sd.content, strict=True)
        lso.native  # every field, now
        version = lso["version"].native
        if version not in (0, 1):
            raise SodError(f"EF.SOD: LDSSecurityObject version {version} is not 0 or 1")
        algo = lso["hash_algorithm"]["algorithm"].native
        hashes: dict[int, bytes] = {}
        for item in lso["data_group_hash_values"]:
            n = item["data_group_number"].native
            if not 1 <= n <= 16:
                raise SodError(f"EF.SOD: data group number {n} out of range")
            if n in hashes:
                raise SodError(f"EF.SOD: data group {n} listed twice")
            hashes[n] = item["data_group_hash_value"].native
        info = lso["lds_version_info"]
        lds_v = info["lds_version"].native if info.native else None
        uni_v = info["unicode_version"].native if info.native else None
    except SodError:
        raise
    except _cms._PARSE_ERRORS as exc:
        raise SodError(f"EF.SOD: malformed LDSSecurityObject: {type(exc).__name__}: {exc}") from exc
    if algo not in _cms.HASHES:
        raise SodError(f"EF.SOD: hash algorithm {algo} is not supported")
    size = _cms.HASHES[algo].digest_size
    for n, h in hashes.items():
        if len(h) != size:
            raise SodError(f"EF.SOD: DG{n} hash has {len(h)} bytes, {algo} gives {size}")
    return Sod(algo, hashes, lds_v, uni_v, sd)


# --------------------------------------------------------------------------- result types

@dataclass(frozen=True)
class Check:
    name: str
    status: str          # passed | failed | not_checked
    reason: str
    required: bool = False
    advisory: bool = False   # a failure is reported but does not affect the verdict

    @property
    def blocking(self) -> bool:
        """This check makes the verdict negative."""
        return (self.required and self.status != PASSED) or \
            (self.status == FAILED and not self.advisory)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "reason": self.reason,
                "required": self.required, "advisory": self.advisory}


@dataclass(frozen=True)
class Policy:
    """What a document needs to pass.  Failures of `advisory` checks are reported only."""
    required: frozenset[str] = frozenset(ALL_CHECKS)
    required_data_groups: frozenset[int] = frozenset({1, 2})
    advisory: frozenset[str] = frozenset()
    allowed_hash_algorithms: frozenset[str] = frozenset({"sha1", "sha224", "sha256",
                                                         "sha384", "sha512"})
    #: A CRL past its nextUpdate leaves revocation not_checked (True) or is used anyway.
    require_current_crl: bool = True

    def without(self, *names: str) -> "Policy":
        """This policy with `names` no longer required (e.g. ``without("dg1_mrz")`` when no
        optical MRZ was read, ``without("revocation")`` for a trust source with no CRLs)."""
        from dataclasses import replace
        unknown = set(names) - set(ALL_CHECKS)
        if unknown:
            raise ValueError(f"unknown checks: {', '.join(sorted(unknown))}")
        return replace(self, required=self.required - set(names))

    def is_required(self, name: str) -> bool:
        if name.startswith("dg") and name.endswith("_hash"):
            return DG_HASHES in self.required
        return name in self.required


DEFAULT_POLICY = Policy()


def policy_for(trust: "TrustStore", *, optical_mrz: bool) -> Policy:
    """The default policy, less what this reading cannot check: revocation when the trust
    source carries no CRL (an ICAO master list has none), DG1 against the printed MRZ when
    no MRZ was read optically. Those checks are then reported as not checked, not failed."""
    dropped = ([] if trust.crls else ["revocation"]) + ([] if optical_mrz else ["dg1_mrz"])
    return DEFAULT_POLICY.without(*dropped)


@dataclass(frozen=True, eq=False)
class PassiveAuthResult:
    checks: tuple[Check, ...]
    passed: bool
    sod: Sod | None = None
    ds_certificate: x509.Certificate | None = None
    csca: x509.Certificate | None = None

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def failed(self) -> list[Check]:
        """Checks that make the verdict negative."""
        return [c for c in self.checks if c.blocking]

    @property
    def reasons(self) -> list[str]:
        return [f"{c.name}: {c.reason}" for c in self.failed]

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "ds_certificate": _cms.name_str(self.ds_certificate.subject) if self.ds_certificate else None,
            "csca": _cms.name_str(self.csca.subject) if self.csca else None,
            "hash_algorithm": self.sod.hash_algorithm if self.sod else None,
        }


# --------------------------------------------------------------------------- verification

def _utc(now: _dt.datetime | None) -> _dt.datetime:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=_dt.timezone.utc)
    return now


def _validity(cert: x509.Certificate, now: _dt.datetime, what: str) -> tuple[str, str]:
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < nb:
        return FAILED, f"{what} not valid before {nb:%Y-%m-%d %H:%M} UTC"
    if now > na:
        return FAILED, f"{what} expired on {na:%Y-%m-%d %H:%M} UTC"
    return PASSED, f"{what} valid {nb:%Y-%m-%d} to {na:%Y-%m-%d}"


def _mrz_lines(mrz) -> str | None:
    if mrz is None:
        return None
    if isinstance(mrz, _mrz.Mrz):
        return "".join(mrz.lines)
    if isinstance(mrz, str):
        return "".join(mrz.split())
    return "".join(str(x).strip() for x in mrz)


_COMPARED_FIELDS = ("doc_type", "issuer", "document_number", "birth_date_raw", "expiry_date_raw",
                    "nationality", "sex", "surname", "given_names", "optional_data",
                    "optional_data_2")


def verify(sod: bytes, data_groups: dict[int, bytes], trust: TrustStore, *,
           mrz: "_mrz.Mrz | list[str] | str | None" = None, policy: Policy = DEFAULT_POLICY,
           now: _dt.datetime | None = None) -> PassiveAuthResult:
    """Passive authentication of one document.  `data_groups` maps DG number → file bytes."""
    now = _utc(now)
    results: dict[str, tuple[str, str]] = {}
    order: list[str] = []

    def put(name: str, status: str, reason: str) -> None:
        if name not in results:
            order.append(name)
        results[name] = (status, reason)

    parsed: Sod | None = None
    ds: x509.Certificate | None = None
    csca: x509.Certificate | None = None
    chain: Chain | None = None
    refused = False

    # --- SOD
    try:
        parsed = parse_sod(sod)
        if parsed.hash_algorithm not in policy.allowed_hash_algorithms:
            put(SOD, FAILED, f"hash algorithm {parsed.hash_algorithm} not allowed by policy")
        else:
            put(SOD, PASSED, f"LDSSecurityObject with {parsed.hash_algorithm} hashes of "
                             f"DG{', DG'.join(str(n) for n in sorted(parsed.dg_hashes))}")
    except SodError as exc:
        put(SOD, FAILED, str(exc))

    # --- DS certificate and SOD signature
    if parsed is None:
        put(DS_CERTIFICATE, NOT_CHECKED, "SOD not parsed")
        put(SOD_SIGNATURE, NOT_CHECKED, "SOD not parsed")
    else:
        ds = _cms.signer_certificate(parsed.signed_data, trust.document_signers)
        if ds is None:
            put(DS_CERTIFICATE, FAILED, "no certificate in the SOD or the trust store matches "
                                        "the SignerInfo")
            put(SOD_SIGNATURE, NOT_CHECKED, "no document-signer certificate")
        elif _cms.serial_problem(ds):
            refused = True
            put(DS_CERTIFICATE, FAILED, f"{_cms.name_str(ds.subject)}: {_cms.serial_problem(ds)}: refused")
            put(SOD_SIGNATURE, NOT_CHECKED, "document-signer certificate refused")
            ds = None
        else:
            put(DS_CERTIFICATE, PASSED, _cms.name_str(ds.subject)
                + f", serial {ds.serial_number:X}")
            reason = _cms.verify_signer(parsed.signed_data, ds)
            if reason:
                put(SOD_SIGNATURE, FAILED, reason)
            else:
                alg = parsed.signed_data.signer["signature_algorithm"]
                put(SOD_SIGNATURE, PASSED, f"{_sig_name(alg)} signature verifies with the DS key")

    # --- chain, validity, key usage, signing time, revocation
    if ds is None:
        why = "document-signer certificate refused" if refused else "no document-signer certificate"
        for name in SIGNER_CHECKS:
            put(name, NOT_CHECKED, why)
    else:
        signer_results, chain = signer_checks(ds, trust, now, policy, parsed.signed_data.signing_time, "SOD")
        csca = chain.issuer if chain else None
        for name in SIGNER_CHECKS:
            put(name, *signer_results[name])

    # --- data-group hashes
    dg_checks: list[tuple[str, str, str]] = []
    read = {int(k): bytes(v) for k, v in data_groups.items()}
    for n in sorted(policy.required_data_groups - set(read)):
        dg_checks.append((f"dg{n}_hash", FAILED, f"DG{n} is required by the policy but was not read"))
    if parsed is not None:
        for n in sorted(read):
            stored = parsed.dg_hashes.get(n)
            if stored is None:
                dg_checks.append((f"dg{n}_hash", FAILED, f"DG{n} was read but the SOD holds no hash for it"))
                continue
            actual = hashlib.new(parsed.hash_algorithm, read[n]).digest()
            if hmac.compare_digest(actual, stored):
                dg_checks.append((f"dg{n}_hash", PASSED, f"{parsed.hash_algorithm} matches the SOD"))
            else:
                dg_checks.append((f"dg{n}_hash", FAILED,
                                  f"{parsed.hash_algorithm} of DG{n} ({actual.hex()[:16]}…) differs "
                                  f"from the SOD ({stored.hex()[:16]}…): data group altered"))
        for n in sorted(set(parsed.dg_hashes) - set(read) - policy.required_data_groups):
            dg_checks.append((f"dg{n}_hash", NOT_CHECKED, f"DG{n} listed in the SOD was not read"))
    else:
        for n in sorted(read):
            dg_checks.append((f"dg{n}_hash", NOT_CHECKED, "SOD not parsed"))
    dg_checks.sort(key=lambda c: int(c[0][2:-5]))
    for name, status, reason in dg_checks:
        put(name, status, reason)

    # --- DG1 vs optical MRZ, issuing state
    chip_mrz: _mrz.Mrz | None = None
    chip_text: str | None = None
    if 1 in read:
        try:
            chip_text = lds.dg1_mrz_text(read[1])
            chip_mrz = lds.parse_dg1(read[1])
        except lds.LdsError as exc:
            put(DG1_MRZ, FAILED, f"DG1 does not parse: {exc}")
    optical = _mrz_lines(mrz)
    if DG1_MRZ not in results:
        if chip_text is None:
            put(DG1_MRZ, NOT_CHECKED, "DG1 not read")
        elif optical is None:
            put(DG1_MRZ, NOT_CHECKED, "no optically read MRZ given")
        elif optical == chip_text:
            put(DG1_MRZ, PASSED, "chip DG1 equals the printed MRZ")
        else:
            put(DG1_MRZ, FAILED, _mrz_difference(optical, chip_mrz))

    if chip_mrz is None:
        put(ISSUING_STATE, NOT_CHECKED, "DG1 not read" if 1 not in read else "DG1 does not parse")
    elif ds is None:
        put(ISSUING_STATE, NOT_CHECKED, "no document-signer certificate")
    else:
        put(ISSUING_STATE, *_issuing_state(chip_mrz.issuer, ds, chain))

    checks = []
    for name in order:
        status, reason = results[name]
        advisory = name in policy.advisory or (name.endswith("_hash") and DG_HASHES in policy.advisory)
        required = policy.is_required(name)
        if name.endswith("_hash"):          # a group neither read nor required is informative
            n = int(name[2:-5])
            required = required and (n in read or n in policy.required_data_groups)
        checks.append(Check(name, status, reason, required=required and not advisory,
                            advisory=advisory))
    passed = not any(c.blocking for c in checks)
    return PassiveAuthResult(tuple(checks), passed, parsed, ds, csca)


def _sig_name(alg) -> str:
    try:
        return alg.signature_algo.replace("rsassa_pkcs1v15", "RSA PKCS#1 v1.5") \
            .replace("rsassa_pss", "RSASSA-PSS").replace("ecdsa", "ECDSA")
    except ValueError:
        return alg["algorithm"].dotted


def signer_checks(ds: x509.Certificate, trust: TrustStore, now: _dt.datetime, policy: Policy,
                  signing_time: _dt.datetime | None, what: str = "SOD"
                  ) -> tuple[dict[str, tuple[str, str]], Chain | None]:
    """The `SIGNER_CHECKS` of a document signer (of the SOD or of EF.CardSecurity): name → (status,
    reason), and the chain when one was found."""
    out: dict[str, tuple[str, str]] = {DS_VALIDITY: _validity(ds, now, "DS certificate")}
    chain, why = trust.chain(ds, now)
    if chain is None:
        out[CSCA_CHAIN] = (FAILED, f"issuer {_cms.name_str(ds.issuer)}: {why}")
        out[CSCA_VALIDITY] = (NOT_CHECKED, "no trusted CSCA")
        out[REVOCATION] = (NOT_CHECKED, "no trusted CSCA")
    else:
        out[CSCA_CHAIN] = (PASSED, f"issued by trusted CSCA {chain.describe()}")
        out[CSCA_VALIDITY] = _chain_validity(chain, now)
        out[REVOCATION] = _chain_revocation(ds, chain, trust, now, policy)
    out[KEY_USAGE] = _key_usage(ds, chain)
    out[SIGNING_TIME] = _signing_time(ds, chain, signing_time, now, what)
    return out, chain


def _chain_validity(chain: Chain, now) -> tuple[str, str]:
    for i, cert in enumerate(chain.path):
        what = "CSCA certificate" if i == len(chain.path) - 1 else "CSCA link certificate"
        status, reason = _validity(cert, now, what)
        if status != PASSED:
            return status, reason
    anchor = chain.anchor
    extra = f" and {len(chain.links)} link certificate(s)" if chain.links else ""
    return PASSED, (f"CSCA certificate valid {anchor.not_valid_before_utc:%Y-%m-%d} to "
                    f"{anchor.not_valid_after_utc:%Y-%m-%d}{extra}")


def _key_usage(ds: x509.Certificate, chain: Chain | None) -> tuple[str, str]:
    ku = key_usage(ds)
    if ku is None:
        return FAILED, "DS certificate has no keyUsage extension"
    if not ku.digital_signature:
        return FAILED, "DS certificate's keyUsage lacks digitalSignature"
    if is_ca(ds):
        return FAILED, "DS certificate is a CA certificate"
    for cert in chain.path if chain else ():
        ku = key_usage(cert)
        if ku is None or not ku.key_cert_sign:
            return FAILED, f"CSCA certificate {_cms.name_str(cert.subject)} lacks keyUsage keyCertSign"
    return PASSED, "DS digitalSignature" + (", CSCA keyCertSign" if chain else " (no chain to check)")


def _private_key_usage_period(cert: x509.Certificate):
    """(notBefore, notAfter) of the PrivateKeyUsagePeriod extension (2.5.29.16), either None."""
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("2.5.29.16"))
    except x509.ExtensionNotFound:
        return None, None
    value = ext.value
    if hasattr(value, "not_before"):   # cryptography ≥ 45 parses it
        start, end = value.not_before, value.not_after
    else:
        from asn1crypto import x509 as ax509
        native = ax509.PrivateKeyUsagePeriod.load(value.value).native
        start, end = native.get("not_before"), native.get("not_after")
    utc = _dt.timezone.utc
    return (start.replace(tzinfo=utc) if start and start.tzinfo is None else start,
            end.replace(tzinfo=utc) if end and end.tzinfo is None else end)


def _signing_time(ds: x509.Certificate, chain: Chain | None, signing_time, now, what: str) -> tuple[str, str]:
    notes = []
    if signing_time is not None:
        st = signing_time if signing_time.tzinfo else signing_time.replace(tzinfo=_dt.timezone.utc)
        if st > now + FUTURE_SKEW:
            return FAILED, f"{what} signingTime {st:%Y-%m-%d %H:%M} UTC is in the future"
        if not ds.not_valid_before_utc <= st <= ds.not_valid_after_utc:
            return FAILED, (f"{what} signed on {st:%Y-%m-%d %H:%M} UTC, outside the DS certificate's "
                            f"validity {ds.not_valid_before_utc:%Y-%m-%d} to {ds.not_valid_after_utc:%Y-%m-%d}")
        try:
            pk_start, pk_end = _private_key_usage_period(ds)
        except (ValueError, TypeError) as exc:
            return FAILED, f"DS privateKeyUsagePeriod does not parse: {exc}"
        if (pk_start and st < pk_start) or (pk_end and st > pk_end):
            return FAILED, (f"{what} signed on {st:%Y-%m-%d} UTC, outside the DS key's usage period "
                            f"{pk_start:%Y-%m-%d} to {pk_end:%Y-%m-%d}" if pk_start and pk_end else
                            f"{what} signed on {st:%Y-%m-%d} UTC, outside the DS key's usage period")
        notes.append(f"signed on {st:%Y-%m-%d} within the DS validity")
    else:
        notes.append(f"no signingTime in the {what}")
    if chain is not None:
        path = (ds,) + chain.path
        for cert, issuer in zip(path, path[1:]):
            t = cert.not_valid_before_utc
            if not issuer.not_valid_before_utc <= t <= issuer.not_valid_after_utc:
                return FAILED, (f"{_cms.name_str(cert.subject)} was issued on {t:%Y-%m-%d}, outside its "
                                f"issuer's validity {issuer.not_valid_before_utc:%Y-%m-%d} to "
                                f"{issuer.not_valid_after_utc:%Y-%m-%d}")
        notes.append("each certificate issued while its issuer was valid")
    return PASSED, "; ".join(notes)


def _chain_revocation(ds, chain: Chain, trust: TrustStore, now, policy: Policy) -> tuple[str, str]:
    for link, issuer in zip(chain.links, chain.path[1:]):
        for crl in trust.crls_for(issuer):
            entry = crl.get_revoked_certificate_by_serial_number(link.serial_number)
            if entry is not None:
                return FAILED, (f"CSCA link certificate serial {link.serial_number:X} revoked on "
                                f"{entry.revocation_date_utc:%Y-%m-%d}")
    return _revocation(ds, chain.issuer, trust, now, policy)


def _revocation(ds, csca, trust: TrustStore, now, policy: Policy) -> tuple[str, str]:
    crls = trust.crls_for(csca)
    if not crls:
        others = [c for c in trust.crls if c.issuer == csca.subject]
        if others:
            return FAILED, "the CSCA's CRL has an invalid signature"
        return NOT_CHECKED, f"no CRL for CSCA {_cms.name_str(csca.subject)}"
    for crl in crls:
        entry = crl.get_revoked_certificate_by_serial_number(ds.serial_number)
        if entry is not None:
            return FAILED, (f"DS certificate serial {ds.serial_number:X} revoked on "
                            f"{entry.revocation_date_utc:%Y-%m-%d} (CRL of "
                            f"{crl.last_update_utc:%Y-%m-%d})")
    current = [c for c in crls if c.next_update_utc is None or c.next_update_utc >= now]
    if not current and policy.require_current_crl:
        newest = max(crls, key=lambda c: c.last_update_utc)
        return NOT_CHECKED, (f"newest CRL expired on {newest.next_update_utc:%Y-%m-%d}; "
                             "DS not listed in it")
    newest = max(crls, key=lambda c: c.last_update_utc)
    return PASSED, f"not listed in the CRL of {newest.last_update_utc:%Y-%m-%d}"


def _issuing_state(issuer: str, ds, chain: Chain | None) -> tuple[str, str]:
    ds_c = _cms.country_of(ds.subject)
    expected = countries.alpha2(issuer)
    if ds_c is None:
        return FAILED, "DS certificate subject has no country"
    if expected is None:
        if countries.is_known(issuer):
            return NOT_CHECKED, f"issuer {issuer} has no certificate country to compare with {ds_c}"
        return FAILED, f"issuer code {issuer!r} is unknown"
    if expected != ds_c:
        return FAILED, (f"document issued by {issuer} ({expected}) but signed by a DS "
                        f"certificate of {ds_c}")
    issuer_c = _cms.country_of(ds.issuer)
    if issuer_c is not None and issuer_c != ds_c:
        return FAILED, f"DS country {ds_c} differs from its issuer name's {issuer_c}"
    for cert in chain.path if chain else ():
        csca_c = _cms.country_of(cert.subject)
        if csca_c != ds_c:
            kind = "CSCA" if cert is chain.anchor else "CSCA link certificate"
            return FAILED, f"DS country {ds_c} differs from its {kind}'s {csca_c or '(none)'}"
    return PASSED, f"issuer {issuer} matches DS country {ds_c}"


def _mrz_difference(optical: str, chip: _mrz.Mrz | None) -> str:
    try:
        opt = _mrz.parse([optical], repair=False, strict=False)
    except _mrz.MrzError:
        return "printed MRZ differs from chip DG1 (printed MRZ does not parse)"
    if chip is None:
        return "printed MRZ differs from chip DG1"
    fields = [f for f in _COMPARED_FIELDS if getattr(opt, f) != getattr(chip, f)]
    if fields:
        return "printed MRZ differs from chip DG1 in " + ", ".join(fields)
    return "printed MRZ differs from chip DG1 (check digits or fillers)"
