"""Guidance screen: validation, recording implementation, JSON-line implementation over a loopback socket."""
from __future__ import annotations

import json
import socket
import threading

import pytest

from drivers.screen.driver import AckProtocol, LineScreen, RecordingScreen, ScreenError, decode_line, encode_line, render
from tests.serial_helpers import Recorder, wait_for


def test_render_in_language_with_english_fallback():
    assert render("passage.proceed", "zh-TW").text == "謝謝，請通行。"
    assert render("passage.proceed", "fr").text == "Thank you. Please proceed."


@pytest.mark.parametrize("mid,lang,params,match", [
    ("no.such.message", "en", None, "no guidance message"),
    ("passage.proceed", "English!", None, "language tag"),
    ("passage.proceed", "en", {"photo": b"\x00"}, "only text and numbers"),
])
def test_bad_messages_are_typed_errors(mid, lang, params, match):
    with pytest.raises(ScreenError, match=match):
        RecordingScreen().show(mid, lang, params)


def test_recording_screen_keeps_order_and_current():
    s = RecordingScreen()
    s.show("gate.welcome", "en")
    s.show("face.look_at_camera", "zh-TW")
    assert s.ids() == ["gate.welcome", "face.look_at_camera"]
    assert s.current.language == "zh-TW"


def test_line_encoding_round_trip_and_ack_parser():
    msg = render("finger.place", "zh-TW", {"attempt": 2})
    obj = decode_line(encode_line(msg, 7).rstrip(b"\n"))
    assert obj == {"seq": 7, "id": "finger.place", "lang": "zh-TW", "params": {"attempt": 2}, "text": msg.text}
    p = AckProtocol()
    assert p.feed(b'{"ack": 3}\nnoise\n{"ack"') == [3]
    assert p.feed(b': 4}\n') == [4] and p.errors == 1


class Display:
    """A loopback display process stand-in: reads JSON lines, acks them; can drop the connection."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.lines = Recorder()
        self.conn = None
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.conn = conn
            with conn, conn.makefile("rb") as f:
                try:
                    for line in f:
                        obj = json.loads(line)
                        self.lines(obj)
                        conn.sendall(json.dumps({"ack": obj["seq"]}).encode() + b"\n")
                except OSError:
                    pass

    def drop(self):
        self.conn.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.server.close()


def test_line_screen_over_socket_resends_current_after_reconnect():
    display = Display()
    screen = LineScreen(f"socket://127.0.0.1:{display.port}")
    screen.start()
    try:
        wait_for(lambda: screen.transport.connected, what="connect")
        screen.show("passage.enter", "en")
        wait_for(lambda: screen.acked == 1, what="ack")
        assert display.lines.snapshot()[0]["id"] == "passage.enter"
        display.drop()
        wait_for(lambda: len(display.lines.snapshot()) == 2, timeout=5, what="current message re-sent")
        assert display.lines.snapshot()[1]["id"] == "passage.enter" and screen.transport.stats.connects == 2
    finally:
        screen.stop()
        display.close()
