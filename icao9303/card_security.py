"""Passive authentication of EF.CardSecurity (ICAO 9303-11 §9.2.2): the signed SecurityInfos that
hold the chip-authentication public key PACE-CAM checks the chip against.

`verify(data, trust, now=None, policy=pa.DEFAULT_POLICY)` never raises on chip data; it returns a
`pa.PassiveAuthResult` whose checks are:

  card_security            a CMS SignedData of id-SecurityObject with SecurityInfos inside
  ds_certificate           the signer's certificate is in EF.CardSecurity or the trust store
  card_security_signature  signed attributes and signature verify with the DS key
  csca_chain, ds_validity, csca_validity, key_usage, signing_time, revocation
                           as for the SOD (`icao9303.pa.signer_checks`: link certificates,
                           key usage, signing time, serial numbers)

The gate trusts a PACE-CAM result only when this passes (with the same DS policy as the SOD).
"""
from __future__ import annotations

import datetime as _dt

from core.errors import ParseError
from icao9303 import cms as _cms
from icao9303 import pa, secinfo
from icao9303.pa import FAILED, NOT_CHECKED, PASSED, Check, PassiveAuthResult, Policy
from icao9303.trust import TrustStore

CARD_SECURITY, SIGNATURE = "card_security", "card_security_signature"
CHECKS = (CARD_SECURITY, pa.DS_CERTIFICATE, SIGNATURE) + pa.SIGNER_CHECKS


def verify(data: bytes, trust: TrustStore, *, now: _dt.datetime | None = None,
           policy: Policy = pa.DEFAULT_POLICY) -> PassiveAuthResult:
    now = pa._utc(now)
    results: dict[str, tuple[str, str]] = {}
    signed = ds = csca = None
    try:
        signed, infos = secinfo.parse_card_security(data)
        results[CARD_SECURITY] = (PASSED, f"SignedData of {len(infos.protocols)} SecurityInfos, "
                                          f"{len(infos.chip_auth_keys)} chip-authentication key(s)")
    except ParseError as exc:
        results[CARD_SECURITY] = (FAILED, str(exc))
    if signed is None:
        for name in CHECKS[1:]:
            results[name] = (NOT_CHECKED, "EF.CardSecurity not parsed")
    else:
        ds = _cms.signer_certificate(signed, trust.document_signers)
        if ds is None:
            results[pa.DS_CERTIFICATE] = (FAILED, "no certificate in EF.CardSecurity or the trust store "
                                                  "matches the SignerInfo")
            for name in CHECKS[2:]:
                results[name] = (NOT_CHECKED, "no document-signer certificate")
        elif _cms.serial_problem(ds):
            results[pa.DS_CERTIFICATE] = (FAILED, f"{_cms.name_str(ds.subject)}: {_cms.serial_problem(ds)}: refused")
            for name in CHECKS[2:]:
                results[name] = (NOT_CHECKED, "document-signer certificate refused")
            ds = None
        else:
            results[pa.DS_CERTIFICATE] = (PASSED, _cms.name_str(ds.subject) + f", serial {ds.serial_number:X}")
            reason = _cms.verify_signer(signed, ds)
            results[SIGNATURE] = (FAILED, reason) if reason else (PASSED, "signature verifies with the DS key")
            signer_results, chain = pa.signer_checks(ds, trust, now, policy, signed.signing_time, "EF.CardSecurity")
            csca = chain.issuer if chain else None
            results.update(signer_results)
    checks = []
    for name in CHECKS:
        status, reason = results[name]
        required = name in (CARD_SECURITY, SIGNATURE) or policy.is_required(name)
        advisory = name in policy.advisory
        checks.append(Check(name, status, reason, required=required and not advisory, advisory=advisory))
    return PassiveAuthResult(tuple(checks), not any(c.blocking for c in checks), None, ds, csca)
