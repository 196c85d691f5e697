"""1,000 random PACE runs with zero failures, in process (the chip applet against the terminal's
protocol code, no pcscd): fresh random keys and nonces on both sides every run, across mappings,
curves, DH and ciphers, so a fixed-length encoding slip (a coordinate, a shared secret or a DH value
with a leading zero byte: about one run in a hundred here) shows as a failed run (pitfall 5)."""
import collections
import time


from drivers.emrtd.apdu import Response
from drivers.emrtd.pace import Pace, choose
from icao9303 import secinfo
from simulators.chip.applet import EmrtdApplet
from simulators.testpki import build_card_access
from tests.chip_helpers import MRZ_KEY

# (protocol, runs): small fields keep 1,000 runs in seconds; the encodings are the same code for every size
MIX = (("ECDH-IM-AES-128/8", 340), ("ECDH-IM-3DES/8", 30), ("ECDH-IM-AES-256/8", 30), ("ECDH-GM-AES-128/8", 250), ("ECDH-GM-3DES/9", 120), ("ECDH-GM-AES-256/13", 80),
       ("ECDH-IM-AES-128/13", 80), ("DH-GM-AES-128/0", 50), ("ECDH-CAM-AES-128/8", 20))


def test_a_thousand_random_pace_runs_never_fail():
    assert sum(n for _, n in MIX) == 1000
    failures = collections.Counter()
    start = time.perf_counter()
    for protocol, runs in MIX:
        files = {"EF.COM": b"\x60\x00", "EF.CardAccess": build_card_access(protocol)}
        info = choose(secinfo.parse_card_access(files["EF.CardAccess"]))
        cam_key = None
        if "CAM" in protocol:
            from cryptography.hazmat.primitives.asymmetric import ec
            cam_key = ec.generate_private_key(ec.SECP192R1())
        for _ in range(runs):
            applet = EmrtdApplet(files, MRZ_KEY, cam_key=cam_key)
            try:
                sm = Pace(info, MRZ_KEY).establish(lambda cmd: Response.decode(applet.process(cmd.encode())))
                assert applet.session is not None and applet.session.ks_mac == sm.ks_mac
                assert applet.session.ks_enc == sm.ks_enc and sm.ssc == 0
            except Exception as exc:  # noqa: BLE001 (counted, reported below)
                failures[f"{protocol}: {type(exc).__name__}: {exc}"] += 1
    assert not failures, failures
    assert time.perf_counter() - start < 60  # ~15 s on the 2-core build machine
