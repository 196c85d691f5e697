"""Reason codes: why a passage did not clear, in one registry.

Every refusal, abandonment or abort names one or more `Reason`s. Each has a stable string value
(what the passage record and the monitoring platform carry), a category, a one-line description,
the guidance message (`core.messages` id) the traveller sees, and whether that message refers
the traveller to an officer. Decisions, steps and the controller use the members, never string
prefixes; the records keep the values (`reason.value`), so their JSON stays plain strings.

Where a check can fail in a closed set of ways the registry has one member per way
(`PA_FAILED:<check>` per passive-authentication check, `PAD_CHALLENGE:<reason>` per liveness
challenge failure). Open-ended detail (the exception type of a `FAULT`) travels beside the code
in the record's `reason_detail`, never inside it.

`reference_markdown()` renders the table in docs/passage.md; regenerate it with
`python -m core.reasons --write docs/passage.md`.
"""
from __future__ import annotations

import enum
import sys
from collections.abc import Iterable
from pathlib import Path

from core import messages
from core.errors import EGateError


class UnknownReason(EGateError, ValueError):
    """A value, check name or liveness result that no reason code stands for."""


class Category(enum.StrEnum):
    DOCUMENT = "document"            # the document itself: MRZ, type, expiry, chip
    PASSIVE_AUTH = "passive_auth"    # the chip's data fails passive authentication
    CHIP_AUTH = "chip_auth"          # the chip cannot prove it is the original (a clone)
    ELIGIBILITY = "eligibility"      # the holder may not use this gate (`[eligibility]`)
    SCREENING = "screening"          # control list, one document used twice (`[screening]`)
    ENTRY = "entry"                  # getting one traveller into a closed mantrap
    MANTRAP = "mantrap"              # what the beam array saw inside
    FACE = "face"                    # face capture and matching
    LIVENESS = "liveness"            # presentation-attack detection
    FINGER = "finger"                # fingerprint enrolment, capture, matching
    FUSION = "fusion"                # face and fingerprint decided together
    ABORT = "abort"                  # the passage was cut short from outside
    FAULT = "fault"                  # a device or software fault


_D, _PA, _EL, _EN, _MT = Category.DOCUMENT, Category.PASSIVE_AUTH, Category.ELIGIBILITY, Category.ENTRY, Category.MANTRAP
_FA, _LV, _FI, _FU = Category.FACE, Category.LIVENESS, Category.FINGER, Category.FUSION
_REJECTED, _REPOSITION = "document.rejected", "document.reposition"
_STEP_BACK, _SEE_OFFICER = "passage.step_back", "passage.see_officer"
_OFFICER, _SELF = True, False


