"""Guidance screen: validation, recording implementation, JSON-line implementation over a loopback socket,
the traveller's visit (language, state messages, rating offer) and the kiosk page's server without a browser."""
from __future__ import annotations

import json
import socket
import threading
import time

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


# ------------------------------------------------------------------ the traveller's visit

def test_the_document_picks_the_language_and_a_tap_wins_until_the_visit_ends():
    s = RecordingScreen(languages=("zh-TW", "en", "ja", "ko"))
    s.lane_state("idle")
    s.show("gate.welcome", "zh-TW")
    s.passage("p1", "JPN")
    assert s.current.language == "ja" and s.current.message_id == "gate.welcome"   # re-rendered at once
    assert s.show("document.reading", "zh-TW").language == "ja"
    s.choose_language("ko")
    assert s.current.language == "ko" and s.show("face.blink", "zh-TW").text == "눈을 깜빡여 주세요."
    with pytest.raises(ScreenError, match="not offered"):
        s.choose_language("fr")
    s.lane_state("idle")                                  # the passage is over: the next traveller starts afresh
    assert s.show("gate.welcome", "zh-TW").language == "zh-TW"
    s.choose_language("en")                               # tapped at the welcome, before a document...
    s.passage("p2", "TWN")
    assert s.show("document.reading", "zh-TW").language == "en"   # ...it wins over the document's
    s.passage("p3", "NLD")
    s.lane_state("idle")
    s.passage("p4", "NLD")                                # no mapping: the gate's default
    assert s.show("document.reading", "zh-TW").language == "zh-TW"


def test_states_where_gate_logic_is_silent_get_their_own_message():
    s = RecordingScreen()
    for state in ("recovering", "confirming_occupancy", "face", "deciding", "maintenance"):
        s.lane_state(state)
    assert s.ids() == ["gate.starting", "passage.entry_closing", "face.look_at_camera", "passage.wait",
                       "gate.out_of_service"]
    s.show("passage.see_officer", "en")
    s.lane_state("returning")                             # the refusal's own guidance stays
    assert s.ids()[-1] == "passage.see_officer"


def test_the_rating_is_offered_after_a_cleared_passage_once_and_only_for_that_passage():
    events = []
    s = RecordingScreen(emit=events.append, rating_window_s=5)
    s.show("passage.proceed", "en")
    assert s.open_offer() is None                          # no passage: nothing to rate
    s.passage("p1", "TWN")
    s.show("passage.step_back", "en")
    assert s.open_offer() is None                          # "cleared": not after a refusal
    s.show("passage.proceed", "en")
    offer = s.open_offer()
    assert offer.passage_id == "p1" and len(offer.token) >= 16 and "p1" not in offer.token
    with pytest.raises(ScreenError, match="not one of"):
        s.rate(offer.token, "excellent")
    assert s.rate("forged-token", "good") == "unknown"
    assert s.rate(offer.token, "poor") == "recorded"
    assert s.rate(offer.token, "good") == "already_rated"
    assert [(e.passage_id, e.rating) for e in events] == [("p1", "poor")] and events[0].after_s >= 0
    s.passage("p2", "TWN")                                 # the next traveller: the offer is gone
    assert s.open_offer() is None


def test_an_offer_expires_and_is_withdrawn_when_the_next_traveller_is_let_in():
    now = [100.0]
    s = RecordingScreen(rating="every_decision", rating_window_s=0.2, clock=lambda: now[0])
    s.passage("p1", "TWN")
    s.show("document.rejected", "en")
    token = s.open_offer().token
    now[0] += 0.3
    assert s.open_offer() is None and s.rate(token, "good") == "expired"
    s.passage("p2", "TWN")
    s.show("passage.proceed", "en")
    assert s.open_offer() is not None
    s.show("passage.enter", "en")
    assert s.open_offer() is None
    off = RecordingScreen(rating="off")
    off.passage("p3", "TWN")
    off.show("passage.proceed", "en")
    assert off.open_offer() is None


# ------------------------------------------------------------------ the kiosk page's server (no browser)

def test_listen_must_be_loopback():
    from core.errors import ConfigError
    from drivers.screen.config import ScreenConfig, loopback_address

    assert loopback_address(ScreenConfig(listen="127.0.0.1:0")) == ("127.0.0.1", 0)
    assert loopback_address(ScreenConfig(listen="[::1]:8480")) == ("::1", 8480)
    for bad in ("0.0.0.0:8480", "192.168.1.5:80", "kiosk:8480", "127.0.0.1", "127.0.0.1:99999"):
        with pytest.raises(ConfigError, match="devices.screen.listen"):
            loopback_address(ScreenConfig(listen=bad))


@pytest.fixture
def kiosk():
    from drivers.screen.kiosk import KioskScreen

    events = []
    screen = KioskScreen("127.0.0.1", 0, languages=("zh-TW", "en", "ja", "ko"), emit=events.append, hold_s=0.6)
    screen.events = events
    screen.start()
    assert screen.status().healthy, screen.status()
    yield screen
    screen.stop()


