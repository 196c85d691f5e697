"""The page scanner: the MRZ pipeline on synthetic pages at any angle, the driver over the simulator's
MJPEG stream, and `egate mrz read`. OCR is slow (~0.3-0.6 s a page): few images here; the bench has 300+."""
import json
import threading
import time

import pytest

from drivers.page_scanner.driver import PageScanner
from drivers.page_scanner.pipeline import MrzPageReader
from drivers.mrz_reader.driver import MrzRead
from drivers.mrz_reader.protocol import DocumentPresent, DocumentRemoved
from gate.cli import main
from icao9303 import mrz
from simulators import page_render as pr
from simulators.page_scanner import PageScannerSim


@pytest.fixture(scope="module")
def reader():
    r = MrzPageReader()
    yield r
    r.close()


def wait_for(predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.05)
    return True


def page(fmt, angle, seed, **kw):
    import random
    lines = tuple(pr.mrz_for(fmt, "devries", random.Random(seed)))
    return pr.PageSpec(fmt, lines, "devries", angle, seed, glare="none", **kw)


@pytest.mark.parametrize("fmt, angle", [("TD3", 135.0), ("TD1", 270.0), ("TD2", 44.0), ("TD3", 203.0)])
def test_pages_are_read_at_any_angle_with_the_right_key(reader, fmt, angle):
    spec = page(fmt, angle, seed=int(angle) * 7 + len(fmt))
    result = reader.read(pr.render(spec))
    truth = mrz.parse(list(spec.lines))
    assert result.decision.accepted, result.to_dict()
    assert result.decision.keys[0] == truth.bac_mrz_information
    assert abs((result.angle - angle + 180) % 360 - 180) < 6


def test_glare_over_line_1_still_gives_line_2_and_never_a_wrong_key(reader):
    spec = page("TD3", 30.0, seed=5, blur=0.6, jpeg=85)
    spec = pr.PageSpec(spec.format, spec.lines, spec.person, spec.angle, spec.seed, glare="line1", blur=0.6, jpeg=85)
    d = reader.read(pr.render(spec)).decision
    assert d.accepted and d.keys[0] == mrz.parse(list(spec.lines)).bac_mrz_information, d.to_dict()
    assert d.partial      # line 1 lost: the key lines only, so no printed-versus-chip comparison
    assert not MrzRead(tuple(d.mrz.lines), d.mrz, None, agreement=d.agreement, partial=d.partial).printed_agreed


def test_a_blank_glass_or_a_page_without_mrz_is_no_read(reader):
    sim_glass = PageScannerSim(seed=1)
    assert reader.read(sim_glass.glass).decision.agreement == "none"


def test_driver_reports_a_placed_page_like_the_serial_reader_and_its_removal(reader):
    events = []
    spec = page("TD3", 250.0, seed=11)
    with PageScannerSim(seed=2) as sim:
        scanner = PageScanner(sim.url, reader=reader, emit=events.append).start()
        try:
            assert wait_for(lambda: scanner.status().healthy, 10), scanner.status()
            sim.place(spec)
            assert wait_for(lambda: any(isinstance(e, MrzRead) for e in events), 15), events
            sim.remove()
            assert wait_for(lambda: isinstance(events[-1], DocumentRemoved), 10), events
        finally:
            scanner.stop()
    kinds = [type(e) for e in events if isinstance(e, (DocumentPresent, MrzRead, DocumentRemoved))]
    assert kinds == [DocumentPresent, MrzRead, DocumentRemoved]
    read = next(e for e in events if isinstance(e, MrzRead))
    assert read.mrz.bac_mrz_information == mrz.parse(list(spec.lines)).bac_mrz_information
    assert read.agreement in ("agree", "single") and scanner.stats()["frames"] > 0


def test_cli_reads_one_image(tmp_path, capsys):
    import cv2
    spec = page("TD2", 90.0, seed=3)
    path = tmp_path / "page.jpg"
    cv2.imwrite(str(path), pr.render(spec))
    assert main(["mrz", "read", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["agreement"] in ("agree", "single") and out["lines_found"] == 2
    assert out["keys"][0] == mrz.parse(list(spec.lines)).bac_mrz_information
    assert {e["engine"] for e in out["engines"]} == {"ppocr", "tesseract"}
