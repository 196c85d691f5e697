"""Names as ICAO 9303 writes them in the MRZ (Part 3, section 6, "Transliteration"), folded for
matching a traveller's name against a list (the control list, `gate/screening/`).

A list names people as their civil documents do: "Müller", "Øster", "Peña", "Жуков", "O'Brien",
"de Vries". The MRZ holds only A-Z and the filler: national characters are transliterated
(Part 3 recommends one spelling and allows others: Ä as AE or A, Ü as UE, UXX or U, Ñ as N or NXX),
apostrophes are dropped, hyphens, commas and spaces become fillers, and long names are truncated.

`mrz_variants(name)` gives every MRZ spelling a name may have (the recommended one first, at most
`MAX_VARIANTS`); `fold_mrz(name)` folds what a reader saw in an MRZ (fillers, spaces) to the same
form: upper-case A-Z, one space between components. `name_key(...)` is the compact form that
list keys hash: components joined without spaces, so "DE VRIES", "DE<VRIES" and "DEVRIES" meet.
"""
from __future__ import annotations

import itertools
import unicodedata

MAX_VARIANTS = 16

# Latin characters whose transliteration Part 3 gives (or allows) as more than one spelling, or
# as something other than the base letter: recommended first.
_LATIN: dict[str, tuple[str, ...]] = {
    "Ä": ("AE", "A"), "Ö": ("OE", "O"), "Ü": ("UE", "UXX", "U"), "Å": ("AA", "A"), "Ñ": ("N", "NXX"),
    "Ø": ("OE", "O"), "Æ": ("AE",), "Œ": ("OE",), "ß": ("SS",), "Þ": ("TH",), "Ð": ("D",), "Đ": ("D",),
    "Ł": ("L",), "Ħ": ("H",), "Ĳ": ("IJ",), "Ŧ": ("T",), "Ŋ": ("N",), "İ": ("I",), "ı": ("I",), "Ŀ": ("L",),
}
# Cyrillic (Part 3, table B): one spelling each; the soft sign is omitted.
_CYRILLIC: dict[str, str] = {
    "А": "A", "Б": "B", "В": "V", "Г": "G", "Ґ": "G", "Д": "D", "Ђ": "D", "Ѓ": "G", "Е": "E", "Ё": "E",
    "Є": "IE", "Ж": "ZH", "З": "Z", "Ѕ": "DZ", "И": "I", "І": "I", "Ї": "I", "Й": "I", "Ј": "J", "К": "K",
    "Ќ": "K", "Л": "L", "Љ": "LJ", "М": "M", "Н": "N", "Њ": "NJ", "О": "O", "П": "P", "Р": "R", "С": "S",
    "Т": "T", "Ћ": "C", "У": "U", "Ў": "U", "Ф": "F", "Х": "KH", "Ц": "TS", "Ч": "CH", "Џ": "DZ", "Ш": "SH",
    "Щ": "SHCH", "Ъ": "IE", "Ы": "Y", "Ь": "", "Э": "E", "Ю": "IU", "Я": "IA",
}
# Greek, letter by letter (ELOT 743 as states write it in the MRZ).
_GREEK: dict[str, str] = {
    "Α": "A", "Β": "V", "Γ": "G", "Δ": "D", "Ε": "E", "Ζ": "Z", "Η": "I", "Θ": "TH", "Ι": "I", "Κ": "K",
    "Λ": "L", "Μ": "M", "Ν": "N", "Ξ": "X", "Ο": "O", "Π": "P", "Ρ": "R", "Σ": "S", "Τ": "T", "Υ": "Y",
    "Φ": "F", "Χ": "CH", "Ψ": "PS", "Ω": "O",
}
_SEPARATORS = set(" \t<-,.;/_")
_DROPPED = set("'’‘`´\"")


def _options(ch: str) -> tuple[str, ...]:
    """The MRZ spellings of one character of a name (upper-cased first)."""
    if "A" <= ch <= "Z":
        return (ch,)
    if ch in _SEPARATORS or ch.isspace():
        return (" ",)
    if ch in _DROPPED:
        return ("",)
    if ch in _LATIN:
        return _LATIN[ch]
    if ch in _CYRILLIC:
        return (_CYRILLIC[ch],)
    base = unicodedata.normalize("NFD", ch)
    stripped = "".join(c for c in base if not unicodedata.combining(c))
    if stripped in _GREEK:
        return (_GREEK[stripped],)
    if stripped != ch and all("A" <= c <= "Z" for c in stripped):
        return (stripped,)              # a base letter with diacritics: É, Č, Ş, Ő, ...
    if stripped.isdigit() or not stripped.isalpha():
        return ("",)                    # digits and other marks have no place in a name
    return ("",)                        # a script Part 3 gives no table for here: dropped


def _tidy(text: str) -> str:
    return " ".join(text.split())


def mrz_variants(name: str) -> list[str]:
    """Every MRZ spelling of `name` (recommended first), each upper-case A-Z with single spaces;
    at most MAX_VARIANTS (the later alternatives are dropped first)."""
    upper = unicodedata.normalize("NFC", name).upper()   # ß upper-cases to SS, as Part 3 writes it
    parts = [_options(ch) for ch in upper]
    out: list[str] = []
    for combo in itertools.product(*parts):
        text = _tidy("".join(combo))
        if text not in out:
            out.append(text)
        if len(out) >= MAX_VARIANTS:
            break
    return out or [""]


def fold_mrz(name: str) -> str:
    """A name as read from an MRZ (or typed): upper-case A-Z, fillers as single spaces; the
    recommended transliteration of anything else."""
    return mrz_variants(name)[0]


def name_key(surname: str, given_names: str, rule: str = "full") -> str:
    """The compact form list keys are made of: surname and given names, each without spaces,
    `|` between them. rule "full": every given name; "first": the first given name only;
    "surname": none."""
    given = given_names.split()
    if rule == "first":
        given = given[:1]
    elif rule == "surname":
        given = []
    elif rule != "full":
        raise ValueError(f"unknown name rule {rule!r}")
    return surname.replace(" ", "") + "|" + "".join(given)


def key_variants(surname: str, given_names: str, rule: str = "full") -> list[str]:
    """`name_key` of every MRZ spelling of a listed name (surname and given names each
    transliterated every way Part 3 allows), de-duplicated, at most MAX_VARIANTS."""
    out: list[str] = []
    for s in mrz_variants(surname):
        for g in mrz_variants(given_names):
            key = name_key(s, g, rule)
            if key not in out:
                out.append(key)
            if len(out) >= MAX_VARIANTS:
                return out
    return out
