"""The control list (watchlist): its file format, its index, and the gate's verified local cache.

Central publishes the list as downstream bundles (docs/sync.md, "Downstream"; docs/decisions.md,
"Control list"): a **snapshot** (kind `controllist`) and a **delta** against it (kind
`controllist-delta`), each bundle holding one `.ecl` file. A delta is cumulative: it carries every
change since the snapshot it names (`base`), so the newest delta alone brings a gate up to date
and a gate that missed deltas loses nothing; central publishes a new snapshot when deltas grow.

The `.ecl` file (msgpack map, every field required):

    format   "egate-controllist"      v 1
    type     "snapshot" | "delta"
    serial   int >= 1: the snapshot's serial (central's list generation); a delta's own sequence
    base     snapshot serial the delta applies to (0 for a snapshot)
    algo     "blake2b64/icao9303-names-1": how keys were made (this module's `entry_keys`)
    issued   ISO 8601 with zone
    count    number of entries n
    entries  bytes: n msgpack-encoded entries, one after another
    offsets  bytes: n + 1 little-endian uint64, entry i is entries[offsets[i]:offsets[i+1]]
    keys     bytes: m little-endian uint64, sorted: the 64-bit BLAKE2b of each lookup key
    slots    bytes: m little-endian uint32, the entry each key belongs to
    removed  list of entry ids the delta takes out of the snapshot ([] for a snapshot)

The index is built by central (`build`), so a gate loads a million entries by mapping arrays, not
by folding a million names; at load the gate adds a directory over the sorted keys' top bits (about
one key per bucket), so a lookup reads two directory slots and one short bucket whatever the list's
size (bench/controllist.py). Entries are decoded only for a key that matched, and the match is
then checked on the entry's own fields, so a hash collision never makes a hit.

Lookup keys (strings before hashing):
    D|<issuer>|<document number>                      document number + issuing state
    NF|<surname>|<given names>|<birth>                every MRZ spelling of the name (icao9303.names), all given names
    N1|<surname>|<first given name>|<birth>           ... the first given name only
where <birth> is YYYYMMDD, or YYYY when the list knows only the year (month or day 00).

`decode` raises `ControlListError` and nothing else, whatever the bytes (fuzzed).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import numpy as np

from core import logs
from core.component import Component, ComponentStatus
from core.errors import ParseError
from icao9303 import names

log = logs.get("controllist")

FORMAT = "egate-controllist"
VERSION = 1
ALGO = "blake2b64/icao9303-names-1"
SNAPSHOT_KIND, DELTA_KIND = "controllist", "controllist-delta"
SUFFIX = ".ecl"
MAX_ENTRIES = 20_000_000
MAX_ENTRY_BYTES = 4096
_FIELDS = {"format", "v", "type", "serial", "base", "algo", "issued", "count", "entries", "offsets", "keys", "slots",
           "removed"}
_ENTRY_FIELDS = {"id", "issuer", "number", "surname", "given_names", "birth_date", "nationality", "category",
                 "action", "note", "valid_until"}
_CODE = re.compile(r"^[A-Z<]{1,3}$")
_DATE = re.compile(r"^[0-9]{8}$")
NAME_RULES = ("full", "first")


class ControlListError(ParseError):
    """A control-list file that cannot be used; the message says what was wrong."""


# ------------------------------------------------------------------------ entries and keys

@dataclass(frozen=True)
class Entry:
    """One person or document on the list. Dates are YYYYMMDD, 00 for an unknown month or day."""
    id: str
    surname: str = ""
    given_names: str = ""
    birth_date: str = ""              # "" when not known
    issuer: str = ""                  # with number: a document on the list (lost, stolen, or its holder's)
    number: str = ""
    nationality: str = ""
    category: str = "watch"           # central's category (wanted, stolen_document, watch, resident, ...)
    action: str = "refer"             # what the officer is asked to do
    note: str = ""
    valid_until: str = ""             # the entry lapses after this date ("" never)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v != ""}

    def lapsed(self, today: dt.date) -> bool:
        return bool(self.valid_until) and self.valid_until < today.strftime("%Y%m%d")


def normal_number(number: str) -> str:
    return "".join(number.upper().replace("<", "").split())


def doc_key(issuer: str, number: str) -> str:
    return f"D|{issuer.upper().replace('<', '')}|{normal_number(number)}"


def birth_forms(birth: str) -> str:
    """The birth part of a name key: YYYYMMDD, or YYYY when month or day is unknown (00)."""
    return birth[:4] if birth[4:6] == "00" or birth[6:8] == "00" else birth


def name_keys(surname: str, given_names: str, birth: str, rule: str) -> list[str]:
    """Keys of a listed name: every MRZ spelling (icao9303.names.key_variants) with the birth date."""
    tag = "NF" if rule == "full" else "N1"
    b = birth_forms(birth)
    return [f"{tag}|{k}|{b}" for k in names.key_variants(surname, given_names, rule)]


def entry_keys(e: Entry) -> list[str]:
    keys = []
    if e.issuer and e.number:
        keys.append(doc_key(e.issuer, e.number))
    if e.surname and e.birth_date:
        for rule in NAME_RULES:
            keys.extend(name_keys(e.surname, e.given_names, e.birth_date, rule))
    return list(dict.fromkeys(keys))


def hash64(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


# ------------------------------------------------------------------------ the file

def _pack_entry(e: Entry) -> bytes:
    return msgpack.packb(e.as_dict(), use_bin_type=True)


def build(entries: Iterable[Entry], *, serial: int, kind: str = "snapshot", base: int = 0,
          removed: Iterable[str] = (), issued: dt.datetime | None = None) -> bytes:
    """The `.ecl` file of a snapshot or a delta (central's side: `egate bundle controllist`)."""
    if kind not in ("snapshot", "delta"):
        raise ValueError("kind is snapshot or delta")
    blobs, keys, slots = [], [], []
    for i, e in enumerate(entries):
        blob = _pack_entry(e)
        if len(blob) > MAX_ENTRY_BYTES:
            raise ValueError(f"entry {e.id}: {len(blob)} bytes, at most {MAX_ENTRY_BYTES}")
        blobs.append(blob)
        for k in entry_keys(e):
            keys.append(hash64(k))
            slots.append(i)
    offsets = np.zeros(len(blobs) + 1, dtype="<u8")
    if blobs:
        np.cumsum([len(b) for b in blobs], out=offsets[1:])
    k = np.array(keys, dtype="<u8")
    s = np.array(slots, dtype="<u4")
    order = np.argsort(k, kind="stable")
    body = {"format": FORMAT, "v": VERSION, "type": kind, "serial": int(serial), "base": int(base), "algo": ALGO,
            "issued": (issued or dt.datetime.now(dt.timezone.utc)).isoformat(), "count": len(blobs),
            "entries": b"".join(blobs), "offsets": offsets.tobytes(), "keys": k[order].tobytes(),
            "slots": s[order].tobytes(), "removed": sorted(set(removed)) if kind == "delta" else []}
    return msgpack.packb(body, use_bin_type=True)


@dataclass
class ListFile:
    """A decoded `.ecl` file with its index (read-only numpy views on the file's bytes)."""
    type: str
    serial: int
    base: int
    issued: dt.datetime
    count: int
    removed: frozenset[str]
    _entries: bytes = field(repr=False)
    _offsets: np.ndarray = field(repr=False)
    _keys: np.ndarray = field(repr=False)
    _slots: np.ndarray = field(repr=False)
    _starts: np.ndarray = field(repr=False, default=None)   # bucket directory over the keys' top bits
    _shift: int = 64

    def __post_init__(self):
        # A directory on the top bits of the sorted keys (about one key per bucket): a lookup reads
        # two directory slots and a bucket, wherever the list's size puts the key. Built at load,
        # vectorised: 0.1 s for four million keys.
        bits = min(24, max(1, (len(self._keys) - 1).bit_length())) if len(self._keys) else 1
        self._shift = 64 - bits
        prefix = self._keys >> np.uint64(self._shift)
        self._starts = np.searchsorted(prefix, np.arange((1 << bits) + 1, dtype=np.uint64)).astype(np.uint32)

    def slots_for(self, key: str) -> list[int]:
        """The entries a lookup key may belong to: its bucket in the directory, then the few keys in it."""
        h = hash64(key)
        b = h >> self._shift
        lo, hi = int(self._starts[b]), int(self._starts[b + 1])
        return [int(self._slots[i]) for i in range(lo, hi) if int(self._keys[i]) == h]

    def entry(self, i: int) -> Entry:
        """Entry `i`, decoded now; ControlListError when it is malformed."""
        lo, hi = int(self._offsets[i]), int(self._offsets[i + 1])
        return _decode_entry(self._entries[lo:hi], i)


def _unpack(data, what: str, max_bytes: int):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ControlListError(f"{what}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise ControlListError(f"{what}: {len(data)} bytes, more than {max_bytes}")
    n = len(data)
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=n, max_str_len=n,
                               max_array_len=n, max_map_len=n // 2, max_ext_len=0)
    except (msgpack.UnpackException, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise ControlListError(f"{what}: not msgpack ({type(exc).__name__}: {exc})") from None


def _int(v, what: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ControlListError(f"{what}: {v!r:.40} is not an integer in {lo}..{hi}")
    return v


def decode(data: bytes, max_bytes: int = 1 << 31) -> ListFile:
    """A `.ecl` file, checked in full except the entries themselves (decoded when they match)."""
    top = _unpack(data, "control list", max_bytes)
    if not isinstance(top, dict) or set(top) != _FIELDS:
        keys = sorted(map(str, top)) if isinstance(top, dict) else type(top).__name__
        raise ControlListError(f"control list: expected the keys {sorted(_FIELDS)}, got {keys!s:.200}")
    if top["format"] != FORMAT or top["v"] != VERSION or isinstance(top["v"], bool):
        raise ControlListError(f"control list: format {top['format']!r:.40} v{top['v']!r:.10}, "
                               f"this gate reads {FORMAT} v{VERSION}")
    if top["algo"] != ALGO:
        raise ControlListError(f"control list: keys made by {top['algo']!r:.60}, this gate makes {ALGO!r}")
    kind = top["type"]
    if kind not in ("snapshot", "delta"):
        raise ControlListError(f"control list: type {kind!r:.40}, expected snapshot or delta")
    serial = _int(top["serial"], "serial", 1, 2 ** 63 - 1)
    base = _int(top["base"], "base", 0, 2 ** 63 - 1)
    if (kind == "delta") != (base > 0):
        raise ControlListError(f"control list: a {kind} with base {base}")
    if not isinstance(top["issued"], str) or len(top["issued"]) > 64:
        raise ControlListError("control list: issued must be an ISO 8601 string")
    try:
        issued = dt.datetime.fromisoformat(top["issued"])
    except ValueError:
        raise ControlListError(f"control list: issued {top['issued']!r} is not ISO 8601") from None
    if issued.tzinfo is None:
        raise ControlListError("control list: issued has no time zone")
    count = _int(top["count"], "count", 0, MAX_ENTRIES)
    for name in ("entries", "offsets", "keys", "slots"):
        if not isinstance(top[name], bytes):
            raise ControlListError(f"control list: {name} must be bytes")
    removed = top["removed"]
    if not isinstance(removed, list) or not all(isinstance(r, str) and 0 < len(r) <= 64 for r in removed):
        raise ControlListError("control list: removed must be a list of entry ids")
    if kind == "snapshot" and removed:
        raise ControlListError("control list: a snapshot removes nothing")
    entries, raw_off, raw_keys, raw_slots = top["entries"], top["offsets"], top["keys"], top["slots"]
    if len(raw_off) != 8 * (count + 1):
        raise ControlListError(f"control list: {len(raw_off)} bytes of offsets for {count} entries")
    if len(raw_keys) % 8 or len(raw_slots) * 2 != len(raw_keys):
        raise ControlListError(f"control list: {len(raw_keys)} bytes of keys and {len(raw_slots)} of slots")
    offsets = np.frombuffer(raw_off, dtype="<u8")
    keys = np.frombuffer(raw_keys, dtype="<u8")
    slots = np.frombuffer(raw_slots, dtype="<u4")
    if offsets[0] != 0 or int(offsets[-1]) != len(entries) or np.any(np.diff(offsets.astype(np.int64)) < 0) \
            or np.any(offsets > len(entries)):
        raise ControlListError("control list: entry offsets are not increasing within the entries")
    if len(keys) and (np.any(keys[1:] < keys[:-1]) or int(slots.max()) >= max(count, 1) or count == 0):
        raise ControlListError("control list: keys are not sorted, or a key names no entry")
    return ListFile(kind, serial, base, issued.astimezone(dt.timezone.utc), count, frozenset(removed),
                    entries, offsets, keys, slots)


def _decode_entry(blob: bytes, i: int) -> Entry:
    raw = _unpack(blob, f"entry {i}", MAX_ENTRY_BYTES)
    if not isinstance(raw, dict) or "id" not in raw or not set(raw) <= _ENTRY_FIELDS:
        raise ControlListError(f"entry {i}: not an entry map")
    if not all(isinstance(v, str) and len(v) <= 512 for v in raw.values()):
        raise ControlListError(f"entry {i}: every field is a short string")
    e = Entry(**raw)
    if not e.id or (e.issuer and not _CODE.match(e.issuer)) or any(
            d and not _DATE.match(d) for d in (e.birth_date, e.valid_until)):
        raise ControlListError(f"entry {i}: an id, a 1-3 letter issuer and YYYYMMDD dates")
    return e


def check_payload(name: str, data: bytes, kind: str) -> None:
    """What central checks before signing and the gate before installing (sync.downstream)."""
    from sync.downstream import BundleError

    if not name.endswith(SUFFIX):
        raise BundleError("bad_payload", f"{name}: a control-list bundle holds one {SUFFIX} file")
    try:
        f = decode(data)
    except ControlListError as exc:
        raise BundleError("bad_payload", f"{name}: {exc}") from None
    want = "snapshot" if kind == SNAPSHOT_KIND else "delta"
    if f.type != want:
        raise BundleError("bad_payload", f"{name}: a {f.type} in a {kind} bundle")


def register_payload_checks() -> None:
    """Teach the downstream channel what a control-list bundle must hold (sync sits below gate)."""
    from sync import downstream

    downstream.PAYLOAD_CHECKS.setdefault(SNAPSHOT_KIND, lambda n, d: check_payload(n, d, SNAPSHOT_KIND))
    downstream.PAYLOAD_CHECKS.setdefault(DELTA_KIND, lambda n, d: check_payload(n, d, DELTA_KIND))


register_payload_checks()


# ------------------------------------------------------------------------ lookups

@dataclass(frozen=True)
class Query:
    """Who is at the gate: from the MRZ (and the chip's DG1 when it differs)."""
    issuer: str
    number: str
    surname: str
    given_names: str
    birth_date: str = ""     # YYYYMMDD; "" when unknown

    @classmethod
    def from_mrz(cls, m) -> Query:
        birth = m.birth_date.strftime("%Y%m%d") if getattr(m, "birth_date", None) else ""
        return cls(m.issuer, m.document_number, m.surname, m.given_names, birth)


@dataclass(frozen=True)
class Hit:
    entry: Entry
    on: str                  # "document" or "name_birth_date"
    list_version: str

    def detail(self) -> str:
        e = self.entry
        who = " ".join(x for x in (e.surname, e.given_names) if x) or "-"
        doc = f"{e.issuer} {e.number}" if e.number else "-"
        text = (f"control list {self.list_version} entry {e.id} ({e.category}, action {e.action}) matched on "
                f"{self.on}: name {who}, born {e.birth_date or '-'}, document {doc}")
        return text + (f"; note: {e.note}" if e.note else "")

    def as_dict(self) -> dict:
        return {"entry": self.entry.id, "category": self.entry.category, "action": self.entry.action,
                "on": self.on, "list": self.list_version}


class ControlList:
    """A snapshot with the delta that applies to it: what the gate screens against. Immutable:
    an update builds a new one and swaps the reference."""

    def __init__(self, snapshot: ListFile, delta: ListFile | None = None, *, created: dt.datetime | None = None):
        if delta is not None and delta.base != snapshot.serial:
            raise ControlListError(f"delta {delta.serial} applies to snapshot {delta.base}, not {snapshot.serial}")
        self.snapshot, self.delta = snapshot, delta
        self.created = created or max(snapshot.issued, delta.issued if delta else snapshot.issued)

    @property
    def version(self) -> str:
        return f"{self.snapshot.serial}" + (f"+{self.delta.serial}" if self.delta else "")

    @property
    def entries(self) -> int:
        return self.snapshot.count + (self.delta.count if self.delta else 0)

    def _candidates(self, key: str):
        removed = self.delta.removed if self.delta else frozenset()
        for i in self.snapshot.slots_for(key):
            e = self.snapshot.entry(i)
            if e.id not in removed:
                yield e
        if self.delta is not None:
            for i in self.delta.slots_for(key):
                yield self.delta.entry(i)

    def lookup(self, q: Query, *, match: Iterable[str] = ("document", "name_birth_date"), name_rule: str = "full",
               today: dt.date | None = None) -> list[Hit]:
        """Entries that match `q` under the rule: its document (number + issuing state) and/or its
        name (folded, icao9303.names) with its birth date (exact, or the year where the list
        knows only that). Each candidate is checked on its own fields."""
        today = today or dt.date.today()
        hits: dict[str, Hit] = {}
        match = tuple(match)
        if "document" in match and q.number:
            key = doc_key(q.issuer, q.number)
            for e in self._candidates(key):
                if e.number and doc_key(e.issuer, e.number) == key and not e.lapsed(today):
                    hits.setdefault(e.id, Hit(e, "document", self.version))
        if "name_birth_date" in match and q.surname and q.birth_date:
            tag = "NF" if name_rule == "full" else "N1"
            mine = names.name_key(names.fold_mrz(q.surname), names.fold_mrz(q.given_names), name_rule)
            for birth in dict.fromkeys((q.birth_date, q.birth_date[:4])):
                for e in self._candidates(f"{tag}|{mine}|{birth}"):
                    if e.id in hits or e.lapsed(today) or not e.birth_date:
                        continue
                    if birth_forms(e.birth_date) != birth:
                        continue
                    if mine in names.key_variants(e.surname, e.given_names, name_rule):
                        hits[e.id] = Hit(e, "name_birth_date", self.version)
        return list(hits.values())


# ------------------------------------------------------------------------ the gate's cache

class ListCache(Component):
    """The installed control list (or any list in this format, e.g. the resident register), from
    the downstream bundles directory: verified with central's publishing key when loaded and
    whenever the installed bundle changes, swapped in whole, and judged on its age.

    `status()` (polled by the controller's supervision, in a worker thread) notices a new install
    by the `current` links and the envelope files' stat, so a bundle installed by the agent or by
    `egate bundle pull` is taken up within a poll. A list that is missing, stale, or fails its
    signature or its format makes the component unhealthy with that reason: the controller takes
    the lane out of service and back in when a good, fresh one arrives.
    """

    def __init__(self, name: str, bundles_dir: Path, key, *, max_age_s: float, snapshot_kind: str = SNAPSHOT_KIND,
                 delta_kind: str | None = DELTA_KIND, clock=None):
        self.name = name
        self.dir = Path(bundles_dir)
        self.key = key
        self.max_age_s = max_age_s
        self.kinds = (snapshot_kind, delta_kind)
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.current: ControlList | None = None
        self.problem: str | None = "not loaded"    # why the list cannot be used (besides its age)
        self.state = "missing"
        self.loads = 0
        self._stamp: tuple | None = None
        self._lock = threading.Lock()

    # -- loading -----------------------------------------------------------------------
    def _envelope(self, kind: str) -> Path | None:
        try:
            target = os.readlink(self.dir / kind / "current")
        except OSError:
            return None
        return self.dir / kind / f"{target}.bundle" if re.fullmatch(r"v[0-9]{1,19}", target) else None

    def _stamp_now(self) -> tuple:
        out = []
        for kind in self.kinds:
            path = self._envelope(kind) if kind else None
            try:
                st = path.stat() if path else None
            except OSError:
                st = None
            out.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino) if st else None)
        return tuple(out)

    def _read(self, kind: str) -> tuple[ListFile, dt.datetime] | None:
        from sync import downstream as D

        path = self._envelope(kind)
        if path is None:
            return None
        raw = path.read_bytes()
        bundle = D.verify(raw, self.key, kind=kind, check_files=False, max_bytes=1 << 40)
        files = [n for n in bundle.files if n.endswith(SUFFIX)]
        if len(files) != 1:
            raise ControlListError(f"{kind} v{bundle.version}: {len(files)} {SUFFIX} files, expected one")
        return decode(bundle.files[files[0]]), bundle.created

    def refresh(self) -> bool:
        """Load the installed list again if it changed on disk; True when it did."""
        from sync.downstream import BundleError

        with self._lock:
            stamp = self._stamp_now()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            snap_kind, delta_kind = self.kinds
            try:
                snap = self._read(snap_kind)
                if snap is None:
                    self.current, self.state, self.problem = None, "missing", f"no {snap_kind} bundle installed"
                    return True
                delta = self._read(delta_kind) if delta_kind else None
            except BundleError as exc:
                self.current, self.state = None, exc.reason
                self.problem = f"{exc.reason}: {exc.detail[:200]}"
                log.error("control_list_refused", list=self.name, reason=exc.reason, detail=exc.detail[:300])
                return True
            except (ControlListError, OSError) as exc:
                self.current, self.state, self.problem = None, "malformed", f"malformed: {exc}"
                log.error("control_list_refused", list=self.name, reason="malformed", detail=str(exc)[:300])
                return True
            snapshot, snap_created = snap
            created = snap_created
            use_delta = None
            if delta is not None:
                dfile, d_created = delta
                if dfile.base == snapshot.serial:
                    use_delta, created = dfile, max(snap_created, d_created)
                else:
                    log.warning("control_list_delta_waits", list=self.name, delta=dfile.serial, base=dfile.base,
                                snapshot=snapshot.serial)
            self.current = ControlList(snapshot, use_delta, created=created)
            self.state, self.problem = "ok", None
            self.loads += 1
            log.info("control_list_loaded", list=self.name, version=self.current.version,
                     entries=self.current.entries, created=created.isoformat())
            return True

    # -- use -------------------------------------------------------------------------------
    def age_s(self) -> float | None:
        cur = self.current
        return None if cur is None else (self.clock() - cur.created).total_seconds()

    def usable(self) -> ControlList | None:
        """The list to screen against, or None when it is missing, refused or stale."""
        cur, age = self.current, self.age_s()
        return cur if cur is not None and age is not None and age <= self.max_age_s else None

    def snapshot(self) -> dict:
        """For the gate's status: version, entries, created, age, state."""
        cur, age = self.current, self.age_s()
        state = self.state if cur is None else ("stale" if age > self.max_age_s else "ok")
        return {"state": state, "version": cur.version if cur else None, "entries": cur.entries if cur else 0,
                "created": cur.created.isoformat() if cur else None,
                "age_s": None if age is None else round(age, 1), "max_age_s": self.max_age_s,
                "problem": self.problem}

    # -- component ---------------------------------------------------------------------
    def start(self) -> None:
        self.refresh()

    def status(self) -> ComponentStatus:
        try:
            self.refresh()
        except Exception as exc:  # noqa: BLE001 - a status poll never raises; the reason is shown
            self.problem = f"{type(exc).__name__}: {exc}"
        s = self.snapshot()
        stats = {"entries": s["entries"], "loads": self.loads}
        if s["state"] == "ok":
            return ComponentStatus(self.name, True, f"version {s['version']}, {s['entries']} entries, "
                                                    f"{s['age_s']:.0f} s old", stats)
        if s["state"] == "stale":
            why = (f"stale: version {s['version']} created {s['age_s'] / 3600:.1f} h ago, at most "
                   f"{self.max_age_s / 3600:.1f} h")
        else:
            why = self.problem or s["state"]
        return ComponentStatus(self.name, False, f"{self.name} {why}", stats)
