"""Scripted travellers: people who use a simulated lane by watching it, never by a canned reply table.

A `Traveller` runs in its own thread and acts only on what a person at the gate could see:

  1. lays the passport on the reader (MRZ reader `place`, chip card in vpcd slot 0);
  2. waits until the entry leaf is open (the door controller simulator's own state);
     gives up after `patience_s`, or at once under the emergency input: takes the passport
     and steps back ("gave_up");
  3. walks in (beam states, one beam step every `step_s`) and stops mid-mantrap;
  4. looks at the camera (their live face, or the attack the kind says);
  5. places a finger when the scanner asks (LED lit or the host polling for a finger), or at
     once, or never; lifts it after each capture;
  6. walks out through the exit when the exit leaf opens ("passed"), or back through the entry
     when the gate reopens it behind them ("sent_back"); under the emergency input, out through
     the exit; after `inside_patience_s` with no leaf open they are "trapped" (an officer lets
     them out: the beams clear);
  7. takes the passport (or, `passport_back="on_entry"`, already when the entry leaf opened,
     as at gates whose reader stands outside the entry leaf).

Kinds (`KINDS`), with the defaults for who walks (`person`) and whose passport (`holder`):

  genuine        lin (national) or any person, e.g. devries (foreigner): own passport
  forged         chen with a forged passport variant (default tampered_dg1; simulators.testpki)
  clone          chen with a cloned chip: genuine data and signatures, no issuer keys (fails AA and CA)
  impostor       bakker with lin's genuine passport: the face does not match the chip photo
  tailgater      lin with the next person in the database right behind (two bodies, two faces)
  child          wang, 112 cm: walks below the 120 cm beam row
  photo_attack   bakker holding a printed photo of lin, with lin's passport
  replay_attack  bakker holding a tablet replaying chen, with chen's passport
  no_show        devries lays the passport down and never enters
  watchlisted    mueller, on the control list (simulators/lists.py): the gate refers him silently
  resident       nguyen, a foreigner with a registered residence permit
  foreigner      devries where foreigners are not served (an arrival gate)
  repeat         lin with her passport again, after it passed (one document used twice)

Every step goes into `timeline` (monotonic time, event, details); `summary()` gives it relative to
the arrival. `Dispatcher` queues travellers one after another in a lane (one person at the gate at
a time) and answers the lane's control socket (see docs/lane.md).
"""
from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from drivers.door.protocol import Leaf, Position
from drivers.fingerprint.protocol import Instruction, LedMode
from simulators.door import Walker, beam_state
from simulators.lane import PEOPLE, Lane, person

KINDS = ("genuine", "forged", "impostor", "tailgater", "child", "photo_attack", "replay_attack", "no_show",
         "watchlisted", "resident", "foreigner", "repeat", "clone")
FINGER_MODES = ("asked", "at_once", "never")
OUTCOMES = ("passed", "sent_back", "gave_up", "no_show", "trapped", "cancelled")

# kind -> (person who walks, passport holder or None for their own, passport variant)
DEFAULTS = {
    "genuine": ("lin", None, "genuine"),
    "forged": ("chen", None, "tampered_dg1"),
    "clone": ("chen", None, "cloned_chip"),       # refused CHIP_AUTH_FAILED (clone detection)
    "impostor": ("bakker", "lin", "genuine"),
    "tailgater": ("lin", None, "genuine"),
    "child": ("wang", None, "genuine"),
    "photo_attack": ("bakker", "lin", "genuine"),
    "replay_attack": ("bakker", "chen", "genuine"),
    "no_show": ("devries", None, "genuine"),
    # The decisions' paths (simulators/lists.py): each walks like a genuine traveller; the gate decides.
    "watchlisted": ("mueller", None, "genuine"),   # on the control list: a silent referral
    "resident": ("nguyen", None, "genuine"),       # a foreigner with a registered permit
    "foreigner": ("devries", None, "genuine"),     # a foreigner where the direction does not serve them
    "repeat": ("lin", None, "genuine"),            # the same passport again, after it passed
}


@dataclass(frozen=True)
class Pace:
    react_s: tuple[float, float]   # a person's pause between seeing something and acting on it
    step_s: float                  # one beam step while walking (8 beams + a body: 1-2 s realistic)
    poll_s: float                  # how often they look at the lane
    patience_s: float              # waiting for the entry leaf (or, no_show, at all) before leaving
    inside_patience_s: float       # in the mantrap waiting for a leaf before calling for help
    blink_again_s: float = 1.5     # still asked to blink: they blink again after this long


