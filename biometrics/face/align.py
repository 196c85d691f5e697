"""Five-point alignment to the 112x112 crop SFace was trained on.

The destination points are the ArcFace/SFace template (the same numbers OpenCV's
`FaceRecognizerSF.alignCrop` uses); the transform is the least-squares similarity
(rotation, uniform scale, translation; Umeyama 1991), so the face is never sheared.
"""
from __future__ import annotations

import cv2
import numpy as np

SIZE = 112
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)


def similarity(src: np.ndarray, dst: np.ndarray = TEMPLATE) -> np.ndarray:
    """2x3 matrix of the similarity that maps `src` points onto `dst` in least squares."""
    src = np.asarray(src, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sigma) @ sign) / s.var(0).sum()
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112x112 BGR crop of the face whose five landmarks are given."""
    return cv2.warpAffine(image, similarity(landmarks), (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
