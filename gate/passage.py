"""The passage state machine: what the gate is doing with the traveller in front of it.

The machine only says which step comes next and what each state requires of the hardware
(`DOORS`); the controller (`gate/controller.py`) performs the steps and feeds their outcomes
back as events. Strict flags: an event that is not allowed in the current state raises
instead of being ignored, and a callback error propagates instead of leaving the machine
half-moved.

A gate always boots into `recovering`: it locks both leaves and waits for an empty mantrap
before serving anyone, so a restart never reopens a door mid-passage (python-statemachine
does not re-run `on_enter` for a restored state, so we never restore one).
"""
from __future__ import annotations

from statemachine import State, StateChart

# What each state requires of the two leaves: (entry, exit). "locked" = closed and locked.
DOORS: dict[str, tuple[str, str]] = {
    "recovering": ("locked", "locked"),
    "idle": ("locked", "locked"),
    "checking_document": ("locked", "locked"),
    "entering": ("open", "locked"),
    "verifying": ("locked", "locked"),
    "exiting": ("locked", "open"),
    "returning": ("open", "locked"),
    "out_of_service": ("locked", "locked"),
    "emergency": ("open", "open"),
}


class PassageMachine(StateChart):
    allow_event_without_transition = False
    catch_errors_as_events = False

    recovering = State(initial=True)
    idle = State()
    checking_document = State()
    entering = State()
    verifying = State()
    exiting = State()
    returning = State()
    out_of_service = State()
    emergency = State()

    recovered = recovering.to(idle)
    document_presented = idle.to(checking_document)
    document_accepted = checking_document.to(entering)
    document_refused = checking_document.to(idle)      # the traveller never entered: nothing to undo
    entered = entering.to(verifying)
    entry_abandoned = entering.to(idle)                 # nobody came in before the timeout
    verified = verifying.to(exiting)
    refused = verifying.to(returning)                   # sent back out through the entry, never trapped
    exited = exiting.to(idle)
    returned = returning.to(idle)
    maintenance_on = idle.to(out_of_service) | recovering.to(out_of_service)
    maintenance_off = out_of_service.to(recovering)
    emergency_on = (
        recovering.to(emergency) | idle.to(emergency) | checking_document.to(emergency)
        | entering.to(emergency) | verifying.to(emergency) | exiting.to(emergency)
        | returning.to(emergency) | out_of_service.to(emergency)
    )
    emergency_off = emergency.to(recovering)
    # A device or software fault mid-passage: recover (entry only, never the exit).
    fault = (
        checking_document.to(recovering) | entering.to(recovering) | verifying.to(recovering)
        | exiting.to(recovering) | returning.to(recovering) | idle.to(recovering)
    )

    def __init__(self, on_state=None):
        self._on_state = on_state or (lambda state: None)
        super().__init__()

    def after_transition(self, target: State) -> None:
        self._on_state(target.id)

    @property
    def state(self) -> str:
        (state,) = self.configuration
        return state.id

    @property
    def doors(self) -> tuple[str, str]:
        return DOORS[self.state]
