"""MRZ parsing: ICAO 9303 Parts 4-7 specimens as known answers, check digits, dates, repair."""
import datetime as dt
import json

import pytest

from gate.cli import main as cli_main
from icao9303 import mrz
from icao9303.mrz import MrzError

TODAY = dt.date(2025, 11, 26)

# ICAO 9303 specimens (Utopia).
TD3 = ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
       "L898902C36UTO7408122F1204159ZE184226B<<<<<10"]
TD2 = ["I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
       "D231458907UTO7408122F1204159<<<<<<<6"]
TD1 = ["I<UTOD231458907<<<<<<<<<<<<<<<",
       "7408122F1204159UTO<<<<<<<<<<<6",
       "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"]
MRVA = ["V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L8988901C4XXX4009078F96121096ZE184226B<<<<<<"]
MRVB = ["V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
        "L8988901C4XXX4009078F9612109<<<<<<<<"]


def parse(lines, **kw):
    return mrz.parse(lines, today=TODAY, **kw)


@pytest.mark.parametrize("s,expected", [
    ("L898902C3", 6), ("740812", 2), ("120415", 9), ("ZE184226B<<<<<", 1),
    ("D23145890", 7), ("400907", 8), ("961210", 9), ("<<<<<<", 0), ("", 0),
    ("L898902C3674081221204159ZE184226B<<<<<1", 0),
])
def test_check_digit_known_answers(s, expected):
    assert mrz.check_digit(s) == expected


def test_check_digit_rejects_non_mrz_characters():
    with pytest.raises(MrzError):
        mrz.check_digit("abc")


def test_td3_specimen_every_field():
    m = parse(TD3)
    assert (m.format, m.doc_type, m.issuer, m.nationality) == ("TD3", "P", "UTO", "UTO")
    assert (m.surname, m.given_names, m.sex) == ("ERIKSSON", "ANNA MARIA", "F")
    assert m.document_number == "L898902C3" and m.document_number_check == "6"
    assert m.birth_date_raw == "740812" and m.birth_date == dt.date(1974, 8, 12)
    assert m.expiry_date_raw == "120415" and m.expiry_date == dt.date(2012, 4, 15)
    assert m.optional_data == "ZE184226B"
    assert [c.name for c in m.checks] == ["document_number", "birth_date", "expiry_date",
                                          "optional_data", "composite"]
    assert all(c.valid for c in m.checks) and m.valid and not m.repairs
    assert m.bac_mrz_information == "L898902C3674081221204159"
    assert m.issuer_alpha2 == "UT"


def test_bac_seed_matches_icao_part11_worked_example():
    # ICAO 9303 Part 11, Appendix D.1: MRZ_information of L898902C<, 690806, 940623.
    info = mrz.bac_mrz_information("L898902C", "690806", "940623")
    assert info == "L898902C<369080619406236"
    assert mrz.bac_seed(info).hex().upper() == "239AB9CB282DAF66231DC5A4DF6BFBAE"


def test_td2_specimen():
    m = parse(TD2)
    assert (m.format, m.doc_type, m.document_number) == ("TD2", "I", "D23145890")
    assert m.valid and m.check("composite").valid
    assert (m.surname, m.given_names) == ("ERIKSSON", "ANNA MARIA")


def test_td1_specimen():
    m = parse(TD1)
    assert (m.format, m.document_number, m.birth_date, m.expiry_date) == \
        ("TD1", "D23145890", dt.date(1974, 8, 12), dt.date(2012, 4, 15))
    assert m.valid and m.check("composite").computed == 6
    assert m.given_names == "ANNA MARIA"


def test_td1_long_document_number_continues_in_optional_data():
    line1 = "I<UTOD23145890<7349<<<<<<<<<<<"
    line2 = "7408122F1204159UTO<<<<<<<<<<<"
    comp = mrz.check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    m = parse([line1, line2 + str(comp), TD1[2]])
    assert m.document_number == "D23145890734" and m.document_number_check == "9"
    assert m.valid
    assert m.bac_mrz_information.startswith("D231458907349")


def test_mrv_a_and_mrv_b_specimens():
    a, b = parse(MRVA), parse(MRVB)
    assert (a.format, b.format) == ("MRVA", "MRVB")
    for m in (a, b):
        assert m.valid and m.doc_type == "V" and m.nationality == "XXX"
        assert m.birth_date == dt.date(1940, 9, 7) and m.expiry_date == dt.date(1996, 12, 10)
        assert m.check("composite") is None
    assert a.optional_data == "6ZE184226B"


