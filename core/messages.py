"""Traveller guidance messages: one id, short texts per language.

Ids are what drivers and decisions emit (`face.remove_glasses`); the screen renders the text in
the traveller's language, falling back to English. Keep texts short: they are read while walking.
"""
from __future__ import annotations

from core.errors import EGateError

CATALOGUE: dict[str, dict[str, str]] = {
    "gate.welcome": {"en": "Welcome. Please place your passport photo page down on the reader.",
                     "zh-TW": "歡迎，請將護照資料頁朝下放在閱讀機上。"},
    "gate.out_of_service": {"en": "This gate is closed. Please use another gate.",
                            "zh-TW": "本通道暫停使用，請改用其他通道。"},
    "document.reading": {"en": "Reading your passport. Please do not move it.",
                         "zh-TW": "正在讀取護照，請勿移動。"},
    "document.reposition": {"en": "Please reposition your passport flat on the reader.",
                            "zh-TW": "請將護照平放於閱讀機上。"},
    "document.remove": {"en": "Please take your passport.", "zh-TW": "請取回護照。"},
    "document.rejected": {"en": "Your document cannot be used here. Please see an officer.",
                          "zh-TW": "此證件無法使用自動通關，請洽查驗人員。"},
    "passage.enter": {"en": "Please enter the gate.", "zh-TW": "請進入通道。"},
    "passage.one_at_a_time": {"en": "One person at a time, please.", "zh-TW": "請一次一人通行。"},
    "passage.step_back": {"en": "Please step back out of the gate.", "zh-TW": "請退出通道。"},
    "passage.take_belongings": {"en": "Please take all your belongings.", "zh-TW": "請帶走您的隨身物品。"},
    "passage.proceed": {"en": "Thank you. Please proceed.", "zh-TW": "謝謝，請通行。"},
    "passage.wrong_way": {"en": "This gate is one way only. Please go back.", "zh-TW": "本通道為單向通行，請退回。"},
    "passage.see_officer": {"en": "Please see an officer.", "zh-TW": "請洽查驗人員。"},
    "document.issuer_not_accepted": {"en": "Documents of this issuing state cannot be used at this gate. Please see an officer.",
                                    "zh-TW": "此發照國家之證件無法使用自動通關，請洽查驗人員。"},
    "document.expires_soon": {"en": "Your passport expires too soon for this gate. Please see an officer.",
                             "zh-TW": "您的護照效期不足，無法使用自動通關，請洽查驗人員。"},
    "eligibility.resident_not_served": {"en": "Residents cannot use this gate in this direction. Please use a staffed counter.",
                                       "zh-TW": "居留者無法使用本方向之自動通關，請至人工查驗櫃檯。"},
    "eligibility.not_enrolled": {"en": "Please register for the automated gates at the registration counter first.",
                                "zh-TW": "請先至註冊櫃檯申請自動通關。"},
    "document.already_used": {"en": "This passport has already been used to cross. Please see an officer.",
                             "zh-TW": "此護照已完成通關，請洽查驗人員。"},
    "document.open_crossing": {"en": "Your previous crossing is not recorded as complete. Please see an officer.",
                              "zh-TW": "您前次的出入境紀錄未完成，請洽查驗人員。"},
    "passage.emergency": {"en": "Emergency: both doors are open. Please leave calmly.",
                          "zh-TW": "緊急狀況：閘門已開啟，請保持冷靜離開。"},
    "face.look_at_camera": {"en": "Please look at the camera.", "zh-TW": "請注視攝影機。"},
    "face.move_closer": {"en": "Please move closer.", "zh-TW": "請靠近一點。"},
    "face.move_back": {"en": "Please move back a little.", "zh-TW": "請往後一點。"},
    "face.remove_glasses": {"en": "Please remove your glasses.", "zh-TW": "請摘下眼鏡。"},
    "face.hair_over_eyebrows": {"en": "Please move your hair away from your eyebrows.",
                                "zh-TW": "請將瀏海撥開，露出眉毛。"},
    "face.remove_hat_or_mask": {"en": "Please remove your hat or mask.", "zh-TW": "請脫下帽子或口罩。"},
    "face.neutral_expression": {"en": "Please keep a neutral expression.", "zh-TW": "請保持自然表情。"},
    "face.one_person_only": {"en": "Only one face in front of the camera, please.", "zh-TW": "鏡頭前請只有一人。"},
    "face.better_light": {"en": "Please face the light and keep still.", "zh-TW": "請面向光源並保持不動。"},
    "face.blink": {"en": "Please blink.", "zh-TW": "請眨眼。"},
    "face.turn_left": {"en": "Please turn your head slightly left.", "zh-TW": "請將頭稍微向左轉。"},
    "face.turn_right": {"en": "Please turn your head slightly right.", "zh-TW": "請將頭稍微向右轉。"},
    "finger.place": {"en": "Please place your index finger on the scanner.", "zh-TW": "請將食指放在指紋機上。"},
    "finger.press_harder": {"en": "Please press a little harder.", "zh-TW": "請稍微用力按壓。"},
    "finger.centre_finger": {"en": "Please centre your finger on the scanner.", "zh-TW": "請將手指置中。"},
    "finger.clean_finger": {"en": "Please wipe your finger and try again.", "zh-TW": "請擦拭手指後再試一次。"},
}


# The languages every message is written in: the only ones a gate may be configured to show.
LANGUAGES: tuple[str, ...] = tuple(lang for lang in CATALOGUE["gate.welcome"]
                                   if all(lang in texts for texts in CATALOGUE.values()))


class UnknownMessage(EGateError):
    pass


def text(message_id: str, language: str = "en", **params) -> str:
    """The text for a message id in a language (English when that language lacks it)."""
    try:
        texts = CATALOGUE[message_id]
    except KeyError:
        raise UnknownMessage(f"no guidance message {message_id!r}") from None
    return texts.get(language, texts["en"]).format(**params)
