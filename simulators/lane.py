"""One whole simulated e-Gate lane: every device simulator, a test PKI, a people database, a gate config.

    with Lane(workdir, profile="zero-latency") as lane:
        print(lane.config_path)            # workdir/gate.toml, validated by gate.config.load_gate
        for row in lane.devices(): print(row)
        doc = lane.passport("lin")         # personalised chip + printed MRZ (cached per person, variant)
        lane.present_passport(doc)         # MRZ reader `place` + chip card inserted in vpcd slot 0
        lane.take_passport()               # MRZ reader `remove` + card pulled out

What runs (all real peers, on this host only):
  door         DoorSimulator on a pty, symlinked at workdir/door.tty
  mrz_reader   MrzReaderSimulator on a pty, workdir/mrz.tty
  fingerprint  FingerprintScannerSim on a pty, workdir/fingerprint.tty; its captures start at
               impression ENROLMENT_IMPRESSIONS, so impressions 0..k-1 are free for enrolment
  camera       CameraSim (MJPEG over HTTP on 127.0.0.1), one loaded face per person (same index)
  chip         pcscd + vpcd (reused if pcscd already runs), a VirtualCard on slot 0 while a
               passport is presented; the lane holds the host-wide vpcd slot lock while it runs
  pki          TestPki for TWN (the home state) and NLD (a foreign state), trust dir under workdir/pki

Profiles: "realistic" (leaf travel 1.0-1.5 s, MRZ read 0.4 s, finger capture 0.5 s; travellers
walk at a person's pace) and "zero-latency" (everything as fast as the wires go; benchmarks, tests).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from biometrics import assets
from drivers.door.protocol import Leaf, LeafState, Position
from drivers.emrtd.bac import BacKey
from drivers.emrtd.pcsc import PcscReader
from drivers.screen.driver import RecordingScreen, ScreenMessage
from core import logs
from gate.config import GateConfig, load_gate
from core.errors import DeviceError
from icao9303 import mrz as mrzmod
from simulators.camera import CameraSim
from simulators.chip.applet import EmrtdApplet
from simulators.chip.documents import chip_keys
from simulators.chip.timing import ContactlessTiming
from simulators.chip.vpcd import PORTS, READER_NAMES, VirtualCard, exclusive_slots
from simulators.door import DoorSimulator
from simulators.fingerprint_scanner import FingerprintScannerSim
from simulators.fingerprint_synth import FingerGenerator
from simulators.mrz_reader import MrzReaderSimulator
from simulators.page_scanner import PageScannerSim
from simulators.services import pcscd_with_vpcd
from simulators.testpki import VARIANTS, Document, TestPki, clone_chip

PROFILES = ("realistic", "zero-latency")
HOME_STATE, FOREIGN_STATE = "TWN", "NLD"
ENROLMENT_IMPRESSIONS = 2   # impressions 0..1 of each finger are the counter enrolment; the gate sees 2, 3, ...
CHIP_SLOT = 0
GROUP_PHOTO = "faces/group_t1.jpg"
CARD_GONE_S = 5.0
CLONED_CHIP = "cloned_chip"            # a lane passport variant beside simulators.testpki.VARIANTS
CLONE_PACE = "ECDH-GM-AES-128/13"
LANE_VARIANTS = VARIANTS + (CLONED_CHIP,)
CAMERA_FPS = 30
READER_QUIET_S = {"realistic": 0.2, "zero-latency": 0.05}   # no APDU this long: the reader's light is off

log = logs.get("simulators.lane")


@dataclass(frozen=True)
class Person:
    """Someone in the lane's people database.

    `camera_photo` is what the camera shows when they look at it; `passport_photo` is the photo
    printed in their chip (DG2). For person "lin" these are two independent photos of one person;
    the others have a single photo, used for both. A photo is an asset name or "group:i" (the
    i-th largest face of the insightface group photo, cut out).
    """
    key: str
    surname: str
    given_names: str
    nationality: str
    sex: str
    birth_date: str          # YYMMDD
    document_number: str
    camera_photo: str
    passport_photo: str
    finger_id: int           # FingerGenerator identity of their right index finger
    height_cm: int = 175

    @property
    def national(self) -> bool:
        return self.nationality == HOME_STATE

    @property
    def child(self) -> bool:
        return self.height_cm < 120

    @property
    def traveller_id(self) -> str:
        """What the gate keys enrolment on (gate.steps: issuer:document_number)."""
        return f"{self.nationality}:{self.document_number}"

    def mrz_lines(self, today: dt.date | None = None) -> list[str]:
        """Printed TD3 MRZ of their passport, valid for five more years from `today`."""
        today = today or dt.date.today()
        expiry = today.replace(year=today.year + 5, day=min(today.day, 28))
        return mrzmod.compose_td3(issuer=self.nationality, surname=self.surname, given_names=self.given_names,
                                  document_number=self.document_number, nationality=self.nationality,
                                  birth_date=self.birth_date, sex=self.sex, expiry_date=expiry.strftime("%y%m%d"))


PEOPLE: tuple[Person, ...] = (
    Person("lin", "LIN", "MEI HUA", "TWN", "F", "850312", "312004871", "faces/obama.jpg", "faces/obama2.jpg", 11),
    Person("chen", "CHEN", "JIA HAO", "TWN", "M", "790921", "312118305", "group:4", "group:4", 12),
    Person("devries", "DE VRIES", "JAN", "NLD", "M", "710604", "NXC4R8J25", "faces/biden.jpg", "faces/biden.jpg", 13),
    Person("bakker", "BAKKER", "SANNE", "NLD", "F", "930117", "NPF7K2L91", "group:0", "group:0", 14),
    Person("wang", "WANG", "XIAO YU", "TWN", "F", "170805", "312556120", "group:2", "group:2", 15, height_cm=112),
    # On the lists of simulators/lists.py: mueller on the control list (as Müller Jürgen), nguyen a resident.
    Person("mueller", "MUELLER", "JUERGEN", "TWN", "M", "680214", "312773409", "group:5", "group:5", 16),
    # (nguyen's photos are of lin's sitter: the group photo's other faces are too small for the camera checks)
    Person("nguyen", "NGUYEN", "THI LAN", "NLD", "F", "900723", "NKP2W7Q64", "faces/obama3.jpg",
           "faces/obama3.jpg", 17),
)
BY_KEY = {p.key: p for p in PEOPLE}


def person(key: str) -> Person:
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown person {key!r}; the lane knows {', '.join(BY_KEY)}") from None


class LaneDoor(DoorSimulator):
    """The door controller simulator, counting each leaf's completed closings: what a person in the
    mantrap hears (the leaf shutting behind them), even when it reopens before they look again.
    `history`: every leaf report (monotonic time, leaf, position, locked), for timing a passage."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.closings: Counter[Leaf] = Counter()
        self.history: deque[tuple[float, Leaf, Position, bool]] = deque(maxlen=20_000)

    def _emit(self, msg) -> None:
        if isinstance(msg, LeafState):
            self.history.append((time.monotonic(), msg.leaf, msg.position, msg.locked))
            if msg.position == Position.CLOSED:
                self.closings[msg.leaf] += 1
        super()._emit(msg)


