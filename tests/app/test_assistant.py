"""app.assistant: a complete, translated catalogue (the audio keys that name its entries: test_speech.py)."""

from __future__ import annotations

import pytest

from app import assistant

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"]


def test_catalogue_is_complete_and_parallel():
    for label in LABELS + [assistant.NO_FACE]:
        en, vi = assistant.REPLIES["en"][label], assistant.REPLIES["vi"][label]
        assert len(en) == len(vi) >= 2, label  # entry n of vi translates entry n of en
        assert all(t.strip() for t in en + vi)
    for label in LABELS:
        for lang in assistant.LANGUAGES:
            assert assistant.display_name(label, lang)


def test_vietnamese_has_diacritics():
    vietnamese_marks = set("ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ")
    for texts in assistant.REPLIES["vi"].values():
        for text in texts:
            assert vietnamese_marks & set(text.lower()), text


def test_choice_is_deterministic_and_stable():
    a = assistant.choose_reply("happy", "en", seed="0.93")
    b = assistant.choose_reply("happy", "en", seed="0.93")
    assert a == b and a.id.startswith("happy.")
    vi = assistant.choose_reply("happy", "vi", seed="0.93")
    assert vi.id == a.id and vi.text != a.text and vi.display == "Vui vẻ"
    none = assistant.choose_reply(None, "vi", seed=3)
    assert none.emotion is None and none.id.startswith("noface.") and none.text


def test_unknown_label_still_gets_a_reply():
    r = assistant.choose_reply("bored", "en")
    assert r.emotion == "bored" and r.text


def test_labels_and_split_names_cover_what_the_cards_use():
    from model_core.card import SPLITS

    assert assistant.LABELS == tuple(LABELS)
    for lang in assistant.LANGUAGES:
        assert list(assistant.SPLIT_NAMES[lang]) == list(SPLITS)  # same order: the page prefers earlier ones
        assert all(name.strip() for name in assistant.SPLIT_NAMES[lang].values())


def test_page_gets_labels_display_and_split_names(client):
    import html
    import json
    import re

    page = client.get("/").get_data(as_text=True)
    attrs = {k: json.loads(html.unescape(v)) for k, v in re.findall(r"data-([a-z-]+)='([^']*)'", page)}
    assert attrs["labels"] == list(assistant.LABELS)
    assert attrs["display-names"] == assistant.DISPLAY_NAMES
    assert attrs["split-names"] == assistant.SPLIT_NAMES
    assert '<script type="module" src="/static/app.js"></script>' in page


def test_bad_language_is_refused():
    with pytest.raises(ValueError):
        assistant.choose_reply("happy", "fr")


def test_no_face_replies_fit_an_uploaded_photo_too():
    """The API cannot tell an upload from a live frame, so the no-face replies must fit both (issue 11:
    a photo's no-face reply told the user to face "the camera")."""
    for lang in assistant.LANGUAGES:
        for text in assistant.REPLIES[lang][assistant.NO_FACE]:
            lowered = text.lower()
            assert "camera" not in lowered and "move" not in lowered and "lại gần" not in lowered, text


def test_hedged_replies_ask_in_both_languages_and_round_trip():
    from app.speech import audio_key, parse_audio_key

    for lang in assistant.LANGUAGES:
        for label in assistant.LABELS:
            sure = assistant.choose_reply(label, lang, seed=1)
            unsure = assistant.choose_reply(label, lang, seed=1, confident=False)
            assert not sure.hedged and unsure.hedged and unsure.emotion == label
            assert unsure.id.startswith("unsure-" + label + ".") and unsure.text.endswith("?")
            assert unsure.text not in assistant.catalogue(lang)[label]
            assert len(unsure.text) <= 200
            # the same id names the translation, and its audio key parses back to it
            other = "vi" if lang == "en" else "en"
            assert assistant.reply_by_id(unsure.id, other).hedged
            assert parse_audio_key(audio_key(unsure, "espeak"))[1] == unsure
    assert assistant.choose_reply(None, "en", confident=False).id.startswith("noface.")
    assert assistant.reply_by_id("unsure-noface.0", "en") is None
    assert assistant.reply_by_id("unsure-happy.5", "en") is None
