"""The console socket inside the gate process: one reactor service that every technician and
officer goes through (`egate diag`, `egate officer`, the serial console process).

A connection logs in once (scrypt in a worker thread, one at a time), then runs commands, one at a
time; a command runs as a task, so the same connection can cancel it (Ctrl-C on the serial line),
and closing the connection cancels it too (a line lost mid-command). Before each command the
account is looked up again: one removed or changed since the login ends the session. A session with
no request for `console.idle_timeout_s` (by the injected clock) is logged out.

Audited (core/audit.py), and so sent to central: every login (`technician.login`, `officer.login`)
and failure (`login.failed`, with the lockout it started), every command with its result
(`console.command`: ok, refused, denied, invalid, unauthenticated, cancelled, error), each officer
action (`officer.action`), device tests (`device.test`), each logout and why, and changes of the
credentials file (`accounts.changed`). The controller audits what the lane does (maintenance,
alerts).
"""
from __future__ import annotations

import asyncio
import functools
import grp
import hashlib
import os
import socket
import stat
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from core import logs
from core.errors import ConfigError
from core.reasons import Reason
from gate.console import protocol
from gate.console.accounts import AccountStore
from gate.console.commands import OFFICER_ACTIONS, Call, build
from gate.console.lane import LaneOps, Refused
from gate.console.registry import CommandError, permits

log = logs.get("console")

MAX_LOGIN_FAILURES = 3          # per connection: then it is closed
ALERT_QUEUE = 200               # alerts a slow watcher may fall behind by; older ones are dropped for it
POLL_S = 0.5                    # how often an idle connection looks at the clock
SUN_PATH_MAX = 107

# What an officer alert is about, by its reason (anything an officer is referred to is a referral).
ALERT_KINDS = {
    Reason.TAMPER.value: "door_forced", Reason.TAILGATING.value: "tailgating", Reason.AGAINST_FLOW.value: "against_flow",
    Reason.OBJECT_LEFT.value: "object_left", Reason.MANTRAP_OCCUPIED.value: "mantrap_occupied",
    Reason.FAULT.value: "device_fault", Reason.EXIT_NOT_CLOSED.value: "device_fault",
    Reason.OUT_OF_SERVICE.value: "out_of_service", "CONTROL_LIST_HIT": "control_list_hit",
}


def alert_kind(reason: str) -> str:
    return ALERT_KINDS.get(reason, "referral")


@dataclass(eq=False)
class Session:
    peer: dict
    user: str | None = None
    role: str | None = None
    hash: str | None = None
    channel: str = "socket"
    failures: int = 0
    task: asyncio.Task | None = None
    end: str = "disconnect"


def _peer(writer) -> dict:
    sock = writer.get_extra_info("socket")
    try:
        pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        return {"pid": pid, "uid": uid}
    except (OSError, AttributeError):
        return {}


