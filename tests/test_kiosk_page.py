"""The traveller's guidance page in headless Chromium (Debian's, through Playwright): every message
in every language, every lane state, the taps (language, high contrast, larger text, the rating),
WCAG 2.2 AA contrast measured from the computed styles, screen-reader labels, and what the page
says when it loses the gate. Screenshots: var/kiosk-screens/ (not committed)."""
from __future__ import annotations

import time

import pytest

from core import messages
from drivers.screen import views
from drivers.screen.driver import REST_STATES, STATE_MESSAGES
from drivers.screen.kiosk import KioskScreen
from sync import record as rec
from sync.outbox import Outbox
from tests.kiosk_helpers import audit, chromium, shot

LANGS = ("zh-TW", "en", "ja", "ko")
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def outbox(tmp_path_factory):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    box = Outbox(tmp_path_factory.mktemp("kiosk-outbox") / "outbox.sqlite", "KIOSK-TEST", key)
    box.verify_key = key.public_key()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def screen(outbox):
    # The gate's part of the rating path: the screen's event goes to the outbox as a linked record.
    s = KioskScreen("127.0.0.1", 0, languages=LANGS, hold_s=0.0,
                    emit=lambda ev: outbox.rate(ev.passage_id, ev.rating)).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as open_context:
        yield open_context


@pytest.fixture(scope="module")
def page(screen, browser):
    pg = browser().new_page()
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    screen.lane_state("idle")
    screen.show("gate.welcome", "zh-TW")
    pg.goto(screen.url)
    pg.wait_for_selector("body[data-message='gate.welcome']")
    pg.errors = errors
    yield pg
    assert not errors, errors


def _fresh_visit(screen, lang=None):
    screen.lane_state("recovering")
    screen.lane_state("idle")
    if lang:
        screen.choose_language(lang)


def _on_page(page, screen, message_id, lang):
    page.wait_for_function("([m, l]) => document.body.dataset.message === m && document.documentElement.lang === l "
                           "&& document.getElementById('message').textContent.length > 0", arg=[message_id, lang],
                           timeout=5000)


def test_every_message_in_every_language(page, screen):
    """Each message id is on the page as the catalogue writes it, with its pictogram and tone, the
    text's language marked for a screen reader; one screenshot per message (languages in turn)."""
    guidance = list(views.MESSAGE_VIEWS)
    assert set(guidance) | set(views.UI_MESSAGES) == set(messages.CATALOGUE), \
        "a message without a pictogram and tone: add it to drivers/screen/views.py"
    for n, mid in enumerate(guidance):
        for lang in LANGS:
            _fresh_visit(screen, lang)
            screen.show(mid, "zh-TW")
            _on_page(page, screen, mid, lang)
            got = page.evaluate("""() => ({text: document.getElementById('message').textContent,
                lang: document.getElementById('message').getAttribute('lang'),
                picto: document.getElementById('picto').dataset.name, body: document.body.className,
                others: [...document.querySelectorAll('#others li')].map((li) => li.lang)})""")
            pictogram, tone = views.MESSAGE_VIEWS[mid]
            assert got["text"] == messages.text(mid, lang) and got["lang"] == lang, (mid, lang, got)
            assert got["picto"] == pictogram and f"tone-{tone}" in got["body"], (mid, got)
            assert got["others"] == []       # a traveller who chose a language reads that one only
            if lang == LANGS[n % len(LANGS)]:
                shot(page, f"message/{mid}.{lang}")


def test_every_lane_state_shows_its_message_in_every_language(page, screen):
    from gate.passage import DOORS

    issuer = {"zh-TW": "TWN", "en": "GBR", "ja": "JPN", "ko": "KOR"}   # the document picks the language
    for lang in LANGS:
        for state in DOORS:
            mid, on_entry = STATE_MESSAGES[state]
            _fresh_visit(screen)
            screen.passage("p-state", issuer[lang])
            screen.lane_state(state)
            if not on_entry:
                screen.show(mid, "zh-TW")          # gate logic shows it in these states
            page.wait_for_function("([s, m]) => document.body.dataset.state === s && document.body.dataset.message === m",
                                   arg=[state, mid], timeout=5000)
            shown = page.evaluate("[document.getElementById('message').textContent, document.documentElement.lang]")
            expected_lang = "zh-TW" if state in REST_STATES else lang     # a state of rest ends the visit
            assert shown == [messages.text(mid, expected_lang), expected_lang], (state, lang, shown)
            if lang == "zh-TW":
                shot(page, f"state/{state}")


