"""Page scanner simulator: a document camera looking at the reader's glass, served like the face
camera (MJPEG over HTTP on 127.0.0.1, `simulators.camera.CameraSim`'s server, faults and all).

`place(spec)` lays a data page on the glass (`simulators.page_render.PageSpec`: the document, its
angle, glare, blur...; rendered once), `place_document(lines, person)` does it for an MRZ of the
lane at a random angle, `remove()` takes it away: the empty glass is dark.

    sim = PageScannerSim().start(); sim.place_document(doc.mrz_lines, "lin"); cv2.VideoCapture(sim.url)
"""
from __future__ import annotations

import random

import numpy as np

from simulators import page_render
from simulators.camera import CameraSim


class PageScannerSim(CameraSim):
    name = "page_scanner"

    def __init__(self, *, port: int = 0, fps: float = 4.0, seed: int = 0, quality: int = 92):
        super().__init__(port=port, fps=fps, size=(page_render.SCENE_PX, page_render.SCENE_PX), seed=seed,
                         quality=quality)
        self.rng = random.Random(seed)
        self.page: np.ndarray | None = None
        self.spec: page_render.PageSpec | None = None
        glass = np.random.default_rng(seed).normal(30, 4, (page_render.SCENE_PX, page_render.SCENE_PX, 1))
        self.glass = np.repeat(np.clip(glass, 0, 255).astype(np.uint8), 3, axis=2)

    def place(self, spec: page_render.PageSpec) -> None:
        self.page, self.spec = page_render.render(spec), spec

    def place_document(self, lines, person: str, angle: float | None = None, **kw) -> page_render.PageSpec:
        """A page with this MRZ (TD1/TD2/TD3 by its shape) for `person` of the lane, at `angle`
        (default: random) with the page renderer's random glare, blur, noise and JPEG."""
        fmt = {3: "TD1", 2: "TD3" if len(lines[0]) == 44 else "TD2"}[len(lines)]
        spec = page_render.PageSpec(fmt, tuple(lines), person, self.rng.uniform(0, 360) if angle is None else angle,
                                    self.rng.randrange(1 << 30), **kw)
        self.place(spec)
        return spec

    def remove(self) -> None:
        self.page, self.spec = None, None

    def render(self, t: float | None = None) -> np.ndarray:
        return self.glass if self.page is None else self.page

    def control(self, request: dict) -> dict:
        return self.faults.control(request, {"remove": self.remove})