PACES = {"realistic": Pace((0.3, 0.8), 0.15, 0.05, 20.0, 60.0),
         "zero-latency": Pace((0.0, 0.0), 0.01, 0.005, 5.0, 15.0, blink_again_s=0.5)}

# What the screen says that a traveller acts on (message ids of core.messages).
FACE_ACTS = ("face.blink", "face.turn_left", "face.turn_right", "face.look_at_camera")
FINGER_PROMPTS = ("finger.place", "finger.press_harder", "finger.centre_finger", "finger.clean_finger")
STEP_BACK = ("passage.step_back", "passage.see_officer", "passage.one_at_a_time")
DOCUMENT_REFUSED = ("document.rejected",        # about the passport on the reader: take it and leave
                    "passage.see_officer",      # a referral at the reader (a control-list hit looks like this)
                    "document.issuer_not_accepted", "document.expires_soon", "document.already_used",
                    "document.open_crossing", "eligibility.resident_not_served", "eligibility.not_enrolled")
PASSPORT_AGAIN = ("document.reposition",)        # lay it down again


@dataclass(frozen=True)
class Event:
    t: float
    what: str
    detail: dict = field(default_factory=dict)


class Traveller:
    """One scripted traveller in `lane`; `start()` runs them in a thread, `summary()` tells what they did."""

    _ids = itertools.count(1)

    def __init__(self, lane: Lane, kind: str = "genuine", person_key: str | None = None, *,
                 holder: str | None = None, variant: str | None = None, finger: str = "asked",
                 patience_s: float | None = None, inside_patience_s: float | None = None,
                 passport_back: str = "at_end", seed: int | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown traveller kind {kind!r}; one of {', '.join(KINDS)}")
        if passport_back not in ("at_end", "on_entry"):
            raise ValueError(f"passport_back must be 'at_end' or 'on_entry', not {passport_back!r}")
        if finger not in FINGER_MODES:
            raise ValueError(f"finger must be one of {FINGER_MODES}, not {finger!r}")
        walker_default, holder_default, variant_default = DEFAULTS[kind]
        self.id = next(Traveller._ids)
        self.lane = lane
        self.kind = kind
        self.person = person(person_key or walker_default)
        self.holder = person(holder or holder_default or self.person.key)
        self.variant = variant or variant_default
        self.finger = finger
        self.passport_back = passport_back
        pace = PACES[lane.profile]
        self.pace = pace
        self.patience_s = pace.patience_s if patience_s is None else patience_s
        self.inside_patience_s = pace.inside_patience_s if inside_patience_s is None else inside_patience_s
        self.rng = random.Random(self.id if seed is None else seed)
        self.walkers = self._walkers()
        self.scene = self._scene()
        self.timeline: list[Event] = []
        self.outcome: str | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._finger_on = False
        self._captures_at_place = 0
        self._frames_at_lift = 0
        self._entry_closings = 0
        self._doc = lane.passport(self.holder.key, self.variant)
        self._inbox: deque[tuple[float, str, bool]] = deque(maxlen=500)   # (when, message id, someone else inside)
        self._seen = 0
        self._due: list[tuple[float, str]] = []     # prompts to act on: (when, message id)
        self._inside = False
        self._screen = getattr(lane, "screen", None)

    def _subscribe(self) -> None:
        if self._screen is not None:
            self._screen.subscribe(self._heard)

    def _unsubscribe(self) -> None:
        if self._screen is not None:
            self._screen.unsubscribe(self._heard)

    # -- what the kind means -------------------------------------------------------------
    def _walkers(self) -> list[Walker]:
        me = Walker(tall=not self.person.child)
        if self.kind == "tailgater":
            return [me, Walker(delay=me.width + 1)]   # right behind: one clear beam between the bodies
        return [me]

    def _scene(self) -> tuple[str, int]:
        scene = {"tailgater": "two_faces", "photo_attack": "printed_photo",
                 "replay_attack": "screen_replay"}.get(self.kind, "traveller")
        shown = self.holder if self.kind in ("photo_attack", "replay_attack") else self.person
        return scene, self.lane.face_index(shown.key)

    @property
    def companion(self) -> str | None:
        """The tailgater's second person (the camera's second face)."""
        if self.kind != "tailgater":
            return None
        return PEOPLE[(self.lane.face_index(self.person.key) + 1) % len(PEOPLE)].key

    # -- thread ----------------------------------------------------------------------------
    def start(self) -> Traveller:
        self._thread = threading.Thread(target=self._run, name=f"traveller-{self.id}-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def run(self) -> str:
        """Run in the calling thread; returns the outcome."""
        self._run()
        return self.outcome

    def join(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def cancel(self) -> None:
        """Stop at once (the lane is shutting down): the traveller leaves, beams clear, passport taken."""
        self._cancel.set()

    def _run(self) -> None:
        try:
            self._subscribe()
            self.outcome = self._passage()
        except Exception as exc:  # a traveller's failure is reported in the summary, never raised into the lane
            self.error = f"{type(exc).__name__}: {exc}"
            self.outcome = "cancelled"
            self._note("error", error=self.error)
        finally:
            if self.outcome == "cancelled":
                self._leave_lane()
            self._unsubscribe()
            self._note("done", outcome=self.outcome)
            self.done.set()

    # -- the passage, as the traveller lives it ----------------------------------------------------
    def _passage(self) -> str:
        self._note("arrived", person=self.person.key, holder=self.holder.key, variant=self.variant,
                   companion=self.companion)
        if not self._react():
            return "cancelled"
        placed_at = self._present()
        if self.kind == "no_show":
            opened = self._wait(lambda: self._leaf("entry") == Position.OPEN, self.patience_s)
            if opened:
                self._note("entry_open_ignored")
                self._wait(lambda: False, self.patience_s)
            return "cancelled" if self._cancel.is_set() else self._take_passport("no_show")
        # Both leaves open under the emergency input: nobody walks into an evacuating gate.
        replaced = 0
        while True:
            seen = self._wait(lambda: self._watch_reader() or self._asked_in(placed_at)
                              or self.lane.door.status().emergency or self._document_answer(placed_at) is not None,
                              self.patience_s)
            answer = self._document_answer(placed_at) if seen else None
            if answer == "again" and self._leaf("entry") != Position.OPEN and replaced < 3:
                # The screen asks for a passport that is on the reader: lay it down again.
                if not self._react():
                    return "cancelled"
                self._note("passport_replaced", because=self._read_screen()[-1][1])
                self.lane.take_passport()
                placed_at = self._present()
                replaced += 1
                continue
            break
        if answer == "refused" and self._leaf("entry") != Position.OPEN:
            self._note("refusal_read", message=self._read_screen()[-1][1])
            if not self._react():
                return "cancelled"
            return self._take_passport("gave_up")
        if not seen or self.lane.door.status().emergency:
            if self._cancel.is_set():
                return "cancelled"
            self._note("gave_up", waited_s=self.patience_s, emergency=self.lane.door.status().emergency or None)
            return self._take_passport("gave_up")
        self._note("entry_open")
        if not self._react():
            return "cancelled"
        self._note("reacted")
        if self.passport_back == "on_entry":
            # The reader's light says whether the chip is still being read: leave it until it is off.
            self._wait(lambda: not self.lane.reader_busy(), self.patience_s)
            self._take_passport("")
        stand = self.lane.door.beam_count // 2 + 1
        self._entry_closings = self.lane.door.closings[Leaf.ENTRY]   # the entry is open now
        self._note("walking_in")
        # Walking in they face the screen and the camera above it: the camera sees them from the first step.
        self._look_at_camera()
        self._inside = True
        if self.finger == "at_once":
            self._place_finger()
        if not self._walk(range(0, stand + 1), clear_note="clear_of_entry"):
            return "cancelled"
        self._note("in_mantrap", beams=self._beams())
        way = self._wait_inside()
        self._inside = False
        self._lift_finger()
        if way is None:
            return "cancelled"
        if way == "trapped":
            self._note("trapped", waited_s=self.inside_patience_s)
            self.lane.door.set_beams(0, 0)
            self.lane.camera.set_scene("no_face")
            return self._take_passport("trapped")
        if not self._react():
            return "cancelled"
        width = max(w.width + w.delay for w in self.walkers)
        if way == "exit":
            self._note("walking_out")
            path = range(stand + 1, self.lane.door.beam_count + width)
        else:
            self._note("walking_back")
            path = range(stand - 1, -2, -1)
        self.lane.camera.set_scene("no_face")
        if not self._walk(path, out_note="past_exit" if way == "exit" else None):
            return "cancelled"
        self._note("left_mantrap", via="exit" if way == "exit" else "entry")
        return self._take_passport("passed" if way == "exit" else "sent_back")

    def _present(self) -> float:
        """Lay the passport on the reader; returns when (monotonic)."""
        self.lane.present_passport(self._doc)
        self._note("passport_presented", document=self.holder.traveller_id, variant=self.variant)
        return self.timeline[-1].t

    def _asked_in(self, placed_at: float) -> bool:
        """The entry is open for me: open, nobody in the mantrap, and, with a screen to read, the gate
        asked me in (`passage.enter` since I laid my passport down); someone stepping back out
        through an open entry is not an invitation."""
        status = self.lane.door.status()
        if status.entry.position != Position.OPEN or status.beams.low or status.beams.high:
            return False
        return not self.reads_screen or any(m == "passage.enter" and t >= placed_at and not busy
                                            for t, m, busy in list(self._inbox))

    def _watch_reader(self) -> bool:
        """Glance at the reader's light (keeps its reading fresh); never a reason to stop waiting."""
        self.lane.reader_busy()
        return False

    def _look_at_camera(self) -> None:
        scene, face = self.scene
        # A traveller who reads the screen blinks and turns when it asks; otherwise on their own rhythm.
        actions = "asked" if self.reads_screen else "own"
        self.lane.camera.set_scene(scene, face=face, actions=actions)
        self._note("looking_at_camera", scene=scene, face=face, actions=actions)

    def _document_answer(self, placed_at: float) -> str | None:
        """What the screen said about the passport laid down at `placed_at`: "refused" (a refusal
        shown after it was laid down), "again" (the gate asks for a passport and never said it is
        reading this one: it missed it), or None (nothing yet, or it is being read)."""
        said = [m for t, m, busy in list(self._inbox) if t >= placed_at and not busy]
        if any(m in DOCUMENT_REFUSED for m in said):
            return "refused"
        if any(m in PASSPORT_AGAIN for m in said):
            return "again"
        if said and said[-1] == "gate.welcome" and "document.reading" not in said:
            return "again"    # the gate is ready for a passport and never read this one
        return None

    def _wait_inside(self) -> str | None:
        """Stand in the mantrap until a leaf opens: 'exit', 'entry' (sent back), 'trapped' or None (cancelled)."""
        closed_behind = False
        closings = self._entry_closings
        deadline = time.monotonic() + self.inside_patience_s
        while not self._cancel.is_set():
            status = self.lane.door.status()
            entry, exit_ = status.entry.position, status.exit.position
            if status.emergency:
                self._note("emergency_seen")
                return "exit"
            if exit_ == Position.OPEN:
                self._note("exit_open")
                return "exit"
            if not closed_behind and (entry in (Position.CLOSING, Position.CLOSED)
                                      or self.lane.door.closings[Leaf.ENTRY] > closings):
                self._note("entry_closed_behind")
                closed_behind = True
            if closed_behind and entry in (Position.OPENING, Position.OPEN):
                self._note("entry_reopened")
                return "entry"
            if entry == Position.OPEN and self._screen_says(STEP_BACK):
                self._note("told_to_step_back", message=self._read_screen()[-1][1])
                return "entry"
            self._finger_step()
            if time.monotonic() > deadline:
                return "trapped"
            self._pause(self.pace.poll_s)
        return None

    # -- the screen ----------------------------------------------------------------------------
    def _heard(self, at: float, msg) -> None:
        """The lane's screen showed `msg` (called in the gate's thread: only queue it)."""
        # Someone else in the mantrap: what the screen says is for them, not about my passport.
        beams = self.lane.door.status().beams if self.lane.door is not None else None
        busy = bool(beams is not None and (beams.low or beams.high) and not self._inside)
        self._inbox.append((at, msg.message_id, busy))

    @property
    def reads_screen(self) -> bool:
        """The gate drives the lane's screen: it has shown something since this traveller arrived."""
        return bool(self._inbox)

    def _read_screen(self) -> list[tuple[float, str]]:
        return [(t, m) for t, m, _ in list(self._inbox)]

    def _screen_says(self, ids) -> bool:
        seen = self._read_screen()
        return bool(seen) and seen[-1][1] in ids

    def _respond(self) -> None:
        """Act on what the screen asked, each prompt after a human reaction time: blink, turn the
        head, place the finger. Called whenever the traveller looks (every poll, every step)."""
        if not self._inside:
            self._seen = len(self._inbox)
            return
        news = list(self._inbox)[self._seen:]
        self._seen += len(news)
        for at, message, _ in news:
            if message in FACE_ACTS or message in FINGER_PROMPTS:
                self._due.append((max(at, time.monotonic()) + self.rng.uniform(*self.pace.react_s), message))
        now = time.monotonic()
        # Still asked to blink: the last prompt that is not face guidance (look, move closer...) is the blink.
        prompts = [m for _, m, _ in list(self._inbox) if not (m.startswith("face.") and m != "face.blink")
                   and not m.startswith("finger.")]
        latest = prompts[-1] if prompts else None
        for due in [d for d in self._due if d[0] <= now]:
            self._due.remove(due)
            _, message = due
            if message == "face.blink":
                self.lane.camera.blink()
                self._note("blinked")
                # Nothing happened? Blink again while the screen still asks (a person would).
                self._due.append((now + self.pace.blink_again_s, "face.blink.again"))
            elif message == "face.blink.again":
                if latest == "face.blink":
                    self.lane.camera.blink()
                    self._note("blinked", again=True)
                    self._due.append((now + self.pace.blink_again_s, "face.blink.again"))
            elif message == "face.look_at_camera":
                self.lane.camera.look()
                self._note("looked")
            elif message in ("face.turn_left", "face.turn_right"):
                self.lane.camera.turn(message.rsplit("_", 1)[1])
                self._note("turned", to=message.rsplit("_", 1)[1])
            elif message in FINGER_PROMPTS and self.finger != "never":
                if self._finger_on and message != "finger.place":
                    self._lift_finger()    # lift and place again, as the screen asks
                self._place_finger()

    # -- the finger --------------------------------------------------------------------------------
    def _scanner_asks(self) -> bool:
        scanner = self.lane.fingerprint
        if scanner.led[0] != LedMode.OFF:
            return True
        recent = scanner.commands[-1] if scanner.commands else None
        return recent in (Instruction.FINGER_DETECT, Instruction.CAPTURE) and scanner.frames_sent > self._frames_at_lift

    def _finger_step(self) -> None:
        scanner = self.lane.fingerprint
        self._respond()
        if self._finger_on:
            if scanner.captures > self._captures_at_place:
                self._note("finger_captured", captures=scanner.captures)
                self._lift_finger()
        elif self.finger != "never" and not self.reads_screen and self._scanner_asks():
            self._place_finger()   # no screen to read: the scanner's light and polling are the prompt

    def _place_finger(self) -> None:
        if self._finger_on:
            return
        self._captures_at_place = self.lane.fingerprint.captures
        self.lane.fingerprint.place_finger(self.person.finger_id)
        self._finger_on = True
        self._note("finger_placed", finger_id=self.person.finger_id)

    def _lift_finger(self) -> None:
        if self._finger_on:
            self.lane.fingerprint.lift_finger()
            self._finger_on = False
            self._frames_at_lift = self.lane.fingerprint.frames_sent
            self._note("finger_lifted")

    # -- moving, waiting, noting ------------------------------------------------------------------
    def _walk(self, fronts: range, clear_note: str | None = None, out_note: str | None = None) -> bool:
        """One beam step every `step_s`; `clear_note` is noted when the entry leaf's beam (0) clears
        on the way in, `out_note` when every beam is clear on the way out (past the leaf)."""
        beams = self.lane.door.beam_count
        for front in fronts:
            low, high = beam_state(self.walkers, front, beams)
            self.lane.door.set_beams(low, high)
            if clear_note and front > 0 and not low & 1:
                self._note(clear_note)
                clear_note = None
            if out_note and not low and not high:
                self._note(out_note)
                out_note = None
            if not self._pause(self.pace.step_s):
                return False
        return True

    def _pause(self, seconds: float) -> bool:
        """Wait `seconds` while still reading the screen and acting on it; False when cancelled."""
        end = time.monotonic() + seconds
        while True:
            self._finger_step() if self._inside else self._respond()
            left = end - time.monotonic()
            if left <= 0:
                return not self._cancel.is_set()
            if self._cancel.wait(min(left, self.pace.poll_s)):
                return False

    def _take_passport(self, outcome: str) -> str:
        if self.lane.document is self._doc:   # not taken already on the way in
            self.lane.take_passport()
            self._note("passport_taken")
        return outcome

    def _leave_lane(self) -> None:
        self._unsubscribe()
        self._lift_finger()
        if self.lane.door is not None:
            self.lane.door.set_beams(0, 0)
        if self.lane.camera is not None:
            self.lane.camera.set_scene("no_face")
        if self.lane.document is self._doc:
            self.lane.take_passport()

    def _react(self) -> bool:
        return not self._cancel.wait(self.rng.uniform(*self.pace.react_s))

    def _wait(self, predicate, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self._cancel.is_set():
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            self._pause(self.pace.poll_s)
        return False

    def _leaf(self, which: str) -> Position:
        status = self.lane.door.status()
        return (status.entry if which == "entry" else status.exit).position

    def _beams(self) -> dict:
        b = self.lane.door.status().beams
        return {"low": b.low, "high": b.high}

    def _note(self, what: str, **detail) -> None:
        self.timeline.append(Event(time.monotonic(), what, {k: v for k, v in detail.items() if v is not None}))

    def summary(self) -> dict:
        t0 = self.timeline[0].t if self.timeline else 0.0
        return {"id": self.id, "kind": self.kind, "person": self.person.key, "holder": self.holder.key,
                "variant": self.variant, "outcome": self.outcome, "error": self.error,
                "timeline": [{"t": round(e.t - t0, 3), "event": e.what, **e.detail} for e in list(self.timeline)]}


class Dispatcher:
    """The queue at the gate: travellers sent into `lane` go one after another, each when the one
    before has left. Also the lane's control-socket handler (`control`), see docs/lane.md."""

    def __init__(self, lane: Lane, keep: int = 500):
        self.lane = lane
        self.travellers: dict[int, Traveller] = {}
        self._queue: deque[Traveller] = deque()
        self._keep = keep
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._current: Traveller | None = None
        self._worker = threading.Thread(target=self._serve, name="lane-queue", daemon=True)
        self._worker.start()

    def send(self, kind: str, count: int = 1, **kw) -> list[int]:
        """Queue `count` travellers of `kind` (Traveller keyword arguments in `kw`); returns their ids."""
        if not 1 <= count <= 100:
            raise ValueError("count must be 1..100")
        made = [Traveller(self.lane, kind, **kw) for _ in range(count)]
        with self._lock:
            for t in made:
                self.travellers[t.id] = t
                self._queue.append(t)
            for old in sorted(self.travellers)[:-self._keep]:
                if self.travellers[old].done.is_set():
                    del self.travellers[old]
            self._lock.notify_all()
        return [t.id for t in made]

    def report(self, ids: list[int]) -> list[dict]:
        return [self.travellers[i].summary() | {"done": self.travellers[i].done.is_set()}
                for i in ids if i in self.travellers]

    def control(self, request: dict) -> dict:
        """JSON-line requests: {"do": "devices"} | {"do": "traveller", "kind": K, "count": N, ...}
        | {"do": "report", "ids": [...]} | {"do": "status"} | {"device": NAME, ...simulators.faults request}."""
        if "device" in request:
            sims = {"door": self.lane.door, "mrz_reader": self.lane.mrz, "fingerprint": self.lane.fingerprint,
                    "camera": self.lane.camera}
            sim = sims.get(request["device"])
            if sim is None:
                raise ValueError(f"unknown device {request['device']!r}; one of {', '.join(sims)}")
            return sim.control({k: v for k, v in request.items() if k != "device"})
        what = request.get("do")
        args = {k: v for k, v in request.items() if k != "do"}
        if what == "devices":
            return {"ok": True, "devices": self.lane.devices(), "config": str(self.lane.config_path)}
        if what == "traveller":
            kind = args.pop("kind", "genuine")
            count = int(args.pop("count", 1))
            if "person" in args:
                args["person_key"] = args.pop("person")
            return {"ok": True, "ids": self.send(kind, count, **args)}
        if what == "report":
            return {"ok": True, "travellers": self.report([int(i) for i in args.get("ids", [])])}
        if what == "status":
            with self._lock:
                waiting = [t.id for t in self._queue]
            return {"ok": True, "current": self._current.id if self._current else None, "waiting": waiting}
        raise ValueError("request needs 'do' (devices, traveller, report, status) or 'device'")

    def close(self) -> None:
        """Cancel everyone (the one in the lane steps out) and stop the queue."""
        self._stop.set()
        with self._lock:
            waiting, self._queue = list(self._queue), deque()
            self._lock.notify_all()
        for t in waiting:
            t.outcome = "cancelled"
            t.done.set()
        if self._current is not None:
            self._current.cancel()
        self._worker.join(timeout=10)

    def _serve(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._lock.wait_for(lambda: self._queue or self._stop.is_set())
                if self._stop.is_set():
                    return
                self._current = self._queue.popleft()
            self._current.run()
            self._current = None
