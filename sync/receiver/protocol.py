"""The wire protocol between a gate (or a forwarding backup) and a receiver: both ends of it.

HTTPS with mutual TLS; the client's identity is its certificate's subject CN. Bodies are msgpack.

    POST /v1/records    application/msgpack   [envelope bin, ...]          -> {"results": [...]}
    POST /v1/heartbeat  application/msgpack   {"gate", "at", "state", ...} -> {"ok": true}
    GET  /v1/status                                                       -> {"role", "site", ...}

A record result is `{"id": str|None, "status": "stored"|"duplicate"|"refused", "reason": str|None}`,
in request order; `stored` and `duplicate` acknowledge the record. An error response (400, 403,
413, 415, 503) is `{"error": code, "reason": text}`. docs/sync.md, "Wire protocol".

Every decoder here raises `ProtocolError` (a `ParseError`) with what was wrong; nothing else.
"""
from __future__ import annotations

import math
import re
import ssl
from pathlib import Path

import msgpack

from core.errors import ParseError

CONTENT_TYPE = "application/msgpack"
RECORDS_PATH = "/v1/records"
HEARTBEAT_PATH = "/v1/heartbeat"
STATUS_PATH = "/v1/status"
CROSSINGS_PATH = "/v1/crossings"
DIRECTIONS = ("arrival", "departure")
MAX_BATCH_RECORDS = 1000
MAX_BATCH_BYTES = 8 * 1024 * 1024
MAX_HEARTBEAT_BYTES = 64 * 1024

STORED, DUPLICATE, REFUSED = "stored", "duplicate", "refused"
ACKNOWLEDGED = frozenset({STORED, DUPLICATE})
# Why a record is refused (the `reason` of a refused result), and what each means.
REFUSALS = {
    "malformed": "not a well-formed record envelope or body",
    "unknown_gate": "no public key for the record's gate in gate_keys_dir",
    "bad_signature": "the signature does not verify with the gate's key",
    "foreign": "the record's gate is not the client's certificate, and the client is no trusted forwarder",
    "conflict": "a record with this id and different bytes is already stored (replay or tampering)",
}
# Why a whole request is refused (the `error` of an error response); counted like record refusals.
REQUEST_ERRORS = {
    "bad_body": "400: the body is not what the endpoint takes",
    "forbidden": "403: the client's certificate may not send this",
    "too_large": "413: more than the receiver's batch limits",
    "wrong_content_type": "415: the body is not application/msgpack",
    "unavailable": "503: the database cannot be reached; nothing was stored",
}

# A heartbeat's keys and the types of their values (None allowed where listed).
HEARTBEAT_KEYS = {
    "gate": (str,), "at": (str,), "state": (str,), "health": (dict,), "outbox_depth": (int,),
    "oldest_age_s": (float, int, type(None)), "counters": (dict,), "in_service_s": (float, int),
}
_GATE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# ------------------------------------------------------------------------ crossings

def crossing_key(document: dict) -> str | None:
    """What links a record's crossings of one document at central: the keyed hash when the
    records carry one (`sync.document_number = "keyed_hash"`), else issuer and number."""
    if not isinstance(document, dict):
        return None
    hashed, issuer, number = document.get("number_hmac"), document.get("issuer"), document.get("number")
    if isinstance(hashed, str) and hashed:
        return "h:" + hashed[:128]
    if isinstance(issuer, str) and isinstance(number, str) and issuer and number:
        return f"n:{issuer[:3]}:{number[:64]}"
    return None


def record_crossing(body: dict) -> tuple[str, str] | None:
    """(document key, direction) of a cleared passage whose record names both; else None."""
    if body.get("outcome") != "cleared":
        return None
    document = body.get("document")
    key = crossing_key(document)
    direction = document.get("direction") if isinstance(document, dict) else None
    return (key, direction) if key and direction in DIRECTIONS else None


def decode_crossing_query(body: bytes) -> dict:
    """`{"document": <crossing_key>, "direction": "arrival" | "departure"}`."""
    q = _unpack(body, "crossing query", 4096)
    if not isinstance(q, dict) or set(q) != {"document", "direction"}:
        raise ProtocolError("crossing query: expected a map of document and direction")
    if not isinstance(q["document"], str) or not 3 <= len(q["document"]) <= 200:
        raise ProtocolError("crossing query: document must be a crossing key")
    if q["direction"] not in DIRECTIONS:
        raise ProtocolError(f"crossing query: direction must be one of {DIRECTIONS}")
    return q


class ProtocolError(ParseError):
    """A request or response body that does not follow the wire protocol."""


def valid_gate_id(gate: str) -> bool:
    """Gate ids name key files: letters, digits, '.', '_', '-', at most 64, no leading dot."""
    return isinstance(gate, str) and bool(_GATE_RE.match(gate))


