"""The passage journal: the one passage in progress, on disk before any leaf moves for it.

A passage is written here (atomically: a temporary file, fsync, rename, fsync of the directory)
when it starts and removed once its record is durable. If the gate process dies in between
(kill -9, a power cut), the next start finds it and records the passage as interrupted: no
passage is lost because the process was.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from core.errors import ParseError


class JournalError(ParseError):
    """The journal file is not a passage this gate wrote (damaged by a crash mid-write is not
    possible: it is replaced atomically)."""


class PassageJournal:
    def __init__(self, path: Path):
        self.path = Path(path)

    def open(self, passage: dict) -> None:
        """Durably note the passage now in progress (replacing any other)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, json.dumps(passage, sort_keys=True).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._sync_dir()

    def close(self) -> None:
        """The passage's record is durable: forget it."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return
        self._sync_dir()

    def pending(self) -> dict | None:
        """The passage a previous process left open, if any."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            passage = json.loads(text)
        except ValueError as exc:
            raise JournalError(f"{self.path}: not a passage journal ({exc})") from None
        if not isinstance(passage, dict) or not isinstance(passage.get("passage_id"), str):
            raise JournalError(f"{self.path}: a journal entry needs a passage_id")
        return passage

    def _sync_dir(self) -> None:
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
