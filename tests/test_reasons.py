"""The reason-code registry (core/reasons.py), the screen message it picks for a refusal, its use by
the controller and the demo's judgement, and the generated table in docs/passage.md."""
from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path

import pytest

from biometrics.face import pad
from core import messages
from core import generated
from core.reasons import Category, Reason, UnknownReason, guidance_for, reference_markdown
from icao9303 import mrz as mrzmod
from icao9303 import pa

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "passage.md"


# ------------------------------------------------------------------ the registry

def test_every_member_is_described_categorised_and_shows_a_catalogued_message():
    for r in Reason:
        assert r.description.strip() and "\n" not in r.description, r
        assert isinstance(r.category, Category), r
        assert r.guidance in messages.CATALOGUE, (r, r.guidance)
        assert isinstance(r.refer_to_officer, bool), r


def test_values_are_unique_plain_strings():
    # A repeated value would silently become an alias of the first member.
    assert len(Reason.__members__) == len(Reason) == len({r.value for r in Reason})
    for r in Reason:
        assert type(r.value) is str and r.value == r and Reason(r.value) is r
    assert json.loads(json.dumps([r.value for r in Reason])) == [r.value for r in Reason]


def test_unknown_values_raise_a_clear_error():
    for bad in ("BOGUS", "PA_FAILED", "PAD_CHALLENGE:", "FAULT:DeviceError", "doc_expired", ""):
        with pytest.raises(UnknownReason, match="unknown reason code"):
            Reason(bad)
        with pytest.raises(ValueError):
            Reason.parse(bad)
    with pytest.raises(UnknownReason, match="passive-authentication check 'dg3_hash'"):
        Reason.for_pa_check("dg3_hash")
    with pytest.raises(UnknownReason, match="liveness challenge result 'ok'"):
        Reason.for_challenge("ok")


def test_officer_referral_matches_what_the_screen_says():
    for r in Reason:
        assert r.refer_to_officer == ("officer" in messages.text(r.guidance)), r


def test_every_passive_authentication_check_the_gate_can_fail_has_a_member():
    names = [c for c in pa.ALL_CHECKS if c != pa.DG_HASHES]
    names += [f"dg{n}_hash" for n in sorted(pa.DEFAULT_POLICY.required_data_groups)]
    names += ["dg14_hash", "dg15_hash"]  # read for clone detection when the chip lists them
    for name in names:
        r = Reason.for_pa_check(name)
        assert r.category is Category.PASSIVE_AUTH and r.value == f"PA_FAILED:{name}"
    listed = {r for r in Reason if r.category is Category.PASSIVE_AUTH}
    assert listed == {Reason.for_pa_check(n) for n in names} | {Reason.PA_VERDICT}


