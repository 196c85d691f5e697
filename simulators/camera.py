"""Camera simulator: a face stream served on loopback as MJPEG over HTTP.

`GET /stream.mjpg` is multipart/x-mixed-replace (what IP cameras serve and
what OpenCV's FFmpeg backend opens: `cv2.VideoCapture(sim.url)`); `GET
/frame.jpg` is one snapshot. Frames are composed from real face photos
(biometrics.assets, or any images passed in) with motion, lighting and pose:

  traveller      one live face: sway, approach, roll, yaw, changing light, blinks (every 3.3 s on
                 its own, or, with `set_scene(..., actions="asked")`, only when `blink()` is
                 called: a traveller who blinks when the screen asks); `turn("left"|"right")`
                 turns the head for a second
  no_face        the empty lane
  two_faces      the traveller and a second person behind (tailgating, shoulder surfing)
  printed_photo  a photo on paper held up: white border, paper texture, flat
                 (the whole sheet moves rigidly: no parallax), never blinks
  screen_replay  a tablet replaying the traveller: bezel, moire, colour cast,
                 rolling refresh bands, glare

Faults (simulators.faults): slow (each frame delay_s late; >= the driver's read
timeout is a stall), drop (skip frames), corrupt_crc (damaged JPEGs), garbage
(random bytes into every open stream), unplug (connections cut and refused).

    sim = CameraSim().start(); sim.set_scene("printed_photo"); cv2.VideoCapture(sim.url)
    python -m simulators.camera --control /tmp/cam.sock --scene traveller
"""
from __future__ import annotations

import argparse
import contextlib
import math
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from core import logs
from simulators.faults import Faults, add_simulator_args, run_simulator_cli

log = logs.get("simulators.camera")

SCENES = ("traveller", "no_face", "two_faces", "printed_photo", "screen_replay")
DEFAULT_FACES = ("faces/obama.jpg", "faces/biden.jpg")
_PATCH = 256        # face patches are normalised to this square
_BOUNDARY = b"frame"


@dataclass(frozen=True)
class FacePatch:
    """A head cut out of a photo: square BGR patch, soft alpha, eye centres, eyes-closed variant."""
    open: np.ndarray       # uint8 (_PATCH, _PATCH, 3)
    closed: np.ndarray     # same, eyelids drawn over the eyes
    alpha: np.ndarray      # float32 (_PATCH, _PATCH, 1)
    photo: np.ndarray      # the rectangular crop with its own background, for the printed photo
    tilt: float = 0.0      # the head's own roll in the photo (degrees, the eye line against the horizontal)


def _detector(size):
    from biometrics import assets

    return cv2.FaceDetectorYN.create(str(assets.path("yunet")), "", size, 0.6)


