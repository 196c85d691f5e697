"""Bad input to the face pipeline is a typed error or an empty result, never a crash or a hang."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from biometrics import assets
from biometrics.face.detector import ImageError, read_image
from biometrics.face.pipeline import FacePipeline
from biometrics.face import pad


@pytest.fixture(scope="module")
def pipeline():
    assets.fetch()
    return FacePipeline()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048), prefix=st.sampled_from([b"", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n"]))
def test_arbitrary_file_bytes(tmp_path_factory, data, prefix):
    path = tmp_path_factory.mktemp("img") / "x.jpg"
    path.write_bytes(prefix + data)
    try:
        image = read_image(path)
    except ImageError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 200), w=st.integers(1, 200), channels=st.sampled_from([None, 1, 2, 3, 4, 5]),
       seed=st.integers(0, 2**32 - 1))
def test_arbitrary_frames(pipeline, h, w, channels, seed):
    shape = (h, w) if channels is None else (h, w, channels)
    frame = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    try:
        result = pipeline.process(frame, embed_always=True)
    except ImageError:
        assert channels in (1, 2, 5)
        return
    assert result.quality.faces == len(result.faces)
    assert (result.embedding is None) == (not result.faces)


@settings(max_examples=60, deadline=None)
@given(points=st.lists(st.tuples(st.floats(0, 1.0), st.lists(st.floats(-1e4, 1e4), min_size=10, max_size=10),
                                 st.one_of(st.none(), st.floats(0, 5))), max_size=30),
       challenge=st.sampled_from(list(pad.Challenge)))
def test_arbitrary_challenge_observations(points, challenge):
    observations = [pad.Observation(t * 5, np.array(lm, np.float32).reshape(5, 2), eye) for t, lm, eye in points]
    result = pad.verify_challenge(challenge, observations)
    assert isinstance(result.passed, bool) and result.reason
