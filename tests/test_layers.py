"""The layers (docs/architecture.md): imports go down, never round, and never out of the runtime.

    gate ─► sync ─► drivers, biometrics ─► icao9303 ─► core       (and any layer may skip down)

Every `.py` of the runtime packages is parsed (never imported) and every import counted, the lazy
ones inside functions too, and `importlib.import_module("...")` with a literal name. Graph nodes
are top-level packages, except drivers and biometrics whose sub-packages are nodes of their own
(`drivers.camera`, `biometrics.face`) so a failure names the one that crossed. A subprocess then
imports every runtime module with `simulators`, `bench` and `tests` refused, as on a gate where
egate-simulators is not installed.
"""
from __future__ import annotations

import ast
import configparser
import json
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tests.import_blocker import NOT_ON_A_GATE, blocked_python

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ("core", "icao9303", "drivers", "biometrics", "sync", "gate")
MAY_IMPORT = {
    "core": set(),
    "icao9303": {"core"},
    "drivers": {"core", "icao9303"},
    "biometrics": {"core", "icao9303"},
    "sync": {"core", "icao9303", "drivers", "biometrics"},
    "gate": {"core", "icao9303", "drivers", "biometrics", "sync"},
}
SPLIT = ("drivers", "biometrics")  # their sub-packages are graph nodes of their own


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    line: int
    target: str  # the absolute dotted name imported (for `from a import b`: a.b)
    text: str    # the statement, for the failure message

    def __str__(self) -> str:
        return f"{self.module}:{self.line} `{self.text}`"


def top(name: str) -> str:
    return name.partition(".")[0]


def node(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] in SPLIT and len(parts) > 1 else parts[0]


def imports_in(module: str, source: str, is_package: bool = False) -> list[Import]:
    """Every import of one module, at any depth (function bodies, `if TYPE_CHECKING`, try blocks)."""
    found = []
    package = module if is_package else module.rpartition(".")[0]
    for stmt in ast.walk(ast.parse(source, filename=module)):
        if isinstance(stmt, ast.Import):
            targets = [alias.name for alias in stmt.names]
        elif isinstance(stmt, ast.ImportFrom):
            base = stmt.module or ""
            if stmt.level:  # relative: up level-1 packages from this module's package
                anchor = package.rsplit(".", stmt.level - 1)[0] if stmt.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" for alias in stmt.names]
        elif (isinstance(stmt, ast.Call) and stmt.args and isinstance(stmt.args[0], ast.Constant)
              and isinstance(stmt.args[0].value, str) and ast.unparse(stmt.func) in (
                  "importlib.import_module", "import_module", "__import__")):
            targets = [stmt.args[0].value]
        else:
            continue
        found += [Import(module, stmt.lineno, t, ast.unparse(stmt)) for t in targets]
    return sorted(found, key=lambda imp: imp.line)


def runtime_sources() -> dict[str, tuple[str, bool]]:
    """module name -> (source, is_package) for every .py under the runtime packages."""
    sources = {}
    for package in RUNTIME:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            sources[".".join(parts)] = (path.read_text(encoding="utf-8"), is_package)
    return sources


def all_imports(sources: dict[str, tuple[str, bool]]) -> list[Import]:
    return [imp for module, (source, is_package) in sources.items()
            for imp in imports_in(module, source, is_package)]


def forbidden(imports: list[Import]) -> list[str]:
    return [f"{imp} imports {top(imp.target)}, which is not installed on a gate"
            for imp in imports if top(imp.target) in NOT_ON_A_GATE]


def upward(imports: list[Import]) -> list[str]:
    """Imports against the layer order (MAY_IMPORT), named with the module and line."""
    bad = []
    for imp in imports:
        src, dst = top(imp.module), top(imp.target)
        if dst in MAY_IMPORT and dst != src and dst not in MAY_IMPORT[src]:
            allowed = ", ".join(sorted(MAY_IMPORT[src])) or "nothing of ours"
            bad.append(f"{imp}: {node(imp.module)} -> {node(imp.target)}; {src} may import {allowed}")
    return bad


