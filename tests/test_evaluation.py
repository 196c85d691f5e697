"""Evaluation tool: metrics on known scores, layouts, plots, and `egate bench biometrics` end to end."""
import json
import shutil

import cv2
import numpy as np
import pytest

from biometrics import assets, evaluation as ev
from gate.cli import main
from simulators.fingerprint_synth import FingerGenerator


def test_metrics_on_known_scores():
    genuine = np.array([5, 6, 7, 8, 9, 10, 11, 12, 13, 14], float)
    impostor = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], float)
    m = ev.metrics("toy", genuine, impostor, targets=(0.1, 0.3))
    # t = 7: FMR 0.3 (7, 8, 9), FNMR 0.2 (5, 6); t = 8: FMR 0.2, FNMR 0.3 -> they cross at 7.5.
    assert (m.eer, m.eer_threshold) == (0.25, 7.5)
    fmr, fnmr = ev.rates(genuine, impostor, np.array([7.0, 8.0]))
    assert list(fmr) == [0.3, 0.2] and list(fnmr) == [0.2, 0.3]
    p10, p30 = m.points
    assert (p10.threshold, p10.fmr, p10.fnmr) == (9.0, 0.1, 0.4)
    assert (p30.threshold, p30.fmr) == (7.0, 0.3)
    assert not p10.supported   # 10 impostor comparisons cannot support FMR 0.1 (needs 30)
    assert np.all(np.diff(m.det_fmr) <= 0) and np.all(np.diff(m.det_fnmr) >= 0)


def test_threshold_at_fmr_never_exceeds_the_target():
    rng = np.random.default_rng(1)
    impostor = rng.normal(0.1, 0.1, 5000)
    for target in (0.1, 0.01, 0.001):
        t = ev.threshold_at_fmr(impostor, target)
        assert (impostor >= t).mean() <= target
        assert (impostor >= np.nextafter(t, -np.inf) - 1e-9).mean() > target or t == impostor.min()
    assert ev.threshold_at_fmr(np.array([1, 2, 2, 3]), 0.25) == 3.0  # ties at 2 must all stay below


def test_separable_scores_give_zero_eer():
    m = ev.metrics("sep", [50, 60, 70], [1, 2, 3])
    assert m.eer == 0.0 and 3 < m.eer_threshold <= 50


def test_pairs_and_impostor_sampling():
    genuine, impostor = ev.pairs(["a", "a", "b", "b", "c"])
    assert genuine == [(0, 1), (2, 3)] and len(impostor) == 8
    _, sampled = ev.pairs(["a", "a", "b", "b", "c"], max_impostors=3)
    assert len(sampled) == 3 and set(sampled) <= set(impostor)


def test_layout_errors_are_clear(tmp_path):
    with pytest.raises(ev.DatasetError, match="not a directory"):
        ev.load_fvc(tmp_path / "missing")
    (tmp_path / "1_1.png").write_bytes(b"")
    (tmp_path / "2_1.png").write_bytes(b"")
    with pytest.raises(ev.DatasetError, match="no genuine pair"):
        ev.load_fvc(tmp_path)
    (tmp_path / "1_2.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    ds = ev.load_fvc(tmp_path)
    assert set(ds.subjects) == {"1", "2"} and ds.ignored == ("notes.txt",)


@pytest.fixture(scope="module")
def fvc_dir(tmp_path_factory):
    """A small FVC-style folder of synthetic prints: 6 fingers x 3 impressions."""
    root = tmp_path_factory.mktemp("fvc")
    gen = FingerGenerator(seed=77)
    for finger in range(6):
        for impression in range(3):
            cv2.imwrite(str(root / f"{101 + finger}_{impression + 1}.png"), gen.impression(finger, impression))
    return root


@pytest.fixture(scope="module")
def lfw_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lfw")
    assets.fetch()
    for person, names in (("A", ("obama.jpg", "obama2.jpg", "obama3.jpg")), ("B", ("biden.jpg",))):
        (root / person).mkdir()
        for n in names:
            shutil.copy(assets.path(f"faces/{n}"), root / person / n)
    return root


def test_bench_biometrics_end_to_end(fvc_dir, lfw_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["bench", "biometrics", "--fingers", str(fvc_dir), "--faces", str(lfw_dir),
               "--out", str(out), "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((out / "report.json").read_text())
    finger, face = report["finger"], report["face"]
    assert (finger["samples"], finger["genuine_comparisons"], finger["impostor_comparisons"]) == (18, 18, 135)
    assert (face["genuine_comparisons"], face["impostor_comparisons"]) == (3, 3)
    for r in (finger, face):
        assert 0.0 <= r["eer"] <= 1.0
        for p in r["operating_points"]:
            assert 0.0 <= p["fmr"] <= 1.0 and 0.0 <= p["fnmr"] <= 1.0
        for plot in r["plots"]:
            image = cv2.imread(plot)
            assert image is not None and image.shape == (ev.HEIGHT, ev.WIDTH, 3)
            assert (image < 250).mean() > 0.01  # something was drawn
    # Synthetic prints of distinct fingers: genuine comparisons score far above impostors.
    assert finger["eer"] < 0.1
    ops = {p["target_fmr"]: p for p in finger["operating_points"]}
    assert ops[0.01]["fmr"] <= 0.01 and not ops[0.001]["supported"]


def test_bench_needs_a_folder(capsys):
    assert main(["bench", "biometrics"]) == 2


def test_missing_face_pipeline_is_reported_not_faked(lfw_dir, tmp_path, capsys, monkeypatch):
    import biometrics.face.pipeline as pipeline

    def unavailable(*a, **k):
        raise FileNotFoundError("sface model missing")
    monkeypatch.setattr(pipeline, "FacePipeline", unavailable)
    assert main(["bench", "biometrics", "--faces", str(lfw_dir), "--out", str(tmp_path)]) == 1
    assert "face pipeline not available: FileNotFoundError: sface model missing" in capsys.readouterr().out
    assert "error" in json.loads((tmp_path / "report.json").read_text())["face"]