def _challenge_failures() -> set[str]:
    """Every literal failure reason `biometrics.face.pad` builds a ChallengeResult with."""
    tree = ast.parse(Path(pad.__file__).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ChallengeResult":
            passed, reason = node.args[1], node.args[2]
            options = [reason.body, reason.orelse] if isinstance(reason, ast.IfExp) else [reason]
            assert all(isinstance(o, ast.Constant) for o in options), f"not a literal: {ast.unparse(node)}"
            if isinstance(passed, ast.Constant) and passed.value is False:
                found.update(o.value for o in options)
    return found


def test_every_liveness_challenge_failure_has_a_member():
    failures = _challenge_failures()
    assert {"no_blink", "too_few_frames", "face_lost"} <= failures
    members = {Reason.for_challenge(f) for f in failures}
    assert all(r.category is Category.LIVENESS and r.refer_to_officer for r in members)
    assert members | {Reason.PAD_PASSIVE} == {r for r in Reason if r.category is Category.LIVENESS}


# ------------------------------------------------------------------ what the screen shows

@pytest.mark.parametrize("reasons, shown", [
    ([Reason.MRZ_UNREADABLE], "document.reposition"),
    ([Reason.DOC_EXPIRED, Reason.AGE_BELOW_MINIMUM], "document.rejected"),
    ([Reason.PA_DG1_HASH], "document.rejected"),
    ([Reason.TAILGATING], "passage.step_back"),
    ([Reason.BELOW_MIN_HEIGHT, Reason.TAILGATING], "passage.step_back"),
    ([Reason.ENTRY_NOT_CLOSED], "passage.step_back"),
    ([Reason.FACE_NO_MATCH], "passage.step_back"),
    ([Reason.FINGER_QUALITY], "passage.step_back"),
    ([Reason.BIOMETRIC_NO_MATCH], "passage.step_back"),
    ([Reason.PAD_CHALLENGE_NO_BLINK], "passage.see_officer"),
    ([Reason.PAD_PASSIVE, Reason.FACE_NO_MATCH], "passage.see_officer"),
    ([Reason.FACE_NOT_CAPTURED, Reason.PAD_CHALLENGE_TOO_FEW_FRAMES], "passage.see_officer"),
    (["FACE_NO_MATCH", "PAD_CHALLENGE:no_blink"], "passage.see_officer"),   # recorded values too
])
def test_a_refusal_shows_one_message_an_officer_referral_first(reasons, shown):
    assert guidance_for(reasons) == shown


def test_guidance_needs_known_reasons():
    with pytest.raises(ValueError):
        guidance_for([])
    with pytest.raises(UnknownReason):
        guidance_for(["PAD_SOMETHING"])


# ------------------------------------------------------------------ the controller with stand-in devices

class _Reactor:
    async def run_blocking(self, fn, *args):
        return fn(*args)

    def call_from_thread(self, fn, *args):
        fn(*args)


class _Door:
    state = type("DoorState", (), {"link_up": True})()

    def open(self, leaf):
        pass

    def lock(self, leaf):
        pass


class _Face:
    def __init__(self, outcome):
        self.outcome = outcome

    def verify(self, reference, show, cancel):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


MRZ = mrzmod.parse(["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"])


def _controller(face_outcome):
    from drivers.screen.driver import RecordingScreen
    from gate import config
    from gate.controller import Devices, GateController

    cfg = config.load_gate(ROOT / "config" / "gate.example.toml")
    screen = RecordingScreen()
    ctl = GateController(cfg, _Reactor(), Devices(door=_Door(), mrz_reader=None, chip=None,
                                                  face=_Face(face_outcome), finger=None, screen=screen))
    # One traveller walks in, the entry locks behind them, and they leave when told.
    ctl._walked_in = ctl._leaf_locked = ctl.mantrap_empty = lambda *a: True
    ctl.occupancy = lambda: 0
    ctl.machine.send("recovered")
    return ctl, screen


def _passage(ctl, mrz=None):
    """The lane takes a document `_documents` read and decided: accepted, its chip passively
    authenticated, the photo handed over (`mrz=None`: an MRZ nobody could read)."""
    import uuid

    from drivers.mrz_reader.driver import MrzRead
    from gate.controller import PassageRecord, PendingDocument
    from gate.decision import Verdict
    from gate.steps import ChipOutcome
    from icao9303.pa import PassiveAuthResult

    async def run():
        loop = asyncio.get_running_loop()
        pending = PendingDocument(MrzRead((), mrz, None), PassageRecord(uuid.uuid4().hex, ctl.cfg.gate.id, "now"),
                                  loop.create_future(), loop.create_future(), loop.create_future())
        chip = ChipOutcome("TWN:300000001", passive_auth=PassiveAuthResult((), True))
        pending.decided.set_result((Verdict(True, (), {}), chip) if mrz is not None
                                   else (Verdict(False, (Reason.MRZ_UNREADABLE,)), None))
        pending.chip.set_result(chip if mrz is not None else None)
        pending.template.set_result(None)
        pending.photo.set(None)
        return await ctl.passage(pending)
    return asyncio.run(run())


def test_a_liveness_failure_sends_the_traveller_to_an_officer_and_records_plain_strings():
    from gate.steps import FaceOutcome
    ctl, screen = _controller(FaceOutcome(False, 0.9, (Reason.PAD_CHALLENGE_NO_BLINK, Reason.PAD_PASSIVE), {}))
    record = _passage(ctl, MRZ)
    assert record.outcome == "refused_biometric"
    assert record.reasons == ["PAD_CHALLENGE:no_blink", "PAD_PASSIVE"]
    assert all(type(r) is str for r in record.reasons) and record.reason_detail == {}
    assert screen.ids()[-1] == "passage.see_officer" and ctl.machine.state == "returning"
    assert [a.reason for a in ctl.alerts] == ["PAD_CHALLENGE:no_blink"]  # a refer-back reaches an officer
    assert json.loads(json.dumps(record.as_dict()))["reasons"] == record.reasons


def test_a_face_mismatch_without_a_fingerprint_asks_to_step_back():
    from gate.steps import FaceOutcome
    ctl, screen = _controller(FaceOutcome(False, 0.1, (Reason.FACE_NO_MATCH,), {}))
    record = _passage(ctl, MRZ)
    assert (record.outcome, record.reasons) == ("refused_biometric", ["FACE_NO_MATCH"])
    assert screen.ids()[-1] == "passage.step_back"


def test_a_fault_records_the_code_and_its_error_type_beside_it():
    ctl, _ = _controller(RuntimeError("camera thread died"))
    record = _passage(ctl, MRZ)  # the passage ends, the gate does not
    assert record is ctl.records[-1] and ctl.machine.state == "returning"
    assert (record.outcome, record.reasons) == ("aborted", ["FAULT"])
    assert record.reason_detail == {"FAULT": "RuntimeError"}


def test_an_unreadable_mrz_asks_to_reposition_the_passport():
    from gate import config
    from gate.controller import Devices, GateController
    from drivers.screen.driver import RecordingScreen
    screen = RecordingScreen()
    ctl = GateController(config.load_gate(ROOT / "config" / "gate.example.toml"), _Reactor(),
                         Devices(_Door(), None, None, None, None, screen))
    ctl.mantrap_empty = lambda: True
    ctl.machine.send("recovered")
    record = _passage(ctl)
    assert (record.outcome, record.reasons) == ("refused_document", ["MRZ_UNREADABLE"])
    assert screen.ids()[-1] == "document.reposition"


# ------------------------------------------------------------------ the demo's judgement

def test_the_demo_judges_the_outcome_and_why():
    from simulators.demo import EXPECTED
    assert EXPECTED["forged"].met_by({"outcome": "refused_document", "reasons": ["PA_FAILED:dg1_hash"]})
    assert not EXPECTED["forged"].met_by({"outcome": "refused_document", "reasons": ["DOC_EXPIRED"]})
    assert EXPECTED["tailgater"].met_by({"outcome": "refused_biometric", "reasons": ["TAILGATING"]})
    assert not EXPECTED["tailgater"].met_by({"outcome": "refused_biometric", "reasons": ["FACE_NO_MATCH"]})
    assert EXPECTED["photo_attack"].met_by({"outcome": "refused_biometric", "reasons": ["PAD_PASSIVE"]})
    assert EXPECTED["child"].met_by({"outcome": "refused_document", "reasons": ["AGE_BELOW_MINIMUM"]})
    assert EXPECTED["no_show"].met_by({"outcome": "abandoned", "reasons": ["ENTRY_TIMEOUT"]})
    assert EXPECTED["genuine"].met_by({"outcome": "cleared", "reasons": []})
    assert not EXPECTED["genuine"].met_by({"outcome": "refused_biometric", "reasons": ["FACE_NO_MATCH"]})
    with pytest.raises(UnknownReason):
        EXPECTED["impostor"].met_by({"outcome": "refused_biometric", "reasons": ["FACE_MISMATCH"]})


# ------------------------------------------------------------------ the doc

def test_the_reason_table_in_docs_passage_is_current():
    text = DOC.read_text()
    assert generated.section(text, "core.reasons") == reference_markdown(), \
        "run: python -m core.reasons --write docs/passage.md"
    for r in Reason:
        assert f"| `{r.value}` | {r.category.value} |" in reference_markdown()
