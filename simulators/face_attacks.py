"""Synthetic capture of bona fide faces and of presentation attacks, made from real photos.

There is no public presentation-attack data in the registries, so the PAD module is
evaluated on frames synthesised here from the real photos of `biometrics.assets`:

* `capture`: what the gate camera makes of a scene: framing in 640x480, small
  perspective jitter, lens blur, sensor noise, JPEG.
* `print_attack`: the photo printed (ink gamut: lifted blacks, lower saturation;
  a halftone screen; paper grain) and held up to the camera, possibly tilted.
* `screen_replay`: the photo shown on a phone or tablet (RGB sub-pixel grid,
  backlight gamma and blue cast, a glare patch) and held up to the camera.
* `head_turn`: a bona fide head turn rendered from a frontal photo with a 2.5-D
  head (ellipsoid plus nose), so that the landmarks move with parallax as a real head's do.
* `close_eyes`: lids painted over both eyes (cheek colour plus a lash line), for blinks.
* `flat_turn`: the same angle applied to a flat print (a plane rotating about its
  vertical axis), which is what an attacker can do with a photo.

These are models of attacks, not attacks: the PAD figures measured on them say the
cues work on what we synthesised, nothing about a determined attacker.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from biometrics.face.align import TEMPLATE, similarity

FRAME = (640, 480)


def frame_around(image: np.ndarray, landmarks: np.ndarray, ied_px: float = 80.0,
                 size: tuple[int, int] = FRAME) -> tuple[np.ndarray, np.ndarray]:
    """Scale and shift a photo so the face sits in the middle of a camera frame."""
    ied = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    s = ied_px / ied
    centre = landmarks[:3].mean(0)
    m = np.array([[s, 0, size[0] / 2 - s * centre[0]], [0, s, size[1] * 0.45 - s * centre[1]]])
    framed = cv2.warpAffine(image, m, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    return framed, (landmarks @ m[:, :2].T + m[:, 2]).astype(np.float32)


def _perspective(image: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    h, w = image.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = (src + rng.uniform(-amount, amount, src.shape) * [w, h]).astype(np.float32)
    return cv2.warpPerspective(image, cv2.getPerspectiveTransform(src, dst), (w, h),
                               borderMode=cv2.BORDER_REFLECT)


def capture(scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The gate camera's view of a scene: jitter, blur, noise and JPEG."""
    frame = _perspective(scene, rng, 0.01)
    frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.5, 1.0))
    noise = rng.normal(0, rng.uniform(2.0, 4.0), frame.shape)
    frame = np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    quality = int(rng.integers(80, 95))
    return cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1],
                        cv2.IMREAD_COLOR)


def _held_up(medium: np.ndarray, rng: np.random.Generator, background: float) -> np.ndarray:
    """A sheet or device held in front of the camera: shrunk a little, tilted, on a background."""
    h, w = medium.shape[:2]
    scale = rng.uniform(0.85, 1.0)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = (src - [w / 2, h / 2]) * scale + [w / 2, h / 2]
    dst = (dst + rng.uniform(-0.04, 0.04, dst.shape) * [w, h]).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    scene = np.full_like(medium, int(background))
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, (w, h))
    warped = cv2.warpPerspective(medium, m, (w, h))
    scene[mask > 0] = warped[mask > 0]
    return scene


def print_attack(framed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A colour print of the framed photo, held up and captured."""
    img = framed.astype(np.float32) / 255.0
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.55, 0.8)           # ink gamut: less saturated
    img = 0.08 + 0.84 * img ** rng.uniform(0.8, 0.95)            # paper white, lifted blacks
    period = rng.uniform(2.6, 3.6)                              # halftone screen at camera scale
    angle = math.radians(rng.uniform(10, 40))
    yy, xx = np.mgrid[:img.shape[0], :img.shape[1]].astype(np.float32)
    u = (xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period
    v = (-xx * math.sin(angle) + yy * math.cos(angle)) * 2 * math.pi / period
    screen = 0.5 + 0.25 * (np.cos(u) + np.cos(v))
    img = img * (1 + 0.3 * (screen[..., None] - 0.5))
    img += rng.normal(0, 0.012, img.shape[:2])[..., None]        # paper grain, colourless
    printed = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return capture(_held_up(printed, rng, rng.uniform(40, 200)), rng)


def screen_replay(framed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The framed photo shown on a phone/tablet screen, held up and captured."""
    img = framed.astype(np.float32) / 255.0
    img = img ** rng.uniform(0.75, 0.9)                          # backlight: brighter mid-tones
    img[..., 0] *= rng.uniform(1.05, 1.15)                        # blue cast (BGR)
    img[..., 2] *= rng.uniform(0.9, 0.97)
    period = rng.uniform(2.2, 3.2)                                # sub-pixel stripes at camera scale
    xx = np.arange(img.shape[1], dtype=np.float32)
    for channel, phase in ((2, 0.0), (1, 1 / 3), (0, 2 / 3)):
        stripes = 0.5 + 0.5 * np.cos(2 * math.pi * (xx / period - phase))
        img[..., channel] *= (0.7 + 0.3 * stripes)[None, :]
    yy = np.arange(img.shape[0], dtype=np.float32)
    img *= (0.85 + 0.15 * (np.cos(2 * math.pi * yy / period) > -0.6))[:, None, None]
    h, w = img.shape[:2]
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    gy, gx = np.mgrid[:h, :w]
    glare = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * (0.12 * w) ** 2))
    img += rng.uniform(0.15, 0.35) * glare[..., None]
    shown = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return capture(_held_up(shown, rng, rng.uniform(10, 60)), rng)


