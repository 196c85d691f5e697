"""Find the machine-readable zone on a page image at any rotation, and cut out its lines.

Steps (all on a copy scaled to WORK_PX on its longer side, crops from the full image):

  1. flat field: divide the grey image by its grey closing (paper, glass and glare become ~1, ink
     stays dark), Otsu over the darker pixels, keep character-sized components;
  2. text angle: close those components with a disc so words become strokes, take each stroke's
     minAreaRect and vote its long side's angle (modulo 180) weighted by length;
  3. MRZ lines: rotate the character mask upright, close it horizontally into bars, merge bars
     of one row cut apart (by glare), keep bars at least MIN_BAR_RATIO times their height, and take
     the best group of 1-3 parallel, left-aligned bars of similar length (1: glare hid the rest);
  4. each line's angle is refined on its own characters, and it is cut from the full-resolution
     image as a strip LINE_HEIGHT_PX high for the recognisers;
  5. 0 or 180 degrees: the page's other content lies above the MRZ, and the right end of MRZ lines
     holds '<' fillers (less ink); `Band.flipped()` gives the other reading when check digits say so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

WORK_PX = 1000
LINE_HEIGHT_PX = 48          # the recognisers' input height
MIN_BAR_RATIO = 14.0         # a bar at least this many times as long as it is tall may be an MRZ line
CROP_HEIGHT_FACTOR = 1.5     # strip height / character height


@dataclass(frozen=True)
class Band:
    """The MRZ lines found on one image, top to bottom as read, each a grey strip LINE_HEIGHT_PX high."""
    lines: tuple[np.ndarray, ...]
    angle: float              # degrees the page was turned (counter-clockwise) to read it upright
    char_height: float        # in the full image's pixels
    upright_score: float      # > 0: the 0-degree reading is the likelier one

    def flipped(self) -> Band:
        """The same lines read the other way up (the page turned 180 degrees more)."""
        return Band(tuple(np.ascontiguousarray(x[::-1, ::-1]) for x in reversed(self.lines)),
                    (self.angle + 180.0) % 360.0, self.char_height, -self.upright_score)


@dataclass(frozen=True)
class _Bar:
    x0: float
    x1: float
    yc: float
    h: float
    glyphs: int = 0      # character blobs of the bar's own height inside it (an MRZ line has 30-44)

    @property
    def length(self) -> float:
        return self.x1 - self.x0


def _ink(small: np.ndarray) -> np.ndarray:
    """Flat-fielded ink mask (uint8 0/255) of a grey image."""
    smooth = cv2.GaussianBlur(small, (0, 0), 0.8)
    bg = cv2.morphologyEx(smooth, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21)))
    norm = smooth.astype(np.float32) / np.maximum(bg.astype(np.float32), 1.0)
    dark = norm[norm < 0.97]
    if dark.size < 100:
        return np.zeros(small.shape, np.uint8)
    level, _ = cv2.threshold((dark * 255).astype(np.uint8).reshape(-1, 1), 0, 255,
                             cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    level = min(level / 255.0, 0.9)
    return ((norm < level) * 255).astype(np.uint8)


def _characters(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep character-sized components: (mask, stats rows x, y, w, h, area)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    w, h, area = stats[:, 2], stats[:, 3], stats[:, 4]
    size = np.maximum(w, h)
    keep = (size >= 4) & (size <= 40) & (area >= 6) & (area <= 0.8 * w * h + 1) & (np.minimum(w, h) >= 1)
    keep[0] = False
    return (keep[labels] * 255).astype(np.uint8), stats[keep]


def text_angle(chars: np.ndarray) -> float:
    """Dominant text direction in degrees (0..180), from strokes of closed characters."""
    closed = cv2.morphologyEx(chars, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hist = np.zeros(180, np.float64)
    for c in contours:
        if len(c) < 5:
            continue
        (_, _), (w, h), a = cv2.minAreaRect(c)
        long_, short = max(w, h), max(min(w, h), 1.0)
        if long_ < 30 or long_ / short < 3:
            continue
        angle = a if w >= h else a + 90.0
        hist[int(round(angle)) % 180] += long_ * min(long_ / short, 20)
    if not hist.any():
        return 0.0
    kernel = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
    smooth = np.convolve(np.concatenate([hist[-4:], hist, hist[:4]]), kernel, mode="valid")
    peak = int(np.argmax(smooth))
    idx = np.arange(peak - 3, peak + 4)
    weights = hist[idx % 180]
    return float((idx * weights).sum() / max(weights.sum(), 1e-9)) % 180.0


def _rotation(shape, angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Affine matrix turning an image of `shape` by -angle (text horizontal), on a canvas that holds it all."""
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos) + 2, int(h * cos + w * sin) + 2
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return m, (nw, nh)


