"""Run the eMRTD chip simulator as a virtual card in vpcd, from a personalised document directory.

    python -m simulators.chip --doc DIR [--port 35963] [--fault slow:delay_s=0.2] [--control SOCK]

DIR is what `simulators.testpki` `Document.write` (and `egate passport read --out`) produce:
EF.COM, DG1.bin, DG2.bin, ..., SOD.bin and mrz.txt (the printed MRZ, which keys BAC and PACE;
without it the MRZ in DG1.bin does). With EF.CardAccess the chip offers PACE; with aa_key.pem
(`Document.write(dir, chip_secrets=True)`) it answers INTERNAL AUTHENTICATE with that key (RSA:
ISO 9796-2 with SHA-256 and trailer 34CC, or --aa-trailer BC for SHA-1; ECDSA: the hash DG14 names).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from drivers.emrtd.bac import BacKey
from icao9303 import lds, mrz, secinfo
from simulators.chip.applet import ChipProfile, EmrtdApplet
from simulators.chip.card_auth import AaSigner
from simulators.chip.timing import ContactlessTiming
from simulators.chip.vpcd import PORTS, VirtualCard
from simulators.faults import FaultError, run_simulator_cli


def load_aa(directory: Path, files: dict[str, bytes], trailer: str = "34CC") -> AaSigner | None:
    """The chip's AA signer from DIR/aa_key.pem (None without it): RSA with trailer 34CC (SHA-256)
    or BC (SHA-1); ECDSA with the hash DG14's ActiveAuthenticationInfo names (SHA-256 without)."""
    path = directory / "aa_key.pem"
    if not path.is_file():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    hash_name = "sha1" if trailer.upper() == "BC" else "sha256"
    if hasattr(key, "curve"):
        hash_name = "sha256"
    if hasattr(key, "curve") and "DG14" in files:
        info = secinfo.parse_dg14(files["DG14"]).active_auth
        if info and info.hash_name:
            hash_name = info.hash_name
    return AaSigner(key, hash_name, two_byte_trailer=trailer.upper() != "BC")


def load_cam_key(directory: Path, name: str = "cam_key.pem"):
    """The chip's PACE-CAM private key from DIR/cam_key.pem (Chip Authentication: ca_key.pem), or None."""
    import warnings
    path = directory / name
    with warnings.catch_warnings():  # cryptography deprecates FFDH; DH chip-authentication keys exist
        warnings.simplefilter("ignore")
        return serialization.load_pem_private_key(path.read_bytes(), None) if path.is_file() else None


def load_document(directory: Path) -> tuple[dict[str, bytes], list[str]]:
    files = {f.name: (directory / f.out_name).read_bytes()
             for f in lds.FILES if (directory / f.out_name).is_file()}
    if "EF.COM" not in files:
        raise FaultError(f"{directory}: no EF.COM: not a document directory")
    printed = directory / "mrz.txt"
    if printed.is_file():
        return files, printed.read_text().split()
    if "DG1" not in files:
        raise FaultError(f"{directory}: neither mrz.txt nor DG1.bin to key BAC with")
    return files, list(lds.parse_dg1(files["DG1"]).lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.chip", description=__doc__.splitlines()[0])
    parser.add_argument("--doc", type=Path, required=True, help="personalised document directory")
    parser.add_argument("--port", type=int, default=PORTS[0], help="vpcd port: 35963 slot 0, 35964 slot 1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-extended-length", action="store_true")
    parser.add_argument("--exact-le", action="store_true", help="answer 6Cxx instead of 6282 at end of file")
    parser.add_argument("--max-response", type=int, default=65536, help="longest READ BINARY answer (6700 above)")
    parser.add_argument("--tear", metavar="FILE:OFFSET", help="pull the card out when a read reaches OFFSET of FILE")
    parser.add_argument("--seed", type=int, help="repeat the chip's randoms from every reset (benchmark replays)")
    parser.add_argument("--can", help="Card Access Number: a second PACE password")
    parser.add_argument("--pace-only", action="store_true", help="no BAC (GET CHALLENGE answers 6D00)")
    parser.add_argument("--no-pace", action="store_true", help="ignore EF.CardAccess: a BAC-only chip")
    parser.add_argument("--pace-fault", choices=["bad_token", "refuse"], help="make PACE fail")
    parser.add_argument("--aa-trailer", default="34CC", choices=["34CC", "BC"],
                        help="RSA AA: SHA-256 with trailer 34CC, or SHA-1 with BC")
    parser.add_argument("--timing", default="zero", metavar="zero|realistic|KBPS",
                        help="contactless timing model: zero (default), realistic (424 kbit/s) or a bit rate")
    parser.add_argument("--control", help="Unix socket path for fault requests (simulators.faults)")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME[:k=v,...]",
                        help="unplug, slow or corrupt_crc at start")
    args = parser.parse_args(argv)
    files, lines = load_document(args.doc)
    tear = None
    if args.tear:
        name, _, offset = args.tear.partition(":")
        tear = (name, int(offset))
    profile = ChipProfile(max_response=args.max_response, extended_length=not args.no_extended_length,
                          exact_le=args.exact_le, tear_at=tear, bac=not args.pace_only, pace_fault=args.pace_fault)
    if args.no_pace:
        files.pop("EF.CardAccess", None)
    applet = EmrtdApplet(files, BacKey.from_mrz(mrz.parse(lines)), profile, seed=args.seed, can=args.can,
                         aa=load_aa(args.doc, files, args.aa_trailer), cam_key=load_cam_key(args.doc),
                         ca_key=load_cam_key(args.doc, "ca_key.pem"))
    timing = (ContactlessTiming.zero() if args.timing == "zero" else ContactlessTiming.realistic()
              if args.timing == "realistic" else ContactlessTiming.realistic(int(args.timing)))
    return run_simulator_cli(VirtualCard(applet, args.port, args.host, timing=timing), args)


if __name__ == "__main__":
    sys.exit(main())