@pytest.mark.parametrize("high_contrast", [False, True], ids=["normal", "high-contrast"])
def test_contrast_and_target_size_meet_wcag_aa_in_every_tone(page, screen, high_contrast):
    """Text >= 4.5:1 (7:1 in high contrast), controls and the faces >= 3:1, targets >= 44 px, for
    one message of each tone and with the rating on the page; measured from computed styles."""
    by_tone = {}
    for mid, (_, tone) in views.MESSAGE_VIEWS.items():
        by_tone.setdefault(tone, mid)
    assert set(by_tone) == set(views.TONES)
    for tone, mid in by_tone.items():
        _fresh_visit(screen, "en")
        screen.set_display(high_contrast=high_contrast)
        screen.passage("p-contrast", "GBR")
        if tone == "go":
            mid = "passage.proceed"            # with the three faces below it
        screen.show(mid, "en")
        page.wait_for_function("([m, hc]) => document.body.dataset.message === m && "
                               "document.body.classList.contains('hc') === hc", arg=[mid, high_contrast])
        bad = audit(page, text_min=7.0 if high_contrast else 4.5)
        assert not bad, (tone, bad)
        if high_contrast:
            shot(page, f"contrast/{tone}.high-contrast")


def test_taps_change_language_contrast_and_text_size_and_screen_readers_can_name_everything(page, screen):
    _fresh_visit(screen)
    screen.show("gate.welcome", "zh-TW")
    _on_page(page, screen, "gate.welcome", "zh-TW")
    # Accessible names, as a screen reader computes them.
    for name in ("繁體中文", "English", "日本語", "한국어", "高對比", "放大文字"):
        assert page.get_by_role("button", name=name).count() == 1, name
    live = page.locator("#message")
    assert live.get_attribute("aria-live") == "assertive" and live.get_attribute("role") == "status"
    assert page.locator("#picto").get_attribute("aria-hidden") == "true"
    assert page.get_by_role("navigation", name="語言").count() == 1
    page.get_by_role("button", name="日本語").click()
    _on_page(page, screen, "gate.welcome", "ja")
    assert page.get_by_role("button", name="日本語").get_attribute("aria-pressed") == "true"
    assert screen.language() == "ja"
    size = lambda: page.evaluate("parseFloat(getComputedStyle(document.getElementById('message')).fontSize)")
    normal = size()
    assert normal >= 40, "large type: the guidance is at least 40 px"
    page.get_by_role("button", name="文字を大きく").click()
    page.wait_for_function("document.body.classList.contains('large')")
    assert size() >= 1.25 * normal
    page.get_by_role("button", name="ハイコントラスト").click()
    page.wait_for_function("document.body.classList.contains('hc')")
    assert page.get_by_role("button", name="ハイコントラスト").get_attribute("aria-pressed") == "true"
    shot(page, "taps/ja.high-contrast.large")
    screen.lane_state("face")                 # the passage goes on in the tapped language and display
    _on_page(page, screen, "face.look_at_camera", "ja")
    assert page.evaluate("document.body.className").split() == ["tone-info", "hc", "large"]
    assert not audit(page, text_min=7.0)
    for mid in ("document.issuer_not_accepted", "passage.proceed"):   # a long message; the rating below
        screen.passage("p-large", "GBR")
        screen.show(mid, "zh-TW")
        _on_page(page, screen, mid, "ja")              # the tap still wins over the document
        assert page.evaluate("document.documentElement.scrollHeight <= innerHeight"), f"{mid} scrolls in large text"
        shot(page, f"taps/large.{mid}.ja")


