"""From OCR text to a machine-readable zone one can trust: position-aware fitting, guarded repair,
and the decision between two independent recognisers.

Check digits are not proof. ICAO's 7-3-1 scheme cannot see a confusion between characters whose
values differ by a multiple of 10 (G/6, L/1, U/0, S/8, K/'<', 0/'<'), nor a date's last digit
misread the same way in its check digit (weights 1 then 7-3 in the composite: 10d), and the
composite check digit does not protect the document number (its weights line up with the number's
own check). So a read is trusted only when two independent engines agree, and a single-character
"repair" is made only when the recogniser itself says one correction is clearly the cheapest.

  fit(lines, fmt, today)   one engine's lines -> `Fitted` (position-aware mapping: digits where
                           the layout wants digits, letters where it wants letters; '<' runs
                           stretched or shrunk to the line length; the key lines alone when glare
                           hid the others)
  decide(a, b)             two engines' `Fitted` -> `Decision`: agree | single | conflict | none,
                           with the candidate MRZs (and BAC keys) ranked
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, replace

from icao9303 import mrz as _mrz

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
AGREEMENTS = ("agree", "single", "conflict", "none")

#: Letters read where the layout prescribes a digit, and digits read where it prescribes a letter.
TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "G": "6",
            "B": "8", "T": "7", "A": "4"}
TO_LETTER = {"0": "O", "1": "I", "2": "Z", "4": "A", "5": "S", "6": "G", "7": "T", "8": "B"}

# Slot kinds per line: a letter or '<' (a), a digit or '<' (n: dates, which may hold '<' when
# unknown), a check digit (c), anything (x), sex (s).
LAYOUTS = {
    "TD3": ("a" * 44, "x" * 9 + "c" + "aaa" + "n" * 6 + "c" + "s" + "n" * 6 + "c" + "x" * 14 + "cc"),
    "TD2": ("a" * 36, "x" * 9 + "c" + "aaa" + "n" * 6 + "c" + "s" + "n" * 6 + "c" + "x" * 7 + "c"),
    "TD1": ("aaaaa" + "x" * 9 + "c" + "x" * 15, "n" * 6 + "c" + "s" + "n" * 6 + "c" + "aaa" + "x" * 11 + "c",
            "a" * 30),
}
LENGTH = {"TD3": 44, "TD2": 36, "TD1": 30}
#: The lines that carry the BAC key and every check digit: enough on their own (glare over the rest).
KEY_LINES = {"TD3": (1,), "TD2": (1,), "TD1": (0, 1)}
PARTIAL_WARNING = "not every MRZ line was read: only the lines with the key and its check digits"
#: A repair is made only if its cost (log of best/alternative posterior) is at most this ...
MAX_REPAIR_COST = math.log(20.0)
#: ... and every other correction that also passes the check digits costs this much more.
REPAIR_MARGIN = math.log(100.0)
# Problems that belong to lines that a partial read does not have.
_LINE1_PROBLEMS = ("document code", "issuing state", "name field")


@dataclass(frozen=True)
class LineRead:
    """One engine's reading of one line: `text` (fitted to length where the engine can), its
    `raw` output, and per character the posterior over ALPHABET (a tuple of 37 floats) if known."""
    text: str
    raw: str
    probs: object = None   # sequence (len(text)) of sequences (37) of floats, or None


@dataclass(frozen=True)
class Fitted:
    """One engine's reading made into an MRZ: `mrz` is set when every check digit verifies."""
    engine: str
    format: str | None
    lines: tuple[str, ...]            # after mapping, as parsed ('' for a line not read)
    mrz: _mrz.Mrz | None
    partial: bool = False             # only the key lines were read
    repairs: tuple[str, ...] = ()     # "line:col X->Y (cost c)"
    confidence: float | None = None   # mean log posterior of the characters (ppocr) or None
    problem: str | None = None        # why `mrz` is None

    @property
    def valid(self) -> bool:
        return self.mrz is not None

    def to_dict(self) -> dict:
        return {"engine": self.engine, "format": self.format, "lines": list(self.lines), "valid": self.valid,
                "partial": self.partial, "repairs": list(self.repairs),
                "confidence": None if self.confidence is None else round(self.confidence, 4),
                "problem": self.problem}


