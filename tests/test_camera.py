"""Camera driver against the MJPEG-over-HTTP face-stream simulator, scenes checked with YuNet, and every fault."""
from __future__ import annotations

import socket
import threading
import time

import cv2
import numpy as np
import pytest

from biometrics import assets
from drivers.camera.driver import Camera, CameraError
from simulators.camera import SCENES, CameraSim, SceneRenderer, load_face
from tests.serial_helpers import wait_for


@pytest.fixture(scope="module")
def faces():
    assets.fetch()
    return [cv2.imread(str(assets.path(name))) for name in ("faces/obama.jpg", "faces/biden.jpg")]


@pytest.fixture(scope="module")
def detector():
    assets.fetch()
    return cv2.FaceDetectorYN.create(str(assets.path("yunet")), "", (640, 480), 0.6)


@pytest.fixture(scope="module")
def renderer(faces):
    return SceneRenderer([load_face(f) for f in faces], seed=3)


@pytest.fixture
def sim(faces):
    with CameraSim(faces, fps=25, scene="traveller", seed=3) as s:
        yield s


@pytest.fixture
def camera(sim):
    cam = Camera(sim.url, open_timeout_s=1.0, read_timeout_s=0.4, backoff_initial_s=0.05, backoff_max_s=0.2).start()
    try:
        yield cam
    finally:
        cam.stop()


def _faces(detector, image):
    detector.setInputSize((image.shape[1], image.shape[0]))
    found = detector.detect(image)[1]
    return [] if found is None else list(found)


def _frames_after_now(cam, n=3, timeout_s=3.0):
    """Skip frames that may predate a change (FFmpeg buffers a little), return the n-th after."""
    frame = cam.wait_frame(cam.latest().seq if cam.latest() else 0, timeout_s)
    for _ in range(n):
        frame = cam.wait_frame(frame.seq, timeout_s)
    return frame


def test_opencv_videocapture_reads_the_mjpeg_url_directly(sim):
    cap = cv2.VideoCapture(sim.url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 2000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 2000])
    try:
        assert cap.isOpened() and cap.getBackendName() == "FFMPEG"
        shapes = [cap.read()[1].shape for _ in range(3)]
    finally:
        cap.release()
    assert shapes == [(480, 640, 3)] * 3


@pytest.mark.parametrize("scene,count", [("traveller", 1), ("no_face", 0), ("two_faces", 2), ("printed_photo", 1),
                                         ("screen_replay", 1)])
def test_each_scene_shows_the_right_number_of_faces_through_the_driver(sim, camera, detector, scene, count):
    sim.set_scene(scene)
    frame = _frames_after_now(camera)
    assert frame.image.shape == (480, 640, 3)
    assert len(_faces(detector, frame.image)) == count


def test_all_scenes_over_time_have_the_right_face_count(renderer, detector):
    expected = {"traveller": 1, "no_face": 0, "two_faces": 2, "printed_photo": 1, "screen_replay": 1}
    assert set(expected) == set(SCENES)
    for scene, count in expected.items():
        for t in (0.5, 2.0, 4.4, 7.9):
            assert len(_faces(detector, renderer.render(scene, t))) == count, (scene, t)


def test_the_live_face_moves_and_changes_light(renderer, detector):
    boxes = [_faces(detector, renderer.render("traveller", t))[0] for t in (0.0, 2.2, 4.5)]
    centres = [(b[0] + b[2] / 2, b[1] + b[3] / 2) for b in boxes]
    assert max(abs(a[0] - b[0]) for a, b in zip(centres, centres[1:])) > 5
    means = [renderer.render("traveller", t)[150:300, 250:390].mean() for t in (0.0, 6.0)]
    assert abs(means[0] - means[1]) > 3


def _eye_change(renderer, detector, scene):
    """Mean change around the eyes between open eyes (t=3.22) and a blink 0.13 s later (little motion)."""
    closed, opened = renderer.render(scene, 3.35), renderer.render(scene, 3.22)
    f = _faces(detector, opened)[0]
    d = np.abs(closed.astype(int) - opened.astype(int)).mean(axis=2)
    return np.mean([d[int(y) - 6:int(y) + 6, int(x) - 10:int(x) + 10].mean() for x, y in (f[4:6], f[6:8])])


def test_a_live_traveller_blinks_a_printed_photo_never_does(renderer, detector):
    live, photo = _eye_change(renderer, detector, "traveller"), _eye_change(renderer, detector, "printed_photo")
    assert live > 3 * photo and live > 10, (live, photo)