def cycles(imports: list[Import], key=top) -> list[str]:
    """Import cycles between the nodes `key` maps modules to, each with one import per edge."""
    edges: dict[tuple[str, str], Import] = {}
    for imp in imports:
        a, b = key(imp.module), key(imp.target)
        if a != b and top(b) in MAY_IMPORT:
            edges.setdefault((a, b), imp)
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    found, seen = [], set()
    for start in sorted(graph):  # shortest cycle through each node, by breadth-first search
        paths, visited = [[start]], {start}
        while paths:
            path = paths.pop(0)
            for nxt in sorted(graph.get(path[-1], ())):
                if nxt == start:
                    ring = frozenset(path)
                    if ring not in seen:
                        seen.add(ring)
                        steps = [edges[a, b] for a, b in zip(path, path[1:] + [start])]
                        found.append(" -> ".join(path + [start]) + ": " + "; ".join(map(str, steps)))
                    paths = []
                    break
                if nxt not in visited:
                    visited.add(nxt)
                    paths.append(path + [nxt])
    return found


def _report(problems: list[str]) -> str:
    return "\n".join(problems)


IMPORTS = all_imports(runtime_sources())


def test_the_walk_sees_every_runtime_package():
    modules = {imp.module for imp in IMPORTS}
    assert {"core.component", "icao9303.pa", "drivers.door.driver", "biometrics.face.pad", "sync.config",
            "gate.app", "gate.cli"} <= modules | set(runtime_sources())
    assert len(runtime_sources()) > 60


def test_no_runtime_module_imports_simulators_bench_or_tests():
    assert not forbidden(IMPORTS), _report(forbidden(IMPORTS))


def test_imports_go_down_the_layers():
    assert not upward(IMPORTS), _report(upward(IMPORTS))


def test_no_cycle_between_packages_nor_between_driver_or_biometric_sub_packages():
    assert not cycles(IMPORTS), _report(cycles(IMPORTS))
    assert not cycles(IMPORTS, key=node), _report(cycles(IMPORTS, key=node))


def test_the_checker_fails_on_a_cycle_an_upward_import_and_a_lazy_simulator_import():
    sources = {
        "core.settings": ("def load():\n    from gate.config import load_gate\n", False),
        "gate.config": ("from core import settings\n", False),
        "drivers.camera": ("from . import driver\n", True),
        "drivers.camera.driver": ("import biometrics.face.quality as q\nfrom ..transport import Link\n", False),
        "gate.cli.cmd_x": ("import importlib\n\ndef run():\n    importlib.import_module('simulators.lane')\n"
                           "    from tests.chip_helpers import card\n", False),
    }
    imports = all_imports(sources)
    assert Import("drivers.camera.driver", 2, "drivers.transport.Link", "from ..transport import Link") in imports
    assert Import("drivers.camera", 1, "drivers.camera.driver", "from . import driver") in imports
    assert upward(imports) == [
        "core.settings:2 `from gate.config import load_gate`: core -> gate; core may import nothing of ours",
        "drivers.camera.driver:1 `import biometrics.face.quality as q`: drivers.camera -> biometrics.face; "
        "drivers may import core, icao9303"]
    assert cycles(imports) == ["core -> gate -> core: core.settings:2 `from gate.config import load_gate`; "
                               "gate.config:1 `from core import settings`"]
    assert forbidden(imports) == [
        "gate.cli.cmd_x:4 `importlib.import_module('simulators.lane')` imports simulators, "
        "which is not installed on a gate",
        "gate.cli.cmd_x:5 `from tests.chip_helpers import card` imports tests, which is not installed on a gate"]
    assert not cycles(imports[2:]) and not forbidden(imports[:4])


def test_the_gate_distribution_ships_the_runtime_and_the_simulators_their_own():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    shipped = {top(name) for name in cfg["options.packages.find"]["include"].split()}
    assert shipped == set(RUNTIME)
    project = tomllib.loads((ROOT / "simulators/pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    on_disk = {".".join(("simulators",) + p.parent.relative_to(ROOT / "simulators").parts)
               for p in (ROOT / "simulators").rglob("__init__.py")}
    assert listed == on_disk, "simulators/pyproject.toml must list every sub-package"
    assert "egate" in " ".join(project["project"]["dependencies"])
    assert set(project["project"]["entry-points"]["egate.commands"]) == {"demo", "sim"}


def test_every_runtime_module_imports_without_simulators_bench_or_tests():
    modules = [m for m in runtime_sources() if not m.endswith("__main__")]
    code = f"""
import importlib, json, traceback
failed = {{}}
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {NOT_ON_A_GATE!r})
from gate.cli import build_parser
commands = sorted(build_parser()._subparsers._group_actions[0].choices)
print(json.dumps({{"failed": failed, "loaded": loaded, "commands": commands}}))
"""
    res = subprocess.run(blocked_python(code), cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.splitlines()[-1])
    assert not out["failed"], "\n".join(out["failed"].values())
    assert out["loaded"] == []
    assert "run" in out["commands"] and not {"demo", "sim"} & set(out["commands"])