@dataclass(frozen=True)
class Decision:
    agreement: str                    # agree | single | conflict | none
    candidates: tuple[_mrz.Mrz, ...]  # ranked: the first is the read to use (empty for none)
    partial: bool = False
    engines: tuple[Fitted, ...] = ()
    reason: str = ""

    @property
    def mrz(self) -> _mrz.Mrz | None:
        return self.candidates[0] if self.candidates else None

    @property
    def keys(self) -> tuple[str, ...]:
        """The ranked BAC 'MRZ_information' strings (document number, birth, expiry + check digits)."""
        return tuple(m.bac_mrz_information for m in self.candidates)

    @property
    def accepted(self) -> bool:
        return self.agreement in ("agree", "single")

    def to_dict(self) -> dict:
        return {"agreement": self.agreement, "partial": self.partial, "reason": self.reason,
                "keys": list(self.keys),
                "candidates": [{"document_number": m.document_number, "birth_date": m.birth_date_raw,
                                "expiry_date": m.expiry_date_raw, "lines": list(m.lines)} for m in self.candidates],
                "mrz": self.mrz.to_dict() if self.mrz else None,
                "engines": [e.to_dict() for e in self.engines]}


# ----------------------------------------------------------------------------- mapping

def map_positions(text: str, kinds: str) -> str:
    """Letters where the layout wants letters, digits where it wants digits; '<' kept everywhere."""
    out = []
    for c, k in zip(text, kinds):
        if k in "nc" and c in TO_DIGIT:
            c = TO_DIGIT[c]
        elif k in "a" and c in TO_LETTER:
            c = TO_LETTER[c]
        elif k == "s" and c not in "MFX<":
            c = {"H": "M", "N": "M", "E": "F", "P": "F", "K": "X"}.get(c, c)
        out.append(c)
    return "".join(out)


def fit_length(text: str, n: int) -> list[str]:
    """Ways to make `text` exactly `n` long: stretch or shrink one run of '<' (a miscounted filler
    run is the commonest length error), or drop stray marks read at either end of the line."""
    text = "".join(c for c in text.upper() if c in ALPHABET)
    d = n - len(text)
    if d == 0:
        return [text]
    out = []
    if -3 <= d < 0:   # a speck or the page edge read as a character beyond either end
        out += [text[i:len(text) + d + i] for i in range(-d + 1)]
    runs, i = [], 0
    while i < len(text):
        if text[i] == "<":
            j = i
            while j < len(text) and text[j] == "<":
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    for a, b in sorted(runs, key=lambda r: r[0] - r[1]):     # the longest runs first
        if d > 0:
            out.append(text[:b] + "<" * d + text[b:])
        elif b - a > -d:
            out.append(text[:a] + "<" * (b - a + d) + text[b:])
    return list(dict.fromkeys(out))[:6]


# ----------------------------------------------------------------------------- one engine

def _parse(lines: list[str], fmt: str, partial: bool, today: _dt.date | None) -> tuple[_mrz.Mrz | None, str | None]:
    """Parse as printed (no repair of its own); (mrz, None) when every check digit verifies and
    every field the read has is valid, else (None, why)."""
    try:
        m = _mrz.parse(lines, today=today, repair=False, strict=False)
    except _mrz.MrzError as exc:
        return None, str(exc)
    bad = [f"{c.name} check digit" for c in m.checks if not c.valid]
    problems = [p for p in m.problems if not (partial and p.startswith(_LINE1_PROBLEMS))]
    if not m.document_number:
        problems.append("empty document number")
    if bad or problems:
        return None, "; ".join(bad + problems)
    if partial:
        m = _with_warning(m, PARTIAL_WARNING)
    return m, None