def test_screen_replay_has_a_colour_cast_and_moire(renderer, detector):
    def face_stats(scene):
        img = renderer.render(scene, 1.0)
        x, y, w, h = (int(v) for v in _faces(detector, img)[0][:4])
        roi = img[y:y + h, x:x + w].astype(np.float32)
        detail = np.abs(roi - cv2.GaussianBlur(roi, (0, 0), 2.0)).mean()
        return roi[..., 0].mean() / roi[..., 2].mean(), detail / roi.mean()
    live_cast, live_detail = face_stats("traveller")
    screen_cast, screen_detail = face_stats("screen_replay")
    assert screen_cast > live_cast * 1.2       # blue cast of the LCD
    assert screen_detail > live_detail * 1.4   # moire and pixel structure


def test_printed_photo_sits_on_white_paper(renderer, detector):
    img = renderer.render("printed_photo", 1.0)
    x, y, w, h = (int(v) for v in _faces(detector, img)[0][:4])
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    # Walk down from the face until the sheet's lower white border.
    column = grey[y + h:, x + w // 2]
    assert (column > 215).sum() >= 10


def test_stall_is_detected_then_the_stream_recovers(sim, camera):
    first = camera.wait_frame(0, 3)
    sim.faults.inject("slow", delay_s=3.0)
    with pytest.raises(CameraError):
        frame = camera.latest()
        for _ in range(3):  # a frame rendered as the fault began may still arrive
            frame = camera.wait_frame(frame.seq, timeout_s=1.0)
    wait_for(lambda: camera.stream == "down", timeout=2, what="stall detected")
    assert camera.latest(max_age_s=0.5) is None  # stale frames are not passed off as live
    sim.faults.clear("slow")
    frame = camera.wait_frame(camera.latest().seq, timeout_s=5)
    assert frame.seq > first.seq and camera.stream == "streaming"
    assert camera.stats()["read_failures"] >= 1 and camera.stats()["reconnects"] >= 1


def test_dropped_connection_reconnects(sim, camera):
    camera.wait_frame(0, 3)
    sim.faults.inject("unplug", duration_s=0.4)
    wait_for(lambda: camera.stream == "down", timeout=2, what="loss")
    frame = camera.wait_frame(camera.latest().seq, timeout_s=5)
    assert camera.stream == "streaming" and frame.image.shape == (480, 640, 3)
    assert camera.stats()["reconnects"] >= 1


def test_garbage_in_the_stream_is_survived(sim, camera):
    frame = camera.wait_frame(0, 3)
    sim.faults.inject("garbage", nbytes=4000)
    for _ in range(5):
        frame = camera.wait_frame(frame.seq, timeout_s=5)
    assert camera.stream == "streaming"


def test_damaged_and_dropped_frames_are_survived(sim, camera):
    frame = camera.wait_frame(0, 3)
    sim.faults.inject("corrupt_crc", count=3)
    sim.faults.inject("drop", count=5)
    wait_for(lambda: sim.frames_dropped == 5 and sim.faults.active("corrupt_crc") is None, what="faults applied")
    for _ in range(5):
        frame = camera.wait_frame(frame.seq, timeout_s=3)
    assert frame.image.shape == (480, 640, 3) and camera.stream == "streaming"


def test_a_server_that_never_answers_does_not_hang_the_caller():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        cam = Camera(f"http://user:secret@127.0.0.1:{silent.getsockname()[1]}/stream.mjpg", open_timeout_s=0.3,
                     read_timeout_s=0.3, backoff_initial_s=0.05, backoff_max_s=0.1).start()
        try:
            started = time.monotonic()
            with pytest.raises(CameraError) as err:
                cam.wait_frame(0, timeout_s=0.5)
            assert time.monotonic() - started < 1.0
            assert "secret" not in str(err.value)
            wait_for(lambda: cam.stats()["open_failures"] >= 1, timeout=3, what="open timeout")
            assert cam.stream == "down" and cam.latest() is None
        finally:
            started = time.monotonic()
            cam.stop()
            assert time.monotonic() - started < 3


def test_a_missing_device_index_is_reported_down():
    cam = Camera(63, backoff_initial_s=0.05, backoff_max_s=0.1).start()
    try:
        wait_for(lambda: cam.stats()["open_failures"] >= 2, timeout=5, what="open retries with backoff")
        assert cam.stream == "down"
        with pytest.raises(CameraError):
            cam.wait_frame(0, timeout_s=0.1)
    finally:
        cam.stop()


def test_a_file_source_is_read_and_replayed(tmp_path, renderer):
    path = tmp_path / "lane.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    for i in range(10):
        writer.write(renderer.render("traveller", i / 25))
    writer.release()
    cam = Camera(str(path), backoff_initial_s=0.01, backoff_max_s=0.02).start()
    try:
        frame = cam.wait_frame(0, 3)
        while frame.seq < 25:
            frame = cam.wait_frame(frame.seq, 3)
        assert cam.stats()["reconnects"] >= 2  # 25 frames from a 10-frame file
    finally:
        cam.stop()


def test_a_slow_consumer_gets_the_latest_frame_not_a_backlog(sim, camera):
    frame = camera.wait_frame(0, 3)
    wait_for(lambda: camera.latest().seq >= frame.seq + 10, timeout=3, what="frames keep coming")
    newest = camera.latest()
    assert newest.seq >= frame.seq + 10 and time.monotonic() - newest.at < 0.5


def test_status_callback_errors_do_not_kill_the_grabber(sim):
    seen = []

    def sink(event):
        seen.append(event.status)
        raise RuntimeError("bug in the sink")

    cam = Camera(sim.url, emit=sink).start()
    try:
        frame = cam.wait_frame(0, 3)
        assert cam.wait_frame(frame.seq, 3).seq > frame.seq
        assert "streaming" in seen
    finally:
        cam.stop()


def test_simulator_rejects_unknown_scenes_and_serves_snapshots(sim):
    with pytest.raises(ValueError):
        sim.set_scene("hologram")
    assert sim.control({"do": "scene", "scene": "no_face"})["ok"] and sim.scene == "no_face"
    import urllib.request
    with urllib.request.urlopen(sim.url.replace("stream.mjpg", "frame.jpg"), timeout=3) as reply:
        img = cv2.imdecode(np.frombuffer(reply.read(), np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (480, 640, 3)


def test_from_config_status_events_and_component_contract(sim):
    from drivers.camera.config import CameraConfig
    from drivers.camera.driver import CameraStatus

    events = []
    cam = Camera.from_config(CameraConfig(source=sim.url), emit=events.append).start()
    try:
        check = cam.self_check()
        assert check.ok and check.detail == "640x480"
        wait_for(lambda: CameraStatus("streaming", "frames arriving") in events, what="status event")
        status = cam.status()
        assert status.healthy and status.stats["frames"] >= 1 and status.stats["opens"] == 1
    finally:
        cam.stop()
    assert [e.status for e in events][0] == "connecting" and events[-1].status == "stopped"
    assert not cam.status().healthy


def test_a_face_added_at_run_time_is_shown(sim, camera, detector):
    index = sim.add_face(assets.path("faces/obama2.jpg"))
    assert index == 2
    diff = np.abs(sim.renderer.render("traveller", 1.0, 2).astype(int) - sim.renderer.render("traveller", 1.0, 0))
    assert diff.mean() > 5
    sim.set_scene("traveller", face=index)
    found = _faces(detector, _frames_after_now(camera).image)
    assert len(found) == 1
    with pytest.raises(ValueError):
        sim.add_face(np.full((200, 200, 3), 128, np.uint8))  # no face in it


class _HangingCapture:
    """A capture whose read() ignores every timeout (a broken backend or driver)."""

    def __init__(self, release):
        self.release_event = release

    def isOpened(self):  # noqa: N802 (OpenCV's name)
        return True

    def read(self):
        self.release_event.wait(10)
        return False, None

    def release(self):
        pass


def test_a_read_that_ignores_its_timeout_is_abandoned(monkeypatch, sim):
    release = threading.Event()
    cam = Camera(sim.url, read_timeout_s=0.1, backoff_initial_s=0.05)
    real_open = cam._open
    opens = []

    def first_hangs():
        opens.append(1)
        return _HangingCapture(release) if len(opens) == 1 else real_open()

    monkeypatch.setattr(cam, "_open", first_hangs)
    cam.start()
    try:
        frame = cam.wait_frame(0, timeout_s=5)  # from the replacement grabber, ~1.3 s after the hang
        assert cam.stats()["hung_reads"] == 1 and frame.image.shape == (480, 640, 3)
    finally:
        release.set()
        cam.stop()