def _http(screen, method, path, body=None, headers=None):
    import http.client

    conn = http.client.HTTPConnection(screen.host, screen.port, timeout=5)
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, (json.loads(payload) if payload else None)


def _view(screen, **expect):
    wait_for(lambda: all(screen.view.get(k) == v for k, v in expect.items()), timeout=3, what=str(expect))
    return _http(screen, "GET", "/api/view")[1]


def test_kiosk_streams_each_change_as_a_view_over_sse(kiosk):
    import urllib.request

    kiosk.lane_state("idle")
    kiosk.show("gate.welcome", "zh-TW")
    with urllib.request.urlopen(kiosk.url + "events", timeout=5) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        first = _next_event(stream)                           # the current view at once
        assert first["id"] == "gate.welcome" and first["lang"] == "zh-TW" and first["pictogram"] == "passport"
        assert [o["lang"] for o in first["others"]] == ["en", "ja", "ko"]      # nobody in particular: every language
        kiosk.passage("p1", "KOR")
        kiosk.show("face.blink", "zh-TW")
        view = _next_event(stream, until=lambda v: v["id"] == "face.blink")
        assert view["lang"] == "ko" and view["text"] == "눈을 깜빡여 주세요." and view["pictogram"] == "blink"
        assert view["others"] == [] and view["ui"]["language"] == "언어"
    page = urllib.request.urlopen(kiosk.url, timeout=5).read().decode()
    assert 'aria-live="assertive"' in page and "本通道暫停使用" in page       # the offline text is in the page


def _next_event(stream, until=lambda v: True):
    while True:
        data = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                break
        if until(data):
            return data


def test_kiosk_taps_language_display_and_rating_reach_the_gate(kiosk):
    kiosk.lane_state("idle")
    kiosk.show("gate.welcome", "zh-TW")
    assert _http(kiosk, "POST", "/api/language", {"lang": "ja"}) == (204, None)
    assert _view(kiosk, lang="ja")["text"].startswith("ようこそ")
    assert _http(kiosk, "POST", "/api/language", {"lang": "xx"})[0] == 400
    assert _http(kiosk, "POST", "/api/display", {"high_contrast": True}) == (204, None)
    assert _view(kiosk, display={"high_contrast": True, "large_text": False})
    assert _http(kiosk, "POST", "/api/display", {"high_contrast": "yes"})[0] == 400
    assert _http(kiosk, "POST", "/api/language", {"lang": "en"},
                 headers={"Origin": "http://evil.example"}) == (403, {"error": "cross_origin"})
    kiosk.passage("p9", "JPN")
    kiosk.show("passage.proceed", "zh-TW")
    token = _view(kiosk, id="passage.proceed")["rating"]["token"]
    assert _http(kiosk, "POST", "/api/rating", {"token": token, "rating": "good"}) == (204, None)
    assert _http(kiosk, "POST", "/api/rating", {"token": token, "rating": "poor"}) == (409, {"error": "already_rated"})
    assert [(e.passage_id, e.rating) for e in kiosk.events] == [("p9", "good")]
    assert _view(kiosk, id="passage.proceed")["rating"]["rated"] == "good"
    kiosk.lane_state("idle")                               # the visit ends: display back to the gate's defaults
    assert _view(kiosk, display={"high_contrast": False, "large_text": False})


def test_kiosk_holds_a_refusal_before_the_welcome_replaces_it(kiosk):
    kiosk.passage("p1", "TWN")
    kiosk.show("document.rejected", "zh-TW")
    _view(kiosk, id="document.rejected")
    kiosk.lane_state("idle")
    kiosk.show("gate.welcome", "zh-TW")                    # gate logic moves on at once...
    time.sleep(0.3)
    assert kiosk.view["id"] == "document.rejected"         # ...the traveller still reads why
    assert _view(kiosk, id="gate.welcome")                 # after hold_s
    kiosk.show("face.look_at_camera", "zh-TW")             # anything else replaces at once
    assert _view(kiosk, id="face.look_at_camera")


def test_kiosk_keeps_the_travellers_language_while_their_rating_outlives_the_visit(kiosk):
    kiosk.lane_state("idle")
    kiosk.passage("p1", "JPN")
    kiosk.lane_state("exiting")
    kiosk.show("passage.proceed", "zh-TW")
    assert _view(kiosk, id="passage.proceed")["lang"] == "ja"
    kiosk.lane_state("exit_clear")
    kiosk.lane_state("idle")                               # the traveller is past the exit: the visit is over...
    kiosk.show("gate.welcome", "zh-TW")
    time.sleep(0.3)
    view = _view(kiosk, id="passage.proceed")              # ...but the rating is still offered, in Japanese
    assert view["lang"] == "ja" and view["rating"]["choices"][0]["label"] == "満足"
    assert _http(kiosk, "POST", "/api/rating", {"token": view["rating"]["token"], "rating": "neutral"}) == (204, None)
    assert [(e.passage_id, e.rating) for e in kiosk.events] == [("p1", "neutral")]