class LaneScreen(RecordingScreen):
    """The lane's guidance screen: what the gate shows (the gate is given this object,
    `GateApp(cfg, screen=lane.screen)`) is also what the travellers in the lane can read.
    `subscribe(fn)` calls `fn(monotonic time, message)` for every message from then on, in the
    thread that shows it (the gate's loop): keep it short."""

    def __init__(self):
        super().__init__()
        self._readers: list = []

    def subscribe(self, fn) -> None:
        with self._lock:
            self._readers = [*self._readers, fn]

    def unsubscribe(self, fn) -> None:
        with self._lock:
            self._readers = [r for r in self._readers if r is not fn]

    @property
    def attached(self) -> bool:
        """Something was shown: a gate drives this screen (travellers can rely on reading it)."""
        return bool(self.shown)

    def _display(self, msg: ScreenMessage) -> None:
        super()._display(msg)
        self.relay(msg)

    def relay(self, msg: ScreenMessage) -> None:
        """Tell the readers (only): what another screen of the gate showed (`Lane.watch_screen`)."""
        now = time.monotonic()
        for fn in self._readers:
            try:
                fn(now, msg)
            except Exception as exc:  # a reader's failure never reaches the gate
                log.warning("screen_reader_failed", error=f"{type(exc).__name__}: {exc}")


