"""icao9303.mrz_ocr: every pitfall of reading an MRZ by OCR, without images (pure text logic).

Check digits are not proof: 7-3-1 cannot see G/6, L/1, U/0, S/8, K/'<', 0/'<', nor a date's last
digit misread the same way in its check digit; single-character repair invents document numbers.
Two engines must agree, and a repair needs the recogniser's own clear word and the other engine."""
import datetime as dt
import random

import pytest
from hypothesis import given, settings, strategies as st

from drivers.mrz_reader.driver import MrzRead
from icao9303 import mrz
from icao9303.mrz_ocr import ALPHABET, LineRead, decide, fit, fit_length, map_positions

TODAY = dt.date(2026, 11, 30)


def td3(number="L898902C3", birth="740812", expiry="340415", surname="ERIKSSON", given_names="ANNA MARIA"):
    return mrz.compose_td3(issuer="UTO", surname=surname, given_names=given_names, document_number=number,
                           nationality="UTO", birth_date=birth, sex="F", expiry_date=expiry)


def reads(lines, probs=None):
    return [LineRead(x, x, None if probs is None else probs[i]) for i, x in enumerate(lines)]


def engine(lines, name="ppocr", probs=None):
    return fit(reads(lines, probs), name, today=TODAY)


def key(lines):
    return mrz.parse(lines, today=TODAY).bac_mrz_information


@pytest.mark.parametrize("a, b", [("G", "6"), ("L", "1"), ("U", "0"), ("S", "8"), ("K", "<"), ("0", "<")])
def test_check_digits_cannot_see_these_confusions_so_two_engines_that_differ_never_agree(a, b):
    assert (mrz.char_value(a) - mrz.char_value(b)) % 10 == 0
    truth = td3(number=f"AB12{a}4567" if a not in "K0" else f"AB1234{a}")
    misread = td3(number=f"AB12{b}4567" if a not in "K0" else f"AB1234{b}")
    assert truth[1][9] == misread[1][9]                         # the same check digit ...
    assert mrz.parse(misread, today=TODAY).valid                # ... so the misread verifies on its own
    d = decide(engine(misread), engine(truth, "tesseract"), TODAY)
    assert d.agreement == "conflict" and key(truth) in d.keys and key(misread) in d.keys


def test_a_dates_last_digit_misread_the_same_way_in_its_check_digit_passes_every_check_digit():
    truth = td3(birth="850316")        # ..6 + its check digit
    wrong = list(truth[1])
    d = 3                              # 6 -> 9 and the check digit moved by the same 3
    wrong[18] = str((int(wrong[18]) + d) % 10)
    wrong[19] = str((int(wrong[19]) + d) % 10)
    misread = [truth[0], "".join(wrong)]
    assert mrz.parse(misread, today=TODAY).valid                # 1*d in the date's own check, 7d + 3d in the composite
    decision = decide(engine(misread), engine(truth, "tesseract"), TODAY)
    assert decision.agreement == "conflict" and key(truth) in decision.keys


def test_the_repeated_date_error_that_makes_no_calendar_date_is_refused():
    truth = td3(birth="500502")
    misread = [truth[0], truth[1][:18] + "0" + "0" + truth[1][20:]]   # 500502+2 read as 500500+0
    assert all(c.valid for c in mrz.parse(misread, today=TODAY, strict=False).checks)
    assert not engine(misread).valid                            # day 00: not a date
    d = decide(engine(misread), engine(truth, "tesseract"), TODAY)
    assert mrz.parse(misread, strict=False).bac_mrz_information not in d.keys and d.keys in ((), (key(truth),))


def _posteriors(lines, overrides=None):
    """Confident one-hot posteriors, with `overrides` {(line, col): {char: p}}."""
    out = []
    for li, line in enumerate(lines):
        rows = []
        for ci, c in enumerate(line):
            p = [1e-6] * len(ALPHABET)
            for ch, v in (overrides or {}).get((li, ci), {c: 1.0}).items():
                p[ALPHABET.index(ch)] = v
            rows.append(p)
        out.append(rows)
    return out


def test_single_character_repair_is_refused_when_many_fixes_pass_the_check_digit():
    truth = td3(number="X4T7Q2K81")
    misread = [truth[0], truth[1][:3] + "9" + truth[1][4:]]      # one wrong character, posteriors sure of it
    assert not mrz.parse(misread, today=TODAY, strict=False).valid
    assert not engine(misread, probs=_posteriors(misread)).valid  # no clear cheapest fix: no repair
    assert not engine(misread).valid                             # no posteriors: never a repair


def test_repair_is_made_only_when_the_recogniser_says_one_fix_is_clearly_cheapest_and_needs_the_other_engine():
    truth = td3(number="X4T7Q2K81")
    misread = [truth[0], truth[1][:3] + "9" + truth[1][4:]]
    probs = _posteriors(misread, {(1, 3): {"9": 0.55, "7": 0.45}})
    fixed = engine(misread, probs=probs)
    assert fixed.valid and fixed.repairs and fixed.mrz.bac_mrz_information == key(truth)
    # The other engine read the repaired character that way: accepted. It read nothing: refused.
    assert decide(fixed, engine(truth, "tesseract"), TODAY).keys == (key(truth),)
    nothing = engine(["P<UTO" + "<" * 39, "<" * 44], "tesseract")
    assert decide(fixed, nothing, TODAY).agreement == "none"


