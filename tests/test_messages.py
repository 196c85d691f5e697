"""The guidance catalogue: one file per language, all complete, every id the gate can show."""
import ast
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from core import messages
from core.reasons import Reason

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((resources.files("core") / "locales").iterdir(), key=lambda e: e.name)
_ID = re.compile(r"^(gate|document|eligibility|passage|face|finger)\.[a-z_]+$")


def test_four_languages_each_from_its_own_file():
    assert {"zh-TW", "en", "ja", "ko"} <= set(messages.LANGUAGES)
    assert {f.name for f in FILES if f.name.endswith(".toml")} >= {"zh-TW.toml", "en.toml", "ja.toml", "ko.toml"}
    for code, locale in messages.LOCALES.items():
        assert locale.file == f"{code}.toml" and locale.name


@pytest.mark.parametrize("entry", [f for f in FILES if f.name.endswith(".toml")], ids=lambda f: f.name)
def test_every_file_has_every_message_with_the_same_placeholders(entry):
    data = tomllib.loads(entry.read_text(encoding="utf-8"))
    reference = messages.LOCALES[messages.REFERENCE].messages
    texts = data["messages"]
    assert set(texts) == set(reference), (sorted(set(reference) - set(texts)), sorted(set(texts) - set(reference)))
    for mid, text in texts.items():
        assert text.strip(), f"{entry.name}: {mid} is empty"
        assert messages.placeholders(text) == messages.placeholders(reference[mid]), f"{entry.name}: {mid}"
        assert "." in mid, f"{mid}: ids are namespaced (area.what)"
    assert data["language"]["code"] == entry.name.removesuffix(".toml")


def test_language_fallback_and_unknown_id():
    assert messages.text("face.remove_glasses", "zh-TW") == "請摘下眼鏡。"
    assert messages.text("face.remove_glasses", "ja") == "眼鏡を外してください。"
    assert messages.text("face.remove_glasses", "fr") == "Please remove your glasses."
    with pytest.raises(messages.UnknownMessage):
        messages.text("face.remove_glases")


def test_the_issuing_state_picks_the_language_when_the_gate_offers_it():
    offered = ("zh-TW", "en", "ja", "ko")
    assert messages.language_for_issuer("JPN", offered, "zh-TW") == "ja"
    assert messages.language_for_issuer("KOR", offered, "zh-TW") == "ko"
    assert messages.language_for_issuer("TWN", offered, "en") == "zh-TW"
    assert messages.language_for_issuer("GBR", offered, "zh-TW") == "en"
    assert messages.language_for_issuer("NLD", offered, "zh-TW") == "zh-TW"      # no mapping: the gate's default
    assert messages.language_for_issuer("JPN", ("zh-TW", "en"), "zh-TW") == "zh-TW"   # not offered here
    assert messages.language_for_issuer("D<<", offered, "en") == "en" and messages.language_for_issuer(None, offered, "en") == "en"


def _shown_literals() -> set[str]:
    """Every message id gate logic and the biometric checks can put on the screen, from the source:
    string literals passed to `show`/`_show`, and the guidance ids of the quality checks and the
    liveness challenges."""
    found = set()
    for path in [*ROOT.glob("gate/*.py"), ROOT / "biometrics/face/quality.py", ROOT / "biometrics/finger/quality.py",
                 ROOT / "biometrics/face/pad.py", ROOT / "gate/decision.py"]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("show", "_show"):
                found |= {a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)}
            elif path.parent.name != "gate" and isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and _ID.match(node.value):
                found.add(node.value)
    return found


def test_every_state_reason_and_quality_finding_has_a_message_in_every_language():
    from drivers.screen.driver import STATE_MESSAGES
    from gate.passage import DOORS

    assert set(DOORS) <= set(STATE_MESSAGES), "a lane state without a screen message (drivers/screen/driver.py)"
    ids = {r.guidance for r in Reason} | {mid for mid, _ in STATE_MESSAGES.values()} | _shown_literals()
    assert {"face.blink", "face.remove_glasses", "finger.press_harder", "document.rejected"} <= ids
    for mid in ids:
        assert mid in messages.CATALOGUE, f"{mid} is shown but has no text"
        for lang in messages.LANGUAGES:
            assert lang in messages.CATALOGUE[mid], (mid, lang)