def _with_warning(m: _mrz.Mrz, warning: str) -> _mrz.Mrz:
    return replace(m, warnings=(*m.warnings, warning))


def _assignments(reads: list[LineRead]) -> list[tuple[str, tuple[int, ...]]]:
    """(format, which format line each read is) worth trying, from the number and length of lines."""
    n = len(reads)
    length = max((len(r.text) for r in reads), default=0)
    guess = min(LENGTH, key=lambda f: abs(LENGTH[f] - length))
    if n >= 3:
        return [("TD1", (0, 1, 2))]
    if n == 2:
        if guess == "TD1":
            return [("TD1", (0, 1))]
        return [(guess, (0, 1)), ("TD3" if guess == "TD2" else "TD2", (0, 1))]
    if n == 1 and guess in ("TD3", "TD2"):
        return [(guess, (1,))]
    return []


def fit(reads: list[LineRead], engine: str, *, today: _dt.date | None = None,
        repair: bool = True) -> Fitted:
    """One engine's lines (top to bottom) as an MRZ: formats tried by line count and length, each
    line mapped by position and fitted to its length, then (with posteriors) a guarded repair."""
    reads = [r for r in reads if r.text][:3]
    tried: list[tuple[Fitted, tuple[int, ...]]] = []
    for fmt, which in _assignments(reads):
        kinds = LAYOUTS[fmt]
        partial = len(which) < len(kinds)
        if partial and not set(KEY_LINES[fmt]) <= set(which):
            continue
        options: list[list[str]] = []
        for r, li in zip(reads, which):
            fitted = fit_length(r.text, LENGTH[fmt])
            options.append([map_positions(t, kinds[li]) for t in fitted])
        if any(not o for o in options):
            tried.append((Fitted(engine, fmt, tuple(r.text for r in reads), None, partial,
                                 problem=f"a line cannot be fitted to {LENGTH[fmt]} characters"), which))
            continue
        for combo in _combos(options):
            lines = ["<" * LENGTH[fmt] for _ in kinds]   # a line not read: fillers
            for li, text in zip(which, combo):
                lines[li] = text
            m, why = _parse(lines, fmt, partial, today)
            conf = _confidence(reads)
            if m is not None:
                return Fitted(engine, fmt, tuple(lines), m, partial, confidence=conf)
            tried.append((Fitted(engine, fmt, tuple(lines), None, partial, confidence=conf, problem=why), which))
    if repair:
        for f, which in tried:
            fixed = _repair(f, dict(zip(which, reads)), today)
            if fixed is not None:
                return fixed
    if tried:
        return tried[0][0]
    return Fitted(engine, None, tuple(r.text for r in reads), None,
                  problem=f"{len(reads)} line(s) of length {[len(r.text) for r in reads]}: not an MRZ")


def _combos(options: list[list[str]]):
    if not options:
        yield ()
        return
    for head in options[0]:
        for rest in _combos(options[1:]):
            yield (head, *rest)


def _confidence(reads: list[LineRead]) -> float | None:
    logs = []
    for r in reads:
        if r.probs is None:
            return None
        for c, p in zip(r.text, r.probs):
            if c not in ALPHABET:
                continue
            logs.append(math.log(max(p[ALPHABET.index(c)], 1e-9)))
    return sum(logs) / len(logs) if logs else None


def _field_slots(fmt: str) -> dict[str, list[tuple[int, int]]]:
    """The (line, column) slots of each check-digit-protected field, its check digit last."""
    layout = {"TD3": _mrz._TD3, "TD2": _mrz._TD2, "TD1": _mrz._TD1}[fmt]
    out = {}
    for name, span, cd in (("document_number", layout.doc, layout.doc_cd), ("birth_date", layout.birth, layout.birth_cd),
                           ("expiry_date", layout.expiry, layout.expiry_cd),
                           ("optional_data", layout.optional, layout.optional_cd)):
        if cd is None:
            continue
        li, a, b = span
        out[name] = [(li, i) for i in range(a, b)] + [tuple(cd)]
    return out


