"""Passport and ID-card data pages, rendered as a page scanner sees them.

`render_page(spec)` draws one data page (TD1 card, TD2 card or TD3 passport page) at 10 px/mm
(254 dpi): a guilloche background, the holder's photo, the printed fields and the MRZ in OCR-B
(Debian `fonts-ocr-b`, public domain). `place_on_glass(page, spec)` lays it on the scanner's glass
at any angle with a little perspective, and degrades it as a document camera does: blur (motion
blur on some), sensor noise, glare (a bright blob, on the MRZ in some scenes) and JPEG.

`generate(n, seed)` yields `Sample`s across TD1/TD2/TD3 and the angles 0, 15, 45, 90, 135, 180,
270 (each +-2 degrees) and uniformly random ones: the test set of `bench/mrz_ocr.py` and of the
tests, made at run time and never committed. The holders come from the lane's people database
(`simulators.lane.PEOPLE`: names, nationality, sex, birth date, photo); each page gets its own
document number, mixing the look-alikes O/0, I/1 and S/5 on purpose, and its own expiry date.

    python -m simulators.page_render --out /tmp/pages --count 300 --seed 1
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import random
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from icao9303 import mrz as mrzmod

OCRB_FONT = Path("/usr/share/fonts/opentype/ocr-b/OCRB.otf")   # Debian fonts-ocr-b
PX_PER_MM = 10.0
FORMATS = ("TD1", "TD2", "TD3")
#: Page size (mm), characters per MRZ line, MRZ line pitch (mm), MRZ left margin (mm), bottom margin (mm).
GEOMETRY = {"TD1": ((85.6, 54.0), 30, 4.4, 4.6, 2.8),
            "TD2": ((105.0, 74.0), 36, 5.6, 6.3, 3.8),
            "TD3": ((125.0, 88.0), 44, 5.6, 6.3, 3.8)}
MRZ_PITCH_MM = 2.54          # ICAO 9303-3: 10 characters per inch
MRZ_CAP_MM = 2.35            # OCR-B size 1 characters are 2.0 to 2.6 mm tall
FIXED_ANGLES = (0, 15, 45, 90, 135, 180, 270)
SCENE_PX = 1600


class RenderError(RuntimeError):
    """The OCR-B font is missing (install Debian fonts-ocr-b: scripts/setup.sh does)."""


@dataclass(frozen=True)
class PageSpec:
    """Everything that decides one image: the document and how it lies on the glass."""
    format: str
    lines: tuple[str, ...]        # the MRZ printed on the page (the truth)
    person: str                   # key in simulators.lane.PEOPLE
    angle: float                  # degrees, counter-clockwise, of the page on the glass
    seed: int
    glare: str = "random"         # random | none | mrz | line1 (a blob hiding MRZ line 1)
    blur: float | None = None     # sigma; None: drawn from the seed
    jpeg: int | None = None       # quality; None: drawn from the seed

    @property
    def bucket(self) -> int:
        """The 45-degree bucket the angle falls in (0, 45, ..., 315), centred on multiples of 45."""
        return int(((self.angle % 360) + 22.5) // 45) % 8 * 45


@dataclass(frozen=True)
class Sample:
    spec: PageSpec
    image: np.ndarray             # BGR uint8, SCENE_PX x SCENE_PX


# ----------------------------------------------------------------------------- documents

def _document_number(rng: random.Random) -> str:
    """Nine characters mixing letters and digits, with the look-alikes O/0, I/1, S/5 often."""
    hard = "O0I1S5"
    pool = "ABCDEFGHJKLMNPRTUVWXYZ0123456789"
    out = [rng.choice(pool) for _ in range(9)]
    for i in rng.sample(range(9), rng.randint(1, 4)):
        out[i] = rng.choice(hard)
    if rng.random() < 0.3:
        out = list(rng.choice("ABCDEFGHNPX")) + [rng.choice("0123456789") for _ in range(8)]
    return "".join(out)


def mrz_for(fmt: str, person_key: str, rng: random.Random, today: dt.date | None = None) -> list[str]:
    """A valid MRZ of format `fmt` for a person of the lane, with a fresh number and expiry."""
    from simulators.lane import person

    p = person(person_key)
    today = today or dt.date.today()
    expiry = today + dt.timedelta(days=rng.randint(30, 3650))
    fields = dict(issuer=p.nationality, surname=p.surname, given_names=p.given_names,
                  document_number=_document_number(rng), nationality=p.nationality, birth_date=p.birth_date,
                  sex=p.sex, expiry_date=expiry.strftime("%y%m%d"))
    if fmt == "TD3":
        personal = "" if rng.random() < 0.5 else "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 12)))
        return mrzmod.compose_td3(personal_number=personal, **fields)
    optional = "" if rng.random() < 0.6 else "".join(rng.choice("0123456789") for _ in range(6))
    if fmt == "TD2":
        return mrzmod.compose_td2(optional_data=optional, **fields)
    return mrzmod.compose_td1(optional_data=optional, **fields)


# ----------------------------------------------------------------------------- the page

@lru_cache(maxsize=8)
def _font(size: int, path: str = str(OCRB_FONT)) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, size)
    except OSError as exc:
        raise RenderError(f"cannot load the OCR-B font {path}: install Debian fonts-ocr-b ({exc})") from None


@lru_cache(maxsize=1)
def _mrz_font_size() -> int:
    """The font size whose capital letters are MRZ_CAP_MM tall."""
    probe = _font(100)
    box = probe.getbbox("H")
    return round(100 * MRZ_CAP_MM * PX_PER_MM / (box[3] - box[1]))


@lru_cache(maxsize=16)
def _portrait(person_key: str) -> np.ndarray:
    from simulators.lane import _group_face, _read, person

    from biometrics import assets
    name = person(person_key).passport_photo
    return _group_face(int(name.split(":")[1])) if name.startswith("group:") else _read(assets.path(name))


def _guilloche(h: int, w: int, rng: random.Random) -> np.ndarray:
    """A pale security background: interfering sine rosettes and waves in two tints."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    tint = np.array([rng.uniform(215, 245), rng.uniform(220, 245), rng.uniform(225, 250)], np.float32)
    img = np.ones((h, w, 3), np.float32) * tint
    ink = np.array([rng.uniform(120, 200), rng.uniform(120, 190), rng.uniform(140, 220)], np.float32)
    for _ in range(3):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = np.hypot(x - cx, y - cy)
        th = np.arctan2(y - cy, x - cx)
        k, m, f = rng.uniform(0.04, 0.09), rng.randint(6, 14), rng.uniform(10, 30)
        wave = np.abs(np.sin(k * r + f * np.sin(m * th) * 0.1))
        line = np.clip(1 - wave / 0.12, 0, 1) * rng.uniform(0.25, 0.45)
        img -= line[..., None] * (tint - ink)
    for _ in range(2):
        k, a, ph = rng.uniform(0.02, 0.05), rng.uniform(10, 40), rng.uniform(0, 6.3)
        wave = np.abs(np.sin(k * x + a * 0.05 * np.sin(0.01 * y + ph) + 0.07 * y))
        img -= (np.clip(1 - wave / 0.1, 0, 1) * 0.2)[..., None] * (tint - ink)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_page(spec: PageSpec) -> np.ndarray:
    """The flat data page (BGR, 10 px/mm)."""
    from simulators.lane import person

    rng = random.Random(spec.seed)
    (wmm, hmm), nchars, pitch_mm, left_mm, bottom_mm = GEOMETRY[spec.format]
    w, h = round(wmm * PX_PER_MM), round(hmm * PX_PER_MM)
    page = _guilloche(h, w, rng)
    nlines = len(spec.lines)
    mrz_top = h - (bottom_mm + nlines * pitch_mm + 1.0) * PX_PER_MM
    # The photo, left, above the MRZ.
    ph = int(min(mrz_top - 10 * PX_PER_MM, 45 * PX_PER_MM) if spec.format != "TD1" else mrz_top - 8 * PX_PER_MM)
    pw = int(ph * 0.78)
    photo = cv2.resize(_portrait(spec.person), (pw, ph), interpolation=cv2.INTER_AREA)
    px, py = int(5 * PX_PER_MM), int(mrz_top - ph - 3 * PX_PER_MM)
    page[py:py + ph, px:px + pw] = (0.85 * photo + 0.15 * page[py:py + ph, px:px + pw]).astype(np.uint8)
    pil = Image.fromarray(cv2.cvtColor(page, cv2.COLOR_BGR2RGB))
    draw = ImageDraw.Draw(pil)
    p = person(spec.person)
    m = mrzmod.parse(list(spec.lines), strict=False)
    title = {"TD3": "PASSPORT", "TD2": "IDENTITY CARD", "TD1": "IDENTITY CARD"}[spec.format]
    draw.text((px, int(3 * PX_PER_MM)), f"{title}  {p.nationality}", font=_font(int(4 * PX_PER_MM)), fill=(40, 40, 90))
    fx, fy = px + pw + int(5 * PX_PER_MM), py
    label, value = _font(int(2.0 * PX_PER_MM)), _font(int(3.0 * PX_PER_MM))
    rows = [("Surname", p.surname), ("Given names", p.given_names), ("Nationality", p.nationality),
            ("Date of birth", m.birth_date.strftime("%d %b %Y").upper() if m.birth_date else "-"),
            ("Sex", p.sex), ("Document no.", m.document_number),
            ("Date of expiry", m.expiry_date.strftime("%d %b %Y").upper() if m.expiry_date else "-")]
    step = (mrz_top - fy - 3 * PX_PER_MM) / len(rows)
    for i, (k, v) in enumerate(rows):
        y = fy + i * step
        if y + step > mrz_top:
            break
        draw.text((fx, y), k, font=label, fill=(90, 70, 70))
        draw.text((fx, y + 2.2 * PX_PER_MM), v, font=value, fill=(20, 20, 30))
    # The MRZ: every character centred in its 2.54 mm cell (OCR-B is monospaced anyway).
    font = _font(_mrz_font_size())
    cell = MRZ_PITCH_MM * PX_PER_MM
    x0 = left_mm * PX_PER_MM
    ink = tuple(int(v) for v in np.clip(np.array([15, 15, 20]) + rng.randint(0, 25), 0, 255))
    for li, line in enumerate(spec.lines):
        baseline = h - (bottom_mm + (nlines - 1 - li) * pitch_mm) * PX_PER_MM
        for ci, c in enumerate(line):
            cx = x0 + (ci + 0.5) * cell
            draw.text((cx, baseline), c, font=font, fill=ink, anchor="ms")
    return cv2.cvtColor(np.asarray(pil), cv2.COLOR_RGB2BGR)