class ConsoleService:
    def __init__(self, app, *, clock: Callable[[], float] = time.monotonic):
        self.app = app
        cfg = app.cfg.console
        data = app.cfg.storage.data_dir
        self.cfg = cfg
        self.path = cfg.socket_path(data)
        if len(os.fsencode(self.path)) > SUN_PATH_MAX:
            raise ConfigError(app.cfg.source or "(gate config)", "console.socket", f"{self.path} (too long)",
                              f"a socket path of at most {SUN_PATH_MAX} bytes")
        self.group = None
        if cfg.socket_group:
            try:
                self.group = grp.getgrnam(cfg.socket_group).gr_gid
            except KeyError:
                raise ConfigError(app.cfg.source or "(gate config)", "console.socket_group",
                                  repr(cfg.socket_group), "an existing group") from None
        self.clock = clock
        self.accounts = AccountStore(cfg.accounts_path(data), max_failures=cfg.max_failures, lockout_s=cfg.lockout_s,
                                     lockout_max_s=cfg.lockout_max_s, clock=clock)
        self.registry = build()
        self.lane = LaneOps(app.controller, wait_s=cfg.lane_wait_s)
        self.started = time.monotonic()
        self.config_sha256 = None
        self.sessions: set[Session] = set()
        self._watchers: set[asyncio.Queue] = set()
        self._login_lock: asyncio.Lock | None = None

    # -- the alert stream -------------------------------------------------------------------
    def alert_dict(self, alert) -> dict:
        return {"gate": self.app.cfg.gate.id, "kind": alert_kind(alert.reason), "reason": alert.reason,
                "passage_id": alert.passage_id, "detail": alert.detail, "at": alert.at}

    def publish_alert(self, alert) -> None:
        """The controller's `on_alert` (on the loop): to every watcher, never blocking."""
        message = self.alert_dict(alert)
        for queue in list(self._watchers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

    def watch(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(ALERT_QUEUE)
        self._watchers.add(queue)
        return queue

    def unwatch(self, queue: asyncio.Queue) -> None:
        self._watchers.discard(queue)

    # -- the service ----------------------------------------------------------------------------
    async def run(self) -> None:
        self._login_lock = asyncio.Lock()
        src = self.app.cfg.source
        if src is not None:
            self.config_sha256 = hashlib.sha256(src.read_bytes()).hexdigest()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)      # left by a process that died
        except FileNotFoundError:
            pass
        server = await asyncio.start_unix_server(self._connection, path=str(self.path), limit=protocol.MAX_LINE)
        os.chmod(self.path, 0o660)
        if self.group is not None:
            os.chown(self.path, -1, self.group)
        try:
            await self._accounts_changed()
            log.info("console_listening", socket=str(self.path), accounts=str(self.accounts.path),
                     problem=self.accounts.problem)
            await asyncio.Future()
        finally:
            server.close()
            for s in list(self.sessions):
                if s.task is not None:
                    s.task.cancel()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    async def _audit(self, actor: str, action: str, /, **details) -> None:
        await self.app.reactor.run_blocking(functools.partial(self.app.audit.append, actor, action,
                                                              gate_id=self.app.cfg.gate.id, **details))

    async def _accounts_changed(self) -> None:
        change = self.accounts.reload()
        if change is not None and (change.added or change.removed or change.changed or change.problem):
            await self._audit("gate", "accounts.changed", added=list(change.added), removed=list(change.removed),
                              changed=list(change.changed), problem=change.problem)

    # -- one connection ---------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = Session(_peer(writer))
        self.sessions.add(s)
        last = self.clock()
        line_task = None
        try:
            while True:
                if line_task is None:
                    line_task = asyncio.ensure_future(reader.readline())
                done, _ = await asyncio.wait({line_task}, timeout=POLL_S)
                if not done:
                    busy = s.task is not None and not s.task.done()
                    if not busy and self.clock() - last >= self.cfg.idle_timeout_s:
                        s.end = "idle"
                        await self._send(writer, {"ok": False, "error": f"no input for {self.cfg.idle_timeout_s:g} s: "
                                                                        "logged out", "bye": True})
                        return
                    continue
                try:
                    line = line_task.result()
                except (ValueError, asyncio.LimitOverrunError, ConnectionError):
                    return                      # a line past the limit, or the peer went away
                line_task = None
                if not line:
                    return                      # the peer closed (a line lost, a client gone)
                last = self.clock()
                try:
                    request = protocol.request(line)
                except protocol.ProtocolError as exc:
                    await self._send(writer, {"ok": False, "error": str(exc)})
                    continue
                op = request["op"]
                if op == "login":
                    if not await self._login(s, request, writer):
                        return
                elif op == "run":
                    if s.task is not None and not s.task.done():
                        await asyncio.wait({s.task}, timeout=POLL_S)      # it may be writing its answer
                    if s.task is not None and not s.task.done():
                        await self._send(writer, {"ok": False, "error": "a command is in progress"})
                        continue
                    s.task = asyncio.create_task(self._run(s, request["argv"], writer))
                elif op == "cancel":
                    if s.task is not None and not s.task.done():
                        s.task.cancel()
                elif op == "logout":
                    s.end = request.get("why") if request.get("why") in ("idle", "user") else "logout"
                    await self._send(writer, {"ok": True, "bye": True})
                    return
        except asyncio.CancelledError:
            s.end = "shutdown"
            raise
        finally:
            if line_task is not None:
                line_task.cancel()
            if s.task is not None and not s.task.done():
                s.task.cancel()
                await asyncio.gather(s.task, return_exceptions=True)
            self.sessions.discard(s)
            if s.user is not None:
                action = "officer.logout" if s.role == "officer" else "technician.logout"
                await asyncio.shield(self._audit(s.user, action, role=s.role, channel=s.channel, why=s.end))
            writer.close()

    async def _send(self, writer, message: dict) -> None:
        writer.write(protocol.encode(message))
        await writer.drain()

    async def _login(self, s: Session, request: dict, writer) -> bool:
        """A login; False when the connection is to be closed (too many failures on it)."""
        name, channel = request["user"], request["channel"] or "socket"
        if s.user is not None:
            await self._send(writer, {"ok": False, "error": f"logged in as {s.user} already"})
            return True
        await self._accounts_changed()
        async with self._login_lock:
            result = await self.app.reactor.run_blocking(self.accounts.verify, name, request["password"])
        if not result.ok:
            s.failures += 1
            if result.reason == "locked":
                error = f"account locked: try again in {result.retry_after_s:.0f} s"
            elif self.accounts.problem and not self.accounts.names():
                error = "login incorrect (the gate has no usable accounts file: see docs/console.md)"
            else:
                error = "login incorrect"
            await self._audit(name[:64], "login.failed", channel=channel, why=result.reason, peer=s.peer,
                              retry_after_s=round(result.retry_after_s, 1), locked_s=result.locked_s)
            log.warning("login_failed", user=name[:64], channel=channel, why=result.reason, locked_s=result.locked_s)
            reply = {"ok": False, "error": error}
            if result.retry_after_s or result.locked_s:
                reply["retry_after_s"] = round(result.retry_after_s or result.locked_s, 1)
            await self._send(writer, reply)
            return s.failures < MAX_LOGIN_FAILURES
        account = result.account
        s.user, s.role, s.hash, s.channel = account.name, account.role, account.hash, channel
        await self._audit(s.user, "officer.login" if s.role == "officer" else "technician.login", role=s.role,
                          channel=channel, peer=s.peer)
        await self._send(writer, {"ok": True, "user": s.user, "role": s.role, "gate": self.app.cfg.gate.id,
                                  "idle_timeout_s": self.cfg.idle_timeout_s,
                                  "commands": [list(p) for p in self.registry.paths(s.role)]})
        return True

    async def _run(self, s: Session, argv: list[str], writer) -> None:
        said = " ".join(argv)[:200]
        t0 = time.monotonic()
        command, result, detail = None, "ok", None
        audited: list[tuple[str, dict]] = []       # the command's own entries (device tests)
        try:
            if s.user is None:
                result, detail = "unauthenticated", "log in first"
                raise Refused("not logged in: log in first")
            await self._accounts_changed()
            account = self.accounts.account(s.user)
            if account is None or account.role != s.role or account.hash != s.hash:
                result, detail = "refused", "account removed or changed"
                s.end = "account changed"
                raise Refused("your account was removed or changed: log in again")
            try:
                command, args = self.registry.resolve(argv)
            except CommandError as exc:
                result, detail = "invalid", str(exc)
                raise Refused(str(exc)) from None
            if not permits(s.role, command.role):
                result = "denied"
                detail = f"needs the {command.role} role"
                raise Refused(f"denied: {command.name} needs the {command.role} role (you are {s.role})")
            if command.maintenance and self.app.controller.machine.state != "maintenance":
                result = "refused"
                detail = "not in maintenance"
                raise Refused(f"{command.name} actuates a device: only in maintenance (maintenance on); "
                              f"the lane is {self.app.controller.machine.state}")

            async def progress(text: str) -> None:
                await self._send(writer, {"progress": text})

            async def send(message: dict) -> None:
                await self._send(writer, message)

            call = Call(self.app, self.lane, self, s.user, s.role, args, progress, send, audited)
            try:
                data = await command.run(call)
            except Refused as exc:
                result, detail = "refused", str(exc)
                raise
            reply = {"ok": True, "command": command.name, "data": data,
                     "text": command.render(data) if command.render else ""}
        except Refused as exc:
            reply = {"ok": False, "error": str(exc)}
        except asyncio.CancelledError:
            result, reply = "cancelled", {"ok": False, "error": "cancelled"}
        except Exception as exc:  # noqa: BLE001 - a command's bug must not end the connection, let alone the gate
            result, detail = "error", f"{type(exc).__name__}: {exc}"
            log.exception("console_command_failed", command=said)
            reply = {"ok": False, "error": f"internal error: {type(exc).__name__}"}
        # Audited before it is answered; one shielded write, so a line lost now does not cut the trail short.
        entries = audited + [("console.command", {
            "command": command.name if command else said, "args": argv[len(command.path):] if command else [],
            "channel": s.channel, "result": result, "detail": detail, "duration_s": round(time.monotonic() - t0, 3)})]
        if command is not None and command.path in OFFICER_ACTIONS:
            entries.append(("officer.action", {"action": OFFICER_ACTIONS[command.path], "detail": detail,
                                               "result": "accepted" if result == "ok" else result,
                                               "lane": self.app.controller.machine.state}))
        try:
            await asyncio.shield(self._audit_all(s.user or "-", entries))
        except Exception as exc:  # noqa: BLE001 - the trail failing (a full disk) must not leave the client waiting
            log.error("console_audit_failed", command=said, error=f"{type(exc).__name__}: {exc}")
        try:
            await self._send(writer, reply)
        except (ConnectionError, RuntimeError):
            return
        if reply.get("ok") and reply["data"].get("logout"):
            s.end = "logout"
            writer.close()

    async def _audit_all(self, actor: str, entries: list[tuple[str, dict]]) -> None:
        for action, details in entries:
            await self._audit(actor, action, **details)
