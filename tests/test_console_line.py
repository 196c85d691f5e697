"""The serial console's line discipline (sans-IO, byte vectors like tests/test_door_protocol.py),
fuzzed; and the command registry: abbreviations, completion, roles."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.console.commands import build
from gate.console.line import Break, Echo, EndOfInput, Interrupt, Line, LineEditor
from gate.console.registry import CommandError, complete, permits, resolve_path

PATHS = [("show", "status"), ("show", "devices"), ("show", "passage", "last"), ("show", "log"), ("sensors",),
         ("sync", "status"), ("sync", "flush"), ("test", "door", "entry"), ("test", "door", "exit"), ("help",)]


def run(data: bytes, **kw) -> tuple[bytes, list]:
    ed = LineEditor(lambda line: complete(PATHS, line), **kw)
    ed.reset("gate> ")
    echo, events = b"", []
    for ev in ed.feed(data):
        if isinstance(ev, Echo):
            echo += ev.data
        else:
            events.append(ev)
    return echo, events


@pytest.mark.parametrize("data, echo, events", [
    (b"show\r", b"show\r\n", [Line("show")]),
    (b"show\r\nsync\n", b"show\r\nsync\r\n", [Line("show"), Line("sync")]),          # CR LF is one end
    (b"a\n\n", b"a\r\n\r\n", [Line("a"), Line("")]),
    (b"shx\x7fow\r", b"shx\b \bow\r\n", [Line("show")]),                              # DEL erases
    (b"x\x08\x08\r", b"x\b \b\r\n", [Line("")]),                                      # BS on empty: nothing
    (b"show st\x17\r", b"show st\b \b\b \b\r\n", [Line("show ")]),                    # Ctrl-W: a word
    (b"abc\x15d\r", b"abc\b \b\b \b\b \bd\r\n", [Line("d")]),                          # Ctrl-U: the line
    (b"abc\x03", b"abc^C\r\n", [Interrupt()]),
    (b"abc\x00def\r", b"abcdef\r\n", [Break(), Line("def")]),                        # BREAK drops the line
    (b"\x04", b"", [EndOfInput()]),
    (b"a\x04\r", b"a\r\n", [Line("a")]),                                              # Ctrl-D mid-line: nothing
    (b"s\x1b[Ah\x1bOBow\x1b[15~\r", b"show\r\n", [Line("show")]),                     # arrow and F keys swallowed
    (b"s\xff\x80\x01\x02h\r", b"sh\r\n", [Line("sh")]),                               # garbage dropped
    (b"sh\t", b"show ", []),                                                          # Tab completes
    (b"te d en\t", b"te d en" + b"\b \b" * 5 + b"st door entry ", []),                 # earlier words written out
    (b"sh \t", b"sh \b \bow \r\ndevices  log  passage  status\r\ngate> show ", []),    # choices listed
    (b"zz\t", b"zz\x07", []),                                                         # nothing to offer: BEL
])
def test_byte_vectors(data, echo, events):
    assert run(data) == (echo, events)


def test_a_password_is_never_echoed_and_typed_ahead_bytes_wait_for_the_mode_change():
    ed = LineEditor()
    ed.reset("login: ")
    out = []
    for ev in ed.feed(b"tina\rsecret-pass\rshow\r"):
        out.append(ev)
        if ev == Line("tina"):
            ed.reset("password: ", echo=False)         # the session switches echo off between events
        elif ev == Line("secret-pass"):
            ed.reset("> ")
    assert out == [Echo(b"t"), Echo(b"i"), Echo(b"n"), Echo(b"a"), Echo(b"\r\n"), Line("tina"), Echo(b"\r\n"),
                   Line("secret-pass"), Echo(b"s"), Echo(b"h"), Echo(b"o"), Echo(b"w"), Echo(b"\r\n"), Line("show")]


def test_a_line_never_grows_past_its_limit():
    echo, events = run(b"x" * 500 + b"\r", max_line=200)
    assert events == [Line("x" * 200)] and len(echo) == 202


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_fuzzed_bytes_never_break_the_discipline(chunks):
    """Any bytes, in any chunking: no exception, lines hold printable ASCII only within the limit,
    and the echo never carries a byte the terminal did not type (besides the editor's own)."""
    ed = LineEditor(lambda line: complete(PATHS, line), max_line=80)
    ed.reset("g> ")
    typed = set(b"".join(chunks))
    for chunk in chunks:
        for ev in ed.feed(chunk):
            if isinstance(ev, Line):
                assert len(ev.text) <= 80 and all(" " <= ch <= "~" for ch in ev.text)
            elif isinstance(ev, Echo):
                assert all(b in typed or b in b"\r\n\b \x07^C" or 0x20 <= b <= 0x7E for b in ev.data)
        assert len(ed.buffer) <= 80


def test_the_same_bytes_give_the_same_lines_whatever_the_chunking():
    data = b"show sx\x7ftatus\r\nte\x1b[Cst door\x15sync flush\r\x00sensors\n"
    whole = [e for e in run(data)[1]]
    ed = LineEditor()
    split = [e for i in range(len(data)) for e in ed.feed(data[i:i + 1]) if not isinstance(e, Echo)]
    assert split == whole == [Line("show status"), Line("sync flush"), Break(), Line("sensors")]


# ------------------------------------------------------------------------ the registry

def test_words_resolve_by_unique_prefix():
    assert resolve_path(PATHS, ["sh", "st"]) == (("show", "status"), [])
    assert resolve_path(PATHS, ["sh", "pa"]) == (("show", "passage", "last"), [])   # one command completes it
    assert resolve_path(PATHS, ["show", "log", "20"]) == (("show", "log"), ["20"])
    for words, error in ((["s"], 'ambiguous command "s": sensors show sync'),
                         (["test", "door"], 'incomplete command "test door": test door entry|exit'),
                         (["foo"], 'unknown command "foo" (type help)')):
        with pytest.raises(CommandError, match=re.escape(error)):
            resolve_path(PATHS, words)


def test_roles():
    assert permits("admin", "technician") and permits("technician", "viewer") and not permits("viewer", "technician")
    assert permits("officer", "viewer") and permits("officer", "officer")
    assert not permits("admin", "officer") and not permits("officer", "technician")


def test_every_command_of_the_issue_is_registered_with_its_role():
    reg = build()
    names = {c.name: c for c in reg.commands.values()}
    for name in ("help", "?", "show status", "show devices", "show passage last", "show counters", "show sync",
                 "show log", "show config", "show version", "sensors", "test door entry", "test door exit",
                 "test reader", "test camera", "test finger", "maintenance on", "maintenance off", "sync status",
                 "sync flush", "config validate", "audit tail", "release", "lane close", "lane open", "watch"):
        assert name in names, name
    assert all(c.maintenance for c in names.values() if c.path[0] == "test")
    assert {c.name for c in reg.allowed("officer") if c.role == "officer"} == {"release", "lane close", "lane open",
                                                                               "watch"}
    with pytest.raises(CommandError, match="usage: show log \\[N\\]"):
        reg.resolve(["show", "log", "1", "2"])