def mrz_box(spec: PageSpec) -> tuple[float, float, float, float]:
    """The MRZ's box on the flat page (x0, y0, x1, y1 in px), and so where glare may fall."""
    (wmm, hmm), nchars, pitch_mm, left_mm, bottom_mm = GEOMETRY[spec.format]
    h = hmm * PX_PER_MM
    n = len(spec.lines)
    y0 = h - (bottom_mm + (n - 1) * pitch_mm + MRZ_CAP_MM + 0.6) * PX_PER_MM
    y1 = h - (bottom_mm - 0.6) * PX_PER_MM
    x0 = left_mm * PX_PER_MM
    return x0, y0, x0 + nchars * MRZ_PITCH_MM * PX_PER_MM, y1


# ----------------------------------------------------------------------------- the scene

def _glare(page_shape, spec: PageSpec, rng: random.Random) -> np.ndarray | None:
    """A float mask 0..strength of a bright blob on the flat page, or None."""
    mode = spec.glare
    if mode == "random":
        mode = rng.choice(["none", "none", "page", "mrz", "mrz"]) if rng.random() < 0.6 else "none"
    if mode == "none":
        return None
    h, w = page_shape[:2]
    x0, y0, x1, y1 = mrz_box(spec)
    pitch = GEOMETRY[spec.format][2] * PX_PER_MM
    if mode == "line1":
        cx, cy = (x0 + x1) / 2, y0 + 1.6 * PX_PER_MM
        ax, ay, strength = (x1 - x0) * 0.75, pitch * 0.55, 0.97
    elif mode == "mrz":
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        ax, ay = rng.uniform(60, 200), rng.uniform(25, 70)
        strength = rng.uniform(0.55, 0.92)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h * 0.7)
        ax, ay = rng.uniform(80, 300), rng.uniform(40, 160)
        strength = rng.uniform(0.55, 0.92)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    d = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2
    return (strength * np.exp(-d * d * (1.5 if mode == "line1" else 1.0))).astype(np.float32)


