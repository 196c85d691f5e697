"""ICAO 9303 part 3 name folding: every MRZ spelling of a listed name, and what a reader saw."""
from icao9303 import names


def test_national_characters_take_every_spelling_part_3_allows_recommended_first():
    assert names.mrz_variants("Müller") == ["MUELLER", "MUXXLLER", "MULLER"]
    assert names.mrz_variants("Øster-Berg") == ["OESTER BERG", "OSTER BERG"]
    assert names.mrz_variants("Peña") == ["PENA", "PENXXA"]
    assert names.mrz_variants("Åberg")[0] == "AABERG" and "ABERG" in names.mrz_variants("Åberg")
    assert names.mrz_variants("Straße") == ["STRASSE"]
    assert names.mrz_variants("Łukasz Żółć") == ["LUKASZ ZOLC"]
    assert names.mrz_variants("José María") == ["JOSE MARIA"]
    assert names.mrz_variants("Þórsdóttir") == ["THORSDOTTIR"]


def test_other_scripts_are_transliterated():
    assert names.mrz_variants("Жуков") == ["ZHUKOV"]
    assert names.mrz_variants("Щукина Юлия") == ["SHCHUKINA IULIIA"]
    assert names.mrz_variants("Ψαράς") == ["PSARAS"]


def test_punctuation_and_fillers_fold_to_one_form():
    assert names.fold_mrz("O'Brien") == "OBRIEN"
    assert names.fold_mrz("DE<VRIES") == names.fold_mrz("de Vries") == "DE VRIES"
    assert names.fold_mrz("  SMITH--JONES ") == "SMITH JONES"
    assert names.fold_mrz("Anne-Marie, Claire") == "ANNE MARIE CLAIRE"


def test_keys_ignore_spaces_and_follow_the_rule():
    assert names.name_key("DE VRIES", "JAN PIETER") == "DEVRIES|JANPIETER"
    assert names.name_key("DE VRIES", "JAN PIETER", "first") == "DEVRIES|JAN"
    assert names.name_key("DE VRIES", "JAN PIETER", "surname") == "DEVRIES|"
    assert "MULLER|JURGEN" in names.key_variants("Müller", "Jürgen") and \
        "MUELLER|JUERGEN" in names.key_variants("Müller", "Jürgen")
    assert len(names.key_variants("Ääöüå", "Ñüöä")) <= names.MAX_VARIANTS
