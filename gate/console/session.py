"""One interactive console session over a line (a serial port, or a getty's tty): login, password
(never echoed), the shell, the idle timeout. Driven by bytes (`feed`) and by the clock (`tick`), it
writes through `write`; the commands themselves run in the gate, over the console socket, in a
worker thread, so Ctrl-C or a BREAK cancels one and a line lost mid-command ends it.

Called from one thread (the line's); the worker thread only writes progress and streamed lines.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from core.errors import EGateError
from gate.console.client import Client, LoginFailed
from gate.console.protocol import alert_line
from gate.console.line import Break, Echo, EndOfInput, Interrupt, Line, LineEditor
from gate.console.registry import complete

LOGIN_PROMPT = "login: "
PASSWORD_PROMPT = "password: "
LINE_DELAY_MAX_S = 30.0        # the longest pause this line imposes after failed logins


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("ascii", "replace")


class ConsoleSession:
    def __init__(self, connect: Callable[[], Client], write: Callable[[bytes], None], *, channel: str,
                 clock: Callable[[], float] = time.monotonic, banner: str = "egate technician console"):
        self.connect = connect
        self.write = write
        self.channel = channel
        self.clock = clock
        self.banner = banner
        self.editor = LineEditor()
        self.state = "login"           # login | password | delay | shell | busy
        self.client: Client | None = None
        self.user = ""
        self.prompt = ""
        self.idle_timeout_s = 300.0
        self.last_input = clock()
        self.line_failures = 0
        self.resume_at = 0.0
        self.breaks = 0
        self.logouts = 0
        self._done: queue.SimpleQueue = queue.SimpleQueue()

    # -- driven by the line ----------------------------------------------------------------------
    def start(self) -> None:
        self.write(crlf(f"\n{self.banner}\n"))
        self._ask_login()

    def feed(self, data: bytes) -> None:
        if self.state == "busy":      # a command runs: only Ctrl-C or a BREAK is heard (they cancel it)
            if b"\x03" in data or b"\x00" in data:
                self.write(b"^C\r\n")
                self.client.cancel()
            return
        if self.state == "delay":
            return                    # typed during the pause after a failed login: dropped
        for event in self.editor.feed(data):
            self.last_input = self.clock()
            match event:
                case Echo(data=out):
                    self.write(out)
                case Line(text=text):
                    self._line(text)
                case Interrupt():
                    self._ask_login() if self.state in ("login", "password") else self._prompt()
                case Break():
                    self.breaks += 1
                    self.write(crlf("\n% break\n"))
                    self._ask_login() if self.state in ("login", "password") else self._prompt()
                case EndOfInput():
                    if self.state == "shell":
                        self._logout("user")
            if self.state in ("busy", "delay"):
                return                # the rest of this chunk was typed ahead of a command or a refusal

    def tick(self) -> None:
        now = self.clock()
        if self.state == "busy":
            try:
                reply = self._done.get_nowait()
            except queue.Empty:
                return
            self._answer(reply)
        elif self.state == "delay":
            if now >= self.resume_at:
                self._ask_login()
        elif now - self.last_input >= self.idle_timeout_s:
            if self.state == "shell":
                self.write(crlf(f"\n% no input for {self.idle_timeout_s:g} s: logged out\n"))
                self._logout("idle")
            elif self.editor.buffer or self.state == "password":
                self._restart()

    def hangup(self) -> None:
        """The line is gone: a command in progress is cancelled (closing the connection does it)."""
        if self.client is not None:
            self.client.close()
            self.client = None
        self.state, self.user = "login", ""

    # -- states ------------------------------------------------------------------------------------
    def _ask_login(self) -> None:
        self.state = "login"
        self.editor.complete = None
        self.editor.reset(LOGIN_PROMPT)
        self.idle_timeout_s = 300.0
        self.last_input = self.clock()
        self.write(LOGIN_PROMPT.encode())

    def _restart(self) -> None:
        self.write(b"\r\n")
        self._ask_login()

    def _prompt(self) -> None:
        self.editor.reset(self.prompt)
        self.write(self.prompt.encode("ascii", "replace"))

    def _line(self, text: str) -> None:
        if self.state == "login":
            if not text.strip():
                return self._ask_login()
            self.user = text.strip()
            self.state = "password"
            self.editor.reset(PASSWORD_PROMPT, echo=False)
            self.write(PASSWORD_PROMPT.encode())
        elif self.state == "password":
            self._login(text)
        elif self.state == "shell":
            words = text.split()
            if not words:
                return self._prompt()
            if words[0] in ("exit", "quit"):
                return self._logout("user")
            self.state = "busy"
            threading.Thread(target=self._run, args=(self.client, words), daemon=True, name="console-command").start()

    def _login(self, password: str) -> None:
        try:
            client = self.connect()
            reply = client.login(self.user, password, self.channel)
        except LoginFailed as exc:
            client.close()
            self.line_failures += 1
            delay = min(2.0 ** self.line_failures, LINE_DELAY_MAX_S)
            self.write(crlf(f"% {exc}\n"))
            self.state, self.resume_at = "delay", self.clock() + delay
            return
        except EGateError as exc:
            self.write(crlf(f"% {exc}\n"))
            return self._ask_login()
        self.client, self.line_failures = client, 0
        self.idle_timeout_s = float(reply.get("idle_timeout_s", 300.0))
        paths = [tuple(p) for p in reply["commands"]]
        self.editor.complete = lambda line: complete(paths, line)
        self.prompt = f"{reply['gate']}:{reply['user']}> "
        self.state = "shell"
        self.write(crlf(f"logged in as {reply['user']} ({reply['role']}) on {reply['gate']}; "
                        "help lists your commands\n"))
        self._prompt()

    def _logout(self, why: str) -> None:
        if self.client is not None:
            self.client.logout(why)
            self.client = None
        self.logouts += 1
        self.write(crlf("bye\n"))
        self._ask_login()

    def _run(self, client: Client, words: list[str]) -> None:
        def message(m: dict) -> None:
            if "progress" in m:
                self.write(crlf(f"{m['progress']}\n"))
            elif "alert" in m:
                self.write(crlf("ALERT " + alert_line(m["alert"]) + "\n"))

        try:
            reply = client.run(words, message)
        except (EGateError, OSError) as exc:
            reply = {"ok": False, "error": f"connection to the gate lost ({exc})", "bye": True}
        self._done.put(reply)

    def _answer(self, reply: dict) -> None:
        if reply.get("ok"):
            if reply.get("text"):
                self.write(crlf(reply["text"] + "\n"))
            if (reply.get("data") or {}).get("logout"):
                self.client.close()
                self.client = None
                self.logouts += 1
                return self._ask_login()
        else:
            self.write(crlf(f"% {reply.get('error')}\n"))
            if reply.get("bye"):
                self.hangup()
                return self._ask_login()
        self.state = "shell"
        self.last_input = self.clock()
        self._prompt()
