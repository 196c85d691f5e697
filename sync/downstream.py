"""Downstream: the signed bundles central publishes (CRLs, master lists, the control list, ...) and
the gate's side of them: fetch through the agent's active endpoint, verify, install atomically.

A **bundle** is one kind of data at one version, signed by central's publishing key:

    envelope = msgpack {"v": 1, "body": <bytes>, "sig": <64 bytes>}
    body     = msgpack {"v": 1, "kind": str, "version": int >= 1, "created": ISO 8601 with zone,
                        "key": <key id: 16 hex of SHA-256 of the raw public key>, "files": {name: bytes}}

The signature is Ed25519 over `DOMAIN + body`, so a bundle signature can never be passed off as a
passage record's or the reverse (`sync/record.py` has its own domain). Versions are monotonic per
kind (central assigns them); a bundle carries a set of named files (one CRL per issuing country,
a master list, a control-list snapshot).

The gate refuses, with a reason it logs and counts, and never installs:

    malformed      not a bundle envelope or body (every decoder here raises BundleError only; fuzzed)
    unsigned       no signature
    foreign        signed for another publishing key than the configured one (its key id)
    bad_signature  the signature does not verify with the publishing key: tampered
    wrong_kind     another kind than the one asked for
    rollback       a version not above the installed one (a replay or a rollback)
    stale          created longer ago than `max_age_s`
    future         created more than FUTURE_SKEW_S ahead of the gate's clock
    bad_payload    files the kind's consumer could not load (a CRL that does not parse, ...)
    too_large      more than `max_bytes`

Installed, per kind, under the bundles directory (`sync.bundles.dir`, default
`<storage.data_dir>/bundles`):

    <kind>/current  -> v<N>      symlink: the bundle in use (point `pki.crl_dir` at crl/current)
    <kind>/previous -> v<M>      symlink: the previous good copy
    <kind>/v<N>/<files>          the payload files
    <kind>/v<N>.bundle           the signed envelope as received (re-read at start: the installed version)

An install writes the files into a temporary directory (each fsync'd), renames it to v<N>, then
swaps the symlinks by rename (previous first, then current), fsyncing the directory after each
step: a crash leaves the old or the new bundle in use, never a mixture; a refused bundle never
touches either.
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import os
import re
import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import aiohttp
import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core import logs
from core.errors import ConfigError, ParseError

VERSION = 1
DOMAIN = b"egate downstream bundle v1\x00"
BUNDLES_PATH = "/v1/bundles"
CONTENT_TYPE = "application/msgpack"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_FILES = 10_000
FUTURE_SKEW_S = 600.0
KIND_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_BODY_KEYS = {"v", "kind", "version", "created", "key", "files"}

REFUSALS = {
    "malformed": "not a bundle envelope or body",
    "unsigned": "no signature",
    "foreign": "signed for another publishing key than the configured one",
    "bad_signature": "the signature does not verify with the publishing key (tampered)",
    "wrong_kind": "another kind than the one asked for",
    "rollback": "not newer than the installed version (a replay or a rollback)",
    "stale": "created longer ago than max_age_s",
    "future": "created ahead of the gate's clock by more than the allowed skew",
    "bad_payload": "files the kind's consumer cannot load",
    "too_large": "more bytes than max_bytes",
}

log = logs.get("downstream")


class BundleError(ParseError):
    """A bundle that is refused: `reason` is one of REFUSALS, the message says what was wrong."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class Unreachable(Exception):
    """The endpoint did not answer (refused, timed out, a 5xx): a reason to fail over."""


# ------------------------------------------------------------------------ keys

