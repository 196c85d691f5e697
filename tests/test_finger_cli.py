"""`egate finger compare A B --json`: scores, threshold, decision and quality findings."""
import json

import cv2

from biometrics import assets
from gate.cli import main
from tests import finger_images as fi


def run(capsys, *args):
    rc = main(["finger", "compare", *map(str, args), "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_real_genuine_pair_matches(capsys):
    fi.afis("fingers/p1_1.png")
    rc, r = run(capsys, assets.path("fingers/p1_1.png"), assets.path("fingers/p1_2.png"))
    assert rc == 0 and r["decision"] == "match" and r["score"] >= r["threshold"]
    assert r["fmr"] == 0.001 and r["guidance"] is None
    assert r["quality"]["a"]["passed"] and r["quality"]["b"]["nfiq2"] >= 30


def test_real_impostor_pair_does_not_match(capsys):
    fi.afis("fingers/p2_1.png")
    rc, r = run(capsys, assets.path("fingers/p1_2.png"), assets.path("fingers/p2_1.png"))
    assert rc == 1 and r["decision"] == "no_match" and r["score"] < r["threshold"]
    assert r["estimated_fmr"] > 0.001


def test_poor_probe_is_refused_before_matching_with_guidance(capsys, tmp_path):
    probe = tmp_path / "faint.png"
    cv2.imwrite(str(probe), fi.faint(fi.afis("fingers/p1_2.png")))
    rc, r = run(capsys, assets.path("fingers/p1_1.png"), probe)
    assert rc == 1 and r["decision"] == "retry" and r["score"] is None
    assert r["guidance"] == "finger.press_harder"
    assert r["quality"]["b"]["findings"][0]["cue"] == "contrast"


def test_unreadable_file_is_a_clear_error(capsys, tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not an image")
    assert main(["finger", "compare", str(bad), str(bad)]) == 1
    assert "not an image" in capsys.readouterr().err
