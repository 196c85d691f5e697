"""Biometric buffers are zero after the decision; sealed templates detect tampering."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biometrics.privacy import (BiometricSample, SampleWipedError, SealedTemplateError, TamperedTemplateError,
                                TemplateVault, load_template_key)
from core.settings import Secret
from core.errors import ConfigError

KEY = Secret(bytes(range(32)))


def test_sample_buffer_and_scratch_are_zero_after_the_block():
    frame = np.arange(64, dtype=np.uint8).reshape(8, 8) + 1
    with BiometricSample.from_array(frame) as sample:
        assert not frame.any()                      # the caller's copy is handed over and zeroed
        assert sample.array.sum() == sum(range(1, 65))
        scratch = sample.scratch(sample.array * 2)
        extra = sample.scratch(bytearray(b"minutiae"))
        raw = sample.raw
    assert not any(raw) and not scratch.any() and not any(extra)
    with pytest.raises(SampleWipedError):
        sample.array


def test_sample_is_wiped_even_when_the_decision_raises():
    with pytest.raises(RuntimeError):
        with BiometricSample.from_buffer(b"\x01\x02\x03") as sample:
            raw = sample.raw
            raise RuntimeError("matcher failed")
    assert raw == bytearray(3)


def test_read_file_fills_an_owned_buffer(tmp_path):
    path = tmp_path / "print.bin"
    path.write_bytes(b"\xff" * 100)
    with BiometricSample.read_file(path) as sample:
        assert bytes(sample.buffer) == b"\xff" * 100
        raw = sample.raw
    assert raw == bytearray(100)


def test_seal_and_open_round_trip_and_wipe():
    vault = TemplateVault(KEY)
    sealed = vault.seal(b"FMR\x00 20\x00template", "TWN-A123456789")
    assert b"template" not in sealed
    with vault.open(sealed, "TWN-A123456789") as template:
        assert bytes(template.buffer) == b"FMR\x00 20\x00template"
        raw = template.raw
    assert not any(raw)


def test_nonces_differ_between_seals():
    vault = TemplateVault(KEY)
    assert vault.seal(b"t", "id") != vault.seal(b"t", "id")


@pytest.mark.parametrize("tamper", [
    lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:],     # ciphertext bit flip
    lambda b: b[:-1] + bytes([b[-1] ^ 0x80]),           # tag bit flip
    lambda b: b[:4] + bytes([b[4] ^ 1]) + b[5:],        # nonce bit flip
    lambda b: b[:-17] + b[-16:],                        # one ciphertext byte removed
])
def test_tampering_is_detected(tamper):
    vault = TemplateVault(KEY)
    sealed = vault.seal(b"0123456789abcdef", "traveller-1")
    with pytest.raises(TamperedTemplateError):
        vault.open(tamper(sealed), "traveller-1")


def test_template_is_bound_to_its_traveller_and_key():
    sealed = TemplateVault(KEY).seal(b"template", "traveller-1")
    with pytest.raises(TamperedTemplateError):
        TemplateVault(KEY).open(sealed, "traveller-2")
    with pytest.raises(TamperedTemplateError):
        TemplateVault(Secret(bytes(32))).open(sealed, "traveller-1")


@pytest.mark.parametrize("blob", [b"", b"EGT\x01" + bytes(27), b"XYZ\x01" + bytes(40)])
def test_malformed_sealed_records_are_a_parse_error(blob):
    with pytest.raises(SealedTemplateError):
        TemplateVault(KEY).open(blob, "traveller-1")


def test_key_comes_from_the_configured_file(tmp_path):
    key_file = tmp_path / "template.key"
    key_file.write_text(bytes(range(32)).hex() + "\n")
    vault = TemplateVault.from_key_file(key_file)
    assert TemplateVault(KEY).open(vault.seal(b"x", "t"), "t").raw == bytearray(b"x")


@pytest.mark.parametrize("content", [b"", b"00" * 16, b"zz" * 32, bytes(range(32))])
def test_bad_key_files_are_config_errors(tmp_path, content):
    key_file = tmp_path / "template.key"
    key_file.write_bytes(content)
    with pytest.raises(ConfigError, match="storage.template_key"):
        load_template_key(key_file)
    with pytest.raises(ConfigError, match="storage.template_key"):
        load_template_key(None)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_random_sealed_bytes_are_refused_with_a_typed_error(blob):
    with pytest.raises((SealedTemplateError, TamperedTemplateError)):
        TemplateVault(KEY).open(blob, "traveller-1")
