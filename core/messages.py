"""Traveller guidance messages: one id, short texts per language, one file per language.

Ids are what drivers and decisions emit (`face.remove_glasses`); the screen renders the text in
the traveller's language, falling back to English. Keep texts short: they are read while walking.

The texts live in `core/locales/<code>.toml` (package data), one file per language:

    [language]
    code = "ja"                  # the language tag, as configured in `devices.screen.languages`
    name = "日本語"              # the language's own name, on its button
    issuers = ["JPN"]            # ICAO issuing states whose documents start in this language
    [messages]
    "face.blink" = "まばたきをしてください。"

English (`en.toml`) is the reference: every other file has exactly its ids, with the same
`{placeholders}` (tests/test_messages.py). Another language is another file, no code.
"""
from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from importlib import resources

from core.errors import EGateError

REFERENCE = "en"


class UnknownMessage(EGateError):
    pass


class LocaleError(EGateError):
    """A language file that cannot be used (not TOML, missing its [language] table)."""


@dataclass(frozen=True)
class Locale:
    code: str
    name: str
    issuers: tuple[str, ...]
    messages: dict[str, str]
    file: str


def _load_locales() -> dict[str, Locale]:
    out: dict[str, Locale] = {}
    folder = resources.files("core") / "locales"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            lang, msgs = data["language"], data["messages"]
            locale = Locale(str(lang["code"]), str(lang["name"]), tuple(lang.get("issuers", ())),
                            {str(k): str(v) for k, v in msgs.items()}, entry.name)
        except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise LocaleError(f"core/locales/{entry.name}: {type(exc).__name__}: {exc}") from None
        if locale.code in out:
            raise LocaleError(f"core/locales/{entry.name}: language {locale.code!r} is in two files")
        out[locale.code] = locale
    if REFERENCE not in out:
        raise LocaleError(f"core/locales/{REFERENCE}.toml (the reference catalogue) is missing")
    return out


LOCALES: dict[str, Locale] = _load_locales()

# id -> {language -> text}: the shape the rest of the code reads.
CATALOGUE: dict[str, dict[str, str]] = {
    mid: {code: loc.messages[mid] for code, loc in LOCALES.items() if mid in loc.messages}
    for mid in LOCALES[REFERENCE].messages
}

# The languages every message is written in: the only ones a gate may be configured to show.
LANGUAGES: tuple[str, ...] = tuple(code for code, loc in LOCALES.items()
                                   if set(loc.messages) >= set(CATALOGUE))

# ICAO issuing state -> the language its documents start in (from each file's `issuers`).
ISSUER_LANGUAGE: dict[str, str] = {state: code for code, loc in LOCALES.items() for state in loc.issuers}


def placeholders(text: str) -> set[str]:
    """The `{names}` a text needs."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def language_name(code: str) -> str:
    return LOCALES[code].name


def language_for_issuer(issuer: str | None, offered: tuple[str, ...], default: str) -> str:
    """The language a traveller's screen starts in: their document's issuing state's, when this
    gate offers it; otherwise `default` (the gate's first configured language)."""
    lang = ISSUER_LANGUAGE.get((issuer or "").strip("<").upper())
    return lang if lang in offered else default


def text(message_id: str, language: str = "en", **params) -> str:
    """The text for a message id in a language (English when that language lacks it)."""
    try:
        texts = CATALOGUE[message_id]
    except KeyError:
        raise UnknownMessage(f"no guidance message {message_id!r}") from None
    return texts.get(language, texts[REFERENCE]).format(**params)