def test_glare_over_line_1_line_2_alone_gives_the_key_but_no_printed_comparison():
    truth = td3()
    alone = engine([truth[1]])
    assert alone.valid and alone.partial and alone.mrz.bac_mrz_information == key(truth)
    d = decide(alone, engine([truth[1]], "tesseract"), TODAY)
    assert d.agreement == "agree" and d.partial
    read = MrzRead(tuple(d.mrz.lines), d.mrz, None, agreement=d.agreement, partial=d.partial)
    assert not read.printed_agreed
    # TD1 needs lines 1 and 2 (the number is on line 1); its names line alone is nothing.
    card = mrz.compose_td1(issuer="UTO", surname="ERIKSSON", given_names="ANNA", document_number="D23145890",
                           nationality="UTO", birth_date="740812", sex="F", expiry_date="340415")
    assert engine(card[:2]).valid and engine(card[:2]).partial
    assert not engine([card[2]]).valid


def test_a_read_only_tesseract_verifies_needs_ppocr_to_have_read_the_same_key():
    truth = td3(number="63O505VOX")
    shifted = [truth[0], "30O505VOX7" + truth[1][10:]]        # a dropped character and a stray one
    if not mrz.parse(shifted, today=TODAY, strict=False).valid:
        pytest.skip("this shift does not verify by chance")
    ppocr = [truth[0], truth[1][:1] + "4" + truth[1][2:]]      # ppocr fails on one other character
    d = decide(engine(ppocr), engine(shifted, "tesseract"), TODAY)
    assert d.agreement == "none"
    near = [truth[0], truth[1].replace("63O505VOX", "63O5O5VOX", 1)]   # one O where tesseract has 0
    assert decide(engine(near), engine(truth, "tesseract"), TODAY).keys == (key(truth),)


def test_ppocr_reading_o_as_zero_agrees_with_tesseract_reading_o_because_the_check_digit_sees_it():
    truth = td3(number="B1OGEN16N")
    zero = [truth[0], truth[1].replace("B1OGEN", "B10GEN", 1)]
    d = decide(engine(zero), engine(truth, "tesseract"), TODAY)
    assert d.agreement == "agree" and d.keys == (key(truth),)


def test_letters_and_digits_are_mapped_by_position():
    truth = td3()
    noisy = ["P<UT0ER1KSS0N<<ANNA<MAR1A" + truth[0][25:], truth[1][:13] + "7A0BI2" + truth[1][19:]]
    noisy[0] = noisy[0].upper()
    f = engine(noisy)
    assert f.valid and list(f.lines) == truth
    assert map_positions("O1SB", "nnnn") == "0158" and map_positions("0158", "aaaa") == "OISB"


def test_filler_runs_are_stretched_or_shrunk_to_the_line_length():
    truth = td3()
    assert truth[0] in fit_length(truth[0][:-3], 44)
    assert truth[1] in fit_length(truth[1].replace("<<<<", "<<<<<<", 1), 44)
    f = engine([truth[0] + "<<", "K" + truth[1]], "tesseract")   # a speck read before line 2
    assert f.valid and list(f.lines) == truth


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_no_accepted_read_ever_fails_a_check_digit(data):
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    truth = td3(number="".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(9)))
    def noisy():
        out = []
        for line in truth:
            chars = list(line)
            for _ in range(rng.randint(0, 3)):
                op = rng.random()
                i = rng.randrange(len(chars))
                if op < 0.6:
                    chars[i] = rng.choice(ALPHABET + "abc ")
                elif op < 0.8:
                    del chars[i]
                else:
                    chars.insert(i, rng.choice(ALPHABET))
            out.append("".join(chars))
        return out[: rng.choice([1, 2, 2, 2])] if rng.random() < 0.2 else out
    a, b = noisy(), noisy()
    probs = [[[rng.random() for _ in ALPHABET] for _ in line] for line in a] if rng.random() < 0.5 else None
    fa = fit([LineRead(x, x, None if probs is None or len(x) != 44 else probs[i]) for i, x in enumerate(a)], "ppocr",
             today=TODAY)
    fb = fit(reads(b), "tesseract", today=TODAY)
    d = decide(fa, fb, TODAY)
    assert d.agreement in ("agree", "single", "conflict", "none")
    for m in d.candidates:
        assert all(c.valid for c in m.checks)
    if d.agreement == "agree":
        assert fa.valid or fb.valid
    d.to_dict()


def test_an_o_both_engines_read_as_zero_is_swapped_only_when_exactly_one_swap_verifies():
    truth = td3(number="0O5B77IYE")
    both_zero = [truth[0], truth[1].replace("0O5B77IYE", "005B77IYE", 1)]
    d = decide(engine(both_zero), engine(both_zero, "tesseract"), TODAY)
    assert d.agreement == "single" and d.keys == (key(truth),) and d.mrz.warnings[-1].startswith("OCR repair")
    # Two zeros where one swap or the other would do: no guess.
    many = td3(number="O0A0B0C0D")
    misread = [many[0], many[1].replace("O0A0B0C0D", "00A0B0C0D", 1)]
    swaps = sum(mrz.parse([misread[0], misread[1][:i] + "O" + misread[1][i + 1:]], today=TODAY, strict=False).valid
                for i in range(9) if misread[1][i] == "0")
    d = decide(engine(misread), engine(misread, "tesseract"), TODAY)
    assert (d.agreement == "none") == (swaps != 1)