def _bars(upright: np.ndarray, char_h: float) -> list[_Bar]:
    pitch = max(char_h, 4.0)
    k = max(3, int(round(pitch * 1.6)))
    closed = cv2.morphologyEx(upright, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    raw = [_Bar(float(x), float(x + w), y + h / 2.0, float(h)) for x, y, w, h, a in stats[1:]
           if h >= 0.5 * char_h and h <= 2.5 * char_h and w >= 3 * char_h]
    raw.sort(key=lambda b: (b.yc, b.x0))
    merged: list[_Bar] = []
    for b in sorted(raw, key=lambda b: b.x0):
        for i, m in enumerate(merged):
            gap = b.x0 - m.x1
            if abs(b.yc - m.yc) < 0.45 * max(b.h, m.h) and -m.h < gap < 12 * pitch:
                merged[i] = _Bar(m.x0, max(m.x1, b.x1), (m.yc * m.length + b.yc * b.length) / (m.length + b.length),
                                 max(m.h, b.h))
                break
        else:
            merged.append(b)
    return [b for b in merged if b.length >= MIN_BAR_RATIO * char_h]


def _glyphs(b: _Bar, stats: np.ndarray, centroids: np.ndarray) -> int:
    """Character blobs inside bar `b` whose height is the bar's (MRZ glyphs are all one height)."""
    cx, cy, h = centroids[1:, 0], centroids[1:, 1], stats[1:, 3]
    return int(np.sum((np.abs(cy - b.yc) < 0.5 * b.h) & (cx >= b.x0) & (cx <= b.x1) & (h >= 0.55 * b.h) & (h <= 1.2 * b.h)))


def _group(bars: list[_Bar], char_h: float) -> list[_Bar]:
    """The best set of 1-3 MRZ lines: parallel, left-aligned, similar length, evenly spaced (the
    spacing judged by the bars' own height: the MRZ's characters, not the page's smaller text)."""
    bars = sorted(bars, key=lambda b: b.yc)
    best, best_score = [], 0.0
    for i, first in enumerate(bars):
        group = [first]
        for b in bars[i + 1:]:
            last = group[-1]
            h = max(b.h, last.h)
            dy = b.yc - last.yc
            similar = min(b.length, last.length) / max(b.length, last.length) > 0.75
            aligned = abs(b.x0 - first.x0) < 3 * h or abs(b.x1 - first.x1) < 3 * h
            if 1.2 * h < dy < 3.2 * h and similar and aligned and len(group) < 3:
                group.append(b)
            elif dy >= 3.2 * h:
                break
        # Glyphs, not length: a page's title in a large font makes long bars with few characters.
        score = sum(b.glyphs for b in group) * (1.0 + 0.5 * (len(group) - 1))
        if score > best_score:
            best, best_score = group, score
    return best


def locate(image: np.ndarray) -> Band | None:
    """The MRZ of a page image (BGR or grey) at any rotation, or None when no line is found."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    s = min(1.0, WORK_PX / max(h, w))
    small = cv2.resize(grey, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else grey
    chars, stats = _characters(_ink(small))
    if len(stats) < 20:
        return None
    angle = text_angle(chars)
    m, size = _rotation(small.shape, angle)
    upright = cv2.warpAffine(chars, m, size, flags=cv2.INTER_NEAREST)
    n, _, st, cent = cv2.connectedComponentsWithStats(upright, connectivity=8)
    hs = st[1:, 3]
    char_h = float(np.median(hs[(hs >= 6) & (hs <= 40)])) if np.any((hs >= 6) & (hs <= 40)) else 12.0
    bars = [_Bar(b.x0, b.x1, b.yc, b.h, _glyphs(b, st, cent)) for b in _bars(upright, char_h)]
    group = _group(bars, char_h)
    if not group:
        return None
    # Character height of the MRZ itself: the tallest common height of the blobs in its bars.
    in_bars = []
    for b in group:
        sel = (np.abs(cent[1:, 1] - b.yc) < 0.6 * b.h) & (cent[1:, 0] >= b.x0 - 1) & (cent[1:, 0] <= b.x1 + 1)
        in_bars.append(sel)
    mrz_h = float(np.percentile(hs[np.any(in_bars, axis=0)], 75)) if np.any(in_bars) else char_h
    # 0 or 180: content above the band (page text, photo) and fillers at the right end.
    top, bottom = group[0].yc - group[0].h, group[-1].yc + group[-1].h
    x0, x1 = min(b.x0 for b in group), max(b.x1 for b in group)
    cy, cx = cent[1:, 1], cent[1:, 0]
    area = st[1:, 4]
    around = (cx > x0 - 0.2 * (x1 - x0)) & (cx < x1 + 0.2 * (x1 - x0))
    above = area[around & (cy < top) & (cy > top - 0.9 * (x1 - x0))].sum()
    below = area[around & (cy > bottom) & (cy < bottom + 0.9 * (x1 - x0))].sum()
    sides = 0.0
    for b, sel in zip(group, in_bars):
        third = (b.x1 - b.x0) / 3
        left = area[sel & (cx < b.x0 + third)].sum()
        right = area[sel & (cx > b.x1 - third)].sum()
        sides += (left - right) / max(left + right, 1)
    score = (above - below) / max(above + below, 1) + 0.5 * sides / len(group)
    # Cut each line from the full-resolution image, its angle refined on its own characters.
    inv = cv2.invertAffineTransform(m)
    lines = []
    full_h = mrz_h / s
    gx0, gx1 = min(b.x0 for b in group), max(b.x1 for b in group)   # MRZ lines are equally long
    for b, sel in zip(group, in_bars):
        b = _Bar(gx0, gx1, b.yc, b.h)
        pts = cent[1:][sel]
        slope = 0.0
        if len(pts) >= 8:
            slope = float(np.polyfit(pts[:, 0], pts[:, 1], 1)[0])
        line_angle = angle + math.degrees(math.atan(slope))
        centre = inv @ np.array([(b.x0 + b.x1) / 2, b.yc, 1.0])
        lines.append(_strip(grey, centre / s, (b.length + 2.0 * mrz_h) / s, full_h, line_angle))
    band = Band(tuple(lines), angle % 360.0, full_h, float(score))
    return band if score >= 0 else band.flipped()


def _strip(grey: np.ndarray, centre, length: float, char_h: float, angle: float) -> np.ndarray:
    """A LINE_HEIGHT_PX-high strip of `grey` along a line at `angle` degrees through `centre`."""
    crop_h = char_h * CROP_HEIGHT_FACTOR
    scale = LINE_HEIGHT_PX / crop_h
    out_w = max(8, int(round(length * scale)))
    th = math.radians(angle)
    # Output (u, v) -> input: centre + (u' (cos, sin) + v' (-sin, cos)) / scale, u' v' from the strip's centre
    c, s_ = math.cos(th), math.sin(th)
    a = np.array([[c, -s_], [s_, c]]) / scale
    offset = np.array(centre[:2]) - a @ np.array([out_w / 2, LINE_HEIGHT_PX / 2])
    m = np.hstack([a, offset[:, None]]).astype(np.float64)
    return cv2.warpAffine(grey, m, (out_w, LINE_HEIGHT_PX), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