def test_the_rating_tap_reaches_the_signed_record_and_nothing_personal_does(page, screen, outbox):
    _fresh_visit(screen)
    screen.passage("passage-rated-1", "KOR")
    screen.lane_state("exiting")
    screen.show("passage.proceed", "zh-TW")
    page.wait_for_selector("#rating:not([hidden])")
    _on_page(page, screen, "passage.proceed", "ko")
    shot(page, "rating/offered.ko")
    assert page.get_by_role("group", name=messages.text("kiosk.rate_prompt", "ko")).count() == 1
    before = outbox.depth()
    page.get_by_role("button", name=messages.text("kiosk.rating_good", "ko"), exact=True).click()
    page.wait_for_selector(".face[data-rating='good'][aria-pressed='true']")
    assert page.locator("#rate-thanks").text_content() == messages.text("kiosk.rating_thanks", "ko")
    assert page.locator(".face[data-rating='poor']").is_disabled()          # one tap counts
    shot(page, "rating/rated.ko")
    assert outbox.depth() == before + 1
    (last,) = outbox.unacknowledged(1000)[-1:]
    body = rec.decode_envelope(last.envelope).verify(outbox.verify_key)
    assert body["passage"] == "passage-rated-1" and body["outcome"] == rec.RATING
    assert body["scores"] == {"satisfaction": "good"}
    assert body["document"] == {} and body["reasons"] == [] and body["detail"] == {} and body["timings"] == {}
    assert len(last.envelope) < 400
    # The offer ends: the welcome (multilingual) comes back for the next traveller.
    screen.lane_state("idle")
    screen.show("gate.welcome", "zh-TW")
    page.wait_for_selector("#rating[hidden]", state="attached", timeout=8000)


def test_a_page_that_loses_the_gate_says_out_of_service_in_every_language(browser):
    lonely = KioskScreen("127.0.0.1", 0, languages=LANGS).start()
    lonely.passage("p-lost", "TWN")
    lonely.show("passage.proceed", "zh-TW")
    pg = browser().new_page()
    pg.goto(lonely.url)
    pg.wait_for_selector("body[data-message='passage.proceed']")
    lonely.stop()                          # the gate process is gone
    t0 = time.monotonic()
    pg.wait_for_selector("body[data-state='offline']", timeout=6000)
    assert time.monotonic() - t0 < 5
    assert pg.locator("#message").text_content() == messages.text("gate.out_of_service", "zh-TW")
    assert pg.locator("#others li").all_text_contents() == [messages.text("gate.out_of_service", c)
                                                             for c in LANGS[1:]]
    assert pg.locator("#rating").is_hidden()
    shot(pg, "state/offline")


def test_portrait_kiosk_layout(screen, browser):
    pg = browser(viewport=(800, 1280)).new_page()
    _fresh_visit(screen)
    screen.passage("p-portrait", "JPN")
    screen.show("passage.proceed", "zh-TW")
    pg.goto(screen.url)
    pg.wait_for_selector("#rating:not([hidden])")
    assert not audit(pg)
    assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(pg, "layout/portrait.ja")


def test_pictograms_move_unless_the_traveller_asked_for_less_motion(screen, browser):
    """Blink, look, finger, walk, wait: each animates in a short loop; none with reduced motion."""
    _fresh_visit(screen)
    moving = browser(motion="no-preference").new_page()
    still = browser(motion="reduce").new_page()
    for pg in (moving, still):
        pg.goto(screen.url)
    for mid, animation in (("face.blink", "blink"), ("face.look_at_camera", "pulse"), ("finger.place", "press"),
                           ("passage.enter", "ahead"), ("passage.wait", "spin")):
        screen.show(mid, "zh-TW")
        names = []
        for pg in (moving, still):
            pg.wait_for_selector(f"body[data-message='{mid}']")
            names.append(pg.evaluate("[...document.querySelectorAll('#picto *')].map((e) => "
                                     "getComputedStyle(e).animationName).filter((n) => n !== 'none')"))
        assert names[0] == [animation] and names[1] == [], (mid, names)
