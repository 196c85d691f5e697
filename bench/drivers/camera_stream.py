"""Camera benchmark: MJPEG face stream through the Camera driver, scene rendering, recovery after a cut.

Each figure is printed with a ratio to a baseline measured in the same run:
- frames/s through Camera (grabber thread, latest frame) vs a bare cv2.VideoCapture loop on the same URL;
- render time of each scene vs JPEG-encoding the frame (what the server must do anyway);
- connection cut -> next frame at the driver vs the driver's first backoff delay.

  .venv/bin/python -m bench.drivers.camera_stream [--fps 30] [--seconds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2

from bench.timing import timed
from drivers.camera.driver import Camera
from core import logs
from simulators.camera import SCENES, CameraSim


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args(argv)
    logs.configure(level="warning", stream=sys.stderr)
    rows = []
    with CameraSim(fps=args.fps, scene="traveller") as sim:
        cap = cv2.VideoCapture(sim.url, cv2.CAP_FFMPEG)
        cap.read()
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < args.seconds:
            n += bool(cap.read()[0])
        cap.release()
        direct = n / (time.perf_counter() - start)

        cam = Camera(sim.url, backoff_initial_s=0.05).start()
        try:
            frame = cam.wait_frame(0, 5)
            first = frame.seq
            start = time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                frame = cam.wait_frame(frame.seq, 2)
            driver = (frame.seq - first) / (time.perf_counter() - start)
            rows.append((f"frames/s through Camera, sim at {args.fps:g} fps, 640x480", f"{driver:.1f}/s",
                         f"bare VideoCapture loop: {direct:.1f}/s", driver / direct))

            cuts = []
            for _ in range(3):
                seq = cam.latest().seq
                t0 = time.perf_counter()
                sim.faults.inject("unplug", duration_s=0.0)
                cam.wait_frame(seq + 1, 5)
                cuts.append(time.perf_counter() - t0)
                sim.faults.clear("unplug")
            cut = statistics.median(cuts)
            rows.append(("connection cut -> next frame at the driver", f"{cut * 1000:.0f} ms",
                         f"first backoff: {cam.backoff_initial_s * 1000:.0f} ms", cut / cam.backoff_initial_s))
        finally:
            cam.stop()

        frame = sim.renderer.render("traveller", 1.0)
        encode = timed(lambda: cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85]), 20)
        for scene in SCENES:
            t = iter(range(1000))
            render = timed(lambda: sim.renderer.render(scene, next(t) / 10), 20)
            rows.append((f"render scene {scene}", f"{render * 1000:.1f} ms", f"JPEG encode: {encode * 1000:.1f} ms",
                         render / encode))
    for name, value, baseline, ratio in rows:
        print(f"{name:50s} {value:>10s}   baseline {baseline:32s} ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
