"""Central's lists for a simulated lane: the control list and the resident register, signed with a
test publishing key and installed where the gate's downstream bundles live, as the sync agent
would have installed them (docs/decisions.md, "Control list").

    text = screen_lane(lane, direction="arrival", reuse_window_s=3600)   # after Lane.start()

writes the publishing key, signs and installs the lists for the lane's people (`LISTED`,
`RESIDENTS`), and rewrites the lane's gate config with `[sync.bundles]`, `[screening]` and the
direction. `publish_control_list` signs another version (a newer one, or one created long ago to
make the list stale).
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.screening import controllist as CL
from sync import downstream as D

# Who central lists: mueller by the name on his civil papers (the MRZ spells it MUELLER JUERGEN),
# and a stolen passport nobody in the lane carries.
LISTED = (
    CL.Entry("CL-0001", surname="Müller", given_names="Jürgen", birth_date="19680214", nationality="TWN",
             category="wanted", action="detain", note="simulated entry"),
    CL.Entry("CL-0002", issuer="NLD", number="NXX000000", category="stolen_document", action="seize"),
)
# Foreigners with a registered residence permit: nguyen's passport.
RESIDENTS = (CL.Entry("ARC-2026-0001", issuer="NLD", number="NKP2W7Q64", surname="NGUYEN", given_names="THI LAN",
                      birth_date="19900723", category="resident", valid_until="20301231"),)


def publisher_key(workdir: Path) -> Ed25519PrivateKey:
    path = Path(workdir) / "publisher.pem"
    if path.exists():
        return D.load_signing_key(path)
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    (Path(workdir) / "publisher.pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def install(bundles: Path, key: Ed25519PrivateKey, kind: str, data: bytes, created: dt.datetime | None = None) -> int:
    """Sign `data` as the next version of `kind` and install it (what the agent does with a pull)."""
    bdir = D.BundleDir(bundles, key.public_key())
    current = bdir.installed(kind)
    version = (current.version if current else 0) + 1
    envelope = D.sign(kind, version, {f"{kind}.ecl": data}, key, created)
    bdir.install(D.verify(envelope, key.public_key(), kind=kind, after=version - 1))
    return version


def publish_control_list(bundles: Path, key, entries=LISTED, *, serial: int = 1,
                         created: dt.datetime | None = None) -> int:
    return install(bundles, key, CL.SNAPSHOT_KIND, CL.build(entries, serial=serial, issued=created), created)


def screen_lane(lane, *, direction: str | None = None, reuse_window_s: float = 3600.0, central_check: bool = False,
                max_age_s: float = 86400.0) -> str:
    """Install the lists for `lane` and point its gate config at them; returns the config's text."""
    from gate.config import load_gate

    data_dir = lane.workdir / "gate-data"
    bundles = data_dir / "bundles"
    key = publisher_key(lane.workdir)
    publish_control_list(bundles, key)
    install(bundles, key, "residents", CL.build(RESIDENTS, serial=1))
    text = lane.config_path.read_text()
    if direction:
        text = re.sub(r'(?m)^direction = "\w+"', f'direction = "{direction}"', text, count=1)
    text = re.sub(r"(?ms)^# -- screening \(simulators/lists.py\).*\Z", "", text)
    text += f"""
# -- screening (simulators/lists.py)
[sync.bundles]
kinds = ["controllist", "controllist-delta", "residents"]
publisher_key = "{lane.workdir / 'publisher.pub.pem'}"

[screening.control_list]
enabled = true
max_age_s = {float(max_age_s)}

[screening.residents]
enabled = true

[screening.reuse]
window_s = {float(reuse_window_s)}
central = {'true' if central_check else 'false'}
"""
    lane.config_path.write_text(text)
    load_gate(lane.config_path)   # a config error shows here, named
    return text