def test_single_string_and_newlines_are_accepted():
    assert parse("\n".join(TD3)).lines == tuple(TD3)
    assert parse("".join(TD1)).format == "TD1"
    assert parse([TD3[0] + "  ", "  " + TD3[1]]).valid


@pytest.mark.parametrize("bad,why", [
    ([TD3[0]], "shape"),
    ([TD3[0], TD3[1][:-1]], "shape"),
    ([TD3[0], TD3[1].lower()], "not allowed"),
    ([TD3[0].replace("<", " ", 1), TD3[1]], "not allowed"),
    ([], "shape"),
])
def test_structural_errors_raise(bad, why):
    with pytest.raises(MrzError, match=why):
        parse(bad)


@pytest.mark.parametrize("pos,name", [(9, "document_number"), (19, "birth_date"),
                                      (27, "expiry_date"), (42, "optional_data"),
                                      (43, "composite")])
def test_each_check_digit_is_verified(pos, name):
    line2 = TD3[1]
    wrong = str((int(line2[pos]) + 1) % 10)
    bad = [TD3[0], line2[:pos] + wrong + line2[pos + 1:]]
    m = parse(bad, strict=False)
    assert not m.valid and not m.check(name).valid
    with pytest.raises(MrzError, match=name):
        parse(bad)


def test_altered_field_fails_its_check_and_the_composite():
    bad = [TD3[0], TD3[1].replace("7408122", "7408132")]
    m = parse(bad, strict=False)
    assert {c.name for c in m.checks if not c.valid} == {"birth_date", "composite"}


def test_optional_data_check_may_be_filler_when_empty():
    lines = mrz.compose_td3(issuer="UTO", surname="DOE", given_names="JO",
                            document_number="X1234567", nationality="UTO", birth_date="900101",
                            sex="M", expiry_date="300101")
    assert lines[1][42] == "<"
    assert parse(lines).check("optional_data").valid


def test_names_with_fillers_and_truncation():
    m = parse(mrz.compose_td3(issuer="D", surname="VAN DER BERG", given_names="JAN PIETER",
                              document_number="C01X00T47", nationality="D", birth_date="640812",
                              sex="M", expiry_date="310101"))
    assert (m.surname, m.given_names, m.issuer, m.nationality) == \
        ("VAN DER BERG", "JAN PIETER", "D", "D")
    assert m.issuer_alpha2 == "DE" and not m.names_truncated
    long = mrz.compose_td3(issuer="UTO", surname="WOLFESCHLEGELSTEINHAUSENBERGERDORFF",
                           given_names="HUBERT BLAINE", document_number="1", nationality="UTO",
                           birth_date="000101", sex="<", expiry_date="300101")
    m = parse(long)
    assert m.names_truncated and m.sex == "X" and "truncated" in " ".join(m.warnings)


def test_surname_only():
    line1 = "P<UTOMADONNA" + "<" * 32
    m = parse([line1, TD3[1]])
    assert (m.surname, m.given_names) == ("MADONNA", "")


def test_digit_in_name_is_a_problem():
    m = parse([TD3[0].replace("ANNA", "ANN4"), TD3[1]], strict=False)
    assert not m.valid and "digit" in m.problems[0]


@pytest.mark.parametrize("code", ["D", "UTO", "XXA", "XXB", "XXC", "XXX", "GBD", "GBN", "GBO",
                                  "GBP", "GBS"])
def test_special_codes(code):
    lines = mrz.compose_td3(issuer=code, surname="DOE", given_names="JO", document_number="AB1234567",
                            nationality=code, birth_date="800101", sex="F", expiry_date="300101")
    m = parse(lines)
    assert m.issuer == code and m.nationality == code and not m.warnings
    d = m.to_dict()
    assert d["issuer_meaning"] or code == "D"


def test_unknown_country_code_is_a_warning_not_an_error():
    lines = mrz.compose_td3(issuer="QQQ", surname="DOE", given_names="JO", document_number="1",
                            nationality="UTO", birth_date="800101", sex="F", expiry_date="300101")
    m = parse(lines)
    assert m.valid and any("QQQ" in w for w in m.warnings)


def test_century_inference():
    def dates(birth, expiry, today=TODAY):
        lines = mrz.compose_td3(issuer="UTO", surname="A", given_names="B", document_number="1",
                                nationality="UTO", birth_date=birth, sex="F", expiry_date=expiry)
        m = mrz.parse(lines, today=today)
        return m.birth_date, m.expiry_date
    assert dates("251126", "351126") == (dt.date(2025, 11, 26), dt.date(2035, 11, 26))
    assert dates("251127", "991231") == (dt.date(1925, 11, 27), dt.date(1999, 12, 31))
    assert dates("000229", "700101") == (dt.date(2000, 2, 29), dt.date(2070, 1, 1))
    assert dates("991231", "760101") == (dt.date(1999, 12, 31), dt.date(1976, 1, 1))
    # birth never in the future, even on the day before a birthday
    assert dates("251127", "300101", dt.date(2025, 11, 26))[0].year == 1925


