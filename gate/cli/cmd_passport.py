"""egate passport read: read an eMRTD chip over PC/SC and verify it (passive authentication).

    egate passport read --reader NAME (--mrz LINE... | --doc-number N --birth-date YYMMDD
                        --expiry-date YYMMDD | --can DIGITS) [--policy pace_then_bac|pace_only|bac_only]
                        [--csca DIR | --master-list FILE] [--out DIR] [--json]

Prints the chip's DG1 fields, how the chip was opened (PACE with its mapping, curve or group and
cipher, and the password; or BAC; a recorded fallback), the files read with their sizes, every
passive-authentication check, Active Authentication, Chip Authentication and PACE-CAM each as
passed / failed / not offered (a key the chip proved it holds counts as passed only when passive
authentication vouches for it: DG15, DG14, EF.CardSecurity), and the time of each step.
`--can` opens the chip with PACE and the Card Access Number (with the MRZ too, the MRZ is still
compared with DG1). `--out` receives the raw files (EF.COM, DG1.bin, ..., SOD.bin,
and mrz.txt), a directory `python -m simulators.chip --doc` can serve again.
Exit 0: the document passed; 1: it failed a check, or the chip could not be read (wrong MRZ,
card removed, timeout: the reason is printed); 2: bad usage.
Without --csca or --master-list nothing is trusted, so the CSCA chain check fails.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from drivers.emrtd import access
from drivers.emrtd.apdu import ChipError
from drivers.emrtd.bac import BacKey
from drivers.emrtd.pace import Can, PaceError
from drivers.emrtd.pcsc import PcscReader
from drivers.emrtd.reader import read_document
from icao9303 import card_security, lds, mrz, pa
from icao9303.trust import TrustStore
from core.errors import DeviceError, ParseError


def register(sub):
    p = sub.add_parser("passport", help="eMRTD chip tools")
    s = p.add_subparsers(dest="passport_command", required=True)
    r = s.add_parser("read", help="read a passport chip over PC/SC and verify it; exit 1 if it fails")
    r.add_argument("--reader", required=True, help="PC/SC reader name, or a unique part of it")
    r.add_argument("--mrz", nargs="+", metavar="LINE", help="the printed MRZ lines (quote each)")
    r.add_argument("--doc-number")
    r.add_argument("--birth-date", metavar="YYMMDD")
    r.add_argument("--expiry-date", metavar="YYMMDD")
    r.add_argument("--can", metavar="DIGITS", help="Card Access Number: PACE with the CAN instead of the MRZ")
    r.add_argument("--policy", choices=access.POLICIES, default=access.DEFAULT_POLICY,
                   help=f"access control (default {access.DEFAULT_POLICY})")
    r.add_argument("--no-clone-check", action="store_true",
                   help="skip Active Authentication and Chip Authentication")
    trust = r.add_mutually_exclusive_group()
    trust.add_argument("--csca", type=Path, metavar="DIR", help="directory of trusted CSCA certificates and CRLs")
    trust.add_argument("--master-list", type=Path, metavar="FILE", help="ICAO CSCA master list")
    r.add_argument("--out", type=Path, metavar="DIR", help="write the raw files here")
    r.add_argument("--wait", type=float, default=5.0, metavar="S", help="how long to wait for a card (default 5)")
    r.add_argument("--timeout", type=float, default=2.0, metavar="S", help="per-exchange timeout (default 2)")
    r.add_argument("--deadline", type=float, default=15.0, metavar="S", help="whole-read limit (default 15)")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=read_cmd)


def _key(args) -> tuple[BacKey | Can, mrz.Mrz | None]:
    if args.can:
        try:
            can = Can(args.can)
        except PaceError as err:
            raise mrz.MrzError(f"--can: {err}") from None
        if args.policy == "bac_only":
            raise mrz.MrzError("--can needs PACE: not with --policy bac_only")
        return can, (mrz.parse(args.mrz) if args.mrz else None)
    if args.mrz:
        if args.doc_number or args.birth_date or args.expiry_date:
            raise mrz.MrzError("give either --mrz or --doc-number/--birth-date/--expiry-date, not both")
        optical = mrz.parse(args.mrz)
        return BacKey.from_mrz(optical), optical
    if not (args.doc_number and args.birth_date and args.expiry_date):
        raise mrz.MrzError("give --mrz LINE... or all of --doc-number, --birth-date, --expiry-date")
    return BacKey(args.doc_number.upper(), args.birth_date, args.expiry_date), None


def _trust(args) -> TrustStore:
    if args.csca:
        return TrustStore.from_dir(args.csca)
    if args.master_list:
        return TrustStore.from_master_list(args.master_list)
    return TrustStore()


def read_cmd(args) -> int:
    key, optical = _key(args)
    trust = _trust(args)
    report: dict = {"reader": None, "timings_ms": {}}
    timings = report["timings_ms"]
    try:
        reader = PcscReader(args.reader, args.timeout)
        report["reader"] = reader.reader
        start = time.perf_counter()
        reader.wait_for_card(args.wait)
        with reader.connect() as chip:
            timings["card"] = _ms(time.perf_counter() - start)
            report["atr"] = chip.atr.hex().upper()
            result = read_document(chip, key, deadline_s=args.deadline, policy=args.policy,
                                   active_auth=not args.no_clone_check,
                                   chip_authentication=not args.no_clone_check)
    except (ChipError, DeviceError) as err:
        if not args.json:
            raise
        report["error"] = {"type": type(err).__name__, "message": str(err)}
        print(json.dumps(report))
        return 1
    timings.update({step: _ms(s) for step, s in result.timings_s.items()})
    files = result.files
    start = time.perf_counter()
    verdict = pa.verify(files["EF.SOD"], {lds.BY_NAME[n].dg: d for n, d in files.items() if lds.BY_NAME[n].dg},
                        trust, mrz=optical, policy=pa.policy_for(trust, optical_mrz=optical is not None))
    timings["passive_authentication"] = _ms(time.perf_counter() - start)
    timings["total"] = round(sum(v for k, v in timings.items() if k != "total"), 2)
    try:
        chip_mrz = lds.parse_dg1(files["DG1"])
        report["document"] = chip_mrz.to_dict()
    except (KeyError, ParseError) as err:
        chip_mrz, report["document"] = None, {"error": str(err)}
    report.update(access_control=result.access_control, apdus=result.apdus,
                  access=_access(result), chip_authenticity=_authenticity(result, files, verdict, trust),
                  files=[{"name": n, "bytes": len(d)} for n, d in files.items()],
                  passive_authentication=verdict.to_dict(), passed=verdict.passed)
    if args.out:
        report["out"] = str(_write(args.out, files, optical or chip_mrz))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print(report, verdict)
    return 0 if verdict.passed else 1


def _access(result) -> dict:
    """How the chip was opened: method, and for PACE the mapping, curve or group, cipher, password."""
    out = {"method": result.access_control, **{k: v for k, v in result.access.items() if k != "method"}}
    out["pace_offered"] = result.pace_offered
    if result.fallback:
        out["fallback"] = result.fallback
    if result.access_note:
        out["note"] = result.access_note
    return out


def _authenticity(result, files: dict, verdict: pa.PassiveAuthResult, trust: TrustStore) -> dict:
    """AA, CA and PACE-CAM: passed | failed | not_offered (| not_checked), each with its reason; a key
    proved on the chip counts only once passive authentication binds it (DG15, DG14, EF.CardSecurity)."""
    def bound(status: str, reason: str, check: str) -> tuple[str, str]:
        c = verdict.check(check)
        if status == "passed" and (c is None or c.status != "passed"):
            return "failed", f"{reason}; but {check} did not pass, so the key is not the document's"
        return status, reason

    out = {"active_auth": {"status": "not_offered", "reason": "DG15 absent"},
           "chip_auth": {"status": "not_offered", "reason": "DG14 absent"},
           "pace_cam": {"status": "not_offered", "reason": "no PACE-CAM"}}
    if result.active_auth is not None:
        a = result.active_auth
        status, reason = bound(a.status, a.reason, "dg15_hash")
        out["active_auth"] = {"status": status, "reason": reason, "algorithm": a.algorithm}
    cam, c = result.cam, result.chip_auth
    if cam is not None:
        status, reason = cam.status, cam.reason
        if status == "passed" and "EF.CardSecurity" in files:
            cs = card_security.verify(files["EF.CardSecurity"], trust)
            if not cs.passed:
                status, reason = "failed", f"{reason}; EF.CardSecurity fails passive authentication: " \
                                           + "; ".join(cs.reasons)
        out["pace_cam"] = {"status": status, "reason": reason}
    if c is not None and c is not cam:
        status, reason = bound(c.status, c.reason, "dg14_hash")
        out["chip_auth"] = {"status": status, "reason": reason, "method": c.method}
    elif cam is not None and "DG14" in files:
        out["chip_auth"] = {"status": "not_checked", "reason": "not run: PACE-CAM authenticated the chip"}
    elif "DG14" in files:
        out["chip_auth"] = {"status": "not_offered", "reason": "DG14 holds no chip-authentication key"}
    return out


def _write(directory: Path, files: dict[str, bytes], source: mrz.Mrz | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / lds.BY_NAME[name].out_name).write_bytes(data)
    if source is not None:
        (directory / "mrz.txt").write_text("\n".join(source.lines) + "\n")
    return directory


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _print(report: dict, verdict: pa.PassiveAuthResult) -> None:
    print(f"reader           {report['reader']}  (ATR {report['atr']}, {report['access_control']}, "
          f"{report['apdus']} APDUs)")
    doc = report["document"]
    for field in ("doc_type", "issuer", "document_number", "surname", "given_names", "nationality",
                  "sex", "birth_date_iso", "expiry_date_iso", "error"):
        if doc.get(field) not in (None, ""):
            print(f"{field:16} {doc[field]}")
    a = report["access"]
    if a["method"] == "PACE":
        print(f"access           PACE {a.get('mapping', '')} {a.get('domain', '')} {a.get('cipher', '')} "
              f"with the {a.get('password', '')}".rstrip())
    else:
        print(f"access           {a['method']}" + (f" ({a['note']})" if a.get("note") else ""))
    if a.get("fallback"):
        print(f"fallback         {a['fallback']}")
    for name, label in (("active_auth", "active auth"), ("chip_auth", "chip auth"), ("pace_cam", "PACE-CAM")):
        r = report["chip_authenticity"][name]
        print(f"{label:16} {r['status'].upper().replace('_', ' ')}: {r['reason']}")
    print("files            " + ", ".join(f"{f['name']} {f['bytes']} B" for f in report["files"]))
    for c in verdict.checks:
        print(f"  {c.status:11} {c.name:15} {c.reason}")
    print("passive auth     " + ("PASSED" if verdict.passed else "FAILED: " + "; ".join(verdict.reasons)))
    print("time (ms)        " + ", ".join(f"{k} {v}" for k, v in report["timings_ms"].items()))