def load_face(image: np.ndarray) -> FacePatch:
    """Find the largest face (YuNet) and cut a head-and-shoulders patch around it."""
    h, w = image.shape[:2]
    scale = 640.0 / max(h, w)
    small = cv2.resize(image, (round(w * scale), round(h * scale)))
    det = _detector((small.shape[1], small.shape[0]))
    faces = det.detect(small)[1]
    if faces is None:
        raise ValueError("no face found in the image given to the camera simulator")
    face = max(faces, key=lambda f: f[2] * f[3]) / scale
    x, y, fw, fh = face[:4]
    side = 2.0 * max(fw, fh)
    cx, cy = x + fw / 2, y + fh / 2 + 0.1 * fh
    m = np.array([[_PATCH / side, 0, _PATCH / 2 - cx * _PATCH / side],
                  [0, _PATCH / side, _PATCH / 2 - cy * _PATCH / side]], np.float32)
    patch = cv2.warpAffine(image, m, (_PATCH, _PATCH), borderMode=cv2.BORDER_REPLICATE)
    eyes = [(m @ np.array([face[4 + 2 * i], face[5 + 2 * i], 1.0])) for i in (0, 1)]
    # Eyelids: skin colour from the cheeks, ellipses over both eyes.
    eye_dist = float(np.hypot(*(eyes[0] - eyes[1])))
    cheek = patch[int(eyes[0][1] + 0.45 * eye_dist):int(eyes[0][1] + 0.6 * eye_dist),
                  int(min(e[0] for e in eyes)):int(max(e[0] for e in eyes))]
    skin = tuple(int(c) for c in np.median(cheek.reshape(-1, 3), axis=0))
    closed = patch.copy()
    for ex, ey in eyes:
        # A closed lid covers the whole eye opening; only a thin, soft lash line stays visible.
        cv2.ellipse(closed, (int(ex), int(ey)), (int(0.32 * eye_dist), int(0.18 * eye_dist)), 0, 0, 360, skin, -1, cv2.LINE_AA)
        lash = tuple(int(0.6 * c) for c in skin)
        cv2.line(closed, (int(ex - 0.25 * eye_dist), int(ey + 2)), (int(ex + 0.25 * eye_dist), int(ey + 2)), lash, 1, cv2.LINE_AA)
    closed = cv2.GaussianBlur(closed, (3, 3), 0)
    alpha = np.zeros((_PATCH, _PATCH), np.float32)
    cv2.ellipse(alpha, (_PATCH // 2, int(_PATCH * 0.47)), (int(_PATCH * 0.26), int(_PATCH * 0.37)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 4)[..., None]
    # The printed photo: the face a bit tighter, portrait format, with the photo's own background.
    mp = np.array([[0.8, 0, 0.1 * _PATCH], [0, 0.8, 0.1 * _PATCH]], np.float32)
    photo = cv2.warpAffine(patch, mp, (_PATCH, _PATCH), borderMode=cv2.BORDER_REPLICATE)[:, 28:_PATCH - 28]
    tilt = math.degrees(math.atan2(float(eyes[1][1] - eyes[0][1]), float(eyes[1][0] - eyes[0][0])))
    return FacePatch(patch, closed, alpha, photo, tilt)


BLINK_S = 0.3          # a deliberate blink, as when asked to
TURN_S = (0.4, 0.6, 0.4)   # a head turn asked for: turning, holding, turning back
TURN_DEG = 25.0
LOOK_S = 3.0       # how long a traveller asked to look at the camera holds still


class Acts:
    """What a person in front of the camera was asked to do and did: blinks and head turns, each
    at a scene time (seconds since the scene began). Thread-safe enough: lists only grow."""

    def __init__(self):
        self.blinks: list[float] = []
        self.turns: list[tuple[float, int]] = []   # (start, +1 left / -1 right)
        self.looks: list[float] = []               # asked to look at the camera: head straight, still

    def attention(self, t: float) -> float:
        """0..1: how straight and still the person holds their head after being asked to look at the
        camera (0.3 s to settle, held LOOK_S, then the usual sway comes back over 0.5 s)."""
        for start in self.looks[-2:][::-1]:
            dt = t - start
            if 0.0 <= dt < 0.3:
                return dt / 0.3
            if 0.3 <= dt < LOOK_S:
                return 1.0
            if LOOK_S <= dt < LOOK_S + 0.5:
                return 1.0 - (dt - LOOK_S) / 0.5
        return 0.0

    def eyes_closed(self, t: float) -> bool:
        return any(0.0 <= t - b < BLINK_S for b in self.blinks[-4:])

    def yaw(self, t: float) -> float:
        """Degrees added to the natural sway while a turn is under way."""
        rise, hold, fall = TURN_S
        for start, sign in self.turns[-3:]:
            dt = t - start
            if 0.0 <= dt < rise:
                return sign * TURN_DEG * dt / rise
            if rise <= dt < rise + hold:
                return sign * TURN_DEG
            if rise + hold <= dt < rise + hold + fall:
                return sign * TURN_DEG * (1 - (dt - rise - hold) / fall)
        return 0.0


class SceneRenderer:
    """Draws the frames of every scene at any time t; deterministic for a seed."""

    def __init__(self, faces: list[FacePatch], size=(640, 480), seed: int = 0):
        if not faces:
            raise ValueError("the camera simulator needs at least one face")
        self.faces = faces
        self.w, self.h = size
        rng = np.random.default_rng(seed)
        self.background = self._background(rng)
        self.noise = [rng.normal(0, 3.0, (self.h, self.w, 3)).astype(np.int16) for _ in range(4)]
        self.paper = np.clip(rng.normal(0, 6, (360, 280)), -20, 20).astype(np.float32)
        sy, sx = np.mgrid[0:300, 0:225].astype(np.float32)
        self.moire = (1 + 0.18 * np.cos(2 * math.pi * (sx * 0.21 + sy * 0.05))
                      * np.cos(2 * math.pi * (sx * 0.04 - sy * 0.19)))[..., None].astype(np.float32)
        self.screen_y = sy[..., None]
        self.glare = np.clip(1 - ((sx - sy * 0.7) / 200) ** 2, 0, 1)[..., None] * 40

    def _background(self, rng) -> np.ndarray:
        y, x = np.mgrid[0:self.h, 0:self.w].astype(np.float32)
        wall = 150 + 40 * (y / self.h) - 15 * (x / self.w)
        bg = np.dstack([wall * 0.95, wall, wall * 1.04])
        bg[int(self.h * 0.72):] *= 0.6  # floor
        cv2.rectangle(bg, (30, 60), (140, 300), (90, 110, 120), -1)        # a door frame
        cv2.rectangle(bg, (self.w - 170, 40), (self.w - 40, 120), (60, 60, 170), -1)  # a sign
        cv2.putText(bg, "GATE 4", (self.w - 160, 95), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (240, 240, 240), 2)
        return np.clip(bg + rng.normal(0, 2, bg.shape), 0, 255).astype(np.uint8)

    def render(self, scene: str, t: float, face: int = 0, acts: "Acts | None" = None) -> np.ndarray:
        """`acts`: the blinks and head turns asked of the person (scene time); None: they blink on their own."""
        if scene not in SCENES:
            raise ValueError(f"scene must be one of {SCENES}, not {scene!r}")
        frame = self.background.copy()
        main = self.faces[face % len(self.faces)]
        if scene == "traveller":
            self._person(frame, main, t, (self.w * 0.5, self.h * 0.45), 1.0, acts=acts)
        elif scene == "two_faces":
            other = self.faces[(face + 1) % len(self.faces)]
            self._person(frame, other, t + 1.7, (self.w * 0.78, self.h * 0.36), 0.62)
            self._person(frame, main, t, (self.w * 0.42, self.h * 0.47), 0.95, acts=acts)
        elif scene == "printed_photo":
            self._printed_photo(frame, main, t)
        elif scene == "screen_replay":
            self._screen(frame, main, t)   # a recording blinks on its own rhythm, whatever the screen asks
        frame = np.clip(frame.astype(np.int16) + self.noise[int(t * 30) % len(self.noise)], 0, 255).astype(np.uint8)
        return frame

    def _person(self, frame, face: FacePatch, t: float, centre, size: float, blink: bool = True,
                acts: "Acts | None" = None) -> None:
        """A live head: sway, approach, roll, yaw (horizontal foreshortening), light changes, blinks."""
        cx = centre[0] + 14 * math.sin(0.7 * t)
        cy = centre[1] + 6 * math.sin(1.1 * t + 0.4)
        scale = size * (1.0 + 0.08 * math.sin(0.4 * t)) * self.h / 300
        still = acts.attention(t) if acts else 0.0      # asked to look at the camera: head straight and still
        roll = math.radians(5 * math.sin(0.5 * t) * (1 - 0.8 * still) - face.tilt * still)
        yaw = math.radians(18 * math.sin(0.3 * t) * (1 - 0.8 * still) + (acts.yaw(t) if acts else 0.0))
        if acts is None:
            closed = blink and (t % 3.3) < 0.3  # a deliberate blink, as when asked to, lasts ~0.3 s
        else:
            closed = blink and acts.eyes_closed(t)
        patch = (face.closed if closed else face.open).astype(np.float32)
        gain = 1.0 + 0.18 * math.sin(0.25 * t)
        side = 0.25 * math.sin(0.2 * t + 1.0)
        ramp = np.linspace(1 - side, 1 + side, _PATCH, dtype=np.float32)[None, :, None]
        patch = patch * gain * ramp
        # Shoulders: a dark ellipse under the head, moving with it.
        cv2.ellipse(frame, (int(cx), int(cy + 128 * scale)), (int(115 * scale), int(78 * scale)), 0, 180, 360,
                    (60, 45, 40), -1, cv2.LINE_AA)
        sx, sy = scale * math.cos(yaw), scale
        m = np.array([[sx * math.cos(roll), -sy * math.sin(roll), 0], [sx * math.sin(roll), sy * math.cos(roll), 0]],
                     np.float32)
        m[:, 2] = np.array([cx, cy], np.float32) - m[:, :2] @ np.array([_PATCH / 2, _PATCH / 2], np.float32)
        self._blend(frame, patch, face.alpha, m)

    def _printed_photo(self, frame, face: FacePatch, t: float) -> None:
        """A paper print: one rigid plane (face, border and paper move together), no blink."""
        ph, pw = face.photo.shape[:2]
        sheet = np.full((ph + 40, pw + 40, 3), 238, np.float32)
        sheet[20:20 + ph, 20:20 + pw] = face.photo.astype(np.float32) * 0.9 + 12  # ink on paper: lower contrast
        paper = cv2.resize(self.paper, (sheet.shape[1], sheet.shape[0]))[..., None]
        sheet = sheet + paper + np.array([0, 4, 10], np.float32)  # warm paper tint
        sh, sw = sheet.shape[:2]
        # Held in a hand: small rigid drift and tilt of the whole sheet (a homography).
        cx, cy = self.w * 0.5 + 8 * math.sin(0.9 * t), self.h * 0.45 + 5 * math.sin(1.3 * t)
        scale = 1.25 * self.h / 480
        tilt = 0.08 * math.sin(0.6 * t)
        half_w, half_h = sw * scale / 2, sh * scale / 2
        dst = np.float32([[cx - half_w * (1 - tilt), cy - half_h], [cx + half_w * (1 + tilt), cy - half_h * (1 + tilt)],
                          [cx + half_w * (1 + tilt), cy + half_h * (1 + tilt)], [cx - half_w * (1 - tilt), cy + half_h]])
        src = np.float32([[0, 0], [sw, 0], [sw, sh], [0, sh]])
        hm = cv2.getPerspectiveTransform(src, dst)
        self._blend(frame, sheet, np.ones((sh, sw, 1), np.float32), hm, perspective=True)

    def _screen(self, frame, face: FacePatch, t: float) -> None:
        """A tablet replaying a recording of the traveller."""
        inner = self.background.copy()
        self._person(inner, face, t, (self.w * 0.5, self.h * 0.45), 1.0)
        screen = cv2.resize(inner, (225, 300), interpolation=cv2.INTER_AREA).astype(np.float32)
        screen *= self.moire
        screen *= 1 + 0.10 * np.sin(2 * math.pi * (self.screen_y / 70 - 1.5 * t))  # refresh banding
        screen = screen * np.array([1.18, 1.02, 0.85], np.float32) + self.glare  # bluish LCD, glare
        bezel = np.full((340, 255, 3), 18, np.float32)
        bezel[20:320, 15:240] = screen
        cx, cy = self.w * 0.5 + 6 * math.sin(0.8 * t), self.h * 0.47 + 4 * math.sin(1.2 * t)
        m = np.float32([[1, 0, cx - 127], [0, 1, cy - 170]])
        self._blend(frame, bezel, np.ones((340, 255, 1), np.float32), m)

    def _blend(self, frame, patch, alpha, m, perspective: bool = False) -> None:
        """Warp `patch` by m (2x3 affine or 3x3 homography) and alpha-blend it, only within its bounding box."""
        h, w = patch.shape[:2]
        corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]]).reshape(-1, 1, 2)
        pts = cv2.perspectiveTransform(corners, m) if perspective else cv2.transform(corners, m)
        x0, y0 = np.maximum(np.floor(pts.min(axis=(0, 1))).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(pts.max(axis=(0, 1))).astype(int), (self.w, self.h))
        if x0 >= x1 or y0 >= y1:
            return
        full = np.asarray(m, np.float64) if perspective else np.vstack([m, [0, 0, 1]]).astype(np.float64)
        local = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ full
        size = (int(x1 - x0), int(y1 - y0))
        if perspective:
            warped, a = cv2.warpPerspective(patch, local, size), cv2.warpPerspective(alpha, local, size)
        else:
            warped, a = cv2.warpAffine(patch, local[:2], size), cv2.warpAffine(alpha, local[:2], size)
        a = a[..., None] if a.ndim == 2 else a
        roi = frame[y0:y1, x0:x1]
        np.copyto(roi, np.clip(roi * (1 - a) + warped * a, 0, 255).astype(np.uint8))


