"""Face detection, alignment, embedding and matching on the real photos the pinned packages ship.

Genuine pairs are independent photos of one person; augmented copies of one photo are
only used as robustness checks, never as genuine pairs.
"""
import json
import statistics

import cv2
import numpy as np
import pytest

from biometrics import assets
from biometrics.face import matcher
from simulators import face_samples as samples
from biometrics.face.align import SIZE, align
from biometrics.face.detector import ImageError, read_image
from biometrics.face.pipeline import FacePipeline
from gate.cli import main


@pytest.fixture(scope="module")
def pipeline():
    assets.fetch()
    return FacePipeline()


@pytest.fixture(scope="module")
def embedded(pipeline):
    labelled = samples.labelled(pipeline.detector)
    vectors = [pipeline.embedder.embed(align(s.image, pipeline.detector.detect(s.image)[s.face_index].landmarks))
               for s in labelled]
    return labelled, vectors


def test_detector_finds_one_face_per_portrait_and_six_in_the_group(pipeline):
    for _, name in samples.SINGLE[:4]:
        faces = pipeline.detector.detect(read_image(assets.path(name)))
        assert len(faces) == 1, name
        assert faces[0].score > 0.8 and faces[0].inter_eye_distance > 100
    assert len(pipeline.detector.detect(read_image(assets.path(samples.GROUP)))) == 6


def test_detector_finds_nothing_in_a_blank_frame_and_refuses_bad_arrays(pipeline):
    assert pipeline.detector.detect(np.full((480, 640, 3), 127, np.uint8)) == []
    with pytest.raises(ImageError):
        pipeline.detector.detect(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(ImageError):
        pipeline.detector.detect(np.zeros((10, 10, 3), np.float32))


def test_landmarks_are_in_the_callers_coordinates_after_downscaling(pipeline):
    image = read_image(assets.path("faces/obama3.jpg"))       # 2333x1434: detected at 640 px
    face = pipeline.detector.detect(image)[0]
    assert face.landmarks[0, 0] < face.landmarks[1, 0]      # subject's right eye on image left
    x, y, w, h = face.box
    assert np.all((face.landmarks[:, 0] > x) & (face.landmarks[:, 0] < x + w))
    assert np.all((face.landmarks[:, 1] > y) & (face.landmarks[:, 1] < y + h))


def test_alignment_matches_opencv_align_crop(pipeline):
    image = read_image(assets.path("faces/obama.jpg"))
    face = pipeline.detector.detect(image)[0]
    recogniser = cv2.FaceRecognizerSF.create(str(assets.path("sface")), "")
    row = np.array([[*face.box, *face.landmarks.ravel(), face.score]], np.float32)
    ours, theirs = align(image, face.landmarks), recogniser.alignCrop(image, row)
    assert ours.shape == (SIZE, SIZE, 3)
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 0.5


def test_onnxruntime_embedding_equals_opencv_sface(pipeline):
    image = read_image(assets.path("faces/biden.jpg"))
    crop = align(image, pipeline.detector.detect(image)[0].landmarks)
    ours = pipeline.embedder.embed(crop)
    theirs = cv2.FaceRecognizerSF.create(str(assets.path("sface")), "").feature(crop).ravel()
    assert ours.shape == (128,) and abs(np.linalg.norm(ours) - 1) < 1e-5
    assert matcher.cosine(ours, theirs) > 0.999


def test_genuine_pairs_match_and_impostor_pairs_do_not(embedded):
    labelled, vectors = embedded
    genuine, impostor = samples.pairs(labelled)
    assert (len(genuine), len(impostor)) == (3, 52)
    threshold = matcher.threshold_for_fmr()
    for i, j in genuine:
        assert matcher.cosine(vectors[i], vectors[j]) > threshold + 0.2, (labelled[i].source, labelled[j].source)
    for i, j in impostor:
        assert matcher.cosine(vectors[i], vectors[j]) < threshold, (labelled[i].identity, labelled[j].identity)


def test_calibration_constants_are_what_the_photos_give(embedded):
    labelled, vectors = embedded
    _, impostor = samples.pairs(labelled)
    scores = [matcher.cosine(vectors[i], vectors[j]) for i, j in impostor]
    assert len(scores) == matcher.IMPOSTOR_PAIRS
    assert abs(statistics.mean(scores) - matcher.IMPOSTOR_MEAN) < 0.005
    assert abs(statistics.stdev(scores) - matcher.IMPOSTOR_SD) < 0.005


def test_threshold_follows_the_target_fmr():
    assert matcher.threshold_for_fmr(0.001) == pytest.approx(0.428, abs=0.002)
    assert matcher.threshold_for_fmr(0.0001) > matcher.threshold_for_fmr(0.001)
    assert matcher.threshold_for_fmr(0.2) == matcher.PUBLISHED_THRESHOLD   # never below the published point
    with pytest.raises(ValueError):
        matcher.threshold_for_fmr(0)


def test_best_of_n_picks_the_best_frame_and_reference(embedded):
    labelled, vectors = embedded
    by_source = {s.source: v for s, v in zip(labelled, vectors) if s.face_index == 0}
    m = matcher.FaceMatcher()
    live = [by_source["faces/biden.jpg"], by_source["faces/obama3.jpg"]]
    result = m.verify(live, {"dg2": by_source["faces/obama.jpg"], "enrolled": by_source["faces/obama2.jpg"]})
    assert result.matched and result.frame == 1 and result.reference == "dg2" and result.frames == 2
    assert not m.verify([], {"dg2": by_source["faces/obama.jpg"]}).matched
    assert not m.verify(live[:1], {"dg2": by_source["faces/obama.jpg"]}).matched


def test_augmented_copies_still_match_robustness_only(pipeline, embedded):
    """Robustness, not accuracy: a copy of one photo is not a genuine pair."""
    labelled, vectors = embedded
    image = read_image(assets.path("faces/obama2.jpg"))
    reference = pipeline.process(read_image(assets.path("faces/obama.jpg")), embed_always=True).embedding
    h, w = image.shape[:2]
    variants = {
        "flip": cv2.flip(image, 1),
        "rotate_10": cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), 10, 1.0), (w, h)),
        "jpeg_q20": cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 20])[1], cv2.IMREAD_COLOR),
        "small_vga": cv2.resize(image, (240, 460), interpolation=cv2.INTER_AREA),
        "darker": (image * 0.6).astype(np.uint8),
    }
    for name, variant in variants.items():
        result = pipeline.process(variant, embed_always=True)
        assert result.embedding is not None, name
        assert matcher.cosine(result.embedding, reference) > matcher.threshold_for_fmr(), name