def _repair(f: Fitted, reads: dict[int, LineRead], today: _dt.date | None) -> Fitted | None:
    """One substitution in the one field whose check digit fails, only if the recogniser's own
    posteriors make it clearly the cheapest of every substitution that passes the check digits.
    `reads`: format line index -> that line's reading (with posteriors, at the line's exact length)."""
    if f.format is None or f.problem is None or any(
            r.probs is None or len(r.text) != LENGTH[f.format] for r in reads.values()):
        return None
    failing = [p.split(" check digit")[0] for p in f.problem.split("; ") if p.endswith("check digit")]
    others = [p for p in f.problem.split("; ") if not p.endswith("check digit")]
    fields = [x for x in failing if x != "composite"]
    if len(fields) != 1 or others:
        return None
    slots = _field_slots(f.format).get(fields[0])
    if not slots:
        return None
    probs = {li: r.probs for li, r in reads.items()}
    kinds = LAYOUTS[f.format]
    found = []
    for li, col in slots:
        if li not in probs:
            return None
        p = probs[li][col]
        current = f.lines[li][col]
        pc = p[ALPHABET.index(current)]
        for ai, alt in enumerate(ALPHABET):
            if alt == current or p[ai] <= 0:
                continue
            if map_positions(alt, kinds[li][col]) != alt:
                continue    # not a legal character in this slot
            cost = math.log(max(pc, 1e-9) / max(p[ai], 1e-12))
            lines = list(f.lines)
            lines[li] = lines[li][:col] + alt + lines[li][col + 1:]
            m, _ = _parse(lines, f.format, f.partial, today)
            if m is not None:
                found.append((cost, li, col, current, alt, lines, m))
    if not found:
        return None
    found.sort(key=lambda x: x[0])
    cost, li, col, current, alt, lines, m = found[0]
    if cost > MAX_REPAIR_COST or (len(found) > 1 and found[1][0] - cost < REPAIR_MARGIN):
        return None
    note = f"{li + 1}:{col + 1} {current}->{alt} (cost {cost:.2f})"
    return Fitted(f.engine, f.format, tuple(lines), _with_warning(m, f"OCR repair {note}"), f.partial,
                  repairs=(note,), confidence=f.confidence)


# ----------------------------------------------------------------------------- two engines

def _same_text(a: Fitted, b: Fitted) -> bool:
    """Every line both engines read is the same."""
    return all(x == y for x, y in zip(a.lines, b.lines) if x.strip("<") and y.strip("<")) and a.format == b.format


#: PP-OCR's bias in letter-or-digit fields: it reads these OCR-B letters as the digit (O as 0 almost
#: always). Each pair differs in value by a non-multiple of 10, so a check digit sees one such error.
PRIMARY_BIAS = {("0", "O"), ("1", "I"), ("2", "Z"), ("5", "S"), ("8", "B")}


def _bias_only(a: Fitted, b: Fitted) -> bool:
    """`a` read exactly `b`'s lines except a digit where `b` has its look-alike letter in a
    letter-or-digit field (PRIMARY_BIAS), at least once."""
    if a.format != b.format or len(a.lines) != len(b.lines):
        return False
    changed = False
    for la, lb, kinds in zip(a.lines, b.lines, LAYOUTS[a.format]):
        if not la.strip("<") or not lb.strip("<"):
            continue
        if len(la) != len(lb):
            return False
        for x, y, k in zip(la, lb, kinds):
            if x == y:
                continue
            if not ((x, y) in PRIMARY_BIAS and k == "x"):
                return False
            changed = True
    return changed