class Reason(enum.StrEnum):
    """One reason code: `Reason("DOC_EXPIRED")` or `Reason.parse(...)`; an unknown value raises
    `UnknownReason`."""

    category: Category
    guidance: str
    refer_to_officer: bool
    description: str

    def __new__(cls, value: str, category: Category, guidance: str, refer_to_officer: bool, description: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.category = category
        member.guidance = guidance
        member.refer_to_officer = refer_to_officer
        member.description = description
        return member

    # -- document
    MRZ_UNREADABLE = ("MRZ_UNREADABLE", _D, _REPOSITION, _SELF, "the MRZ reader saw no machine-readable zone")
    MRZ_INVALID = ("MRZ_INVALID", _D, _REJECTED, _OFFICER, "the MRZ's check digits fail")
    DOC_TYPE_NOT_ACCEPTED = ("DOC_TYPE_NOT_ACCEPTED", _D, _REJECTED, _OFFICER,
                             "document type not served by this gate (`eligibility.document_types`)")
    DOC_EXPIRED = ("DOC_EXPIRED", _D, _REJECTED, _OFFICER, "the document has expired (or its expiry date is unreadable)")
    CHIP_UNREADABLE = ("CHIP_UNREADABLE", _D, _REJECTED, _OFFICER,
                       "no chip answer within `timeouts.chip_read_s` (BAC refused, torn, absent) "
                       "while `eligibility.require_passive_auth` is on")
    # -- passive authentication: one per check of icao9303.pa that can make the verdict negative
    PA_SOD = ("PA_FAILED:sod", _PA, _REJECTED, _OFFICER,
              "passive authentication: EF.SOD is malformed or uses a hash algorithm the policy refuses")
    PA_DS_CERTIFICATE = ("PA_FAILED:ds_certificate", _PA, _REJECTED, _OFFICER,
                         "passive authentication: no document-signer certificate in the SOD or the trust store")
    PA_SOD_SIGNATURE = ("PA_FAILED:sod_signature", _PA, _REJECTED, _OFFICER,
                        "passive authentication: the SOD's signature does not verify with the document-signer key")
    PA_CSCA_CHAIN = ("PA_FAILED:csca_chain", _PA, _REJECTED, _OFFICER,
                     "passive authentication: the document signer is not issued by a trusted CSCA")
    PA_DS_VALIDITY = ("PA_FAILED:ds_validity", _PA, _REJECTED, _OFFICER,
                      "passive authentication: the document-signer certificate is not valid today")
    PA_CSCA_VALIDITY = ("PA_FAILED:csca_validity", _PA, _REJECTED, _OFFICER,
                        "passive authentication: the issuing CSCA certificate is not valid today")
    PA_KEY_USAGE = ("PA_FAILED:key_usage", _PA, _REJECTED, _OFFICER,
                    "passive authentication: the document signer may not sign documents, or a CSCA of its chain "
                    "may not issue certificates (key usage)")
    PA_SIGNING_TIME = ("PA_FAILED:signing_time", _PA, _REJECTED, _OFFICER,
                       "passive authentication: the SOD was signed outside the document signer's validity, or a "
                       "certificate of its chain was issued outside its issuer's")
    PA_REVOCATION = ("PA_FAILED:revocation", _PA, _REJECTED, _OFFICER,
                     "passive authentication: the document signer is revoked, or no current CRL says it is not")
    PA_DG1_HASH = ("PA_FAILED:dg1_hash", _PA, _REJECTED, _OFFICER,
                   "passive authentication: DG1 (the chip's MRZ) is missing or differs from its hash in the SOD")
    PA_DG2_HASH = ("PA_FAILED:dg2_hash", _PA, _REJECTED, _OFFICER,
                   "passive authentication: DG2 (the chip's photo) is missing or differs from its hash in the SOD")
    PA_DG14_HASH = ("PA_FAILED:dg14_hash", _PA, _REJECTED, _OFFICER,
                    "passive authentication: DG14 (chip authentication keys) differs from its hash in the SOD")
    PA_DG15_HASH = ("PA_FAILED:dg15_hash", _PA, _REJECTED, _OFFICER,
                    "passive authentication: DG15 (the active authentication key) differs from its hash in the SOD")
    PA_DG1_MRZ = ("PA_FAILED:dg1_mrz", _PA, _REJECTED, _OFFICER,
                  "passive authentication: the chip's DG1 differs from the printed MRZ")
    PA_ISSUING_STATE = ("PA_FAILED:issuing_state", _PA, _REJECTED, _OFFICER,
                        "passive authentication: DG1's issuing state is not the document signer's country")
    PA_VERDICT = ("PA_FAILED:verdict", _PA, _REJECTED, _OFFICER,
                  "passive authentication failed without naming a check (defensive; not expected)")
    # -- chip authenticity (clone detection)
    CHIP_AUTH_FAILED = ("CHIP_AUTH_FAILED", Category.CHIP_AUTH, _REJECTED, _OFFICER,
                        "the chip failed Active Authentication, Chip Authentication or PACE-CAM, or its key is not "
                        "the one passive authentication vouches for: a cloned chip")
    CHIP_AUTH_NOT_OFFERED = ("CHIP_AUTH_NOT_OFFERED", Category.CHIP_AUTH, _REJECTED, _OFFICER,
                             "`eligibility.chip_authentication = required` and the chip offers no way to prove "
                             "it is the original")
    # -- eligibility
    FOREIGNER_NOT_SERVED = ("FOREIGNER_NOT_SERVED", _EL, _REJECTED, _OFFICER,
                            "a foreigner on a direction not in `eligibility.foreigners_on`")
    AGE_BELOW_MINIMUM = ("AGE_BELOW_MINIMUM", _EL, _REJECTED, _OFFICER,
                         "the holder is younger than `eligibility.min_age_years` by the chip's DG1 once passive "
                         "authentication passed, else the printed MRZ (or the birth date is unreadable)")
    ISSUER_NOT_ACCEPTED = ("ISSUER_NOT_ACCEPTED", _D, "document.issuer_not_accepted", _OFFICER,
                           "the issuing state is not in `eligibility.issuing_states`")
    DOC_VALIDITY_TOO_SHORT = ("DOC_VALIDITY_TOO_SHORT", _D, "document.expires_soon", _OFFICER,
                              "the document expires within `eligibility.min_validity_days`")
    RESIDENT_NOT_SERVED = ("RESIDENT_NOT_SERVED", _EL, "eligibility.resident_not_served", _SELF,
                           "a resident (a registered permit) on a direction not in `eligibility.residents_on`")
    NOT_ENROLLED = ("NOT_ENROLLED", _EL, "eligibility.not_enrolled", _SELF,
                    "the traveller's category is in `eligibility.enrolment_required` and they have not enrolled")
    # -- screening: the control list and one document used twice
    CONTROL_LIST_HIT = ("CONTROL_LIST_HIT", Category.SCREENING, _SEE_OFFICER, _OFFICER,
                        "the traveller or the document matches a control-list entry: a silent referral (the "
                        "screen shows the ordinary referral), the officer is alerted with the entry")
    CONTROL_LIST_UNAVAILABLE = ("CONTROL_LIST_UNAVAILABLE", Category.SCREENING, _SEE_OFFICER, _OFFICER,
                                "the control list went stale or failed its check while the passage was under way: "
                                "nobody passes unscreened (the lane then goes out of service)")
    DOC_ALREADY_USED = ("DOC_ALREADY_USED", Category.SCREENING, "document.already_used", _OFFICER,
                        "this gate cleared the same document less than `screening.reuse.window_s` ago")
    OPEN_CROSSING = ("OPEN_CROSSING", Category.SCREENING, "document.open_crossing", _OFFICER,
                     "central's last crossing for the document is in this gate's direction (arrived twice without "
                     "leaving, or leaving without having arrived)")
    # -- entry and mantrap
    ENTRY_TIMEOUT = ("ENTRY_TIMEOUT", _EN, "gate.welcome", _SELF,
                     "nobody entered within `timeouts.document_s` of the entry opening; the gate returns to idle")
    ENTRY_NOT_CLOSED = ("ENTRY_NOT_CLOSED", _EN, _STEP_BACK, _SELF,
                        "the entry leaf did not close and lock behind the traveller (obstructed): "
                        "nothing is verified with the entry open")
    TAILGATING = ("TAILGATING", _MT, _STEP_BACK, _SELF,
                  "the beam array saw two bodies at any moment from the entry opening to the decision")
    BELOW_MIN_HEIGHT = ("BELOW_MIN_HEIGHT", _MT, _STEP_BACK, _SELF,
                        "the beam array saw a person who never broke its upper row (`devices.door.high_row_cm`, "
                        "= `eligibility.min_height_cm`) at any moment from the entry opening to the decision")
    AGAINST_FLOW = ("AGAINST_FLOW", _MT, "passage.wrong_way", _SELF,
                    "someone came into the mantrap from the exit side; the exit stays open for them to go "
                    "back, the entry stays locked, an officer is called")
    MANTRAP_OCCUPIED = ("MANTRAP_OCCUPIED", _MT, _STEP_BACK, _SELF,
                        "the beam array saw someone in the mantrap who was not let in (idle or recovering); "
                        "they are sent out through the entry and an officer is called")
    OBJECT_LEFT = ("OBJECT_LEFT", _MT, "passage.take_belongings", _SELF,
                   "an object stays in the mantrap after the traveller left; the lane waits for it to be removed")
    EXIT_TIMEOUT = ("EXIT_TIMEOUT", _MT, _SEE_OFFICER, _OFFICER,
                    "a cleared traveller did not leave by the open exit within `timeouts.passage_s`: "
                    "never recorded as cleared; the exit stays open and an officer is called")
    RETURN_TIMEOUT = ("RETURN_TIMEOUT", _MT, _SEE_OFFICER, _OFFICER,
                      "a refused traveller did not step back out by the open entry within `timeouts.passage_s`; "
                      "the entry stays open and an officer is called")
    # -- face
    FACE_NO_CHIP_PHOTO = ("FACE_NO_CHIP_PHOTO", _FA, _STEP_BACK, _SELF, "the chip gave no photo to match against")
    FACE_CHIP_PHOTO_UNUSABLE = ("FACE_CHIP_PHOTO_UNUSABLE", _FA, _STEP_BACK, _SELF,
                                "no face template could be made from the chip photo")
    FACE_NOT_CAPTURED = ("FACE_NOT_CAPTURED", _FA, _STEP_BACK, _SELF,
                         "no live frame passed the quality checks within `timeouts.face_capture_s`")
    FACE_NO_MATCH = ("FACE_NO_MATCH", _FA, _STEP_BACK, _SELF,
                     "face alone below the threshold for `thresholds.face_fmr` (a fingerprint may still overturn it)")
    # -- liveness: one per way biometrics.face.pad.verify_challenge fails, and the passive cues
    PAD_CHALLENGE_TOO_FEW_FRAMES = ("PAD_CHALLENGE:too_few_frames", _LV, _SEE_OFFICER, _OFFICER,
                                    "liveness challenge: too few frames with a face (or eyes) to judge it")
    PAD_CHALLENGE_FACE_LOST = ("PAD_CHALLENGE:face_lost", _LV, _SEE_OFFICER, _OFFICER,
                               "liveness challenge: the face was missing from too many frames")
    PAD_CHALLENGE_EYES_NOT_VISIBLE = ("PAD_CHALLENGE:eyes_not_visible", _LV, _SEE_OFFICER, _OFFICER,
                                      "liveness challenge (blink): no eye signal to measure")
    PAD_CHALLENGE_NO_BLINK = ("PAD_CHALLENGE:no_blink", _LV, _SEE_OFFICER, _OFFICER,
                              "liveness challenge (blink): no brief close-and-reopen of the eyes")
    PAD_CHALLENGE_NOT_FACING_CAMERA = ("PAD_CHALLENGE:not_facing_camera", _LV, _SEE_OFFICER, _OFFICER,
                                       "liveness challenge (head turn): the face did not start towards the camera")
    PAD_CHALLENGE_DISCONTINUOUS = ("PAD_CHALLENGE:discontinuous", _LV, _SEE_OFFICER, _OFFICER,
                                   "liveness challenge (head turn): the pose jumped between frames (a photo swap)")
    PAD_CHALLENGE_WRONG_DIRECTION = ("PAD_CHALLENGE:wrong_direction", _LV, _SEE_OFFICER, _OFFICER,
                                     "liveness challenge (head turn): the head turned the other way")
    PAD_CHALLENGE_NO_TURN = ("PAD_CHALLENGE:no_turn", _LV, _SEE_OFFICER, _OFFICER,
                             "liveness challenge (head turn): the head did not turn far enough")
    PAD_PASSIVE = ("PAD_PASSIVE", _LV, _SEE_OFFICER, _OFFICER,
                   "passive cues (moiré, colour) flagged most of the good frames as a presentation attack "
                   "(or, with no usable frame, most faces seen)")
    # -- fingerprint and fusion
    FINGER_NOT_ENROLLED = ("FINGER_NOT_ENROLLED", _FI, _STEP_BACK, _SELF,
                           "`eligibility.require_fingerprint` is on and the traveller has no enrolled template")
    FINGER_NOT_CAPTURED = ("FINGER_NOT_CAPTURED", _FI, _STEP_BACK, _SELF,
                           "the scanner gave no capture within `timeouts.finger_capture_s`")
    FINGER_QUALITY = ("FINGER_QUALITY", _FI, _STEP_BACK, _SELF,
                      "every capture failed the NFIQ 2 gate (`thresholds.nfiq2_min`, `thresholds.finger_attempts`)")
    FINGER_NO_MATCH = ("FINGER_NO_MATCH", _FI, _STEP_BACK, _SELF,
                       "fingerprint alone below the threshold for `thresholds.finger_fmr`")
    BIOMETRIC_NO_MATCH = ("BIOMETRIC_NO_MATCH", _FU, _STEP_BACK, _SELF,
                          "fused face + fingerprint decision above the target false-match rate")
    # -- aborted passages (the gate then recovers)
    EMERGENCY = ("EMERGENCY", Category.ABORT, "passage.emergency", _SELF,
                 "the fire alarm opened both leaves mid-passage")
    SHUTDOWN = ("SHUTDOWN", Category.ABORT, "gate.out_of_service", _SELF,
                "the gate process was stopped (SIGTERM) mid-passage; on restart it sends anyone inside "
                "back out through the entry")
    INTERRUPTED = ("INTERRUPTED", Category.ABORT, _STEP_BACK, _SELF,
                   "the gate process died mid-passage (kill, power cut): found in the passage journal at the next "
                   "start and recorded then; anyone inside leaves through the entry")
    EXIT_NOT_CLOSED = ("EXIT_NOT_CLOSED", Category.FAULT, "gate.out_of_service", _SELF,
                       "the exit leaf did not report closed and locked within twice `timeouts.door_travel_s` "
                       "after the traveller left: the lane goes out of service")
    OUT_OF_SERVICE = ("OUT_OF_SERVICE", Category.FAULT, "gate.out_of_service", _SELF,
                      "the lane went out of service (a required device lost, the exit not locked): an officer "
                      "alert, never a passage's reason")
    TAMPER = ("TAMPER", Category.FAULT, "gate.out_of_service", _SELF,
              "the door controller reported a leaf forced or its housing opened: alarm, lane out of service")
    FAULT = ("FAULT", Category.FAULT, _STEP_BACK, _SELF,
             "a device or software fault ended the passage (the error type is in `reason_detail`); "
             "the gate recovers and sends anyone inside back out through the entry")

    @classmethod
    def _missing_(cls, value):
        raise UnknownReason(f"unknown reason code {value!r}")

    @classmethod
    def parse(cls, value: str) -> Reason:
        """The member for a recorded value; `UnknownReason` when there is none."""
        return cls(value)

    @classmethod
    def for_pa_check(cls, check: str) -> Reason:
        """The reason for a failed passive-authentication check (`icao9303.pa` check name)."""
        return cls._one_of("PA_FAILED", check, "passive-authentication check")

    @classmethod
    def for_challenge(cls, reason: str) -> Reason:
        """The reason for a failed liveness challenge (`ChallengeResult.reason`)."""
        return cls._one_of("PAD_CHALLENGE", reason, "liveness challenge result")

    @classmethod
    def _one_of(cls, family: str, name: str, what: str) -> Reason:
        value = f"{family}:{name}"
        if value not in cls._value2member_map_:
            raise UnknownReason(f"no reason code for {what} {name!r}")
        return cls(value)

    @property
    def text(self) -> str:
        """What the traveller reads, in English."""
        return messages.text(self.guidance)


def guidance_for(reasons: Iterable[Reason | str]) -> str:
    """The one message a refusal puts on the screen: the first reason that sends the traveller to
    an officer wins over self-service guidance (step back, reposition); otherwise the first
    reason's."""
    parsed = [Reason(r) for r in reasons]
    if not parsed:
        raise ValueError("a refusal needs at least one reason")
    return next((r.guidance for r in parsed if r.refer_to_officer), parsed[0].guidance)


def reference_markdown() -> str:
    """The reason-code table of docs/passage.md, from this registry."""
    lines = ["| code | category | meaning | the traveller sees |", "|---|---|---|---|"]
    for r in Reason:
        sees = f"{r.text} (`{r.guidance}`{', officer' if r.refer_to_officer else ''})"
        lines.append(f"| `{r.value}` | {r.category.value} | {r.description} | {sees} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from core import generated

    sys.exit(generated.main("core.reasons", reference_markdown, sys.argv[1:]))
