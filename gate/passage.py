"""The passage state machine: the authority on what the gate is doing with the traveller in front of it.

Two parallel regions. `lane` holds one state per step of a passage plus the lane's modes
(recovering, out of service, maintenance, closed by an officer, emergency); `health` says whether every required device
is usable. The controller (`gate/controller.py`) performs the steps and feeds their outcomes and
the devices' facts back as events; each lane state says what it requires of the two leaves
(`DOORS`) and, where waiting can go on forever, which timeout event ends it (`TIMEOUTS`).

Guards enforce the mantrap's invariants from the reported (never the commanded) door state:
the entry opens only with the exit confirmed closed and locked and the mantrap empty; the exit
opens only after a positive decision with the entry confirmed closed and locked; the lane is idle
only with the mantrap empty. Strict flags: an event the current state does not allow raises, and
a callback error propagates instead of leaving the machine half-moved.

A gate always boots into `recovering`: it locks both leaves and, if anyone is inside, sends them
back out through the entry, so a restart never reopens the exit mid-passage (python-statemachine
does not re-run `on_enter` for a restored state, so we never restore one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from statemachine import State, StateChart

from core.reasons import Reason

# What each lane state requires of the two leaves: (entry, exit). "locked" = closed and locked.
DOORS: dict[str, tuple[str, str]] = {
    "recovering": ("locked", "locked"),
    "idle": ("locked", "locked"),
    "reading_document": ("locked", "locked"),
    "entering": ("open", "locked"),
    "confirming_occupancy": ("locked", "locked"),
    "face": ("locked", "locked"),
    "finger": ("locked", "locked"),
    "deciding": ("locked", "locked"),
    "exiting": ("locked", "open"),
    "exit_clear": ("locked", "locked"),
    "returning": ("open", "locked"),
    "entry_attention": ("open", "locked"),
    "exit_attention": ("locked", "open"),
    "out_of_service": ("locked", "locked"),
    "maintenance": ("locked", "locked"),
    "closed": ("locked", "locked"),            # an officer closed the lane (`egate officer close`)
    "releasing": ("locked", "locked"),         # an officer released a refused traveller: the entry locks first
    "emergency": ("open", "open"),     # the door controller opens both by itself; the host commands nothing
}


@dataclass(frozen=True)
class Timeout:
    event: str
    setting: str        # `timeouts.<setting>` in the gate's config
    factor: float       # times the setting
    reason: Reason


# Lane states that wait on a traveller or a leaf, and the event that ends the wait.
TIMEOUTS: dict[str, Timeout] = {
    "entering": Timeout("entry_timeout", "document_s", 1.0, Reason.ENTRY_TIMEOUT),
    "confirming_occupancy": Timeout("entry_not_closed", "door_travel_s", 2.0, Reason.ENTRY_NOT_CLOSED),
    "exiting": Timeout("exit_timeout", "passage_s", 1.0, Reason.EXIT_TIMEOUT),
    "exit_clear": Timeout("exit_not_closed", "door_travel_s", 2.0, Reason.EXIT_NOT_CLOSED),
    "returning": Timeout("return_timeout", "passage_s", 1.0, Reason.RETURN_TIMEOUT),
    "releasing": Timeout("release_timeout", "door_travel_s", 2.0, Reason.ENTRY_NOT_CLOSED),
}


class MantrapFacts(Protocol):
    """What the guards read: the door controller's and the beam array's reports, and the decision."""

    def mantrap_empty(self) -> bool: ...          # no person and no object on the beams
    def entry_secured(self) -> bool: ...          # entry reported closed and locked
    def exit_secured(self) -> bool: ...           # exit reported closed and locked
    def decision_positive(self) -> bool: ...      # this passage's verification cleared the traveller


class PassageMachine(StateChart):
    allow_event_without_transition = False
    catch_errors_as_events = False

    class gate(State.Parallel):
        class lane(State.Compound):
            class operating(State.Compound):
                recovering = State(initial=True)
                idle = State()
                reading_document = State()

                class inside(State.Compound):
                    """A traveller was let in: from here they leave by the exit or back by the entry."""
                    entering = State(initial=True)
                    confirming_occupancy = State()
                    face = State()
                    finger = State()
                    deciding = State()

                    entered = entering.to(confirming_occupancy)
                    occupancy_confirmed = confirming_occupancy.to(face, cond="entry_secured")
                    finger_required = face.to(finger)
                    face_decided = face.to(deciding)
                    finger_decided = finger.to(deciding)

                exiting = State()
                exit_clear = State()
                returning = State()
                entry_attention = State()
                exit_attention = State()
                out_of_service = State()
                maintenance = State()
                closed = State()
                releasing = State()

                recovered = (recovering.to(idle, cond=["mantrap_empty", "healthy_devices"])
                             | recovering.to(out_of_service, cond="mantrap_empty", unless="healthy_devices"))
                occupied = recovering.to(returning) | idle.to(returning)   # someone inside who was not let in
                document_presented = idle.to(reading_document, cond="mantrap_empty")
                # The traveller never entered; anyone in the mantrap now was not let in: out by the entry.
                document_refused = (reading_document.to(idle, cond=["mantrap_empty", "healthy_devices"])
                                    | reading_document.to(out_of_service, cond="mantrap_empty",
                                                          unless="healthy_devices")
                                    | reading_document.to(returning, unless="mantrap_empty"))
                document_accepted = reading_document.to(inside, cond=["exit_secured", "mantrap_empty"])
                verified = inside.deciding.to(exiting, cond=["entry_secured", "decision_positive"])
                refused = inside.to(returning)                 # sent back out through the entry, never trapped
                # A step that waits on a traveller or a leaf ends by its timeout (TIMEOUTS).
                entry_timeout = inside.entering.to(returning)
                entry_not_closed = inside.confirming_occupancy.to(returning)
                exit_timeout = exiting.to(exit_attention)
                return_timeout = returning.to(entry_attention)
                exit_not_closed = exit_clear.to(out_of_service)
                against_flow = exiting.to(exit_attention)      # someone came in from the exit side
                exited = (exiting.to(exit_clear, cond="mantrap_empty")
                          | exit_attention.to(exit_clear, cond="mantrap_empty"))
                exit_locked = (exit_clear.to(idle, cond=["exit_secured", "mantrap_empty", "healthy_devices"])
                               | exit_clear.to(out_of_service, cond=["exit_secured", "mantrap_empty"],
                                               unless="healthy_devices"))
                returned = (returning.to(idle, cond=["mantrap_empty", "healthy_devices"])
                            | returning.to(out_of_service, cond="mantrap_empty", unless="healthy_devices")
                            | entry_attention.to(idle, cond=["mantrap_empty", "healthy_devices"])
                            | entry_attention.to(out_of_service, cond="mantrap_empty", unless="healthy_devices")
                            | releasing.to(idle, cond=["mantrap_empty", "healthy_devices"])  # went back out instead
                            | releasing.to(out_of_service, cond="mantrap_empty", unless="healthy_devices"))
                # The passage in progress ends without a decision (a device was lost, an error).
                abort = (reading_document.to(idle, cond=["mantrap_empty", "healthy_devices"])
                         | reading_document.to(out_of_service, cond="mantrap_empty", unless="healthy_devices")
                         | reading_document.to(returning, unless="mantrap_empty") | inside.to(returning))
                taken_out_of_service = idle.to(out_of_service)
                back_in_service = out_of_service.to(recovering, cond="healthy_devices")
                maintenance_on = idle.to(maintenance) | out_of_service.to(maintenance) | recovering.to(maintenance)
                maintenance_off = maintenance.to(recovering)
                lane_closed = idle.to(closed) | out_of_service.to(closed) | recovering.to(closed)
                lane_opened = closed.to(recovering)
                # An officer cleared a refused traveller by hand: with them still inside, the entry locks,
                # then the exit opens on the officer's positive decision (the same guards as `verified`).
                officer_release = (returning.to(releasing, unless="mantrap_empty")
                                   | entry_attention.to(releasing, unless="mantrap_empty"))
                released = releasing.to(exiting, cond=["entry_secured", "decision_positive"], unless="mantrap_empty")
                release_timeout = releasing.to(entry_attention)

            emergency = State()
            emergency_on = operating.to(emergency)
            emergency_off = emergency.to(operating)       # enters `recovering`, the initial state

        class health(State.Compound):
            devices_ok = State(initial=True)
            devices_fault = State()
            device_lost = devices_ok.to(devices_fault)
            devices_restored = devices_fault.to(devices_ok)

    def __init__(self, facts: MantrapFacts, on_state=None):
        self.facts = facts
        self._on_state = on_state or (lambda state: None)
        super().__init__()

    # -- guards ---------------------------------------------------------------------------
    def mantrap_empty(self) -> bool:
        return self.facts.mantrap_empty()

    def entry_secured(self) -> bool:
        return self.facts.entry_secured()

    def exit_secured(self) -> bool:
        return self.facts.exit_secured()

    def decision_positive(self) -> bool:
        return self.facts.decision_positive()

    def healthy_devices(self) -> bool:
        return any(s.id == "devices_ok" for s in self.configuration)

    # -- what the controller reads ----------------------------------------------------------
    def on_enter_state(self, target: State) -> None:
        if target.id in DOORS:
            self._on_state(target.id)

    @property
    def state(self) -> str:
        """The lane's current step (an atomic state of the `lane` region)."""
        return next(s.id for s in self.configuration if s.id in DOORS)

    @property
    def healthy(self) -> bool:
        return self.healthy_devices()

    @property
    def doors(self) -> tuple[str, str]:
        return DOORS[self.state]


def diagram() -> str:
    """The machine as a mermaid state diagram."""
    from statemachine.contrib.diagram import formatter

    return formatter.render(PassageMachine, "mermaid")


def reference_markdown() -> str:
    """The diagram and the door and timeout table of docs/passage.md (a test keeps it fresh)."""
    lines = ["```mermaid", diagram().rstrip(), "```", "", "| lane state | entry leaf | exit leaf | timeout → event (reason) |",
             "|---|---|---|---|"]
    for state, (entry, exit_) in DOORS.items():
        t = TIMEOUTS.get(state)
        limit = f"`timeouts.{t.setting}` × {t.factor:g} → `{t.event}` (`{t.reason.value}`)" if t else ""
        lines.append(f"| {state} | {entry} | {exit_} | {limit} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    from core import generated

    sys.exit(generated.main("gate.passage", reference_markdown, sys.argv[1:]))