def place_on_glass(page: np.ndarray, spec: PageSpec) -> np.ndarray:
    """The page on a dark scanner glass, rotated by `spec.angle` with up to 2.5 % perspective,
    then glare, blur, noise and JPEG, as the scanner delivers it."""
    rng = random.Random(spec.seed * 7919 + 1)
    glare = _glare(page.shape, spec, rng)
    if glare is not None:
        page = (page.astype(np.float32) + (255 - page.astype(np.float32)) * glare[..., None]).astype(np.uint8)
    h, w = page.shape[:2]
    size = SCENE_PX
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    th = math.radians(spec.angle)
    rot = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]], np.float32)
    centred = (corners - [w / 2, h / 2]) @ rot.T
    jitter = np.float32([[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(4)]) * 0.025 * max(w, h) / 2
    margin = size / 2 - np.abs(centred + jitter).max() - 8
    shift = np.float32([size / 2 + rng.uniform(-1, 1) * max(0, margin) * 0.8,
                        size / 2 + rng.uniform(-1, 1) * max(0, margin) * 0.8])
    target = centred + jitter + shift
    m = cv2.getPerspectiveTransform(corners, target.astype(np.float32))
    base = rng.randint(15, 60)
    glass = np.full((size, size, 3), base, np.uint8)
    scene = cv2.warpPerspective(page, m, (size, size), dst=glass, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_TRANSPARENT)
    sigma = spec.blur if spec.blur is not None else rng.uniform(0.5, 1.3)
    if rng.random() < 0.2:
        k = max(3, int(sigma * 4) | 1)
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rm = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rm, (k, k))
        scene = cv2.filter2D(scene, -1, kernel / max(kernel.sum(), 1e-6))
    else:
        scene = cv2.GaussianBlur(scene, (0, 0), sigma)
    nrng = np.random.default_rng(spec.seed)
    noise = nrng.normal(0, rng.uniform(2, 7), scene.shape).astype(np.float32)
    scene = np.clip(scene.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    quality = spec.jpeg if spec.jpeg is not None else rng.randint(55, 85)
    return cv2.imdecode(cv2.imencode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


def render(spec: PageSpec) -> np.ndarray:
    return place_on_glass(render_page(spec), spec)


# ----------------------------------------------------------------------------- test sets

def specs(n: int, seed: int = 0, *, random_share: float = 0.3) -> list[PageSpec]:
    """`n` page specs: formats in the ratio TD3 2 : TD1 1 : TD2 1, angles cycling through
    FIXED_ANGLES (each +-2 degrees), and `random_share` of them at a uniformly random angle."""
    from simulators.lane import PEOPLE

    rng = random.Random(seed)
    out = []
    fixed = 0
    for i in range(n):
        fmt = ("TD3", "TD1", "TD3", "TD2")[i % 4]
        if rng.random() < random_share:
            angle = rng.uniform(0, 360)
        else:
            angle = FIXED_ANGLES[fixed % len(FIXED_ANGLES)] + rng.uniform(-2, 2)
            fixed += 1
        who = PEOPLE[rng.randrange(len(PEOPLE))].key
        page_seed = rng.randrange(1 << 30)
        lines = tuple(mrz_for(fmt, who, random.Random(page_seed)))
        out.append(PageSpec(fmt, lines, who, round(angle, 2), page_seed))
    return out


def generate(n: int, seed: int = 0, **kw):
    """Yield `Sample`s (spec and image) for `specs(n, seed)`."""
    for spec in specs(n, seed, **kw):
        yield Sample(spec, render(spec))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.page_render",
                                     description="render synthetic passport/ID data pages as a page scanner sees them")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "truth.jsonl", "w") as truth:
        for i, s in enumerate(generate(args.count, args.seed)):
            name = f"{i:04d}_{s.spec.format}_{int(s.spec.angle):03d}.jpg"
            cv2.imwrite(str(args.out / name), s.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            truth.write(json.dumps({"file": name, **dataclasses.asdict(s.spec)}) + "\n")
    print(f"{args.count} pages in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