def _unpack(data: bytes, what: str, max_bytes: int):
    if not isinstance(data, (bytes, bytearray)):
        raise ProtocolError(f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise ProtocolError(f"{what}: {len(data)} bytes, more than {max_bytes}")
    n = len(data)  # every element takes a byte at least: no header may claim more (no huge preallocation)
    try:
        return msgpack.unpackb(bytes(data), raw=False, strict_map_key=True, max_bin_len=n, max_str_len=n,
                               max_array_len=n, max_map_len=n // 2, max_ext_len=0)
    except (msgpack.UnpackException, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise ProtocolError(f"{what}: not msgpack ({type(exc).__name__}: {exc})") from None


# ------------------------------------------------------------------------ records

def encode_batch(envelopes) -> bytes:
    """A request body: the envelopes (each the exact bytes of `sync.record.sign`)."""
    return msgpack.packb([bytes(e) for e in envelopes], use_bin_type=True)


def decode_batch(body: bytes, max_bytes: int = MAX_BATCH_BYTES) -> list:
    """The items of a record batch, in order: bytes for each envelope, anything else as found
    (the receiver refuses such an item as `malformed`; the rest of the batch is still answered).
    Raises ProtocolError when the body is not one msgpack array."""
    items = _unpack(body, "record batch", max_bytes)
    if not isinstance(items, list):
        raise ProtocolError(f"record batch: expected an array of envelopes, got {type(items).__name__}")
    return items


def encode_results(results: list[dict]) -> bytes:
    return msgpack.packb({"results": results}, use_bin_type=True)


def decode_results(body: bytes, sent: int) -> list[dict]:
    """The receiver's answer to a batch of `sent` envelopes, checked: one result per envelope."""
    reply = _unpack(body, "records response", MAX_BATCH_BYTES)
    if not isinstance(reply, dict) or set(reply) != {"results"} or not isinstance(reply["results"], list):
        raise ProtocolError("records response: expected {results: [...]}")
    results = reply["results"]
    if len(results) != sent:
        raise ProtocolError(f"records response: {len(results)} results for {sent} records")
    for r in results:
        if (not isinstance(r, dict) or set(r) != {"id", "status", "reason"}
                or r["status"] not in (STORED, DUPLICATE, REFUSED)
                or not isinstance(r["id"], (str, type(None))) or not isinstance(r["reason"], (str, type(None)))):
            raise ProtocolError(f"records response: a result that is not {{id, status, reason}}: {r!r:.200}")
    return results


# ------------------------------------------------------------------------ heartbeat

def encode_heartbeat(beat: dict) -> bytes:
    return msgpack.packb(beat, use_bin_type=True)


def decode_heartbeat(body: bytes) -> dict:
    """A heartbeat map with exactly the keys of HEARTBEAT_KEYS, each of its type."""
    beat = _unpack(body, "heartbeat", MAX_HEARTBEAT_BYTES)
    if not isinstance(beat, dict):
        raise ProtocolError(f"heartbeat: expected a map, got {type(beat).__name__}")
    if set(beat) != set(HEARTBEAT_KEYS):
        missing, extra = sorted(set(HEARTBEAT_KEYS) - set(beat)), sorted(map(str, set(beat) - set(HEARTBEAT_KEYS)))
        raise ProtocolError("heartbeat: " + "; ".join(
            f"{what} keys {', '.join(keys)}" for what, keys in (("missing", missing), ("unknown", extra)) if keys))
    for key, types in HEARTBEAT_KEYS.items():
        value = beat[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise ProtocolError(f"heartbeat: {key} must be {' or '.join(t.__name__ for t in types)}, "
                                f"not {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ProtocolError(f"heartbeat: {key} must be finite")
    if not valid_gate_id(beat["gate"]):
        raise ProtocolError(f"heartbeat: {beat['gate']!r:.80} is not a gate id")
    if beat["outbox_depth"] < 0:
        raise ProtocolError("heartbeat: outbox_depth must not be negative")
    if not all(isinstance(k, str) and isinstance(v, (str, type(None))) for k, v in beat["health"].items()):
        raise ProtocolError("heartbeat: health must map device names to a string or nil")
    if not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
               for k, v in beat["counters"].items()):
        raise ProtocolError("heartbeat: counters must map names to integers")
    return beat


# ------------------------------------------------------------------------ errors and TLS

def encode_error(code: str, reason: str) -> bytes:
    return msgpack.packb({"error": code, "reason": reason}, use_bin_type=True)


def server_ssl_context(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """Mutual TLS, server side: our certificate, and a client certificate from `client_ca` required."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    ctx.load_verify_locations(cafile=str(client_ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_ssl_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """Mutual TLS, client side: the receiver's certificate must chain to `ca` and name the host."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def peer_cn(peercert: dict | None) -> str | None:
    """The subject CN of a verified peer certificate (`SSLObject.getpeercert()`), or None."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return value
    return None
