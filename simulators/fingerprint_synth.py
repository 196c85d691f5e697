"""Synthetic fingerprints in the manner of SFinGe (Cappelli, Maio, Maltoni).

A *master* fingerprint is the ridge pattern of one finger, fixed by
(generator seed, finger id): a class (arch, tented arch, left/right loop,
whorl), singular points placed at random for that class, an orientation field
from the Sherlock-Monro zero-pole model plus a smooth individual perturbation,
a ridge-period map, and ridges grown from sparse noise by iterated
orientation-selective Gabor filtering. Minutiae appear where the growth fronts
meet, so they differ between fingers and are the same for every impression of
one finger.

An *impression* is one touch of that finger on a 500 ppi sensor: elastic skin
distortion (strongest away from the contact centre), rotation, translation,
pressure (ridge thickness), dry or wet skin, partial contact and sensor noise.
Every impression of a finger is a genuine mate; impressions of different
finger ids are impostors.

    gen = FingerGenerator(seed=7)
    img = gen.impression(finger_id=3, impression_no=0)            # uint8 (400, 300)
    img = gen.impression(3, 1, skin="dry", pressure=0.3, contact=0.7)
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

PPI = 500
HEIGHT = 400  # image rows at 500 ppi: 20.3 mm
WIDTH = 300   # image columns: 15.2 mm
CLASSES = ("arch", "tented_arch", "right_loop", "left_loop", "whorl")
# Natural class frequencies (Wilson et al., NIST): loops dominate.
CLASS_WEIGHTS = (0.037, 0.029, 0.338, 0.317, 0.279)
SKINS = ("normal", "dry", "wet")

_ORIENTATIONS = 16          # Gabor orientation bins over [0, pi)
_PERIODS = (7.5, 10.5)      # ridge period bins in pixels (0.38 mm .. 0.53 mm at 500 ppi)
_GROWTH_ITERATIONS = 7
_KERNEL = 21


@dataclass(frozen=True)
class Master:
    """One finger's ridge pattern; `ridges` is in [-1, 1], negative = ridge (dark)."""
    finger_class: str
    cores: tuple[tuple[float, float], ...]   # (x, y) pixels
    deltas: tuple[tuple[float, float], ...]
    orientation: np.ndarray  # float32 (HEIGHT, WIDTH) ridge direction in [0, pi)
    ridges: np.ndarray      # float32 (HEIGHT, WIDTH)
    shape: np.ndarray       # float32 (HEIGHT, WIDTH) fingertip silhouette in [0, 1]


@functools.lru_cache(maxsize=1)
def _gabor_bank():
    """Separable Gabor kernels [period][orientation] -> ((row_a, col_a), (row_b, col_b)).

    cos(u*x + v*y) = cos(u*x)cos(v*y) - sin(u*x)sin(v*y), and the Gaussian
    envelope is separable, so each oriented kernel is the sum of two separable
    filters: 4 passes of 1-D taps instead of one 2-D convolution (2x faster).
    The orientation is the ridge direction; the cosine runs across the ridges.
    """
    half = _KERNEL // 2
    t = np.arange(-half, half + 1, dtype=np.float64)
    bank = []
    for period in _PERIODS:
        sigma = 0.55 * period
        g = np.exp(-t * t / (2 * sigma * sigma))
        row = []
        for j in range(_ORIENTATIONS):
            theta = math.pi * j / _ORIENTATIONS
            u, v = -2 * math.pi * math.sin(theta) / period, 2 * math.pi * math.cos(theta) / period
            full = np.outer(g * np.cos(v * t), g * np.cos(u * t)) - np.outer(g * np.sin(v * t), g * np.sin(u * t))
            scale = 1.0 / np.abs(full).sum()
            row.append(((g * np.cos(u * t) * scale, g * np.cos(v * t)),
                        (-g * np.sin(u * t) * scale, g * np.sin(v * t))))
        bank.append([tuple((kx.astype(np.float32), ky.astype(np.float32)) for kx, ky in pair) for pair in row])
    return bank


def _gabor(img: np.ndarray, kernel) -> np.ndarray:
    (ax, ay), (bx, by) = kernel
    out = cv2.sepFilter2D(img, -1, ax, ay, borderType=cv2.BORDER_REFLECT)
    out += cv2.sepFilter2D(img, -1, bx, by, borderType=cv2.BORDER_REFLECT)
    return out


