"""app/languages/: a language is one module, complete and parallel to English, and everything that
speaks a language (assistant, speech, the page's menu and texts) reads the package (issue 17)."""

from __future__ import annotations

import html
import json
import re
import string

import pytest

from app import assistant, languages, speech
from model_core.labels import LABELS, SPLITS

LANGS = list(languages.LANGUAGES.values())
EN = languages.LANGUAGES[languages.DEFAULT]


def placeholders(text) -> set[str]:
    texts = text.values() if isinstance(text, dict) else [text]
    return {f for t in texts for _, f, _, _ in string.Formatter().parse(t) if f is not None}


@pytest.mark.parametrize("lang", LANGS, ids=[lang.code for lang in LANGS])
def test_each_language_is_complete_and_parallel_to_english(lang):
    assert re.fullmatch(r"[a-z]{2,3}", lang.code) and lang.name.strip() and lang.voice.strip()
    assert set(lang.display_names) == set(LABELS) and all(v.strip() for v in lang.display_names.values())
    assert list(lang.split_names) == list(SPLITS)
    # entry n of a label translates entry n of English: the same ids exist in every language
    assert {k: len(v) for k, v in lang.replies.items()} == {k: len(v) for k, v in EN.replies.items()}
    assert {k: len(v) for k, v in lang.hedged.items()} == {k: len(v) for k, v in EN.hedged.items()}
    assert set(lang.hedged) == set(LABELS) and all(t.strip() for v in lang.replies.values() for t in v)
    # every page text, with the same placeholders as the English one
    assert set(lang.ui) == set(EN.ui)
    for key, text in lang.ui.items():
        assert placeholders(text) == placeholders(EN.ui[key]), key
        if isinstance(text, dict):
            assert "other" in text, key


def test_default_first_and_the_tables_are_gathered_from_the_package():
    assert assistant.LANGUAGES[0] == assistant.DEFAULT_LANG == "en"
    assert assistant.LANGUAGES == tuple(languages.LANGUAGES)
    for code, lang in languages.LANGUAGES.items():
        assert assistant.REPLIES[code] == dict(lang.replies) and assistant.HEDGED[code] == dict(lang.hedged)
        assert assistant.DISPLAY_NAMES[code] == dict(lang.display_names)
        assert assistant.LANGUAGE_NAMES[code] == lang.name and speech.ESPEAK_VOICES[code] == lang.voice
    assert speech.AUDIO_KEY.match(f"espeak.{assistant.LANGUAGES[-1]}.happy.0.0123abcd")


def test_a_new_language_is_one_module(tmp_path, monkeypatch):
    """Drop `xx.py` beside the others: the package finds it, after the default language."""
    en_source = languages.__path__[0] + "/en.py"
    text = open(en_source, encoding="utf-8").read().replace('CODE = "en"', 'CODE = "xx"')
    (tmp_path / "xx.py").write_text(text.replace('NAME = "English"', 'NAME = "Test language"'), encoding="utf-8")
    monkeypatch.setattr(languages, "__path__", [*languages.__path__, str(tmp_path)])
    found = languages._discover()
    assert list(found)[0] == "en" and "xx" in found and found["xx"].name == "Test language"
    (tmp_path / "Bad.py").write_text('CODE = "bad"\n')
    with pytest.raises(ImportError, match="named by its code"):
        languages._discover()


def test_page_renders_the_language_menu_and_texts_from_the_server(client):
    page = client.get("/").get_data(as_text=True)
    options = re.findall(r'<option value="([a-z]+)" lang="[a-z]+">([^<]+)</option>', page)
    assert dict(options) == assistant.LANGUAGE_NAMES and [c for c, _ in options] == list(assistant.LANGUAGES)
    attrs = {k: json.loads(html.unescape(v)) for k, v in re.findall(r"data-([a-z-]+)='([^']*)'", page)}
    assert attrs["strings"] == assistant.UI_STRINGS
    assert attrs["languages"] == list(assistant.LANGUAGES)
    # the static text is the default language's, rendered by the server (no copy in the template)
    assert f"<title>{html.escape(EN.ui['title'])}</title>" in page
    assert EN.ui["inferred"] in page  # its markup kept
    assert '<html lang="en">' in page
