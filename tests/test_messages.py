import pytest

from core import messages


def test_every_message_has_english_and_traditional_chinese():
    for mid, texts in messages.CATALOGUE.items():
        assert texts.get("en") and texts.get("zh-TW"), mid
        assert "." in mid, f"{mid}: ids are namespaced (area.what)"


def test_language_fallback_and_unknown_id():
    assert messages.text("face.remove_glasses", "zh-TW") == "請摘下眼鏡。"
    assert messages.text("face.remove_glasses", "ja") == "Please remove your glasses."
    with pytest.raises(messages.UnknownMessage):
        messages.text("face.remove_glases")