def test_invalid_calendar_date_is_a_problem():
    lines = mrz.compose_td3(issuer="UTO", surname="A", given_names="B", document_number="1",
                            nationality="UTO", birth_date="741332", sex="F", expiry_date="300101")
    m = parse(lines, strict=False)
    assert m.birth_date is None and any("calendar" in p for p in m.problems)
    with pytest.raises(MrzError, match="calendar"):
        parse(lines)


def test_unknown_birth_day_is_allowed():
    lines = mrz.compose_td3(issuer="UTO", surname="A", given_names="B", document_number="1",
                            nationality="UTO", birth_date="74<<<<", sex="F", expiry_date="300101")
    m = parse(lines)
    assert m.valid and m.birth_date is None and m.birth_date_raw == "74<<<<"


@pytest.mark.parametrize("letter,digit", list(mrz.OCR_CONFUSIONS.items()))
def test_ocr_repair_of_each_confusion_in_numeric_fields(letter, digit):
    # Make a valid MRZ whose birth date contains `digit`, then misread it as `letter`.
    birth = f"8{digit}0101" if digit not in "0" else "800101"
    lines = mrz.compose_td3(issuer="UTO", surname="A", given_names="B", document_number="1",
                            nationality="UTO", birth_date=birth, sex="F", expiry_date="300101")
    pos = 13 + birth.index(digit)
    misread = [lines[0], lines[1][:pos] + letter + lines[1][pos + 1:]]
    m = parse(misread)
    assert m.valid and m.lines == tuple(lines)
    assert [(r.field, r.line, r.column, r.found, r.replaced_by) for r in m.repairs] == \
        [("birth_date", 2, pos + 1, letter, digit)]


def test_repair_of_check_digits_and_composite():
    bad = [TD3[0], TD3[1][:9] + "G" + TD3[1][10:-1] + "O"]   # 6 -> G, 0 -> O
    m = parse(bad)
    assert m.valid and {r.field for r in m.repairs} == {"document_number", "composite"}


def test_no_repair_in_alphanumeric_fields():
    # 'O' in the document number is legal; it is not turned into a zero.
    bad = [TD3[0], TD3[1].replace("L898902C3", "L898902CO", 1)]
    m = parse(bad, strict=False)
    assert not m.repairs and not m.check("document_number").valid


def test_repair_only_when_the_check_digit_confirms_it():
    # A letter that maps to the wrong digit stays and the field fails.
    bad = [TD3[0], TD3[1][:13] + "7S08122" + TD3[1][20:]]     # 4 misread as S (= 5)
    m = parse(bad, strict=False)
    assert not m.repairs and not m.valid


def test_repairs_are_bounded():
    bad = [TD3[0], TD3[1][:13] + "7O8IZZ" + TD3[1][19:]]      # 740812 -> 7O8IZZ? 4 letters
    m = parse(bad, strict=False, max_repairs=2)
    assert not m.repairs and not m.valid
    assert any("bound" in p for p in m.problems)


def test_repair_can_be_disabled():
    bad = [TD3[0], TD3[1].replace("7408122", "74O8122")]
    assert not parse(bad, strict=False, repair=False).valid


def test_cli_valid_and_json(capsys):
    assert cli_main(["mrz", "parse", *TD3, "--json", "--today", "2025-11-26"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] and out["document_number"] == "L898902C3"
    assert [c["valid"] for c in out["checks"]] == [True] * 5


def test_cli_reports_repair(capsys):
    bad = [TD3[0], TD3[1].replace("7408122", "74O8122")]
    assert cli_main(["mrz", "parse", *bad]) == 0
    out = capsys.readouterr().out
    assert "repair birth_date" in out and "'O' -> '0'" in out


def test_cli_invalid_exits_1_with_reason(capsys):
    bad = [TD3[0], TD3[1][:-1] + "1"]
    assert cli_main(["mrz", "parse", *bad, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert not out["valid"] and "composite" in out["reasons"][0]


def test_cli_not_an_mrz_exits_1(capsys):
    assert cli_main(["mrz", "parse", "HELLO"]) == 1
    assert "MrzError" in capsys.readouterr().err