#: A read only the secondary engine verifies is accepted only if the primary's reading of the key
#: (document number, dates, their check digits) differs from it in at most this many characters, not
#: counting PRIMARY_BIAS pairs. The primary decodes every line at its exact length; the secondary's
#: lines are fitted to length afterwards, and a shifted line can verify by chance (1 in 10).
MAX_KEY_DIFFERENCES = 1


def _key_differences(one: Fitted, other: Fitted) -> int | None:
    """Characters of the key fields where `other` read something else than `one` (bias pairs
    aside); None when `other` has no reading of those lines at the same length."""
    if other.format != one.format or len(other.lines) != len(one.lines):
        return None
    slots = [slot for name, field_slots in _field_slots(one.format).items() if name != "optional_data"
             for slot in field_slots]
    n = 0
    for li, col in slots:
        x, y = one.lines[li][col], other.lines[li][col] if col < len(other.lines[li]) else ""
        if not other.lines[li].strip("<"):
            return None
        if x != y and (y, x) not in PRIMARY_BIAS and (x, y) not in PRIMARY_BIAS:
            n += 1
    return n


def _corroborated(one: Fitted, other: Fitted | None) -> bool:
    """A repaired read stands only if the other engine read the repaired characters that way too."""
    if not one.repairs:
        return True
    if other is None or other.format != one.format:
        return False
    for note in one.repairs:
        li, col = (int(x) - 1 for x in note.split(" ")[0].split(":"))
        if li >= len(other.lines) or other.lines[li][col] != one.lines[li][col]:
            return False
    return True


def _fuse(a: Fitted, b: Fitted, today: _dt.date | None) -> Fitted | None:
    """Where `a` has the look-alike digit of `b`'s letter (PRIMARY_BIAS, letter-or-digit fields),
    either may be right: the one combination of their choices (at most 2^5) that makes every check
    digit verify, if exactly one does."""
    if a.format is None or a.format != b.format or len(a.lines) != len(b.lines):
        return None
    spots = [(li, col) for li, (la, lb, kinds) in enumerate(zip(a.lines, b.lines, LAYOUTS[a.format]))
             if len(la) == len(lb) for col, (x, y, k) in enumerate(zip(la, lb, kinds))
             if (x, y) in PRIMARY_BIAS and k == "x"]
    if not spots or len(spots) > 5:
        return None
    found = []
    for mask in range(1, 1 << len(spots)):
        lines = [list(x) for x in a.lines]
        for bit, (li, col) in enumerate(spots):
            if mask >> bit & 1:
                lines[li][col] = b.lines[li][col]
        text = ["".join(x) for x in lines]
        m, _ = _parse(text, a.format, a.partial, today)
        if m is not None:
            found.append((text, m))
    if len(found) != 1:
        return None
    text, m = found[0]
    return Fitted(f"{a.engine}+{b.engine}", a.format, tuple(text), m, a.partial, confidence=a.confidence)


def _shared_zero_o(a: Fitted, b: Fitted, today: _dt.date | None) -> Fitted | None:
    """Both engines read the key lines alike, only the document number's check digit fails, and
    exactly one swap of O and 0 in the number makes every check digit verify (OCR-B's O and 0 differ
    by a few per cent in height; both engines confuse them, and the check digit sees the swap)."""
    if a.format is None or a.format != b.format or a.problem is None or b.problem is None:
        return None
    if a.problem.split("; ") != ["document_number check digit", "composite check digit"] and \
            a.problem != "document_number check digit":
        return None
    keys = KEY_LINES[a.format]
    if any(a.lines[i] != b.lines[i] for i in keys):
        return None
    found = []
    for li, col in _field_slots(a.format)["document_number"][:-1]:
        c = a.lines[li][col]
        if c not in "0O":
            continue
        lines = list(a.lines)
        lines[li] = lines[li][:col] + ("O" if c == "0" else "0") + lines[li][col + 1:]
        m, _ = _parse(lines, a.format, a.partial, today)
        if m is not None:
            found.append((li, col, c, lines, m))
    if len(found) != 1:
        return None
    li, col, c, lines, m = found[0]
    note = f"{li + 1}:{col + 1} {c}->{'O' if c == '0' else '0'}"
    return Fitted(f"{a.engine}+{b.engine}", a.format, tuple(lines), _with_warning(m, f"OCR repair {note}"),
                  a.partial, repairs=(note,))


