"""Fingerprint benchmark: synthetic generator speed, genuine/impostor separation, capture over a real pty.

Each figure is printed with a ratio to a baseline measured in the same run:
- master print: separable Gabor growth, vs the same growth with 2-D filter2D kernels;
- impression: vs one 2-D Gabor filtering pass of a 300 x 400 image;
- bozorth3: lowest genuine score and highest impostor score, vs the usual threshold 40;
- capture: FingerprintScanner.capture() (detect, capture, 120 KB upload, reassembly), vs pushing
  the same 120,000 bytes through a pty with no protocol;
- parser: PacketParser throughput on an image stream, vs summing the same bytes (the checksum alone).

  .venv/bin/python -m bench.drivers.fingerprint_link [--fingers 10] [--captures 20]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import tty

import cv2
import nbis
import numpy as np

from bench.timing import timed
from drivers.fingerprint import protocol as p
from drivers.fingerprint.driver import FingerprintScanner
from core import logs
from simulators import fingerprint_synth as synth
from simulators.fingerprint_scanner import FingerprintScannerSim


def growth_with_2d_kernels(seed: int) -> None:
    """The baseline: the generator's growth loop with full 2-D kernels (filter2D) instead of separable ones."""
    bank = synth._gabor_bank()
    full = [[np.outer(ay, ax) + np.outer(by, bx) for (ax, ay), (bx, by) in row] for row in bank]
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, np.pi, (synth.HEIGHT, synth.WIDTH)).astype(np.float32)
    img = (rng.random(theta.shape) < 0.004).astype(np.float32)
    bins = (theta * synth._ORIENTATIONS / np.pi).astype(int) % synth._ORIENTATIONS
    for _ in range(synth._GROWTH_ITERATIONS):
        out = np.zeros_like(img)
        for j in range(synth._ORIENTATIONS):
            w = (bins == j).astype(np.float32)
            out += w * cv2.filter2D(img, -1, full[0][j]) + w * cv2.filter2D(img, -1, full[1][j])
        img = np.clip(out * 6, -1, 1)


def bozorth(fingers: int) -> tuple[list[int], list[int], float]:
    gen = synth.FingerGenerator(seed=2024)
    ex = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(min_quality=0.0, get_center=False, check_fingerprint=False,
                                                            compute_nfiq2=False, ppi=500.0))
    templates, extract = {}, []
    for f in range(fingers):
        for i in (0, 1):
            png = cv2.imencode(".png", gen.impression(f, i))[1].tobytes()
            start = time.perf_counter()
            templates[f, i] = ex.extract_minutiae(png)
            extract.append(time.perf_counter() - start)
    genuine = [templates[f, 0].compare(templates[f, 1]) for f in range(fingers)]
    impostor = [templates[f, 0].compare(templates[g, 1]) for f in range(fingers) for g in range(fingers) if g != f]
    return genuine, impostor, statistics.median(extract)


def raw_pty_transfer(nbytes: int) -> float:
    master, slave = os.openpty()
    tty.setraw(slave)
    data = bytes(nbytes)
    try:
        start = time.perf_counter()
        writer = threading.Thread(target=_write_all, args=(master, data))
        writer.start()
        got = 0
        while got < nbytes:
            got += len(os.read(slave, 65536))
        writer.join()
        return time.perf_counter() - start
    finally:
        os.close(master)
        os.close(slave)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fingers", type=int, default=10)
    ap.add_argument("--captures", type=int, default=20)
    args = ap.parse_args(argv)
    logs.configure(level="warning", stream=sys.stderr)
    rows = []

    gen = synth.FingerGenerator(seed=1)
    ids = iter(range(10_000))
    master = timed(lambda: gen.master(next(ids)), 5)
    baseline_master = timed(lambda: growth_with_2d_kernels(1), 2)
    rows.append(("master print 300x400 (class, orientation, 7 Gabor growth iterations)", f"{master * 1000:.0f} ms",
                 f"2-D filter2D growth: {baseline_master * 1000:.0f} ms", baseline_master / master))

    gen.master(0)
    n = iter(range(10_000))
    impression = timed(lambda: gen.impression(0, next(n)), 20)
    kernel = np.outer(*synth._gabor_bank()[0][0][0])
    one_pass = timed(lambda: cv2.filter2D(gen.master(0).ridges, -1, kernel), 20)
    rows.append(("impression (distortion, pressure, skin, contact, noise)", f"{impression * 1000:.1f} ms",
                 f"one 2-D Gabor pass: {one_pass * 1000:.1f} ms", impression / one_pass))

    genuine, impostor, extract = bozorth(args.fingers)
    rows.append((f"bozorth3 genuine scores, {args.fingers} fingers (min / median)",
                 f"{min(genuine)} / {statistics.median(genuine):.0f}", "threshold 40", min(genuine) / 40))
    rows.append((f"bozorth3 impostor scores, {len(impostor)} pairs (max / median)",
                 f"{max(impostor)} / {statistics.median(impostor):.0f}", "threshold 40", max(impostor) / 40))
    rows.append(("mindtct extraction per impression (nbis-py)", f"{extract * 1000:.0f} ms", "impression generation",
                 extract / impression))

    with FingerprintScannerSim(seed=1, generator=gen) as sim:
        scanner = FingerprintScanner(sim.path).start()
        try:
            scanner.connect(timeout_s=3)
            sim.place_finger(0)
            capture = timed(lambda: scanner.capture(timeout_s=5), args.captures)
        finally:
            scanner.stop()
    raw = statistics.median(raw_pty_transfer(synth.WIDTH * synth.HEIGHT) for _ in range(5))
    rows.append(("capture() over a pty, zero-latency sim (incl. impression generation)", f"{capture * 1000:.0f} ms",
                 f"raw 120 KB through a pty: {raw * 1000:.1f} ms", capture / raw))

    stream = b"".join(p.image_packets(bytes(range(256)) * 469))
    parse = timed(lambda: p.PacketParser().feed(stream), 10)
    checksum = timed(lambda: sum(stream), 10)
    rows.append(("PacketParser on an image stream", f"{len(stream) / parse / 1e6:.0f} MB/s",
                 f"sum() of the same bytes: {len(stream) / checksum / 1e6:.0f} MB/s", checksum / parse))

    for name, value, baseline, ratio in rows:
        print(f"{name:75s} {value:>14s}   baseline {baseline:40s} ratio {ratio:.2f}")
    print(json.dumps({r[0]: {"value": r[1], "baseline": r[2], "ratio": round(r[3], 3)} for r in rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