class CameraSim:
    """MJPEG-over-HTTP camera on 127.0.0.1; start()/stop(); `url` is what the driver opens."""

    name = "camera"
    supported_faults = ("unplug", "garbage", "corrupt_crc", "slow", "drop")

    def __init__(self, faces=None, *, port: int = 0, fps: float = 15.0, size=(640, 480), seed: int = 0,
                 scene: str = "no_face", quality: int = 85):
        images = [self._read(f) for f in (faces or self._default_faces())]
        self.renderer = SceneRenderer([load_face(img) for img in images], size, seed)
        self.fps = fps
        self.quality = quality
        self.faults = Faults(self.supported_faults, on_change=self._fault_changed)
        self.frames_sent = 0
        self.frames_dropped = 0
        self._rng = np.random.default_rng(seed)
        self.set_scene(scene)
        self._jpeg: bytes | None = None
        self._seq = 0
        self._cond = threading.Condition()
        self._garbage: dict[int, bytes] = {}   # per connection: a burst waiting to be written
        self._conns: set[socket.socket] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()  # cuts a frame wait short when `slow` changes or on stop
        self._unplug_until: float | None = None
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.sim = self
        self._threads: list[threading.Thread] = []

    @staticmethod
    def _default_faces():
        from biometrics import assets

        return [assets.path(name) for name in DEFAULT_FACES]

    @staticmethod
    def _read(face) -> np.ndarray:
        if isinstance(face, np.ndarray):
            return face
        img = cv2.imread(str(Path(face)))
        if img is None:
            raise ValueError(f"cannot read face image {face}")
        return img

    # -- lifecycle -------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    path = url  # what run_simulator_cli prints and the lane config names

    def start(self) -> CameraSim:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                          name="camera-http", daemon=True),
                         threading.Thread(target=self._produce, name="camera-render", daemon=True)]
        for th in self._threads:
            th.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._cond:
            self._cond.notify_all()
        self._server.shutdown()
        self._cut_connections()
        self._server.server_close()
        for th in self._threads:
            th.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- scenes ----------------------------------------------------------------------
    def set_scene(self, scene: str, face: int = 0, actions: str = "own") -> None:
        """Switch what the camera sees; `face` picks the traveller among the loaded faces.
        `actions`: "own" (the person blinks every 3.3 s by themselves) or "asked" (only when
        `blink()` / `turn()` is called: a traveller acting on the screen's prompts)."""
        if scene not in SCENES:
            raise ValueError(f"scene must be one of {SCENES}, not {scene!r}")
        if actions not in ("own", "asked"):
            raise ValueError(f"actions must be 'own' or 'asked', not {actions!r}")
        acts = Acts() if actions == "asked" else None
        self._scene, self._face, self._scene_start, self._acts = scene, int(face), time.monotonic(), acts

    def blink(self) -> None:
        """The person blinks now (scenes set with actions="asked")."""
        if self._acts is not None:
            self._acts.blinks.append(time.monotonic() - self._scene_start)

    def look(self) -> None:
        """The person looks straight at the camera and holds still for a while (asked to)."""
        if self._acts is not None:
            self._acts.looks.append(time.monotonic() - self._scene_start)

    def turn(self, direction: str) -> None:
        """The person turns their head "left" or "right" for about a second, then back."""
        if direction not in ("left", "right"):
            raise ValueError(f"direction must be 'left' or 'right', not {direction!r}")
        if self._acts is not None:
            self._acts.turns.append((time.monotonic() - self._scene_start, 1 if direction == "left" else -1))

    def add_face(self, face) -> int:
        """Load another face (image array or path) and return its index for set_scene(..., face=)."""
        self.renderer.faces.append(load_face(self._read(face)))
        return len(self.renderer.faces) - 1

    @property
    def scene(self) -> str:
        return self._scene

    def render(self, t: float | None = None) -> np.ndarray:
        """The current scene's frame at scene time t (default: now)."""
        t = time.monotonic() - self._scene_start if t is None else t
        return self.renderer.render(self._scene, t, self._face, self._acts)

    def control(self, request: dict) -> dict:
        return self.faults.control(request, {"scene": self.set_scene})

    # -- faults ----------------------------------------------------------------------
    def _fault_changed(self, name: str, params: dict | None) -> None:
        if name == "slow":
            self._wake.set()
        elif name == "unplug":
            if params is None:
                self._unplug_until = None
            else:
                duration = params.get("duration_s")
                self._unplug_until = math.inf if duration is None else time.monotonic() + duration
                self._cut_connections()
        elif name == "garbage" and params is not None:
            noise = self._rng.integers(0, 256, params["nbytes"], dtype=np.uint8).tobytes()
            with self._cond:
                for key in self._garbage:
                    self._garbage[key] = noise
                self._cond.notify_all()
            self.faults.clear("garbage")  # a burst, not a state

    @property
    def unplugged(self) -> bool:
        if self._unplug_until is not None and time.monotonic() >= self._unplug_until:
            self.faults.clear("unplug")
        return self._unplug_until is not None

    def _cut_connections(self) -> None:
        with self._cond:
            conns = list(self._conns)
            self._cond.notify_all()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # -- frame production --------------------------------------------------------------
    def _produce(self) -> None:
        period = 1.0 / self.fps
        next_at = time.monotonic()
        while not self._stop.is_set():
            slow = self.faults.active("slow")
            next_at += period + (slow["delay_s"] if slow else 0.0)
            frame = self.render()
            jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])[1].tobytes()
            if self.faults.consume("drop"):
                self.frames_dropped += 1
            else:
                if self.faults.consume("corrupt_crc"):
                    jpeg = self._damage(jpeg)
                with self._cond:
                    self._jpeg, self._seq = jpeg, self._seq + 1
                    self._cond.notify_all()
            if self._wake.wait(max(0.0, next_at - time.monotonic())):
                self._wake.clear()
                next_at = time.monotonic()
            next_at = max(next_at, time.monotonic() - period)  # never try to catch up a backlog

    def _damage(self, jpeg: bytes) -> bytes:
        """A damaged JPEG: the entropy-coded data cut short and overwritten with noise."""
        cut = len(jpeg) // 2
        return jpeg[:cut] + self._rng.integers(0, 256, 64, dtype=np.uint8).tobytes()

    def next_frame(self, after: int, timeout: float) -> tuple[int, bytes | None, bytes]:
        """(seq, jpeg, garbage burst) for a client that has seen `after`; jpeg None on timeout/stop."""
        key = threading.get_ident()
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._stop.is_set() or self._garbage.get(key)
                                or self.unplugged, timeout)
            burst = self._garbage.get(key, b"")
            if burst:
                self._garbage[key] = b""
            if self._seq > after and not self._stop.is_set():
                return self._seq, self._jpeg, burst
            return after, None, burst


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: CameraSim


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        log.debug("camera_http", request=fmt % args)

    def do_GET(self):  # noqa: N802 (http.server naming)
        sim = self.server.sim
        if sim.unplugged:
            self.connection.shutdown(socket.SHUT_RDWR)  # like a camera that is off the network
            return
        if self.path.split("?")[0] == "/frame.jpg":
            seq, jpeg, _ = sim.next_frame(0, 2.0)
            if jpeg is None:
                self.send_error(503, "no frame yet")
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg)))
            self.end_headers()
            self.wfile.write(jpeg)
            return
        if self.path.split("?")[0] != "/stream.mjpg":
            self.send_error(404, "try /stream.mjpg or /frame.jpg")
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY.decode()}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        key = threading.get_ident()
        with sim._cond:
            sim._conns.add(self.connection)
            sim._garbage[key] = b""
        try:
            self._stream(sim)
        except OSError:
            pass  # the client went away, or we cut the connection
        finally:
            with sim._cond:
                sim._conns.discard(self.connection)
                sim._garbage.pop(key, None)

    def _stream(self, sim: CameraSim) -> None:
        seq = sim._seq  # a new client waits for the next frame: a stalled camera stays stalled
        while not sim._stop.is_set():
            if sim.unplugged:
                return
            seq, jpeg, burst = sim.next_frame(seq, 0.5)
            if burst:
                self.wfile.write(burst)
            if jpeg is None:
                continue
            self.wfile.write(b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (_BOUNDARY, len(jpeg))
                             + jpeg + b"\r\n")
            self.wfile.flush()
            sim.frames_sent += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.camera", description=__doc__.split("\n")[0])
    add_simulator_args(parser)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--scene", choices=SCENES, default="traveller")
    parser.add_argument("--face", action="append", help="face image (repeat; default: the pinned asset photos)")
    args = parser.parse_args(argv)
    sim = CameraSim(args.face, port=args.port, fps=args.fps, seed=args.seed, scene=args.scene)
    return run_simulator_cli(sim, args)


if __name__ == "__main__":
    sys.exit(main())
