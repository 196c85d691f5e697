"""The blocking steps of a passage, run in worker threads: chip, face, fingerprint.

Each step owns its device and its pipeline, returns a small outcome (decision, reason codes,
scores, timings) and keeps biometric samples only inside wiped-on-exit `BiometricSample`s.
`show` is a thread-safe callback that puts a guidance message on the screen.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biometrics.face.matcher import FaceMatcher
from biometrics.face.pad import Challenge, ChallengeRules, Observation, passive_check, verify_challenge
from biometrics.face.pipeline import FacePipeline
from biometrics.finger import iso19794_2 as iso
from biometrics.finger.matcher import FingerVerifier
from biometrics.fusion import ScoreFusion
from biometrics.privacy import BiometricSample, TemplateVault
from drivers.camera.driver import Camera, CameraError
from drivers.emrtd.bac import BacKey
from drivers.emrtd.pcsc import PcscReader
from drivers.emrtd.reader import read_with_retry
from drivers.fingerprint.driver import FingerprintScanner
from core import logs
from core.reasons import Reason
from gate.config import GateConfig
from gate.decision import chip_auth_mode
from icao9303 import card_security, lds, pa
from icao9303 import mrz as _mrz
from icao9303.trust import TrustStore
from core.errors import EGateError

log = logs.get("steps")


# ------------------------------------------------------------------------ chip

@dataclass
class ChipOutcome:
    traveller_id: str
    passive_auth: pa.PassiveAuthResult | None = None
    face_image: np.ndarray | None = None     # the chip photo, decoded; dropped after the passage
    timings_s: dict = field(default_factory=dict)
    error: str | None = None
    access: dict = field(default_factory=dict)      # how the chip was opened (PACE/BAC, fallback)
    chip_auth: dict = field(default_factory=dict)   # "active_auth" / "chip_auth" -> passed|failed|not_offered...
    dg1: _mrz.Mrz | None = None                     # the chip's MRZ (the holder rules read it once PA passed)


class ChipStep:
    """Open the chip (PACE or BAC per `devices.chip_reader.access_policy`), read DG1, DG2 and EF.SOD
    (and DG14/DG15 when the chip lists them), passive authentication, then clone detection."""

    def __init__(self, cfg: GateConfig, trust: TrustStore, reader: PcscReader):
        self.cfg = cfg
        self.trust = trust
        self.policy = pa.DEFAULT_POLICY  # the gate always reads the MRZ and requires current CRLs
        self.reader = reader

    #: A chip that refuses the key with one of these was given a wrong MRZ: the next candidate is tried.
    KEY_REFUSED = ("AuthenticationFailed", "ChipAuthenticationMismatch", "PaceError")

    def read_page(self, read, *args) -> ChipOutcome:
        """`read` (drivers.mrz_reader.driver.MrzRead) with its candidates: each MRZ in rank order until
        the chip accepts its key (a page scanner's conflict gives two). The chip's DG1 is compared
        with the printed MRZ only for a read both engines agree on; otherwise that check is advisory."""
        from dataclasses import replace

        policy = self.policy
        if not read.printed_agreed:
            self.policy = replace(policy, required=policy.required - {pa.DG1_MRZ},
                                  advisory=policy.advisory | {pa.DG1_MRZ})
        try:
            for optical in (read.mrz, *read.alternatives):
                out = self.read(optical, *args)
                if not (out.error or "").startswith(self.KEY_REFUSED):
                    break
            return out
        finally:
            self.policy = policy

    def read(self, optical: _mrz.Mrz, early: Callable[[ChipOutcome], None] | None = None) -> ChipOutcome:
        """The whole read, checked. With `early`, DG2 (the photo, most of the chip's bytes) is read
        last: once DG1, EF.SOD (and DG14/DG15, AA) are read, passive authentication runs over them
        (DG2's hash not yet required) and `early(outcome)` gets that outcome, without a photo, in
        this worker thread; the read then goes on with DG2 in the same session, and the outcome
        returned has passive authentication over every group read (DG2's hash checked) and the
        photo. The gate decides eligibility on the early outcome and lets the traveller in while DG2
        is still being read; no face decision is taken before the full outcome."""
        out = ChipOutcome(traveller_id=f"{optical.issuer}:{optical.document_number}")
        deadline = self.cfg.timeouts.chip_read_s
        t0 = time.perf_counter()

        early_sent = False

        def later(result, read_more) -> None:
            nonlocal early_sent
            if not early_sent:  # a read started again after the field dropped during DG2 tells the gate once
                t1 = time.perf_counter()
                part = self._outcome(optical, result, ChipOutcome(out.traveller_id), self.early_policy)
                part.timings_s["passive_auth"] = time.perf_counter() - t1
                part.timings_s["early"] = time.perf_counter() - t0
                early_sent = True
                early(part)
            result.files["DG2"] = read_more("DG2")

        try:
            clone_check = chip_auth_mode(self.cfg.eligibility, optical.issuer) != "off"
            # A chip that leaves the field or stalls mid-read is read again on a new connection, within the budget.
            result = read_with_retry(self.reader, BacKey.from_mrz(optical), names=["DG1"] if early else ["DG1", "DG2"],
                                     deadline_s=deadline, policy=self.cfg.devices.chip_reader.access_policy,
                                     active_auth=clone_check, chip_authentication=clone_check,
                                     later=later if early else None)
        except (EGateError, OSError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"
            out.timings_s["read"] = time.perf_counter() - t0
            log.warning("chip_read_failed", error=out.error)
            return out
        t1 = time.perf_counter()
        self._outcome(optical, result, out, self.policy)
        out.timings_s["passive_auth"] = time.perf_counter() - t1
        return out

    def _outcome(self, optical: _mrz.Mrz, result, out: ChipOutcome, policy: pa.Policy) -> ChipOutcome:
        """Passive authentication of what `result` holds under `policy`, clone checks, DG1, and the photo
        when DG2 was read."""
        out.timings_s.update(result.timings_s)
        groups = {int(name[2:]): data for name, data in result.files.items() if name.startswith("DG")}
        out.passive_auth = pa.verify(result.files["EF.SOD"], groups, self.trust, mrz=optical, policy=policy)
        out.access = {**result.access, "method": result.access_control}
        if result.fallback:
            out.access["fallback"] = result.fallback
            log.warning("chip_pace_fallback", why=result.fallback)
        out.chip_auth = self._chip_auth(result, out.passive_auth)
        try:
            out.dg1 = lds.parse_dg1(groups[1]) if 1 in groups else None
        except EGateError as exc:
            log.warning("chip_dg1_unparsed", error=str(exc))
        if 2 in groups:
            try:
                faces = lds.parse_dg2(groups[2])
                out.face_image = faces[0].image if faces else None
            except EGateError as exc:
                out.error = f"DG2: {exc}"
        return out

    @property
    def early_policy(self) -> pa.Policy:
        """The policy before DG2 is read: everything but DG2's hash, which the full read checks."""
        return dataclasses.replace(self.policy, required_data_groups=self.policy.required_data_groups - {2})

    def _chip_auth(self, result, passive: pa.PassiveAuthResult) -> dict:
        """Each clone check the chip went through, bound to passive authentication: a key the chip
        proved it holds counts only if the signed data vouches for it (DG15 for AA, DG14 for CA,
        EF.CardSecurity for PACE-CAM)."""
        def bound(status: str, check: str) -> str:
            hashed = passive.check(check)
            return status if status != "passed" or (hashed and hashed.status == "passed") else "failed"

        checks = {}
        if result.active_auth is not None:
            checks["active_auth"] = bound(result.active_auth.status, "dg15_hash")
        if result.chip_auth is not None:
            status = result.chip_auth.status
            if result.chip_auth.method == "PACE-CAM":
                if status == "passed" and not card_security.verify(result.files["EF.CardSecurity"], self.trust,
                                                                   policy=self.policy).passed:
                    status = "failed"
            else:
                status = bound(status, "dg14_hash")
            checks["chip_auth"] = status
        return checks


# ------------------------------------------------------------------------ face

class ChipPhoto:
    """The chip photo handed from the chip read (a worker thread) to the face step (another), which
    starts capturing before DG2 is read: `set(image)` once (None: no usable photo), `wait`/`ready`."""

    def __init__(self):
        self.image: np.ndarray | None = None
        self._set = threading.Event()

    @classmethod
    def ready_with(cls, image: np.ndarray | None) -> ChipPhoto:
        photo = cls()
        photo.set(image)
        return photo

    def set(self, image: np.ndarray | None) -> None:
        self.image = image
        self._set.set()

    def ready(self) -> bool:
        return self._set.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._set.wait(timeout_s)


@dataclass
class FaceOutcome:
    matched: bool
    score: float | None
    reasons: tuple[Reason, ...]
    scores: dict


class FaceStep:
    """Capture frames until enough good ones and the liveness challenge is decided, then match
    best-of-N against the chip photo."""

    GOOD_FRAMES = 5

    def __init__(self, cfg: GateConfig, camera: Camera, pipeline: FacePipeline | None = None):
        self.cfg = cfg
        self.camera = camera
        self.pipeline = pipeline or FacePipeline()
        self.matcher = FaceMatcher(fmr=cfg.thresholds.face_fmr)
        self.fusion = ScoreFusion(cfg.thresholds.face_fmr)

    def _embed_reference(self, reference: np.ndarray | None) -> tuple[np.ndarray | None, Reason | None]:
        if reference is None:
            return None, Reason.FACE_NO_CHIP_PHOTO
        with BiometricSample.from_array(reference, kind="chip photo") as ref_sample:
            ref = self.pipeline.process_sample(ref_sample, embed_always=True).embedding
            ref = None if ref is None else ref.copy()
        return ref, None if ref is not None else Reason.FACE_CHIP_PHOTO_UNUSABLE

    def verify(self, reference: np.ndarray | ChipPhoto | None, show, cancel: threading.Event) -> FaceOutcome:
        """`reference`: the chip photo, or a `ChipPhoto` still being read (capture and the liveness
        prompt start at once; the photo is embedded the moment it arrives, and no decision is
        returned before it). `cancel` (set when the passage is aborted) ends the capture at the next
        frame; every buffer is wiped either way."""
        photo = reference if isinstance(reference, ChipPhoto) else ChipPhoto.ready_with(reference)
        ref, ref_problem = None, None
        if photo.ready():
            ref, ref_problem = self._embed_reference(photo.image)
            if ref_problem is not None:
                return FaceOutcome(False, None, (ref_problem,), {})
        # Only the blink challenge is used: a head turn needs a traveller who reads the screen,
        # and the blink is the one both real travellers and the lane's simulated ones perform.
        challenge = Challenge.BLINK
        show(challenge.value)
        live, observations, attacks = [], [], 0
        faces_seen, faces_flagged = 0, 0   # every frame with a face, usable or not, and the passive cues' verdicts
        shown, seq = None, 0
        tracker = self.pipeline.tracker()   # the face followed from frame to frame (biometrics.face.detector)
        t0 = time.monotonic()
        deadline = t0 + self.cfg.timeouts.face_capture_s
        try:
            while time.monotonic() < deadline and not cancel.is_set():
                try:
                    frame = self.camera.wait_frame(seq, timeout_s=min(1.0, max(0.05, deadline - time.monotonic())))
                except CameraError:
                    continue
                seq = frame.seq
                with BiometricSample.from_array(frame.image, kind="face frame") as sample:
                    if len(live) >= self.GOOD_FRAMES:
                        # Enough to match: only landmarks now, so every frame feeds the liveness check.
                        faces = tracker.detect(sample.array)
                        observations.append(Observation.from_frame(frame.at - t0, sample.array, faces))
                    else:
                        result = self.pipeline.process_sample(sample, tracker=tracker)
                        observations.append(Observation.from_frame(frame.at - t0, sample.array, result.faces))
                        # Passive cues on every face seen: a replay held too far off for the quality
                        # checks is still a presentation attack, never "no face captured".
                        flagged = result.face is not None and passive_check(sample.array, result.face).attack
                        faces_seen += result.face is not None
                        faces_flagged += flagged
                        if result.quality.ok and result.embedding is not None:
                            live.append(result.embedding.copy())
                            attacks += flagged
                        elif result.quality.guidance and result.quality.guidance != shown:
                            shown = result.quality.guidance
                            show(shown)
                if ref is None and ref_problem is None and photo.ready():
                    ref, ref_problem = self._embed_reference(photo.image)   # as soon as DG2 is in
                if ref_problem is not None:
                    break
                if ref is not None and len(live) >= self.GOOD_FRAMES and (
                        frame.at - t0 > ChallengeRules.deadline_s or verify_challenge(challenge, observations).passed):
                    break
            # Captured: the decision still needs the chip photo (DG2 read, its hash checked by the caller).
            limit = time.monotonic() + self.cfg.timeouts.chip_read_s
            while ref is None and ref_problem is None and not cancel.is_set() and time.monotonic() < limit:
                if photo.wait(0.05):
                    ref, ref_problem = self._embed_reference(photo.image)
            if ref is None:
                return FaceOutcome(False, None, (ref_problem or Reason.FACE_NO_CHIP_PHOTO,), {})
            liveness = verify_challenge(challenge, observations)
            match = self.matcher.verify(live, {"chip": ref})
        finally:
            for arr in [ref, *live]:
                if arr is not None:
                    arr.fill(0)  # embeddings are biometric data too
        reasons: list[Reason] = []
        attack_unusable = not live and faces_flagged * 2 > faces_seen   # no usable frame; most faces seen flagged
        if not live and not attack_unusable:
            reasons.append(Reason.FACE_NOT_CAPTURED)
        if not liveness.passed:
            reasons.append(Reason.for_challenge(liveness.reason))
        if (live and attacks * 2 > len(live)) or attack_unusable:
            reasons.append(Reason.PAD_PASSIVE)
        if live and not match.matched:
            reasons.append(Reason.FACE_NO_MATCH)
        scores = {"score": round(match.score, 4), "threshold": round(match.threshold, 4), "frames": len(live),
                  "liveness": liveness.as_dict(), "passive_attack_frames": attacks,
                  "faces_seen": faces_seen, "passive_attack_faces": faces_flagged}
        return FaceOutcome(not reasons, match.score if live else None, tuple(reasons), scores)

    def fuse(self, face_score: float, finger_score: float) -> dict:
        return self.fusion.decide(face=face_score, finger=finger_score).as_dict()


# ----------------------------------------------------------------- fingerprint

@dataclass
class FingerOutcome:
    matched: bool
    score: int | None
    reasons: tuple[Reason, ...]
    scores: dict


class EnrolmentStore:
    """Enrolled fingerprint templates, one AES-GCM sealed file per traveller id."""

    def __init__(self, directory: Path, vault: TemplateVault):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.vault = vault

    def _path(self, traveller_id: str) -> Path:
        return self.dir / (traveller_id.replace(":", "_").replace("/", "_") + ".sealed")

    def enrol(self, traveller_id: str, template: iso.Template) -> None:
        self._path(traveller_id).write_bytes(self.vault.seal(iso.encode(template), traveller_id))

    def lookup(self, traveller_id: str) -> iso.Template | None:
        path = self._path(traveller_id)
        if not path.exists():
            return None
        with self.vault.open(path.read_bytes(), traveller_id) as sample:
            return iso.decode(sample.buffer)  # no copy: the sample wipes what it decrypted


class FingerStep:
    def __init__(self, cfg: GateConfig, scanner: FingerprintScanner, store: EnrolmentStore):
        self.cfg = cfg
        self.scanner = scanner
        self.store = store
        self.verifier = FingerVerifier(cfg.thresholds.finger_fmr, cfg.thresholds.nfiq2_min)

    def enrolled(self, traveller_id: str) -> iso.Template | None:
        return self.store.lookup(traveller_id)

    def verify(self, template: iso.Template, show, cancel: threading.Event) -> FingerOutcome:
        """`cancel` (set when the passage is aborted) ends the wait for a finger within one poll."""
        reference = self.verifier.matcher.prepare(template)
        last = None
        for attempt in range(1, self.cfg.thresholds.finger_attempts + 1):
            if cancel.is_set():
                return FingerOutcome(False, None, (Reason.FINGER_NOT_CAPTURED,), {"error": "cancelled", "attempts": attempt})
            try:
                image = self.scanner.capture(timeout_s=self.cfg.timeouts.finger_capture_s)
            except EGateError as exc:
                return FingerOutcome(False, None, (Reason.FINGER_NOT_CAPTURED,), {"error": str(exc), "attempts": attempt})
            with BiometricSample.from_array(image, kind="finger image") as sample:
                image.fill(0)
                last = self.verifier.verify(sample, reference)
            if last.outcome != "retry":
                break
            show(last.quality.guidance or "finger.place")
        scores = {"attempts": attempt, **last.as_dict()}
        if last.match is None:
            return FingerOutcome(False, None, (Reason.FINGER_QUALITY,), scores)
        return FingerOutcome(last.match.match, last.match.score, () if last.match.match else (Reason.FINGER_NO_MATCH,), scores)