def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """16 hex digits naming a publishing key (in every bundle body, so a foreign key is named)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A publishing public key (PEM); a private key file is accepted too (its public half)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BundleError("malformed", f"{path}: {exc}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise BundleError("malformed", f"{path}: not a PEM key ({exc})") from None
        key = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError("malformed", f"{path}: a publishing key must be Ed25519, not {type(key).__name__}")
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise BundleError("malformed", f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError("malformed", f"{path}: the publishing key must be Ed25519, not {type(key).__name__}")
    return key


# ------------------------------------------------------------------------ payload checks

def _check_crl(name: str, data: bytes) -> None:
    from icao9303.cms import load_crl

    if not name.lower().endswith(".crl"):
        raise BundleError("bad_payload", f"{name}: a CRL bundle holds .crl files only (what load_trust reads)")
    try:
        load_crl(data)
    except Exception as exc:  # noqa: BLE001 - whatever the parser raises, the file is refused
        raise BundleError("bad_payload", f"{name}: not a CRL ({type(exc).__name__}: {exc})") from None


def _check_master_list(name: str, data: bytes) -> None:
    from icao9303.trust import ML_SUFFIXES, parse_master_list

    if Path(name).suffix.lower() not in ML_SUFFIXES:
        raise BundleError("bad_payload", f"{name}: a master list bundle holds {', '.join(sorted(ML_SUFFIXES))} files")
    try:  # structure only: its signature is checked against the trust anchors when the gate loads it
        parse_master_list(data, verify=False)
    except Exception as exc:  # noqa: BLE001
        raise BundleError("bad_payload", f"{name}: not a master list ({type(exc).__name__}: {exc})") from None


# kind -> a check of each file (name, bytes); kinds not listed carry files the gate does not read yet.
PAYLOAD_CHECKS: dict[str, Callable[[str, bytes], None]] = {"crl": _check_crl, "masterlist": _check_master_list}


def check_payload(kind: str, files: dict[str, bytes]) -> None:
    """What the publisher checks before signing and the gate before installing."""
    if not KIND_RE.match(kind):
        raise BundleError("malformed", f"kind {kind!r:.40}: lower-case letters, digits, '_', '-' (at most 32)")
    if not files:
        raise BundleError("bad_payload", "a bundle holds one file at least")
    if len(files) > MAX_FILES:
        raise BundleError("bad_payload", f"{len(files)} files; at most {MAX_FILES}")
    for name, data in files.items():
        if not isinstance(name, str) or not FILE_RE.match(name) or name.endswith(".tmp"):
            raise BundleError("malformed", f"file name {name!r:.80} is not a plain file name")
        if not isinstance(data, bytes):
            raise BundleError("malformed", f"{name}: file content must be bytes")
    check = PAYLOAD_CHECKS.get(kind)
    if check is not None:
        for name, data in files.items():
            check(name, data)


# ------------------------------------------------------------------------ the format

@dataclass(frozen=True)
class Bundle:
    kind: str
    version: int
    created: dt.datetime
    key: str                  # the key id the body names
    files: dict[str, bytes]
    raw: bytes                # the envelope, exactly as signed

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    def age_s(self, now: dt.datetime | None = None) -> float:
        return ((now or _utcnow()) - self.created).total_seconds()


def encode_body(kind: str, version: int, files: dict[str, bytes], key: str, created: dt.datetime) -> bytes:
    if created.tzinfo is None:
        raise ValueError("created must carry a time zone")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("version must be a positive integer")
    body = {"v": VERSION, "kind": kind, "version": version,
            "created": created.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
            "key": key, "files": {name: bytes(data) for name, data in sorted(files.items())}}
    return msgpack.packb(body, use_bin_type=True)


def sign(kind: str, version: int, files: dict[str, bytes], key: Ed25519PrivateKey,
         created: dt.datetime | None = None) -> bytes:
    """The envelope of a bundle; the payload is checked first (check_payload)."""
    check_payload(kind, files)
    body = encode_body(kind, version, files, key_id(key), created or _utcnow())
    return msgpack.packb({"v": VERSION, "body": body, "sig": key.sign(DOMAIN + body)}, use_bin_type=True)


def _unpack(data, what: str, max_bytes: int):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BundleError("malformed", f"{what}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise BundleError("too_large", f"{what}: {len(data)} bytes, more than {max_bytes}")
    n = len(data)  # every element takes a byte at least: no header may claim more
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=n, max_str_len=n,
                               max_array_len=n, max_map_len=n // 2, max_ext_len=0)
    except (msgpack.UnpackException, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise BundleError("malformed", f"{what}: not msgpack ({type(exc).__name__}: {exc})") from None


def decode(data: bytes, max_bytes: int = MAX_BUNDLE_BYTES) -> tuple[Bundle, bytes | None, bytes]:
    """(the bundle, its signature or None, the signed body), unverified. BundleError only."""
    env = _unpack(data, "bundle envelope", max_bytes)
    if not isinstance(env, dict) or not {"v", "body"} <= set(env) or not set(env) <= {"v", "body", "sig"}:
        raise BundleError("malformed", "bundle envelope: expected a map of v, body, sig")
    if env["v"] != VERSION or isinstance(env["v"], bool):
        raise BundleError("malformed", f"bundle envelope: version {env['v']!r:.40}, this gate reads {VERSION}")
    body_bytes, sig = env["body"], env.get("sig")
    if not isinstance(body_bytes, bytes):
        raise BundleError("malformed", "bundle envelope: body must be bytes")
    if sig is not None and not isinstance(sig, bytes):
        raise BundleError("malformed", "bundle envelope: sig must be bytes")
    if sig is not None and len(sig) not in (0, 64):
        raise BundleError("malformed", f"bundle envelope: a signature of {len(sig)} bytes, not 64")
    body = _unpack(body_bytes, "bundle body", max_bytes)
    if not isinstance(body, dict) or set(body) != _BODY_KEYS:
        keys = sorted(map(str, body)) if isinstance(body, dict) else type(body).__name__
        raise BundleError("malformed", f"bundle body: expected keys {sorted(_BODY_KEYS)}, got {keys!s:.200}")
    if body["v"] != VERSION or isinstance(body["v"], bool):
        raise BundleError("malformed", f"bundle body: version {body['v']!r:.40}")
    kind, version, created, key, files = body["kind"], body["version"], body["created"], body["key"], body["files"]
    if not isinstance(kind, str) or not KIND_RE.match(kind):
        raise BundleError("malformed", f"bundle body: kind {kind!r:.40} is not a kind name")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2 ** 63:
        raise BundleError("malformed", f"bundle body: version {version!r:.40} is not a positive integer")
    if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{16}", key):
        raise BundleError("malformed", "bundle body: key must be 16 hex digits")
    if not isinstance(created, str) or len(created) > 64:
        raise BundleError("malformed", "bundle body: created must be an ISO 8601 string")
    try:
        when = dt.datetime.fromisoformat(created)
    except ValueError:
        raise BundleError("malformed", f"bundle body: created {created!r} is not ISO 8601") from None
    if when.tzinfo is None:
        raise BundleError("malformed", f"bundle body: created {created!r} has no time zone")
    if not isinstance(files, dict):
        raise BundleError("malformed", "bundle body: files must be a map of name to bytes")
    if not files or len(files) > MAX_FILES:
        raise BundleError("malformed", f"bundle body: {len(files)} files (1..{MAX_FILES})")
    for name, content in files.items():
        if not isinstance(name, str) or not FILE_RE.match(name) or name.endswith(".tmp"):
            raise BundleError("malformed", f"bundle body: file name {name!r:.80} is not a plain file name")
        if not isinstance(content, bytes):
            raise BundleError("malformed", f"bundle body: {name} must be bytes")
    bundle = Bundle(kind, version, when.astimezone(dt.timezone.utc), key, files, bytes(data))
    return bundle, (sig or None), body_bytes


def verify(data: bytes, key: Ed25519PublicKey, *, kind: str | None = None, after: int = 0,
           max_age_s: float | None = None, now: dt.datetime | None = None,
           max_bytes: int = MAX_BUNDLE_BYTES, check_files: bool = True) -> Bundle:
    """The bundle in `data` if it is central's, of `kind`, newer than `after`, fresh and loadable;
    else BundleError naming the reason (REFUSALS)."""
    bundle, sig, body = decode(data, max_bytes)
    if sig is None:
        raise BundleError("unsigned", f"{bundle.kind} v{bundle.version} carries no signature")
    ours = key_id(key)
    if bundle.key != ours:
        raise BundleError("foreign", f"{bundle.kind} v{bundle.version} is signed for key {bundle.key}, "
                                     f"the publisher's is {ours}")
    try:
        key.verify(sig, DOMAIN + body)
    except InvalidSignature:
        raise BundleError("bad_signature", f"{bundle.kind} v{bundle.version}: the signature does not verify "
                                           "with the publishing key") from None
    if kind is not None and bundle.kind != kind:
        raise BundleError("wrong_kind", f"asked for {kind}, got {bundle.kind}")
    if bundle.version <= after:
        raise BundleError("rollback", f"{bundle.kind} v{bundle.version} is not newer than the installed v{after}")
    now = now or _utcnow()
    age = bundle.age_s(now)
    if max_age_s is not None and age > max_age_s:
        raise BundleError("stale", f"{bundle.kind} v{bundle.version} was created {age / 3600:.1f} h ago; "
                                   f"at most {max_age_s / 3600:.1f} h")
    if -age > FUTURE_SKEW_S:
        raise BundleError("future", f"{bundle.kind} v{bundle.version} was created {-age:.0f} s in the future")
    if check_files:
        check_payload(bundle.kind, bundle.files)
    return bundle


# ------------------------------------------------------------------------ installing

@dataclass(frozen=True)
class Installed:
    kind: str
    version: int
    created: dt.datetime
    sha256: str
    path: Path            # <kind>/current (what a consumer reads)
    files: tuple[str, ...]
    verified: bool        # the envelope on disk still verifies with the configured key

    def age_s(self, now: dt.datetime | None = None) -> float:
        return ((now or _utcnow()) - self.created).total_seconds()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _link(kdir: Path, name: str, target: str) -> None:
    """Point `kdir/name` at `target` atomically (a new symlink renamed over the old)."""
    tmp = kdir / f".{name}.link.tmp"
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, kdir / name)


class BundleDir:
    """The installed bundles of a gate (see the module docstring for the layout)."""

    def __init__(self, directory: Path, key: Ed25519PublicKey | None = None):
        self.dir = Path(directory)
        self.key = key

    def _target(self, kind: str, link: str) -> str | None:
        try:
            target = os.readlink(self.dir / kind / link)
        except OSError:
            return None
        return target if re.fullmatch(r"v[0-9]{1,19}", target) else None

    def installed(self, kind: str, link: str = "current") -> Installed | None:
        """The bundle `link` (current or previous) points at, read from its envelope on disk."""
        target = self._target(kind, link)
        if target is None:
            return None
        kdir = self.dir / kind
        try:
            raw = (kdir / f"{target}.bundle").read_bytes()
            bundle, _, _ = decode(raw, max_bytes=1 << 40)
        except (OSError, BundleError) as exc:
            log.error("bundle_installed_unreadable", kind=kind, link=link, target=target, error=str(exc))
            return None
        verified = False
        if self.key is not None:
            try:
                verify(raw, self.key, kind=kind, check_files=False)
                verified = True
            except BundleError:
                verified = False
        return Installed(kind, bundle.version, bundle.created, bundle.sha256, kdir / link,
                         tuple(sorted(bundle.files)), verified)

    def install(self, bundle: Bundle) -> Installed:
        """Write `bundle` beside the current one and make it current; the old one becomes previous."""
        kdir = self.dir / bundle.kind
        kdir.mkdir(parents=True, exist_ok=True)
        name = f"v{bundle.version}"
        tmp = kdir / f".{name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        for fname, data in bundle.files.items():
            _write_file(tmp / fname, data)
        _fsync_dir(tmp)
        envelope_tmp = kdir / f".{name}.bundle.tmp"
        _write_file(envelope_tmp, bundle.raw)
        old = self._target(bundle.kind, "current")
        if old == name:  # cannot be: verify() refused a version not above the installed one
            raise BundleError("rollback", f"{bundle.kind} {name} is already installed")
        if (kdir / name).exists():  # left by an install that crashed before its swap: never in use
            shutil.rmtree(kdir / name)
        os.replace(envelope_tmp, kdir / f"{name}.bundle")
        os.replace(tmp, kdir / name)
        _fsync_dir(kdir)
        if old is not None:
            _link(kdir, "previous", old)
            _fsync_dir(kdir)
        _link(kdir, "current", name)
        _fsync_dir(kdir)
        self._collect(kdir, keep={name, old})
        return Installed(bundle.kind, bundle.version, bundle.created, bundle.sha256, kdir / "current",
                         tuple(sorted(bundle.files)), self.key is not None)

    def _collect(self, kdir: Path, keep: set) -> None:
        """Remove versions that are neither current nor previous, and leftovers of crashed installs."""
        for p in kdir.iterdir():
            stem = p.name.removesuffix(".bundle")
            if p.name in ("current", "previous") or stem in keep:
                continue
            if re.fullmatch(r"v[0-9]{1,19}", stem) or p.name.endswith(".tmp"):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)


# ------------------------------------------------------------------------ the gate's puller

class Downstream:
    """Pulls the configured kinds from the agent's active endpoint and installs what verifies.

    `pull()` runs on the event loop (aiohttp); verification and installation (hashing, fsync) run
    in a worker thread. Raises Unreachable when the endpoint does not answer (the agent counts it
    towards failover); anything the endpoint answers is either installed or refused and logged.
    """

    def __init__(self, cfg, directory: Path, *, clock: Callable[[], dt.datetime] | None = None):
        """`cfg` is a `sync.config.Bundles`; `directory` the bundles directory."""
        self.cfg = cfg
        self.kinds = tuple(dict.fromkeys(cfg.kinds))
        for kind in self.kinds:
            if not KIND_RE.match(kind):
                raise ConfigError("(gate config)", "sync.bundles.kinds", repr(kind), "kind names such as crl")
        if cfg.publisher_key is None:
            raise ConfigError("(gate config)", "sync.bundles.publisher_key", "nothing",
                              "central's publishing key: bundles are installed only when it signed them")
        try:
            self.key = load_public_key(cfg.publisher_key)
        except BundleError as exc:
            raise ConfigError("(gate config)", "sync.bundles.publisher_key", exc.detail, "an Ed25519 key (PEM)") from None
        self.dir = BundleDir(directory, self.key)
        self.interval_s = cfg.interval_s
        self.clock = clock or _utcnow
        self.refused: collections.Counter[str] = collections.Counter()
        self.last_refusal: dict[str, dict] = {}
        self.last_error: str | None = None
        self.last_pull_at: str | None = None
        self.installed: dict[str, Installed | None] = {k: self.dir.installed(k) for k in self.kinds}
        self.previous: dict[str, int | None] = {}
        for kind in self.kinds:
            prev = self.dir.installed(kind, "previous") if self.installed[kind] else None
            self.previous[kind] = prev.version if prev else None

    @classmethod
    def from_config(cls, cfg, data_dir: Path) -> Downstream:
        return cls(cfg, cfg.dir or Path(data_dir) / "bundles")

    def version(self, kind: str) -> int:
        inst = self.installed.get(kind)
        return inst.version if inst else 0

    # -- one bundle ------------------------------------------------------------------------
    def accept(self, kind: str, data: bytes, source: str = "?") -> Installed:
        """Verify and install (blocking: run it in a worker thread). BundleError when refused;
        the bundle in use and the previous one are untouched then."""
        try:
            bundle = verify(data, self.key, kind=kind, after=self.version(kind), max_age_s=self.cfg.max_age_s,
                            now=self.clock(), max_bytes=self.cfg.max_bytes)
        except BundleError as exc:
            self._refused(kind, exc, source)
            raise
        before = self.installed.get(kind)
        inst = self.dir.install(bundle)
        self.installed[kind] = inst
        self.previous[kind] = before.version if before else None
        log.info("bundle_installed", kind=kind, version=inst.version, created=inst.created.isoformat(),
                 sha256=inst.sha256, files=len(inst.files), source=source)
        return inst

    def _refused(self, kind: str, exc: BundleError, source: str) -> None:
        self.refused[exc.reason] += 1
        self.last_refusal[kind] = {"at": _utcnow().isoformat(), "reason": exc.reason, "detail": exc.detail[:300],
                                   "source": source}
        log.error("bundle_refused", kind=kind, reason=exc.reason, detail=exc.detail[:300], source=source,
                  installed_version=self.version(kind))

    # -- over the wire -----------------------------------------------------------------------
    async def pull(self, session: aiohttp.ClientSession, base_url: str, role: str) -> dict[str, str]:
        """Ask `base_url` for each kind newer than installed; {kind: "current" | "installed vN" |
        "refused: reason" | "error: ..."}. Raises Unreachable at the first kind it cannot ask."""
        outcome: dict[str, str] = {}
        for kind in self.kinds:
            url = f"{base_url.rstrip('/')}{BUNDLES_PATH}/{kind}?after={self.version(kind)}"
            try:
                data = await self._get(session, url, role, kind)
            except BundleError as exc:
                self._refused(kind, exc, role)
                outcome[kind] = f"refused: {exc.reason}"
                continue
            if data is None:
                outcome[kind] = "current"
                continue
            if isinstance(data, str):   # an answer that is no bundle and no reason to fail over
                outcome[kind] = f"error: {data}"
                continue
            try:
                inst = await asyncio.to_thread(self.accept, kind, data, role)
            except BundleError as exc:
                outcome[kind] = f"refused: {exc.reason}"
                continue
            except OSError as exc:   # the data directory: full, read-only, ...
                self.last_error = f"{kind}: cannot install: {exc}"
                log.error("bundle_install_failed", kind=kind, error=str(exc))
                outcome[kind] = f"error: {exc}"
                continue
            outcome[kind] = f"installed v{inst.version}"
        self.last_pull_at = _utcnow().isoformat()
        return outcome

    async def _get(self, session: aiohttp.ClientSession, url: str, role: str, kind: str) -> bytes | str | None:
        """The envelope; None for 204 (current); a str for an answer that is no bundle but no reason
        to fail over (a 4xx). BundleError when it is too large; Unreachable when nobody answered."""
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s)
        limit = self.cfg.max_bytes
        try:
            async with session.get(url, timeout=timeout, headers={"Accept": CONTENT_TYPE}) as resp:
                if resp.status == 204:
                    return None
                if resp.status >= 500:
                    raise Unreachable(f"{role}: HTTP {resp.status} for {kind} bundles")
                if resp.status != 200:
                    text = (await resp.content.read(300)).decode("utf-8", "replace")
                    why = f"{role}: HTTP {resp.status} for {kind} bundles: {text!r:.200}"
                    self.last_error = why
                    log.error("bundle_fetch_refused", kind=kind, endpoint=role, status=resp.status, body=text[:200])
                    return why
                if resp.content_length is not None and resp.content_length > limit:
                    raise BundleError("too_large", f"{resp.content_length} bytes announced; at most {limit}")
                chunks, size = [], 0
                while chunk := await resp.content.read(256 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise BundleError("too_large", f"more than {limit} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            self.last_error = f"{role}: {type(exc).__name__}: {exc}"
            raise Unreachable(f"{role}: {type(exc).__name__}: {exc}") from None

    # -- status ------------------------------------------------------------------------------
    def status(self) -> dict:
        """Per kind: the installed version, when it was created, its age and whether it is stale,
        the previous good copy's version, the last refusal; for the agent's published status."""
        now = self.clock()
        kinds = {}
        for kind in self.kinds:
            inst = self.installed.get(kind)
            entry = {"version": None, "created": None, "age_s": None, "stale": True, "path": None,
                     "previous_version": self.previous.get(kind),
                     "last_refusal": self.last_refusal.get(kind)}
            if inst is not None:
                age = inst.age_s(now)
                entry.update(version=inst.version, created=inst.created.isoformat(), age_s=round(age, 1),
                             stale=age > self.cfg.max_age_s, path=str(inst.path), sha256=inst.sha256)
            kinds[kind] = entry
        return {"kinds": kinds, "refused": dict(self.refused), "last_pull_at": self.last_pull_at,
                "last_error": self.last_error}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
