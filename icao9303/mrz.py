"""Machine-readable zone: TD1, TD2, TD3, MRV-A and MRV-B (ICAO 9303 Parts 3-7).

`parse(lines)` returns a frozen `Mrz` with every field, each check digit's verdict and any
OCR repair.  Structural problems (wrong shape, characters outside ``A-Z 0-9 <``) always
raise `MrzError`; with ``strict=True`` (the default) a failed check digit or an invalid
field raises too, with ``strict=False`` the verdicts are returned for reporting.

OCR repair: in numeric positions only (dates and check digits) the letters O, I, B, S, Z, G
are read as 0, 1, 8, 5, 2, 6 — and only when the field's check digit then verifies.  Each
repair is reported; at most ``max_repairs`` are made per MRZ.  Alphanumeric fields such as
the document number are never changed: there a letter and a digit are both legal.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field

from icao9303 import countries
from core.errors import ParseError


class MrzError(ParseError):
    """The MRZ text is not a valid TD1/TD2/TD3/MRV-A/MRV-B zone."""


_WEIGHTS = (7, 3, 1)
_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
#: OCR confusions repaired in numeric positions (letter read where a digit is printed).
OCR_CONFUSIONS = {"O": "0", "I": "1", "B": "8", "S": "5", "Z": "2", "G": "6"}
MAX_REPAIRS = 4
#: Expiry years are placed in the century that puts them at most this many years ahead.
EXPIRY_FORWARD_WINDOW_YEARS = 50

FORMATS = ("TD1", "TD2", "TD3", "MRVA", "MRVB")


def char_value(c: str) -> int:
    """ICAO 9303 Part 3 value of one MRZ character: 0-9 digits, A=10..Z=35, '<'=0."""
    if "0" <= c <= "9":
        return ord(c) - 48
    if "A" <= c <= "Z":
        return ord(c) - 55
    if c == "<":
        return 0
    raise MrzError(f"character {c!r} is not allowed in an MRZ")


def check_digit(s: str) -> int:
    """ICAO 9303 check digit of `s` (weights 7-3-1 repeating, modulo 10)."""
    return sum(char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(s)) % 10


def bac_mrz_information(document_number: str, birth_date: str, expiry_date: str) -> str:
    """ICAO 9303 Part 11 'MRZ_information' from the three printed fields.

    The document number is padded with '<' to at least 9 characters; each field is followed
    by its check digit.  Dates are YYMMDD as printed in the MRZ.
    """
    doc = document_number.upper().replace(" ", "<")
    doc = doc + "<" * max(0, 9 - len(doc))
    for name, d in (("birth date", birth_date), ("expiry date", expiry_date)):
        if len(d) != 6 or not all(c in "0123456789<" for c in d):
            raise MrzError(f"{name} must be YYMMDD, found {d!r}")
    for c in doc:
        if c not in _ALLOWED:
            raise MrzError(f"document number has character {c!r} outside A-Z 0-9 <")
    return (f"{doc}{check_digit(doc)}{birth_date}{check_digit(birth_date)}"
            f"{expiry_date}{check_digit(expiry_date)}")


def bac_seed(mrz_information: str) -> bytes:
    """K_seed = first 16 bytes of SHA-1(MRZ_information) (ICAO 9303 Part 11, 9.7.1)."""
    return hashlib.sha1(mrz_information.encode("ascii")).digest()[:16]


@dataclass(frozen=True)
class CheckDigit:
    """Verdict of one check digit: the character printed against the one computed."""
    name: str          # document_number, birth_date, expiry_date, optional_data, composite
    printed: str       # the character found in the MRZ (after any repair)
    computed: int
    valid: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "printed": self.printed, "computed": self.computed,
                "valid": self.valid}


@dataclass(frozen=True)
class Repair:
    """One OCR confusion corrected in a numeric position."""
    field: str
    line: int          # 1-based
    column: int        # 1-based
    found: str
    replaced_by: str

    def to_dict(self) -> dict:
        return {"field": self.field, "line": self.line, "column": self.column,
                "found": self.found, "replaced_by": self.replaced_by}


@dataclass(frozen=True)
class Mrz:
    format: str                      # TD1 | TD2 | TD3 | MRVA | MRVB
    doc_type: str                    # document code without filler: P, PD, I, AC, V, ...
    issuer: str                      # issuing state or organisation, filler removed (D, UTO, ...)
    document_number: str             # full number, filler removed (long TD1/TD2 numbers joined)
    document_number_check: str       # its check digit as printed
    birth_date_raw: str              # YYMMDD as printed (may contain '<' for unknown parts)
    birth_date: _dt.date | None
    birth_date_check: str
    expiry_date_raw: str
    expiry_date: _dt.date | None
    expiry_date_check: str
    nationality: str
    sex: str                         # M, F or X ('<' is reported as X)
    surname: str                     # primary identifier, components joined by spaces
    given_names: str                 # secondary identifier, components joined by spaces
    names_truncated: bool
    optional_data: str               # TD3 personal number, TD1 line 1 / TD2 / MRV optional data
    optional_data_2: str             # TD1 line 2 optional data ('' elsewhere)
    checks: tuple[CheckDigit, ...]
    repairs: tuple[Repair, ...]
    problems: tuple[str, ...]        # invalid fields other than check digits
    warnings: tuple[str, ...]        # unusual but not invalid (unknown code, truncated name...)
    lines: tuple[str, ...]           # the MRZ after repairs
    original_lines: tuple[str, ...]  # as given (whitespace trimmed)

    @property
    def valid(self) -> bool:
        """Every check digit verifies and no field is invalid."""
        return all(c.valid for c in self.checks) and not self.problems

    @property
    def reasons(self) -> list[str]:
        """Why the MRZ is invalid (empty when valid)."""
        out = [f"{c.name} check digit: printed {c.printed!r}, computed {c.computed}"
               for c in self.checks if not c.valid]
        return out + list(self.problems)

    def check(self, name: str) -> CheckDigit | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def bac_mrz_information(self) -> str:
        """MRZ_information for BAC: document number (≥ 9, '<'-padded), birth, expiry, each + check digit."""
        doc = self.document_number + "<" * max(0, 9 - len(self.document_number))
        return (doc + self.document_number_check + self.birth_date_raw + self.birth_date_check
                + self.expiry_date_raw + self.expiry_date_check)

    @property
    def bac_seed(self) -> bytes:
        """K_seed (16 bytes) for BAC key derivation."""
        return bac_seed(self.bac_mrz_information)

    @property
    def issuer_alpha2(self) -> str | None:
        return countries.alpha2(self.issuer)

    def to_dict(self) -> dict:
        return {
            "format": self.format, "doc_type": self.doc_type, "issuer": self.issuer,
            "issuer_meaning": countries.special_meaning(self.issuer),
            "document_number": self.document_number,
            "birth_date": self.birth_date_raw,
            "birth_date_iso": self.birth_date.isoformat() if self.birth_date else None,
            "expiry_date": self.expiry_date_raw,
            "expiry_date_iso": self.expiry_date.isoformat() if self.expiry_date else None,
            "nationality": self.nationality,
            "nationality_meaning": countries.special_meaning(self.nationality),
            "sex": self.sex, "surname": self.surname, "given_names": self.given_names,
            "names_truncated": self.names_truncated,
            "optional_data": self.optional_data, "optional_data_2": self.optional_data_2,
            "checks": [c.to_dict() for c in self.checks],
            "repairs": [r.to_dict() for r in self.repairs],
            "problems": list(self.problems), "warnings": list(self.warnings),
            "valid": self.valid, "lines": list(self.lines),
        }


# --------------------------------------------------------------------------- layouts
# A span is (line index, start, end) over the MRZ lines.

@dataclass(frozen=True)
class _Layout:
    name: str
    shape: tuple[int, ...]               # line lengths
    code: tuple[int, int, int]
    issuer: tuple[int, int, int]
    names: tuple[int, int, int]
    doc: tuple[int, int, int]
    doc_cd: tuple[int, int]
    nationality: tuple[int, int, int]
    birth: tuple[int, int, int]
    birth_cd: tuple[int, int]
    sex: tuple[int, int]
    expiry: tuple[int, int, int]
    expiry_cd: tuple[int, int]
    optional: tuple[int, int, int]
    optional_cd: tuple[int, int] | None = None
    optional2: tuple[int, int, int] | None = None
    composite: tuple[int, int] | None = None
    composite_spans: tuple[tuple[int, int, int], ...] = field(default_factory=tuple)
    long_doc: bool = False               # document number may continue in the optional data


_TD3 = _Layout("TD3", (44, 44), code=(0, 0, 2), issuer=(0, 2, 5), names=(0, 5, 44),
               doc=(1, 0, 9), doc_cd=(1, 9), nationality=(1, 10, 13), birth=(1, 13, 19),
               birth_cd=(1, 19), sex=(1, 20), expiry=(1, 21, 27), expiry_cd=(1, 27),
               optional=(1, 28, 42), optional_cd=(1, 42), composite=(1, 43),
               composite_spans=((1, 0, 10), (1, 13, 20), (1, 21, 43)))
_TD2 = _Layout("TD2", (36, 36), code=(0, 0, 2), issuer=(0, 2, 5), names=(0, 5, 36),
               doc=(1, 0, 9), doc_cd=(1, 9), nationality=(1, 10, 13), birth=(1, 13, 19),
               birth_cd=(1, 19), sex=(1, 20), expiry=(1, 21, 27), expiry_cd=(1, 27),
               optional=(1, 28, 35), composite=(1, 35),
               composite_spans=((1, 0, 10), (1, 13, 20), (1, 21, 35)), long_doc=True)
_TD1 = _Layout("TD1", (30, 30, 30), code=(0, 0, 2), issuer=(0, 2, 5), names=(2, 0, 30),
               doc=(0, 5, 14), doc_cd=(0, 14), nationality=(1, 15, 18), birth=(1, 0, 6),
               birth_cd=(1, 6), sex=(1, 7), expiry=(1, 8, 14), expiry_cd=(1, 14),
               optional=(0, 15, 30), optional2=(1, 18, 29), composite=(1, 29),
               composite_spans=((0, 5, 30), (1, 0, 7), (1, 8, 15), (1, 18, 29)), long_doc=True)
_MRVA = _Layout("MRVA", (44, 44), code=(0, 0, 2), issuer=(0, 2, 5), names=(0, 5, 44),
                doc=(1, 0, 9), doc_cd=(1, 9), nationality=(1, 10, 13), birth=(1, 13, 19),
                birth_cd=(1, 19), sex=(1, 20), expiry=(1, 21, 27), expiry_cd=(1, 27),
                optional=(1, 28, 44))
_MRVB = _Layout("MRVB", (36, 36), code=(0, 0, 2), issuer=(0, 2, 5), names=(0, 5, 36),
                doc=(1, 0, 9), doc_cd=(1, 9), nationality=(1, 10, 13), birth=(1, 13, 19),
                birth_cd=(1, 19), sex=(1, 20), expiry=(1, 21, 27), expiry_cd=(1, 27),
                optional=(1, 28, 36))


def _normalise(lines) -> list[str]:
    if isinstance(lines, str):
        lines = [lines]
    try:
        raw = [str(x) for x in lines]
    except TypeError as exc:
        raise MrzError(f"MRZ must be a list of text lines, got {type(lines).__name__}") from exc
    out: list[str] = []
    for item in raw:
        out.extend(p.strip() for p in item.replace("\r", "\n").split("\n") if p.strip())
    if len(out) == 1 and len(out[0]) in (88, 90, 72):
        s = out[0]
        n = {88: 44, 90: 30, 72: 36}[len(s)]
        out = [s[i:i + n] for i in range(0, len(s), n)]
    return out


def _layout_for(lines: list[str]) -> _Layout:
    shape = tuple(len(x) for x in lines)
    if shape == (30, 30, 30):
        return _TD1
    if shape == (36, 36):
        return _MRVB if lines[0][:1] == "V" else _TD2
    if shape == (44, 44):
        return _MRVA if lines[0][:1] == "V" else _TD3
    desc = ", ".join(str(n) for n in shape) or "none"
    raise MrzError(f"not an MRZ shape: {len(lines)} line(s) of length {desc} "
                   "(expected 3x30 TD1, 2x36 TD2/MRV-B or 2x44 TD3/MRV-A)")


def _date(raw: str, kind: str, today: _dt.date) -> tuple[_dt.date | None, str | None]:
    """(date, problem).  Birth dates fall in the past; expiry dates within the forward window."""
    if not raw.isdigit():
        if kind == "birth" and raw[:2].isdigit() and all(c.isdigit() or c == "<" for c in raw):
            return None, None    # unknown month/day, filled with '<' (Part 3, 4.6)
        return None, f"{kind} date {raw!r} is not YYMMDD"
    yy, mm, dd = int(raw[:2]), int(raw[2:4]), int(raw[4:])
    if kind == "birth":
        year = 2000 + yy if 2000 + yy <= today.year else 1900 + yy
    else:
        year = (today.year // 100) * 100 + yy
        if year > today.year + EXPIRY_FORWARD_WINDOW_YEARS:
            year -= 100
        elif year <= today.year + EXPIRY_FORWARD_WINDOW_YEARS - 100:
            year += 100
    try:
        d = _dt.date(year, mm, dd)
    except ValueError:
        return None, f"{kind} date {raw!r} is not a calendar date"
    if kind == "birth" and d > today:
        try:
            d = _dt.date(year - 100, mm, dd)
        except ValueError:
            return None, f"birth date {raw!r} is not a calendar date"
    return d, None


def _names(raw: str) -> tuple[str, str, bool, str | None]:
    """(surname, given names, truncated, problem)."""
    if any(c.isdigit() for c in raw):
        return "", "", False, f"name field {raw!r} contains a digit"
    truncated = not raw.endswith("<")
    body = raw.rstrip("<")
    primary, _, secondary = body.partition("<<")
    surname = " ".join(p for p in primary.split("<") if p)
    given = " ".join(p for p in secondary.split("<") if p)
    problem = None if surname or given else "name field is empty"
    return surname, given, truncated, problem


def parse(lines, *, today: _dt.date | None = None, repair: bool = True,
          strict: bool = True, max_repairs: int = MAX_REPAIRS) -> Mrz:
    """Parse an MRZ given as its lines (or one string with newlines or the lines run together).

    Raises `MrzError` for anything that is not an MRZ at all; with `strict`, also when a check
    digit fails or a field is invalid (the message lists every reason).
    """
    today = today or _dt.date.today()
    given = _normalise(lines)
    layout = _layout_for(given)
    for li, line in enumerate(given):
        for ci, c in enumerate(line):
            if c not in _ALLOWED:
                raise MrzError(f"line {li + 1} column {ci + 1}: character {c!r} is not allowed "
                               "(A-Z, 0-9 and '<' only)")
    rows = [list(x) for x in given]
    repairs: list[Repair] = []
    problems: list[str] = []
    warnings: list[str] = []

    def text(span) -> str:
        li, a, b = span
        return "".join(rows[li][a:b])

    def ch(pos) -> str:
        return rows[pos[0]][pos[1]]

    def verify(data: str, cd: str) -> bool:
        return cd.isdigit() and check_digit(data) == int(cd)

    def try_repair(name: str, spans: list, cd_pos, numeric: bool = True) -> None:
        """Read confusable letters as digits in the check digit (and, for a numeric field, in
        its `spans`) if the check digit then verifies over `spans`."""
        if not repair:
            return
        candidates = [(li, i) for (li, a, b) in spans for i in range(a, b)] if numeric else []
        candidates.append(tuple(cd_pos))
        letters = [(li, i) for (li, i) in candidates if rows[li][i].isalpha()]
        if not letters or any(rows[li][i] not in OCR_CONFUSIONS for li, i in letters):
            return
        if len(repairs) + len(letters) > max_repairs:
            problems.append(f"{name}: {len(letters)} OCR confusion(s) would exceed the bound "
                            f"of {max_repairs} repairs")
            return
        trial = {p: OCR_CONFUSIONS[rows[p[0]][p[1]]] for p in letters}

        def get(li, i):
            return trial.get((li, i), rows[li][i])
        data = "".join(get(li, i) for (li, a, b) in spans for i in range(a, b))
        if verify(data, get(*cd_pos)):
            for (li, i), new in trial.items():
                repairs.append(Repair(name, li + 1, i + 1, rows[li][i], new))
                rows[li][i] = new

    # Numeric fields first (dates with their check digits), composite last.
    try_repair("birth_date", [layout.birth], layout.birth_cd)
    try_repair("expiry_date", [layout.expiry], layout.expiry_cd)
    try_repair("document_number", [layout.doc], layout.doc_cd, numeric=False)
    if layout.optional_cd:
        try_repair("optional_data", [layout.optional], layout.optional_cd, numeric=False)

    # Document number, possibly long (TD1/TD2: '<' in the check position, rest in optional data).
    doc = text(layout.doc)
    doc_cd = ch(layout.doc_cd)
    doc_data = doc
    optional = text(layout.optional)
    if layout.long_doc and doc_cd == "<" and doc[-1] != "<":
        end = optional.find("<")
        if end <= 0:
            problems.append("document number check digit is '<' but the optional data holds "
                            "no continuation of the number")
        else:
            ext, doc_cd = optional[:end - 1], optional[end - 1]
            doc_data = doc + ext
            optional = optional[end + 1:]
    document_number = doc_data.rstrip("<")
    if "<" in document_number:
        warnings.append(f"document number {doc_data!r} has a filler inside it")

    checks: list[CheckDigit] = []

    def add_check(name: str, data: str, cd: str, allow_lt_when_empty: bool = False) -> None:
        if allow_lt_when_empty and cd == "<" and set(data) <= {"<"}:
            checks.append(CheckDigit(name, cd, 0, True))
            return
        checks.append(CheckDigit(name, cd, check_digit(data), verify(data, cd)))

    add_check("document_number", doc_data, doc_cd)
    birth_raw, birth_cd = text(layout.birth), ch(layout.birth_cd)
    expiry_raw, expiry_cd = text(layout.expiry), ch(layout.expiry_cd)
    add_check("birth_date", birth_raw, birth_cd)
    add_check("expiry_date", expiry_raw, expiry_cd)
    if layout.optional_cd:
        add_check("optional_data", text(layout.optional), ch(layout.optional_cd),
                  allow_lt_when_empty=True)
    if layout.composite:
        try_repair("composite", list(layout.composite_spans), layout.composite, numeric=False)
        comp = "".join(text(s) for s in layout.composite_spans)
        add_check("composite", comp, ch(layout.composite))

    birth, p = _date(birth_raw, "birth", today)
    if p:
        problems.append(p)
    expiry, p = _date(expiry_raw, "expiry", today)
    if p:
        problems.append(p)

    code = text(layout.code)
    if not code[0].isalpha() or code[1].isdigit():
        problems.append(f"document code {code!r} must be a letter followed by a letter or '<'")
    doc_type = code.rstrip("<")
    if layout.name == "TD3" and code[0] != "P":
        warnings.append(f"TD3 document code {code!r} does not start with P")

    def country(label: str, raw: str) -> str:
        value = raw.rstrip("<")
        if not value or not value.isalpha() or "<" in value:
            problems.append(f"{label} {raw!r} is not a 1-3 letter code padded with '<'")
        elif not countries.is_known(value):
            warnings.append(f"{label} {value!r} is not a known ISO 3166 or ICAO code")
        return value

    issuer = country("issuing state", text(layout.issuer))
    nationality = country("nationality", text(layout.nationality))

    sex = ch(layout.sex)
    if sex == "<":
        sex = "X"
    elif sex not in ("M", "F", "X"):
        problems.append(f"sex {sex!r} must be M, F, X or '<'")

    surname, given_names, truncated, p = _names(text(layout.names))
    if p:
        problems.append(p)
    if truncated:
        warnings.append("name field is full: the name may be truncated")

    optional2 = text(layout.optional2).rstrip("<") if layout.optional2 else ""

    result = Mrz(
        format=layout.name, doc_type=doc_type, issuer=issuer, document_number=document_number,
        document_number_check=doc_cd, birth_date_raw=birth_raw, birth_date=birth,
        birth_date_check=birth_cd, expiry_date_raw=expiry_raw, expiry_date=expiry,
        expiry_date_check=expiry_cd, nationality=nationality, sex=sex, surname=surname,
        given_names=given_names, names_truncated=truncated,
        optional_data=optional.rstrip("<"), optional_data_2=optional2,
        checks=tuple(checks), repairs=tuple(repairs), problems=tuple(problems),
        warnings=tuple(warnings), lines=tuple("".join(r) for r in rows),
        original_lines=tuple(given))
    if strict and not result.valid:
        raise MrzError("invalid MRZ: " + "; ".join(result.reasons))
    return result


def compose_td3(*, doc_type: str = "P", issuer: str, surname: str, given_names: str,
                document_number: str, nationality: str, birth_date: str, sex: str,
                expiry_date: str, personal_number: str = "") -> list[str]:
    """Build a valid TD3 MRZ (used by the test PKI and tests)."""
    names = _name_field(surname, given_names, 39)
    line1 = _pad(doc_type, 2) + _pad(issuer, 3) + names
    doc = _pad(document_number, 9)
    pn = _pad(personal_number, 14)
    pn_cd = "<" if set(pn) == {"<"} else str(check_digit(pn))
    body = (doc + str(check_digit(doc)) + _pad(nationality, 3) + birth_date
            + str(check_digit(birth_date)) + _pad(sex, 1) + expiry_date
            + str(check_digit(expiry_date)) + pn + pn_cd)
    comp = body[0:10] + body[13:20] + body[21:43]
    return [line1, body + str(check_digit(comp))]


def _pad(s: str, n: int) -> str:
    s = s.upper().replace(" ", "<").replace("-", "<")
    return (s + "<" * n)[:n]


def _name_field(surname: str, given_names: str, n: int) -> str:
    if not given_names:
        return _pad(surname, n)
    return _pad(surname.replace(" ", "<") + "<<" + given_names.replace(" ", "<"), n)


def compose_td2(*, doc_type: str = "I", issuer: str, surname: str, given_names: str,
                document_number: str, nationality: str, birth_date: str, sex: str,
                expiry_date: str, optional_data: str = "") -> list[str]:
    """Build a valid TD2 MRZ (2 x 36; document numbers of at most 9 characters)."""
    if len(document_number) > 9:
        raise MrzError("compose_td2 builds document numbers of at most 9 characters")
    line1 = _pad(doc_type, 2) + _pad(issuer, 3) + _name_field(surname, given_names, 31)
    doc = _pad(document_number, 9)
    body = (doc + str(check_digit(doc)) + _pad(nationality, 3) + birth_date
            + str(check_digit(birth_date)) + _pad(sex, 1) + expiry_date
            + str(check_digit(expiry_date)) + _pad(optional_data, 7))
    comp = body[0:10] + body[13:20] + body[21:35]
    return [line1, body + str(check_digit(comp))]


def compose_td1(*, doc_type: str = "I", issuer: str, surname: str, given_names: str,
                document_number: str, nationality: str, birth_date: str, sex: str,
                expiry_date: str, optional_data: str = "", optional_data_2: str = "") -> list[str]:
    """Build a valid TD1 MRZ (3 x 30; document numbers of at most 9 characters)."""
    if len(document_number) > 9:
        raise MrzError("compose_td1 builds document numbers of at most 9 characters")
    doc = _pad(document_number, 9)
    line1 = _pad(doc_type, 2) + _pad(issuer, 3) + doc + str(check_digit(doc)) + _pad(optional_data, 15)
    line2 = (birth_date + str(check_digit(birth_date)) + _pad(sex, 1) + expiry_date
             + str(check_digit(expiry_date)) + _pad(nationality, 3) + _pad(optional_data_2, 11))
    comp = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    return [line1, line2 + str(check_digit(comp)), _name_field(surname, given_names, 30)]