def _smooth_field(rng: np.random.Generator, shape, cells: int) -> np.ndarray:
    """A smooth random field in about [-1, 1]: coarse noise upsampled bicubically."""
    h, w = shape
    coarse = rng.standard_normal((cells + 3, max(2, round(cells * w / h)) + 3)).astype(np.float32)
    big = cv2.resize(coarse, (w + 2 * (w // cells), h + 2 * (h // cells)), interpolation=cv2.INTER_CUBIC)
    oy, ox = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[oy:oy + h, ox:ox + w]


def _singular_points(rng: np.random.Generator, finger_class: str):
    """Cores and deltas (x, y) in pixels for the class, jittered per finger."""
    cx = WIDTH / 2 + rng.uniform(-25, 25)
    cy = HEIGHT * 0.42 + rng.uniform(-30, 30)
    if finger_class == "arch":
        return (), ()
    if finger_class == "tented_arch":
        return ((cx, cy),), ((cx + rng.uniform(-8, 8), cy + rng.uniform(70, 110)),)
    if finger_class in ("left_loop", "right_loop"):
        # Henry: a right loop's ridges enter and leave on the right, its delta is on the left.
        side = -1 if finger_class == "right_loop" else 1
        delta = (cx + side * rng.uniform(70, 110), cy + rng.uniform(90, 140))
        return ((cx, cy),), (delta,)
    # whorl: two cores close together, deltas low on both sides
    spread, tilt = rng.uniform(18, 35), rng.uniform(-0.6, 0.6)
    cores = ((cx - spread * math.sin(tilt) / 2, cy - spread * math.cos(tilt) / 2),
             (cx + spread * math.sin(tilt) / 2, cy + spread * math.cos(tilt) / 2))
    deltas = ((cx - rng.uniform(80, 115), cy + rng.uniform(90, 135)),
              (cx + rng.uniform(80, 115), cy + rng.uniform(90, 135)))
    return cores, deltas


def _orientation(rng: np.random.Generator, finger_class: str, cores, deltas) -> np.ndarray:
    """Ridge direction in [0, pi) for every pixel (x right, y down)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    if finger_class == "arch":
        # Ridges bow upwards over the middle of the finger, flat at the edges.
        bow = rng.uniform(0.9, 1.6) * np.clip(1.0 - y / (HEIGHT * rng.uniform(0.75, 0.95)), 0, None)
        theta = np.arctan(bow * np.sin(2 * math.pi * (x - WIDTH / 2) / (WIDTH * 2.2)) * -1.0)
    else:
        # Sherlock-Monro zero-pole model: each core adds +arg/2, each delta -arg/2.
        theta = np.zeros_like(x)
        for px, py in cores:
            theta += 0.5 * np.arctan2(-(y - py), x - px)
        for px, py in deltas:
            theta -= 0.5 * np.arctan2(-(y - py), x - px)
    theta = -theta  # image y points down
    # Individual, smooth perturbation in the doubled-angle domain (keeps singularities).
    c, s = np.cos(2 * theta), np.sin(2 * theta)
    wobble = 0.25 * _smooth_field(rng, (HEIGHT, WIDTH), 4)
    c, s = c * np.cos(wobble) - s * np.sin(wobble), c * np.sin(wobble) + s * np.cos(wobble)
    return (np.arctan2(s, c) / 2) % math.pi


def _fingertip_shape(rng: np.random.Generator) -> np.ndarray:
    """Fingertip silhouette: an ellipse, rounder at the top, with soft edges."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    a = WIDTH * rng.uniform(0.40, 0.47)
    b_top, b_bottom = HEIGHT * rng.uniform(0.40, 0.46), HEIGHT * rng.uniform(0.55, 0.65)
    cx, cy = WIDTH / 2, HEIGHT * 0.48
    b = np.where(y < cy, b_top, b_bottom)
    r = np.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2)
    return np.clip((1.0 - r) * 12.0, 0.0, 1.0).astype(np.float32)


def _grow_ridges(rng: np.random.Generator, theta: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Iterated orientation-selective Gabor filtering of sparse noise (SFinGe ridge growth)."""
    bank = _gabor_bank()
    # Per-pixel interpolation weights between the two nearest orientation bins...
    pos = theta * (_ORIENTATIONS / math.pi)
    lo = np.floor(pos).astype(np.int32) % _ORIENTATIONS
    hi = (lo + 1) % _ORIENTATIONS
    w_hi = (pos - np.floor(pos)).astype(np.float32)
    # ...and between the two period bins.
    w_long = np.clip((period - _PERIODS[0]) / (_PERIODS[1] - _PERIODS[0]), 0, 1).astype(np.float32)
    weights = []  # (bin, weight for the short period, weight for the long period)
    for j in np.unique(np.concatenate([lo.ravel(), hi.ravel()])):
        weight = np.where(lo == j, 1 - w_hi, 0) + np.where(hi == j, w_hi, 0)
        weights.append((j, weight * (1 - w_long), weight * w_long))
    img = np.zeros(theta.shape, np.float32)
    seeds = rng.random(theta.shape) < 0.004
    img[seeds] = rng.choice(np.array([-1.0, 1.0], np.float32), size=int(seeds.sum()))
    for _ in range(_GROWTH_ITERATIONS):
        out = np.zeros_like(img)
        for j, w_short, w_long_j in weights:
            out += w_short * _gabor(img, bank[0][j])
            out += w_long_j * _gabor(img, bank[1][j])
        img = np.clip(out * 6.0, -1.0, 1.0)
    return img


class FingerGenerator:
    """Stable synthetic fingers: the same (seed, finger_id) is always the same finger.

    Masters are cached (a few hundred KB each); impressions are cheap (tens of ms).
    """

    def __init__(self, seed: int = 0, cache_size: int = 256):
        self.seed = int(seed)
        self._master = functools.lru_cache(maxsize=cache_size)(self._make_master)

    def master(self, finger_id: int) -> Master:
        return self._master(int(finger_id))

    def master_image(self, finger_id: int) -> np.ndarray:
        """The ideal, undistorted print as uint8 (dark ridges on white)."""
        m = self.master(finger_id)
        return _to_grey(m.ridges, m.shape)

    def finger_class(self, finger_id: int) -> str:
        """The class alone, without growing the ridges (the class is the master's first draw)."""
        return self._draw_class(self._master_rng(int(finger_id)))

    def _master_rng(self, finger_id: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, finger_id, 0x5F])

    @staticmethod
    def _draw_class(rng: np.random.Generator) -> str:
        return CLASSES[rng.choice(len(CLASSES), p=CLASS_WEIGHTS)]

    def _make_master(self, finger_id: int) -> Master:
        rng = self._master_rng(finger_id)
        finger_class = self._draw_class(rng)
        cores, deltas = _singular_points(rng, finger_class)
        theta = _orientation(rng, finger_class, cores, deltas)
        mean_period = rng.uniform(8.2, 9.8)
        period = (mean_period + 0.7 * _smooth_field(rng, theta.shape, 3)).astype(np.float32)
        ridges = _grow_ridges(rng, theta, period)
        shape = _fingertip_shape(rng)
        for array in (theta, ridges, shape):
            array.setflags(write=False)
        return Master(finger_class, tuple(cores), tuple(deltas), theta, ridges, shape)

    def impression(self, finger_id: int, impression_no: int, *, rotation: float | None = None,
                   dx: float | None = None, dy: float | None = None, distortion: float | None = None,
                   pressure: float | None = None, skin: str | None = None, contact: float | None = None,
                   noise: float | None = None) -> np.ndarray:
        """One touch of the finger: uint8 (HEIGHT, WIDTH) at 500 ppi, dark ridges on light ground.

        Unset conditions are drawn from (seed, finger_id, impression_no), so an
        impression is reproducible. rotation in degrees; dx, dy in pixels;
        distortion 0..1 (elastic skin stretch); pressure 0..1 (light..heavy:
        ridge thickness); skin "normal" | "dry" | "wet"; contact 0..1 (fraction
        of the fingertip touching); noise 0..1 (sensor noise).
        """
        m = self.master(finger_id)
        rng = np.random.default_rng([self.seed, finger_id, impression_no, 0x1A])
        rotation = rng.uniform(-12, 12) if rotation is None else rotation
        dx = rng.uniform(-20, 20) if dx is None else dx
        dy = rng.uniform(-20, 20) if dy is None else dy
        distortion = rng.uniform(0.2, 0.8) if distortion is None else distortion
        pressure = rng.uniform(0.35, 0.65) if pressure is None else pressure
        skin = rng.choice(SKINS, p=(0.8, 0.1, 0.1)) if skin is None else skin
        contact = rng.uniform(0.85, 1.0) if contact is None else contact
        noise = rng.uniform(0.1, 0.35) if noise is None else noise
        if skin not in SKINS:
            raise ValueError(f"skin must be one of {SKINS}, not {skin!r}")
        for name, value in (("distortion", distortion), ("pressure", pressure), ("contact", contact), ("noise", noise)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], not {value}")

        map_x, map_y = _touch_maps(rng, rotation, dx, dy, distortion)
        ridges = cv2.remap(m.ridges, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        shape = cv2.remap(m.shape, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        shape *= _contact_area(rng, contact)

        # Pressure moves the ridge/valley boundary: heavy touch = thick ridges.
        ink = 1.0 / (1.0 + np.exp(8.0 * (ridges - (pressure - 0.5) * 1.2)))
        if skin == "dry":
            # Dry skin touches in patches: ridges break into dots and gaps.
            patches = _smooth_field(rng, ink.shape, 30) + 0.6 * rng.standard_normal(ink.shape).astype(np.float32)
            ink *= np.clip(patches + 0.95, 0, 1)
        elif skin == "wet":
            # Moisture fills the valleys: ridges merge and dark blotches appear.
            ink = cv2.GaussianBlur(ink, (0, 0), 1.6)
            ink = np.clip(ink * 1.5 + 0.25 * np.clip(_smooth_field(rng, ink.shape, 6), 0, None), 0, 1)
        ink = cv2.GaussianBlur(ink, (0, 0), 0.7) * shape
        grey = 235.0 - ink * rng.uniform(170, 200)
        grey += rng.standard_normal(grey.shape).astype(np.float32) * (4 + 30 * noise)
        grey += 12 * noise * _smooth_field(rng, grey.shape, 5)
        return np.clip(grey, 0, 255).astype(np.uint8)


def _touch_maps(rng: np.random.Generator, rotation: float, dx: float, dy: float, distortion: float):
    """remap() source coordinates for one touch: rigid pose plus elastic skin distortion.

    The distortion is ~0 near the contact centre and grows outward (Cappelli's
    plastic-distortion model, with a smooth random displacement field in place
    of the analytic brake function).
    """
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    cx, cy = WIDTH / 2 + dx, HEIGHT * 0.48 + dy
    r = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    grow = np.clip((r - 40.0) / 120.0, 0, 1) ** 1.5
    amp = 9.0 * distortion
    ex = amp * grow * _smooth_field(rng, (HEIGHT, WIDTH), 3)
    ey = amp * grow * _smooth_field(rng, (HEIGHT, WIDTH), 3)
    a = math.radians(rotation)
    ux, uy = x + ex - cx, y + ey - cy
    map_x = math.cos(a) * ux + math.sin(a) * uy + WIDTH / 2
    map_y = -math.sin(a) * ux + math.cos(a) * uy + HEIGHT * 0.48
    return map_x.astype(np.float32), map_y.astype(np.float32)


def _contact_area(rng: np.random.Generator, contact: float) -> np.ndarray:
    """Mask of the part of the fingertip touching the glass: a half-plane cut for partial contact."""
    if contact >= 0.999:
        return np.ones((HEIGHT, WIDTH), np.float32)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    along = (x - WIDTH / 2) * math.cos(angle) + (y - HEIGHT * 0.48) * math.sin(angle)
    # contact = 1 keeps everything; 0.5 cuts through the centre.
    reach = (contact - 0.5) * 2 * 170.0
    return np.clip((reach - along) / 6.0, 0, 1).astype(np.float32)


def _to_grey(ridges: np.ndarray, shape: np.ndarray) -> np.ndarray:
    ink = 1.0 / (1.0 + np.exp(8.0 * ridges))
    return np.clip(235.0 - 190.0 * ink * shape, 0, 255).astype(np.uint8)
