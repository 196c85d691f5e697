"""Console accounts: scrypt hashes in a credentials file, the password policy, lockout with backoff
(by an injected clock), the gate seeing the file change, and `egate diag user` managing it."""
from __future__ import annotations

import io
import os

import pytest

from gate.cli import main as egate
from gate.console import accounts as acc
from tests.console_helpers import Clock


def store(path, **kw) -> tuple[acc.AccountStore, Clock]:
    clock = Clock()
    s = acc.AccountStore(path, clock=clock, **kw)
    s.reload()
    return s, clock


def test_hashes_are_salted_scrypt_and_verify_only_the_password():
    h1, h2 = acc.hash_password("correct horse battery", log2_n=10), acc.hash_password("correct horse battery", log2_n=10)
    assert h1.startswith("scrypt$10$8$1$") and h1 != h2
    assert acc.verify_password(h1, "correct horse battery") and not acc.verify_password(h1, "correct horse batterY")
    assert acc.hash_password("x" * 12).startswith(f"scrypt${acc.LOG2_N}$")


@pytest.mark.parametrize("password, why", [("short-pass", "12 to 256"), ("tina-has-a-long-one", "account name"),
                                           ("long enough but é", "printable ASCII")])
def test_the_password_policy(password, why):
    with pytest.raises(acc.AccountsError, match=why):
        acc.check_password("tina", password)


def test_the_file_is_strict_and_written_0600(tmp_path):
    path = tmp_path / "accounts"
    acc.write_accounts(path, {"tina": acc.Account("tina", "technician", acc.hash_password("p" * 12, log2_n=10))})
    assert oct(path.stat().st_mode & 0o777) == "0o600" and acc.read_accounts(path)["tina"].role == "technician"
    for line, error in (("tina:root:scrypt$10$8$1$AA==$AA==", "role 'root'"), ("tina:viewer", "NAME:ROLE:HASH"),
                        ("tina:viewer:md5$x", "scrypt"), ("Tina:viewer:scrypt$10$8$1$AA==$AA==", "bad account name")):
        with pytest.raises(acc.AccountsFileError, match=":1: "):
            acc.parse_accounts(line, "f")
        with pytest.raises(acc.AccountsFileError, match=error.replace("$", r"\$")):
            acc.parse_accounts(line, "f")


def test_lockout_doubles_up_to_the_most_and_a_success_clears_it(tmp_path):
    path = tmp_path / "accounts"
    acc.write_accounts(path, {"tina": acc.Account("tina", "technician", acc.hash_password("right-password", log2_n=10))})
    s, clock = store(path, max_failures=3, lockout_s=30, lockout_max_s=100)
    assert [s.verify("tina", "wrong").locked_s for _ in range(3)] == [0, 0, 30]
    locked = s.verify("tina", "right-password")
    assert not locked.ok and locked.reason == "locked" and locked.retry_after_s == pytest.approx(30, abs=1)
    clock.advance(31)
    assert s.verify("tina", "wrong").locked_s == 60
    clock.advance(61)
    assert s.verify("tina", "wrong").locked_s == 100          # capped
    clock.advance(101)
    assert s.verify("tina", "right-password").ok
    assert s.verify("tina", "wrong").locked_s == 0             # counting starts again
    # A name that does not exist locks the same way: a lockout does not tell an account exists.
    assert [s.verify("nobody", "x").locked_s for _ in range(3)] == [0, 0, 30]
    assert s.verify("nobody", "x").reason == "locked"


def test_the_gate_sees_the_file_change_and_refuses_one_others_may_read(tmp_path):
    path = tmp_path / "accounts"
    s, _ = store(path)
    assert s.names() == [] and s.reload() is None                # no file, no account: no default password
    acc.write_accounts(path, {"tina": acc.Account("tina", "technician", acc.hash_password("p" * 12, log2_n=10))})
    change = s.reload()
    assert change.added == ("tina",) and s.account("tina").role == "technician"
    os.chmod(path, 0o644)
    change = s.reload()
    assert change.removed == ("tina",) and "lets others read or write it" in change.problem
    assert not s.verify("tina", "p" * 12).ok


def test_egate_diag_user_manages_the_file(tmp_path, monkeypatch, capsys):
    path = str(tmp_path / "accounts")

    def user(*args, password=""):
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        return egate(["diag", "--password-stdin", "user", "--accounts", path, *args])

    assert user("add", "alice", "--role", "admin", password="first-pass-0001") == 0
    assert user("add", "alice", "--role", "viewer", password="another-pass-123") == 1
    assert user("add", "bob", "--role", "viewer", password="short") == 1
    assert "12 to 256" in capsys.readouterr().err
    first = acc.read_accounts(path)["alice"].hash
    assert acc.verify_password(first, "first-pass-0001")
    assert user("passwd", "alice", password="second-pass-0002") == 0
    assert acc.verify_password(acc.read_accounts(path)["alice"].hash, "second-pass-0002")
    capsys.readouterr()
    assert user("list") == 0 and capsys.readouterr().out == "alice\tadmin\n"
    assert user("remove", "alice") == 0 and acc.read_accounts(path) == {}
    assert user("remove", "alice") == 1