def _depth(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """Depth in pixels of a head seen from the front: ellipsoid skull plus a nose."""
    ied = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    cx = float(landmarks[[0, 1, 3, 4], 0].mean())
    cy = float(landmarks[2, 1])
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    a, b, c = 1.05 * ied, 1.5 * ied, 0.9 * ied
    inside = 1 - ((xx - cx) / a) ** 2 - ((yy - cy) / b) ** 2
    head = c * np.sqrt(np.clip(inside, 0, None))
    nose = 0.45 * ied * np.exp(-(((xx - landmarks[2, 0]) ** 2) / (2 * (0.16 * ied) ** 2)
                                 + ((yy - (landmarks[2, 1] - 0.2 * ied)) ** 2) / (2 * (0.35 * ied) ** 2)))
    return head + nose * (inside > 0)


def head_turn(framed: np.ndarray, landmarks: np.ndarray, yaw_deg: float) -> np.ndarray:
    """A frontal head turned by yaw_deg (positive: to the subject's left, nose to image right)."""
    depth = _depth(framed.shape[:2], landmarks)
    t = math.radians(yaw_deg)
    cx = float(landmarks[[0, 1, 3, 4], 0].mean())
    yy, xx = np.mgrid[:framed.shape[0], :framed.shape[1]].astype(np.float32)
    # Forward: x' = cx + (x - cx) cos t + z sin t.  Inverted with the depth at the output point
    # (a fixed-point step), good for the moderate angles a challenge asks for.
    src_x = cx + (xx - cx - depth * math.sin(t)) / math.cos(t)
    src_x = cx + (xx - cx - _sample(depth, src_x, yy) * math.sin(t)) / math.cos(t)
    return cv2.remap(framed, src_x, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _sample(values: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return cv2.remap(values.astype(np.float32), x.astype(np.float32), y.astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def flat_turn(framed: np.ndarray, yaw_deg: float, focal: float = 700.0) -> np.ndarray:
    """A flat photo rotated about its vertical axis in front of the camera (perspective)."""
    h, w = framed.shape[:2]
    t = math.radians(yaw_deg)
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    projected = []
    for x, y in corners - [w / 2, h / 2]:
        xr, zr = x * math.cos(t), x * math.sin(t) + focal
        projected.append([focal * xr / zr + w / 2, focal * y / zr + h / 2])
    m = cv2.getPerspectiveTransform(corners, np.float32(projected))
    return cv2.warpPerspective(framed, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _to_image(points112, landmarks: np.ndarray) -> np.ndarray:
    """SFace-template points mapped back into the photo."""
    inverse = np.linalg.inv(np.vstack([similarity(landmarks), [0, 0, 1]]))[:2]
    return np.asarray(points112, np.float64) @ inverse[:, :2].T + inverse[:, 2]


def close_eyes(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Both eyes covered by lids in the cheek's colour, with a thin lash line."""
    out = image.copy()
    ied = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    for eye in TEMPLATE[:2]:
        cheek = _to_image([(eye[0], eye[1] + 16)], landmarks)[0].astype(int)
        r = max(2, int(ied * 0.05))
        colour = np.median(image[cheek[1] - r:cheek[1] + r, cheek[0] - r:cheek[0] + r].reshape(-1, 3), axis=0)
        lid = [(eye[0] + 9 * np.cos(a), eye[1] + 5 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 30)]
        cv2.fillPoly(out, [_to_image(lid, landmarks).astype(np.int32)], tuple(float(c) for c in colour),
                     cv2.LINE_AA)
        lash = _to_image([(eye[0] - 8, eye[1] + 2), (eye[0], eye[1] + 3.5), (eye[0] + 8, eye[1] + 2)], landmarks)
        cv2.polylines(out, [lash.astype(np.int32)], False, (40, 35, 35), max(1, int(ied * 0.015)), cv2.LINE_AA)
    return out
