"""The signed passage record as it leaves the gate: a versioned msgpack body in a signed envelope.

    envelope = msgpack {"v": 1, "body": <bytes>, "sig": <64 bytes>}
    body     = msgpack {"v": 1, "id": "<gate>:<seq>", "gate", "seq", "passage", "started", "ended",
                        "outcome", "reasons", "detail", "document", "scores", "timings"}

The signature is Ed25519 over `DOMAIN + body` with the gate's key (`storage.signing_key`), so a
record cannot be altered, and a signature over anything else cannot be passed off as a record.
The body carries decisions, reason codes, scores and timings; never images or templates. The
document number is carried in full or as a keyed hash, per `sync.document_number`.

A traveller's one-tap satisfaction rating is a record of its own in the same format (`rating_passage`):
outcome "rating", `passage` the rated passage's id, `scores` {"satisfaction": good|neutral|poor}, and
nothing else: no document, no reasons, no timings. Linked to its passage by id, it leaves the
passage record final the moment the passage ends, whenever (or whether) the tap comes.

Every audit-trail entry (logins, commands, officer actions, service changes) and every officer alert
is a record too (`audit_passage`): outcome "audit" or "alert", the entry in `detail`.

Every decoder here raises `RecordError` (a `ParseError`) with what was wrong; nothing else.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import ParseError

VERSION = 1
DOMAIN = b"egate passage record v1\x00"
MAX_RECORD_BYTES = 64 * 1024    # a record is ~1 KB; anything near this is not one
_BODY_KEYS = {"v", "id", "gate", "seq", "passage", "started", "ended", "outcome", "reasons", "detail",
              "document", "scores", "timings"}


class RecordError(ParseError):
    """Bytes that are not a well-formed, correctly signed passage record."""


# ------------------------------------------------------------------------ keys

def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise RecordError(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise RecordError(f"{path}: the record signing key must be Ed25519, not {type(key).__name__}")
    return key


def load_verify_key(data: bytes, what: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise RecordError(f"{what}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise RecordError(f"{what}: a gate's record key must be Ed25519, not {type(key).__name__}")
    return key


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# ------------------------------------------------------------------------ building

RATING = "rating"                        # the outcome of a rating record
RATINGS = ("good", "neutral", "poor")    # the three faces


def rating_passage(passage_id: str, rating: str, at: str | None = None) -> dict:
    """What `encode_body` takes for a rating record: the rated passage's id, the face, the time of
    the tap; nothing that says who tapped."""
    if rating not in RATINGS:
        raise ValueError(f"rating {rating!r} is not one of {RATINGS}")
    at = at or _dt.datetime.now(_dt.timezone.utc).isoformat()
    return {"passage_id": passage_id, "started": at, "ended": at, "outcome": RATING, "reasons": [],
            "scores": {"satisfaction": rating}}


def satisfaction_rate(counts: dict[str, int]) -> float | None:
    """The share of ratings that are "good" (the seed's satisfaction target is >= 95.1 %); None
    when nobody rated. `counts`: face -> number of ratings."""
    total = sum(counts.get(r, 0) for r in RATINGS)
    return None if total == 0 else counts.get("good", 0) / total


AUDIT, ALERT = "audit", "alert"          # the outcomes of the records that carry the audit trail


def audit_passage(entry: dict) -> dict:
    """What `encode_body` takes for one audit-trail entry (core/audit.py): outcome "alert" for an
    officer alert (its reason code in `reasons`, its passage in `passage`), "audit" for any other
    entry; the entry itself (its hash and the link to the one before included) in `detail`, so central
    holds the gate's chain and sees a gap in it."""
    details = entry.get("details") or {}
    alert = entry["action"] == "officer.alert"
    return {"passage_id": str(details.get("passage_id") or ""), "started": entry["ts"], "ended": entry["ts"],
            "outcome": ALERT if alert else AUDIT,
            "reasons": [str(details["reason"])] if alert and details.get("reason") else [],
            "reason_detail": {"audit": entry}}


def document_fields(document: dict, policy: str, hash_key: bytes | None) -> dict:
    """The document part of a record: the number in full, or keyed-hashed (HMAC-SHA256 over
    issuer and number) so central can link a traveller's crossings without holding the number."""
    out = {k: v for k, v in document.items() if k != "number"}
    number = document.get("number")
    if number is None:
        return out
    if policy == "full":
        out["number"] = number
    elif policy == "keyed_hash":
        if not hash_key:
            raise ValueError("keyed_hash needs a key")
        msg = f"{document.get('issuer', '')}:{number}".encode()
        out["number_hmac"] = hmac.new(hash_key, msg, hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unknown document number policy {policy!r}")
    return out


def _plain(value):
    """Plain data only: maps, lists, text, numbers (numpy scalars become Python numbers, a
    non-finite float becomes None), never bytes or arrays: a sample cannot slip into a record."""
    kind = type(value)
    if kind is dict:
        return {str(k): _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_plain(v) for v in value]
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    raise TypeError(f"{kind.__name__} does not belong in a passage record")


def encode_body(*, gate: str, seq: int, passage: dict) -> bytes:
    """The record body for the `seq`-th record of `gate`; `passage` is PassageRecord.as_dict() plus
    `ended`, with the document already passed through `document_fields`."""
    body = {
        "v": VERSION, "id": f"{gate}:{seq}", "gate": gate, "seq": seq,
        "passage": passage["passage_id"], "started": passage["started"], "ended": passage["ended"],
        "outcome": passage["outcome"], "reasons": list(passage["reasons"]),
        "detail": dict(passage.get("reason_detail") or {}), "document": passage.get("document") or {},
        "scores": passage.get("scores") or {}, "timings": passage.get("timings_s") or {},
    }
    return msgpack.packb(_plain(body), use_bin_type=True)


def sign(body: bytes, key: Ed25519PrivateKey) -> bytes:
    return msgpack.packb({"v": VERSION, "body": body, "sig": key.sign(DOMAIN + body)}, use_bin_type=True)


# ------------------------------------------------------------------------ reading

@dataclass(frozen=True)
class Envelope:
    body: bytes
    sig: bytes
    raw: bytes

    def verify(self, key: Ed25519PublicKey) -> dict:
        try:
            key.verify(self.sig, DOMAIN + self.body)
        except InvalidSignature:
            raise RecordError("signature does not verify with the gate's key") from None
        return decode_body(self.body)


def _unpack(data: bytes, what: str):
    if not isinstance(data, (bytes, bytearray)):
        raise RecordError(f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError(f"{what}: {len(data)} bytes, more than a record ({MAX_RECORD_BYTES})")
    try:
        return msgpack.unpackb(bytes(data), raw=False, strict_map_key=True, max_bin_len=MAX_RECORD_BYTES,
                               max_str_len=MAX_RECORD_BYTES, max_array_len=4096, max_map_len=4096)
    except (msgpack.UnpackException, ValueError, TypeError, RecursionError) as exc:
        raise RecordError(f"{what}: not msgpack ({type(exc).__name__}: {exc})") from None


def decode_envelope(data: bytes) -> Envelope:
    env = _unpack(data, "record envelope")
    if not isinstance(env, dict) or set(env) != {"v", "body", "sig"}:
        raise RecordError("record envelope: expected a map of v, body, sig")
    if env["v"] != VERSION:
        raise RecordError(f"record envelope: version {env['v']!r}, this receiver reads {VERSION}")
    if not isinstance(env["body"], bytes) or not isinstance(env["sig"], bytes) or len(env["sig"]) != 64:
        raise RecordError("record envelope: body must be bytes and sig 64 bytes")
    return Envelope(env["body"], env["sig"], bytes(data))


def decode_body(body: bytes) -> dict:
    rec = _unpack(body, "record body")
    if not isinstance(rec, dict) or set(rec) != _BODY_KEYS:
        keys = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
        raise RecordError(f"record body: expected keys {sorted(_BODY_KEYS)}, got {keys}")
    if rec["v"] != VERSION:
        raise RecordError(f"record body: version {rec['v']!r}")
    gate, seq = rec["gate"], rec["seq"]
    if not isinstance(gate, str) or not gate or not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise RecordError("record body: gate must be a non-empty string and seq a positive integer")
    if rec["id"] != f"{gate}:{seq}":
        raise RecordError(f"record body: id {rec['id']!r} is not gate:seq")
    for key in ("passage", "started", "ended", "outcome"):
        if not isinstance(rec[key], str):
            raise RecordError(f"record body: {key} must be a string")
    if not isinstance(rec["reasons"], list) or not all(isinstance(r, str) for r in rec["reasons"]):
        raise RecordError("record body: reasons must be a list of strings")
    for key in ("detail", "document", "scores", "timings"):
        if not isinstance(rec[key], dict):
            raise RecordError(f"record body: {key} must be a map")
    return rec
