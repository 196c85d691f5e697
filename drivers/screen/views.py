"""What the kiosk page draws for each guidance message: its pictogram and its tone.

Language-independent, so it lives here and not in the message files. Every message id of
`core.messages` has an entry (tests/test_kiosk_page.py); a new message needs one.

Pictograms (SVG with a short CSS animation each, in static/kiosk.js; still when the traveller's
system asks for reduced motion):
  passport  a passport laid on the reader        look     a camera with a pulsing lens
  blink     an eye closing and opening           finger   a finger pressing on the scanner
  walk      a person walking, arrow ahead        wait     a turning ring
  step_back a person stepping back, arrow back   officer  an officer with a cap
  one       one person only                      bag      a bag left behind
  closed    a no-entry sign (out of service)     exit     both doors open, an exit arrow

Tones colour the panel behind the message: `info` (instructions), `go` (walk on), `attention`
(something to put right), `stop` (see an officer, closed, emergency). A `stop` or `attention`
message is held on the page for `devices.screen.hold_s` before the welcome replaces it.
"""
from __future__ import annotations

PICTOGRAMS = ("passport", "look", "blink", "finger", "walk", "wait", "step_back", "officer", "one", "bag",
              "closed", "exit")
TONES = ("info", "go", "attention", "stop")

# message id -> (pictogram, tone)
MESSAGE_VIEWS: dict[str, tuple[str, str]] = {
    "gate.welcome": ("passport", "info"),
    "gate.out_of_service": ("closed", "stop"),
    "gate.starting": ("wait", "info"),
    "document.reading": ("passport", "info"),
    "document.reposition": ("passport", "attention"),
    "document.remove": ("passport", "attention"),
    "document.rejected": ("officer", "stop"),
    "document.issuer_not_accepted": ("officer", "stop"),
    "document.expires_soon": ("officer", "stop"),
    "document.already_used": ("officer", "stop"),
    "document.open_crossing": ("officer", "stop"),
    "eligibility.resident_not_served": ("officer", "stop"),
    "eligibility.not_enrolled": ("officer", "attention"),
    "passage.enter": ("walk", "go"),
    "passage.entry_closing": ("walk", "go"),
    "passage.wait": ("wait", "info"),
    "passage.one_at_a_time": ("one", "attention"),
    "passage.step_back": ("step_back", "attention"),
    "passage.take_belongings": ("bag", "attention"),
    "passage.proceed": ("walk", "go"),
    "passage.wrong_way": ("step_back", "stop"),
    "passage.see_officer": ("officer", "stop"),
    "passage.emergency": ("exit", "stop"),
    "face.look_at_camera": ("look", "info"),
    "face.move_closer": ("look", "info"),
    "face.move_back": ("look", "info"),
    "face.remove_glasses": ("look", "info"),
    "face.hair_over_eyebrows": ("look", "info"),
    "face.remove_hat_or_mask": ("look", "info"),
    "face.neutral_expression": ("look", "info"),
    "face.one_person_only": ("one", "attention"),
    "face.better_light": ("look", "info"),
    "face.blink": ("blink", "info"),
    "face.turn_left": ("look", "info"),
    "face.turn_right": ("look", "info"),
    "finger.place": ("finger", "info"),
    "finger.press_harder": ("finger", "info"),
    "finger.centre_finger": ("finger", "info"),
    "finger.clean_finger": ("finger", "attention"),
}
# The page's own words (labels, the rating): not guidance, so no pictogram.
UI_MESSAGES = ("kiosk.guidance", "kiosk.language", "kiosk.display", "kiosk.high_contrast", "kiosk.larger_text",
               "kiosk.rate_prompt", "kiosk.rating_good", "kiosk.rating_neutral", "kiosk.rating_poor",
               "kiosk.rating_thanks")
# Shown to nobody in particular: every offered language is on the page, the current one first.
MULTILINGUAL = frozenset({"gate.welcome", "gate.out_of_service", "gate.starting"})
# Replaced by the welcome only after `hold_s` (or once the rating offer has gone).
HELD_TONES = frozenset({"stop", "attention"})
IDLE_MESSAGES = frozenset({"gate.welcome"})


def view_of(message_id: str) -> tuple[str, str]:
    """(pictogram, tone) of a message; an unknown id gets the neutral "wait" look."""
    return MESSAGE_VIEWS.get(message_id, ("wait", "info"))