def decide(a: Fitted, b: Fitted | None, today: _dt.date | None = None) -> Decision:
    """`a` is the primary engine (ranked first in a conflict), `b` the cross-check.

    agree     both read the same MRZ (every line both read), every check digit verified; or they
              differ only where `a` reads a letter as its look-alike digit (PRIMARY_BIAS, where
              `a` has no say) and `b`'s read verifies
    single    only one engine's read verifies (or both do, with the same key but another
              difference): accepted, but not used for the printed-versus-chip comparison
    conflict  both verify with different keys: both keys go to the chip, `a`'s first
    none      neither verifies: rescan
    """
    engines = tuple(e for e in (a, b) if e is not None)
    va, vb = a.valid, b is not None and b.valid
    if va and vb:
        if a.mrz.bac_mrz_information != b.mrz.bac_mrz_information:
            if _bias_only(a, b):   # the primary has no say where its bias speaks: the other's read stands
                return Decision("agree", (b.mrz,), b.partial, engines,
                                f"both verify; they differ only where {a.engine} reads a letter as its look-alike "
                                f"digit (its known bias): {b.engine}'s letters stand")
            if _key_differences(b, a) == 0:   # the keys differ only by the primary's bias
                return Decision("single", (b.mrz,), b.partial, engines,
                                f"both verify; their keys differ only where {a.engine} reads a letter as its look-alike "
                                f"digit, other text differs: {b.engine}'s read")
            return Decision("conflict", (a.mrz, b.mrz), a.partial or b.partial, engines,
                            "both engines verify with different keys")
        if _same_text(a, b):
            # The one read more lines stands for both (glare may have hidden a line from one engine only).
            best = a if not a.partial or b.partial else b
            return Decision("agree", (best.mrz,), best.partial, engines, "both engines read the same MRZ")
        return Decision("single", (a.mrz,), a.partial, engines, "same key, other text differs between engines")
    if vb and not va and _bias_only(a, b):
        return Decision("agree", (b.mrz,), b.partial, engines,
                        f"{b.engine} verifies; {a.engine} reads the same but a digit for its look-alike letter "
                        "(its known bias, which the check digits see)")
    if va or vb:
        one, other = (a, b) if va else (b, a)
        if not _corroborated(one, other):
            return Decision("none", (), False, engines,
                            f"only {one.engine} verifies, after a repair the other engine does not confirm")
        differ = _key_differences(one, other) if one is b else 0
        if differ is None or differ > MAX_KEY_DIFFERENCES:
            return Decision("none", (), False, engines,
                            f"only {one.engine} verifies and {other.engine if other else 'no other engine'} read "
                            f"its key otherwise ({'no reading' if differ is None else f'{differ} characters'})")
        return Decision("single", (one.mrz,), one.partial, engines,
                        f"only {one.engine} verifies" + (" (repaired)" if one.repairs else ""))
    shared = _shared_zero_o(a, b, today) if b is not None else None
    if shared is not None:
        return Decision("single", (shared.mrz,), shared.partial, engines,
                        f"both read the same key but the number's check digit fails; exactly one O/0 swap, "
                        f"the look-alikes both engines confuse, verifies: {shared.repairs[0]}")
    fused = _fuse(a, b, today) if b is not None else None
    if fused is not None:
        return Decision("single", (fused.mrz,), fused.partial, engines,
                        f"{a.engine} verifies once {b.engine}'s letters replace some of its look-alike digits "
                        "(the only such choice that verifies)")
    return Decision("none", (), False, engines, "; ".join(f"{e.engine}: {e.problem}" for e in engines))
