"""Enrolled face templates: round trip through the AES-GCM vault, typed errors on bad bytes."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from biometrics.face import matcher, template
from biometrics.privacy import TemplateVault
from core.settings import Secret


def unit(seed):
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


def test_round_trip_through_the_vault_and_wipe():
    vault = TemplateVault(Secret(bytes(range(32))))
    enrolled = unit(1)
    sealed = vault.seal(template.encode(enrolled), "traveller-1")
    with vault.open(sealed, "traveller-1") as sample:
        restored = template.decode(sample.buffer)
        assert matcher.cosine(restored, enrolled) == pytest.approx(1.0, abs=1e-6)
        assert matcher.FaceMatcher().verify([enrolled], {"enrolled": restored}).matched
    assert not sample.raw.strip(b"\0")


@pytest.mark.parametrize("data,match", [
    (b"", "0 bytes"),
    (b"SFT1" + bytes(4 * 127), "bytes, expected"),
    (b"XXXX" + bytes(512), "magic"),
    (b"SFT1" + bytes(512), "not a normalised"),                                   # all zeros
    (b"SFT1" + np.full(128, np.nan, "<f4").tobytes(), "not a normalised"),
])
def test_malformed_templates_are_refused(data, match):
    with pytest.raises(template.FaceTemplateError, match=match):
        template.decode(data)


def test_encode_refuses_what_is_not_an_embedding():
    with pytest.raises(ValueError):
        template.encode(np.zeros(64, np.float32))
    with pytest.raises(ValueError):
        template.encode(np.full(128, np.inf, np.float32))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data):
    try:
        vector = template.decode(data)
    except template.FaceTemplateError:
        return
    assert vector.shape == (128,)
