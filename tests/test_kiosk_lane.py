"""The kiosk page following a real passage: the gate process (GateApp, built from the lane's config,
so its screen is the kiosk page on a free loopback port) against the simulated lane, a browser page
open on it, a genuine traveller walking through; the traveller taps a face and the rating lands in
the outbox as a signed record linked to the passage's record. Zero-latency profile."""
from __future__ import annotations

import pytest

from core import messages
from drivers.screen.kiosk import KioskScreen
from gate import config
from simulators.lane import Lane
from simulators.traveller import Traveller
from sync import record as rec
from sync.record import decode_envelope, load_signing_key
from tests.kiosk_helpers import chromium, shot
from tests.test_gate_lane import RunningGate, wait_for

pytestmark = [pytest.mark.timeout(180), pytest.mark.services]

FOLLOW_JS = """() => { window.seen = [];
  const note = () => { const m = document.body.dataset.message; if (window.seen[window.seen.length - 1] !== m) window.seen.push(m); };
  new MutationObserver(note).observe(document.body, {attributes: true}); note(); }"""


@pytest.fixture(scope="module")
def lane(tmp_path_factory):
    with Lane(tmp_path_factory.mktemp("kiosk-lane"), profile="zero-latency") as lane:
        yield lane


def test_a_browser_follows_a_real_passage_and_the_rating_joins_its_record(lane):
    cfg = config.load_gate(lane.config_path)
    assert cfg.devices.screen.driver == "kiosk" and cfg.devices.screen.listen == "127.0.0.1:0"
    with RunningGate(cfg) as app, chromium() as open_context:
        screen = app.screen
        assert isinstance(screen, KioskScreen) and screen.status().healthy, screen.status()
        page = open_context().new_page()
        page.goto(screen.url)
        page.wait_for_selector("body[data-message='gate.welcome']")
        page.evaluate(FOLLOW_JS)
        page.get_by_role("button", name="English").click()        # tapped at the welcome, before the passport
        page.wait_for_function("document.documentElement.lang === 'en'")
        traveller = Traveller(lane, "genuine", "devries").start()   # NLD: no language of its own here
        page.wait_for_selector("#rating:not([hidden])", timeout=60_000)
        shot(page, "lane/passage.proceed.en")
        page.get_by_role("button", name=messages.text("kiosk.rating_good", "en"), exact=True).click()
        page.wait_for_selector(".face[data-rating='good'][aria-pressed='true']")
        assert traveller.join(60), "the traveller never finished"
        assert wait_for(lambda: app.controller.records and app.controller.ratings, 10)
        seen = page.evaluate("window.seen")
        record = app.controller.records[-1]
    assert traveller.outcome == "passed" and record.outcome == "cleared", (traveller.summary(), record.as_dict())
    # The page went through the passage in the tapped language, the gate's messages in order.
    steps = ["gate.welcome", "document.reading", "passage.enter", "face.blink", "passage.proceed"]
    assert [m for m in seen if m in steps] == steps or all(s in seen for s in steps), seen
    assert seen.index("document.reading") < seen.index("passage.enter") < seen.index("passage.proceed"), seen
    assert app.controller.ratings == {"good": 1}
    # The outbox: the passage's record, then a rating record linked to it by passage id; no personal data.
    from sync.outbox import Outbox

    box = Outbox.inspect(cfg.storage.data_dir / "outbox.sqlite")
    key = load_signing_key(cfg.storage.signing_key).public_key()
    bodies = [decode_envelope(p.envelope).verify(key) for p in box.unacknowledged(1000)]
    box.stop()
    ratings = [b for b in bodies if b["outcome"] == rec.RATING]
    assert [(b["passage"], b["scores"]) for b in ratings] == [(record.passage_id, {"satisfaction": "good"})]
    assert ratings[0]["document"] == {} and ratings[0]["reasons"] == [] and ratings[0]["timings"] == {}
    assert any(b["passage"] == record.passage_id and b["outcome"] == "cleared" for b in bodies)
