"""Individual accounts of the people who use the console and the officer commands (IEC 62443-4-2
CR 1.1): a credentials file of scrypt hashes, four roles, lockout with backoff. No default password:
a gate with no credentials file lets nobody in until an admin creates the first account
(`egate diag user add NAME --role admin`, run as the owner of the file).

The file, one account a line (`#` comments), written atomically with mode 0600:

    NAME:ROLE:scrypt$LOG2N$R$P$SALT$HASH        SALT, HASH in base64; N = 2**LOG2N

The gate process reads it again whenever it changes (size, mtime or inode), so an account added,
removed or given a new password counts at the next login, and a removed account's open sessions end
at their next command. A file others may write or read is refused (nobody can log in) and logged.

Lockout: after `max_failures` failed logins in a row for one name (known or not, so a lockout does
not tell an account exists) the name is locked for `lockout_s`, doubled by each further failure up
to `lockout_max_s`; a locked name is refused without checking its password; a success clears it.
The clock is injected (tests never sleep for a lockout).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import EGateError, ParseError

ROLES = ("viewer", "technician", "admin", "officer")
LOG2_N, R, P = 15, 8, 1          # 32 MiB, ~0.2 s here; stored per hash, so raising it later needs no migration
_MAXMEM = 256 * 1024 * 1024
_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
MIN_PASSWORD, MAX_PASSWORD = 12, 256
HEADER = "# egate console accounts: NAME:ROLE:scrypt$LOG2N$R$P$SALT$HASH (egate diag user add|remove|passwd)\n"
_TRACKED_NAMES = 4096           # failure counters kept at most (oldest forgotten first)


class AccountsError(EGateError):
    """An account operation that cannot be done (no such account, a weak password, a bad name)."""


class AccountsFileError(ParseError):
    """The credentials file is not in its format (names the line)."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    hash: str = ""


# ------------------------------------------------------------------------ hashing

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, *, log2_n: int = LOG2_N, r: int = R, p: int = P) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2 ** log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${log2_n}${r}${p}${_b64(salt)}${_b64(digest)}"


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise AccountsFileError("a hash that is not scrypt$LOG2N$R$P$SALT$HASH")
    try:
        log2_n, r, p = (int(x) for x in parts[1:4])
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise AccountsFileError("a hash with a bad number or base64 field") from None
    if not (10 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16 and len(salt) >= 16 and len(digest) == 32):
        raise AccountsFileError(f"scrypt parameters out of range (2**{log2_n}, r={r}, p={p})")
    return log2_n, r, p, salt, digest


