"""Settings of the technician console and the officer commands (`[console]` in the gate's config)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.settings import opt


@dataclass(frozen=True, kw_only=True)
class ConsoleConfig:
    socket: Path | None = opt(None, doc="the local Unix socket of `egate diag`, `egate officer` and the serial console "
                                        "(mode 0660); default `<storage.data_dir>/console.sock`")
    socket_group: str = opt("", doc="group that may connect to the socket; empty: the gate process's own group")
    accounts: Path | None = opt(None, doc="the credentials file (`egate diag user add|remove|passwd`); default "
                                          "`<storage.data_dir>/accounts`; no file, no login: there is no default password")
    idle_timeout_s: float = opt(300.0, min=10, max=86400, doc="a session with no input for this long is logged out")
    max_failures: int = opt(3, min=1, max=20, doc="failed logins in a row before an account name is locked")
    lockout_s: float = opt(30.0, min=1, max=3600, doc="the first lockout; each further failure doubles it")
    lockout_max_s: float = opt(900.0, min=1, max=86400, doc="the longest lockout")
    lane_wait_s: float = opt(120.0, min=1, max=3600,
                             doc="how long `maintenance on` and an officer's `lane close` wait for the passage in "
                                 "progress to end (no new traveller is taken meanwhile)")

    def socket_path(self, data_dir: Path) -> Path:
        return self.socket or data_dir / "console.sock"

    def accounts_path(self, data_dir: Path) -> Path:
        return self.accounts or data_dir / "accounts"