class LaneError(RuntimeError):
    """The lane cannot start or was misused (unknown person, variant, profile)."""


class Lane:
    """Every simulator of one lane, started together; a context manager (see module docstring)."""

    def __init__(self, workdir, profile: str = "realistic", seed: int = 0, *, gate_id: str = "SIM-LANE-01",
                 config_path=None, sync: str = "", signing_key: Path | None = None,
                 chip_timing: ContactlessTiming | None = None):
        """`sync`: a `[sync]` table for the gate's config (`SyncSites.gate_settings`), with the
        record `signing_key` its receivers know; without them records stay in the outbox.
        `chip_timing`: the chip's contactless timing model (default: `ContactlessTiming.realistic()`
        for the realistic profile, `zero()` for zero-latency)."""
        if profile not in PROFILES:
            raise LaneError(f"profile must be one of {PROFILES}, not {profile!r}")
        self.workdir = Path(workdir).resolve()
        self.profile = profile
        self.seed = seed
        self.gate_id = gate_id
        self.config_path = Path(config_path).resolve() if config_path else self.workdir / "gate.toml"
        self.sync = sync
        self.mrz_source = "serial"     # serial | page | both: the gate's MRZ source(s); set it before start()
        self.page_scanner: PageScannerSim | None = None
        self.signing_key = signing_key
        if chip_timing is None:
            chip_timing = ContactlessTiming.realistic() if profile == "realistic" else ContactlessTiming.zero()
        self.chip_timing = chip_timing
        self.pki: TestPki | None = None
        self.door: LaneDoor | None = None
        self.mrz: MrzReaderSimulator | None = None
        self.fingerprint: FingerprintScannerSim | None = None
        self.camera: CameraSim | None = None
        self.screen = LaneScreen()                # give it to the gate: travellers read it
        self.card: VirtualCard | None = None      # the chip while a passport is presented
        self.document: Document | None = None     # the passport on the reader
        self.vpcd_ports: tuple[int, int] | None = None
        self._documents: dict[tuple[str, str], Document] = {}
        self._photos: dict[str, np.ndarray] = {}
        self._card_lock = threading.Lock()
        self._reader_seen: tuple[int, int] = (0, 0)
        self._reader_changed = 0.0
        self._documents_lock = threading.Lock()
        self._stack: contextlib.ExitStack | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Lane:
        self.workdir.mkdir(parents=True, exist_ok=True)
        zero = self.profile == "zero-latency"
        stack = contextlib.ExitStack()
        try:
            # The slot lock first: pcscd_with_vpcd probes vpcd's port, which is itself a card connection.
            stack.enter_context(exclusive_slots())
            self.vpcd_ports = stack.enter_context(pcscd_with_vpcd())
            self.pki = TestPki.load_or_create(self.workdir / "pki", HOME_STATE)
            self.door = stack.enter_context(LaneDoor(self.workdir / "door.tty", profile=self.profile,
                                                          watchdog_ms=1000, seed=self.seed))
            self.mrz = stack.enter_context(MrzReaderSimulator(self.workdir / "mrz.tty", profile=self.profile,
                                                              seed=self.seed))
            if self.mrz_source != "serial":   # a document camera over the reader's glass
                self.page_scanner = stack.enter_context(PageScannerSim(seed=self.seed))
            self.fingerprint = stack.enter_context(FingerprintScannerSim(
                self.workdir / "fingerprint.tty", seed=self.seed, timing="zero" if zero else "realistic",
                first_impression=ENROLMENT_IMPRESSIONS))
            self.camera = stack.enter_context(CameraSim([self.photo(p.camera_photo) for p in PEOPLE],
                                                        fps=CAMERA_FPS, seed=self.seed))
            stack.callback(self._remove_card)
            self.write_config()
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def __enter__(self) -> Lane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- people and passports --------------------------------------------------------------
    @property
    def finger_generator(self) -> FingerGenerator:
        """The scanner's finger generator: enrol person p from impressions 0..ENROLMENT_IMPRESSIONS-1
        of `p.finger_id`; the scanner's captures never repeat those."""
        return self.fingerprint.generator

    def face_index(self, key: str) -> int:
        """Index of the person's face in the camera (CameraSim.set_scene(..., face=i))."""
        return PEOPLE.index(person(key))

    def photo(self, name: str) -> np.ndarray:
        """A photo (BGR) by asset name or "group:i"."""
        if name not in self._photos:
            self._photos[name] = _group_face(int(name.split(":")[1])) if name.startswith("group:") \
                else _read(assets.path(name))
        return self._photos[name]

    def passport(self, key: str, variant: str = "genuine") -> Document:
        """The person's personalised passport: genuine or a forged variant of simulators.testpki."""
        if variant not in LANE_VARIANTS:
            raise LaneError(f"unknown passport variant {variant!r}; one of {', '.join(LANE_VARIANTS)}")
        p = person(key)
        with self._documents_lock:
            return self._personalise(p, variant)

    def _personalise(self, p: Person, variant: str) -> Document:
        key = p.key
        if (key, variant) not in self._documents:
            face = chip_portrait(self.photo(p.passport_photo))
            if variant == CLONED_CHIP:
                # A cloned chip: the genuine files and signatures (PACE, Chip and Active Authentication
                # offered) copied onto a chip without the issuer's private keys
                doc = clone_chip(self.pki.personalise(p.mrz_lines(), face, "genuine", pace=CLONE_PACE,
                                                      data_groups=(1, 2, 14, 15)))
            elif p.national or variant != "genuine":
                doc = self.pki.personalise(p.mrz_lines(), face, variant)
            else:
                # A genuine foreign passport: signed by the foreign state's DS (the test PKI's
                # country_mismatch signer), whose country is the document's issuer: genuine.
                doc = dataclasses.replace(self.pki.personalise(p.mrz_lines(), face, "country_mismatch"),
                                          variant="genuine")
            self._documents[(key, variant)] = doc
        return self._documents[(key, variant)]

    # -- the passport on the reader ------------------------------------------------------------
    def present_passport(self, doc: Document) -> None:
        """Lay the passport on the reader: the MRZ reader reads its printed MRZ and its chip
        appears in the PC/SC reader (a fresh VirtualCard on vpcd slot 0)."""
        with self._card_lock:
            self._remove_card()
            self.document = doc
            applet = EmrtdApplet(doc.files, BacKey.from_mrz(mrzmod.parse(doc.mrz_lines)), **chip_keys(doc))
            self.card = VirtualCard(applet, PORTS[CHIP_SLOT], timing=self.chip_timing).start()
        self.mrz.place(doc.mrz_lines)
        if self.page_scanner is not None:      # the data page on the glass, at a random angle
            holder = next((p.key for p in PEOPLE if p.document_number in doc.mrz_lines[1]), PEOPLE[0].key)
            self.page_scanner.place_document(doc.mrz_lines, holder)

    def take_passport(self) -> None:
        """Take the passport off the reader: MRZ reader reports removal, the card leaves pcscd.

        Returns once pcscd has seen the card go (at most CARD_GONE_S), so the next passport is a
        new insertion for the gate, never the same card seemingly still present."""
        self.mrz.remove()
        if self.page_scanner is not None:
            self.page_scanner.remove()
        with self._card_lock:
            self._remove_card()
            self.document = None

    def watch_screen(self, screen) -> None:
        """Let the lane's travellers read a gate's own screen (e.g. the kiosk page's), not
        `lane.screen`: whatever it shows is relayed to `lane.screen`'s readers."""
        display = screen._display

        def shown(msg: ScreenMessage) -> None:
            display(msg)
            self.screen.relay(msg)
        screen._display = shown

    def reader_busy(self) -> bool:
        """The reader's light: on while the chip on it exchanged an APDU within the last
        `READER_QUIET_S` (a traveller waits for it before taking the passport back)."""
        card, now = self.card, time.monotonic()
        if card is None:
            return False
        seen = (id(card), card.apdus)
        if seen != self._reader_seen:
            self._reader_seen, self._reader_changed = seen, now
        return now - self._reader_changed < READER_QUIET_S[self.profile]

    def _remove_card(self) -> None:
        if self.card is not None:
            self.card.stop()
            self.card = None
            try:
                PcscReader(READER_NAMES[CHIP_SLOT]).wait_for_card(CARD_GONE_S, present=False)
            except DeviceError as exc:
                log.warning("card_removal_unseen", error=str(exc))

    # -- where everything is -----------------------------------------------------------------
    def devices(self) -> list[dict]:
        """One row per device: name, kind of link, where a driver opens it, and notes."""
        vpcd = f"vpcd 127.0.0.1:{PORTS[CHIP_SLOT]}"
        return [
            {"device": "door", "link": "pty", "where": self.door.path, "notes": f"profile {self.profile}, 8 beams"},
            {"device": "mrz_reader", "link": "pty", "where": self.mrz.path, "notes": ""},
            {"device": "fingerprint", "link": "pty", "where": self.fingerprint.path,
             "notes": f"captures from impression {ENROLMENT_IMPRESSIONS}"},
            {"device": "camera", "link": "http", "where": self.camera.url, "notes": f"{len(PEOPLE)} faces"},
            {"device": "chip_reader", "link": "pcsc", "where": READER_NAMES[CHIP_SLOT], "notes": vpcd},
            {"device": "pki", "link": "dir", "where": str(self.pki.trust_dir), "notes": "CSCAs and CRLs (TWN, NLD)"},
            {"device": "config", "link": "file", "where": str(self.config_path), "notes": "gate.config.GateConfig"},
        ]

    def write_config(self) -> GateConfig:
        """Write the gate config (default workdir/gate.toml) pointing at every simulated device; validated before returning."""
        trust = str(self.pki.trust_dir)
        key = self.workdir / "template.key"  # seals the counter's enrolled fingerprints (AES-256-GCM)
        if not key.exists():
            key.write_text(os.urandom(32).hex())
            key.chmod(0o600)
        signing = self.signing_key or self.workdir / "record-signing.pem"  # signs passage records (Ed25519)
        if not signing.exists():
            signing.write_bytes(Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            signing.chmod(0o600)
        text = f"""# Generated by simulators.lane for the simulated lane in {self.workdir}
[gate]
id = {_q(self.gate_id)}
site = "SIM"
lane = 1
direction = "departure"

[devices.door]
port = {_q(self.door.path)}
watchdog_ms = 1000
beams = {self.door.beam_count}

{_mrz_sections(self)}

[devices.chip_reader]
reader = {_q(READER_NAMES[CHIP_SLOT])}

[devices.camera]
source = {_q(self.camera.url)}

[devices.fingerprint]
port = {_q(self.fingerprint.path)}

[devices.screen]
listen = "127.0.0.1:0"   # the kiosk page on a free port: `egate run --check` and the gate log say where

[eligibility]
nationals = [{_q(HOME_STATE)}]
foreigners_on = ["departure"]

[pki]
csca_dir = {_q(trust)}
crl_dir = {_q(trust)}

[storage]
data_dir = {_q(str(self.workdir / "gate-data"))}
template_key = {_q(str(key))}
signing_key = {_q(str(signing))}

[timeouts]
document_s = 12      # a no-show does not hold the lane for the default 30 s
face_capture_s = 8

{self.sync}"""
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(text)
        return load_gate(self.config_path)


def _mrz_sections(lane: Lane) -> str:
    """The gate's MRZ source(s) in its config: the serial reader, the page scanner or both."""
    serial = f"[devices.mrz_reader]\nport = {_q(lane.mrz.path)}\n"
    page = f"[devices.page_scanner]\nsource = {_q(lane.page_scanner.url)}\n" if lane.page_scanner else ""
    return (serial if lane.mrz_source != "page" else "") + page


def _q(s: str) -> str:
    return json.dumps(s)  # a TOML basic string: JSON's escapes are TOML's


def _read(path) -> np.ndarray:
    img = cv2.imread(str(path))
    if img is None:
        raise LaneError(f"cannot read photo {path}")
    return img


def _jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


CHIP_PHOTO_BYTES = 24_000     # DG2 of a real passport: an ICAO portrait JPEG of 15-25 KB


def chip_portrait(img: np.ndarray, max_bytes: int = CHIP_PHOTO_BYTES) -> bytes:
    """The photo as a passport chip holds it: cut to an ICAO-style portrait around the largest face
    (head about 60 % of the height), 420 px wide, JPEG at the best quality that fits `max_bytes`.
    A full-size camera photo in DG2 (150-340 KB) would make the chip read ten times longer than a
    real passport's."""
    h, w = img.shape[:2]
    scale = 640.0 / max(h, w)
    small = cv2.resize(img, (round(w * scale), round(h * scale))) if scale < 1 else img
    scale = min(scale, 1.0)
    det = cv2.FaceDetectorYN.create(str(assets.path("yunet")), "", (small.shape[1], small.shape[0]), 0.6)
    faces = det.detect(small)[1]
    if faces is not None and len(faces):
        x, y, fw, fh = (max(faces, key=lambda f: f[2] * f[3])[:4] / scale)
        side = 1.7 * max(fw, fh)
        cx, cy = x + fw / 2, y + fh / 2
        x0, x1 = int(max(0, cx - side * 0.39)), int(min(w, cx + side * 0.39))
        y0, y1 = int(max(0, cy - side * 0.5)), int(min(h, cy + side * 0.5))
        img = img[y0:y1, x0:x1]
    h, w = img.shape[:2]
    if w > 420:
        img = cv2.resize(img, (420, round(h * 420 / w)), interpolation=cv2.INTER_AREA)
    for quality in (90, 85, 80, 75, 70, 65, 60, 50, 40):
        data = _jpeg(img, quality)
        if len(data) <= max_bytes:
            break
    return data


def _group_face(i: int) -> np.ndarray:
    """The i-th largest face of the group photo, cut out with room around it (a portrait)."""
    img = _read(assets.path(GROUP_PHOTO))
    h, w = img.shape[:2]
    det = cv2.FaceDetectorYN.create(str(assets.path("yunet")), "", (w, h), 0.6)
    faces = det.detect(img)[1]
    faces = sorted(faces if faces is not None else [], key=lambda f: -f[2] * f[3])
    if i >= len(faces):
        raise LaneError(f"the group photo has {len(faces)} faces, not {i + 1}")
    x, y, fw, fh = faces[i][:4]
    cx, cy, side = x + fw / 2, y + fh / 2, 1.6 * max(fw, fh)
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side * 0.6))
    x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side * 0.7))
    crop = img[y0:y1, x0:x1]
    return cv2.resize(crop, (crop.shape[1] * 2, crop.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
