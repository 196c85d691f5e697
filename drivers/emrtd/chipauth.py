"""Chip authenticity through the chip-authentication key: PACE-CAM (ICAO 9303-11 §4.4.3.5).

After a PACE-CAM run the terminal holds CA_IC (decrypted from the chip's GA 4 answer) and
PK_map,IC. EF.CardSecurity (read under secure messaging from the master file, a CMS SignedData
of SecurityInfos) holds the chip's static chip-authentication public key; the chip is authentic
when CA_IC * PK_IC = PK_map,IC. The key is chosen by keyId = the PACE parameter id (TR-03110;
documents with two keys break if the first key on the curve is taken), else the only key on the
PACE curve.

`verify_cam` never raises on chip data; it returns a `ChipAuthResult`. The result binds the chip
to EF.CardSecurity's key only: EF.CardSecurity's signature must pass passive authentication
(`icao9303.card_security.verify`) before the gate trusts it.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import ParseError
from drivers.emrtd import groups
from drivers.emrtd.pace import PaceProtocol
from icao9303 import secinfo


@dataclass
class ChipAuthResult:
    status: str          # "passed" | "failed" | "not_offered"
    method: str = ""     # "PACE-CAM"
    reason: str = ""
    key_id: int | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return {"status": self.status, "method": self.method, "reason": self.reason, "key_id": self.key_id}


def verify_cam(protocol: PaceProtocol, card_security: bytes) -> ChipAuthResult:
    method = "PACE-CAM"
    try:
        _, infos = secinfo.parse_card_security(card_security)
    except ParseError as exc:
        return ChipAuthResult("failed", method, f"EF.CardSecurity does not parse: {exc}")
    curve = protocol.group
    candidates = []
    for info in infos.chip_auth_keys:
        try:
            key_curve, point = groups.ec_public_key(info.public_key_der)
        except groups.GroupError:
            continue
        if key_curve == curve:
            candidates.append((info.key_id, point))
    if not candidates:
        return ChipAuthResult("failed", method, f"EF.CardSecurity has no chip-authentication key on {curve.name}")
    wanted = protocol.info.parameter_id
    chosen = [c for c in candidates if c[0] == wanted]
    if not chosen:
        if len(candidates) > 1:
            return ChipAuthResult("failed", method, f"{len(candidates)} keys on {curve.name} and none has keyId {wanted}")
        chosen = candidates
    key_id, point = chosen[0]
    if protocol.verify_chip_authentication(point):
        return ChipAuthResult("passed", method, f"CA_IC * PK_IC = PK_map,IC ({curve.name})", key_id)
    return ChipAuthResult("failed", method, "the chip's authentication data does not match EF.CardSecurity's key "
                                            "(a chip without the issuer's private key)", key_id)