def verify_password(encoded: str, password: str) -> bool:
    log2_n, r, p, salt, digest = _parse_hash(encoded)
    got = hashlib.scrypt(password.encode(), salt=salt, n=2 ** log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    return hmac.compare_digest(got, digest)


def check_name(name: str) -> None:
    if not _NAME.match(name or ""):
        raise AccountsError(f"account name {name!r}: 1-32 of a-z 0-9 _ . -, starting with a letter or _")


def check_password(name: str, password: str) -> None:
    """The policy: 12 to 256 printable ASCII characters (every password can be typed on the serial
    console), not containing the account name."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountsError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if any(not " " <= ch <= "~" for ch in password):
        raise AccountsError("a password is printable ASCII only (it must be typeable on the serial console)")
    if name.lower() in password.lower():
        raise AccountsError("a password must not contain the account name")


# ------------------------------------------------------------------------ the file

def parse_accounts(text: str, what: str = "accounts") -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 3:
            raise AccountsFileError(f"{what}:{lineno}: expected NAME:ROLE:HASH")
        name, role, encoded = fields
        if not _NAME.match(name):
            raise AccountsFileError(f"{what}:{lineno}: bad account name {name!r}")
        if role not in ROLES:
            raise AccountsFileError(f"{what}:{lineno}: role {role!r} is not one of {', '.join(ROLES)}")
        if name in accounts:
            raise AccountsFileError(f"{what}:{lineno}: account {name!r} listed twice")
        try:
            _parse_hash(encoded)
        except AccountsFileError as exc:
            raise AccountsFileError(f"{what}:{lineno}: {exc}") from None
        accounts[name] = Account(name, role, encoded)
    return accounts


def read_accounts(path: Path) -> dict[str, Account]:
    """The accounts in `path`; none when it does not exist."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise AccountsFileError(f"{path}: not ASCII") from None
    return parse_accounts(text, str(path))


def write_accounts(path: Path, accounts: dict[str, Account]) -> None:
    """Atomically, mode 0600 (a temporary file beside it, fsync'd, renamed over it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = HEADER + "".join(f"{a.name}:{a.role}:{a.hash}\n" for a in sorted(accounts.values(), key=lambda a: a.name))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def add_account(path: Path, name: str, role: str, password: str) -> Account:
    check_name(name)
    if role not in ROLES:
        raise AccountsError(f"role {role!r} is not one of {', '.join(ROLES)}")
    check_password(name, password)
    accounts = read_accounts(path)
    if name in accounts:
        raise AccountsError(f"account {name!r} exists (egate diag user passwd to change its password)")
    accounts[name] = Account(name, role, hash_password(password))
    write_accounts(path, accounts)
    return accounts[name]


def remove_account(path: Path, name: str) -> None:
    accounts = read_accounts(path)
    if accounts.pop(name, None) is None:
        raise AccountsError(f"no account {name!r}")
    write_accounts(path, accounts)


def set_password(path: Path, name: str, password: str) -> None:
    accounts = read_accounts(path)
    if name not in accounts:
        raise AccountsError(f"no account {name!r}")
    check_password(name, password)
    accounts[name] = Account(name, accounts[name].role, hash_password(password))
    write_accounts(path, accounts)


# ------------------------------------------------------------------------ the gate's side

@dataclass(frozen=True)
class Login:
    ok: bool
    account: Account | None
    reason: str                 # ok | bad_credentials | locked
    retry_after_s: float = 0.0  # locked: how long still
    locked_s: float = 0.0       # this failure locked the name for this long


@dataclass(frozen=True)
class Change:
    """What changed in the credentials file since it was last read (names only)."""
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]    # a new password or role
    problem: str | None         # why the file is not used (unreadable, malformed, open to others)


class AccountStore:
    """The credentials file as the gate process sees it, and the failure counters. Thread-safe:
    `verify` runs scrypt and belongs in a worker thread; the rest is quick."""

    def __init__(self, path: Path, *, max_failures: int = 3, lockout_s: float = 30.0, lockout_max_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.lockout_max_s = lockout_max_s
        self.clock = clock
        self.problem: str | None = None
        self._accounts: dict[str, Account] = {}
        self._stamp: tuple | None = None
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()   # name -> (failures in a row, locked until)
        self._lock = threading.Lock()
        self._dummy: str | None = None

    def reload(self) -> Change | None:
        """Read the file again if it changed; what changed, or None."""
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
        except FileNotFoundError:
            st, stamp = None, None
        with self._lock:
            if stamp == self._stamp:
                return None
            before = self._accounts
            problem = None
            try:
                if st is not None and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH | stat.S_IROTH):
                    raise AccountsFileError(f"{self.path}: mode {stat.S_IMODE(st.st_mode):04o} lets others "
                                            "read or write it (chmod 0600 or 0640)")
                after = read_accounts(self.path)
            except (OSError, AccountsFileError) as exc:
                after, problem = {}, str(exc)
            self._accounts, self._stamp, self.problem = after, stamp, problem
        return Change(tuple(sorted(after.keys() - before.keys())), tuple(sorted(before.keys() - after.keys())),
                      tuple(sorted(n for n in after.keys() & before.keys() if after[n] != before[n])), problem)

    def account(self, name: str) -> Account | None:
        with self._lock:
            return self._accounts.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._accounts)

    def locked_for(self, name: str) -> float:
        """Seconds `name` stays locked (0 when it is not)."""
        with self._lock:
            _, until = self._failures.get(name, (0, 0.0))
        return max(0.0, until - self.clock())

    def verify(self, name: str, password: str) -> Login:
        """Check a login (blocking: scrypt). Unknown names cost the same time as known ones."""
        left = self.locked_for(name)
        if left > 0:
            return Login(False, None, "locked", retry_after_s=left)
        account = self.account(name)
        if account is not None:
            ok = verify_password(account.hash, password)
        else:
            if self._dummy is None:
                self._dummy = hash_password(secrets.token_hex(16))
            verify_password(self._dummy, password)
            ok = False
        with self._lock:
            if ok:
                self._failures.pop(name, None)
                return Login(True, account, "ok")
            failures, _ = self._failures.pop(name, (0, 0.0))
            failures += 1
            locked = 0.0
            if failures >= self.max_failures:
                locked = min(self.lockout_s * 2 ** (failures - self.max_failures), self.lockout_max_s)
            self._failures[name] = (failures, self.clock() + locked)
            while len(self._failures) > _TRACKED_NAMES:
                self._failures.popitem(last=False)
        return Login(False, None, "bad_credentials", locked_s=locked)