def test_cli_face_compare_json(pipeline, capsys):
    a, b, c = (str(assets.path(n)) for n in ("faces/obama.jpg", "faces/obama3.jpg", "faces/biden.jpg"))
    assert main(["face", "compare", a, b, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == "match" and out["score"] > out["threshold"] == pytest.approx(0.428, abs=0.002)
    assert out["quality"]["a"]["ok"] and {"name", "value", "limit", "passed", "message"} <= set(out["quality"]["a"]["checks"][0])
    assert main(["face", "compare", a, c, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["decision"] == "no_match"


def test_cli_face_compare_without_a_face_and_with_a_bad_file(pipeline, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 200, np.uint8))
    assert main(["face", "compare", str(assets.path("faces/obama.jpg")), str(blank), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == "no_face" and out["quality"]["b"]["guidance"] == "face.look_at_camera"
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 not really a jpeg")
    assert main(["face", "compare", str(junk), str(blank)]) == 1
    assert "ImageError" in capsys.readouterr().err


def test_a_sample_frame_and_everything_derived_from_it_are_wiped_after_the_decision(pipeline):
    from biometrics.privacy import BiometricSample

    frame = read_image(assets.path("faces/obama.jpg"))
    reference = pipeline.process(frame.copy()).embedding
    with BiometricSample.from_array(frame, kind="face frame") as sample:
        result = pipeline.process_sample(sample)
        assert matcher.FaceMatcher().verify([result.embedding], {"dg2": reference}).matched
        embedding = result.embedding
    assert not frame.any()                      # the caller's copy was handed over and zeroed
    assert not sample.raw.strip(b"\0")          # the sample's own buffer
    assert not embedding.any()                  # and the embedding derived from it


def test_a_dg2_style_jpeg2000_portrait_matches_an_independent_live_photo(pipeline):
    from biometrics.face.detector import decode_image

    # The chip photo: obama.jpg as a 480x640 portrait, JPEG 2000 at about 20 KB (typical of DG2).
    photo = read_image(assets.path("faces/obama.jpg"))
    face = pipeline.detector.detect(photo)[0]
    cx, cy = face.landmarks[:3].mean(0).astype(int)
    width = int(4 * face.inter_eye_distance)           # ICAO-like: eyes 1/4 of the width apart
    height = width * 4 // 3
    top, left = max(0, cy - height * 11 // 20), max(0, cx - width // 2)
    portrait = cv2.resize(photo[top:top + height, left:left + width], (480, 640), interpolation=cv2.INTER_AREA)
    dg2 = cv2.imencode(".jp2", portrait, [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, 25])[1].tobytes()
    assert 5_000 < len(dg2) < 40_000
    reference = pipeline.process(decode_image(dg2, "DG2"), embed_always=True)
    assert reference.quality.ok
    live = pipeline.process(read_image(assets.path("faces/obama3.jpg")))
    impostor = pipeline.process(read_image(assets.path("faces/biden.jpg")))
    m = matcher.FaceMatcher()
    assert m.verify([live.embedding], {"dg2": reference.embedding}).matched
    assert not m.verify([impostor.embedding], {"dg2": reference.embedding}).matched


def test_undecodable_dg2_bytes_are_a_typed_error():
    from biometrics.face.detector import decode_image

    for data in (b"", b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(40), bytearray(b"garbage")):
        with pytest.raises(ImageError):
            decode_image(data, "DG2")


def test_best_of_n_keeps_only_good_frames_best_first(pipeline):
    from biometrics.face.pipeline import best_embeddings

    sharp = read_image(assets.path("faces/obama.jpg"))
    results = [pipeline.process(cv2.GaussianBlur(sharp, (0, 0), 5), embed_always=True),   # fails sharpness
               pipeline.process(read_image(assets.path("faces/obama3.jpg"))),
               pipeline.process(sharp),
               pipeline.process(np.full((480, 640, 3), 80, np.uint8))]                     # no face
    assert results[0].embedding is not None and not results[0].quality.ok
    chosen = best_embeddings(results, 5)
    assert len(chosen) == 2
    scores = sorted((r.quality.score for r in results[1:3]), reverse=True)
    assert [next(r.quality.score for r in results if r.embedding is e) for e in chosen] == scores
    assert len(best_embeddings(results, 1)) == 1


def test_the_per_frame_tracker_follows_one_face_and_keeps_a_second_person_in_view():
    """FaceTracker (the gate's per-frame path): the embedding of each tracked frame is close to the
    whole-frame one, and a second face seen by the last whole-frame search still counts in between."""
    from biometrics.face import matcher
    from biometrics.face.detector import FaceTracker
    from simulators.camera import CameraSim

    pipeline = FacePipeline()
    cam = CameraSim()
    try:
        cam.set_scene("traveller")
        tracker = FaceTracker()
        for i in range(12):
            frame = cam.render(t=i / 30)
            whole = pipeline.process(frame, embed_always=True)
            tracked = pipeline.process(frame, embed_always=True, tracker=tracker)
            assert len(tracked.faces) == len(whole.faces) == 1
            assert matcher.cosine(whole.embedding, tracked.embedding) > 0.85
        cam.set_scene("two_faces")
        tracker.reset()
        counts = [len(tracker.detect(cam.render(t=i / 30))) for i in range(10)]
        assert min(counts) == 2, counts        # the second person is never dropped between searches
    finally:
        cam._server.server_close()
