"""What the assistant says: a fixed catalogue of short, caring replies per emotion, in every language of
app/languages/ (English and Vietnamese today; a language is one module there).

Labels are the lower-case English names of docs/ARCHITECTURE.md (contract 4); this module is the one place that
translates them. Each reply has a stable id (`<label>.<n>`) that is the same in every language (entry n
of a label is a translation of the same sentence), so a reply and its audio can be named by
language + id in any worker (the audio key, app/speech.py). When no face is found the assistant still answers, with the `noface`
replies, and `emotion` stays null.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from model_core.labels import LABELS  # noqa: F401  (re-exported for the page)

from .languages import DEFAULT, LANGUAGES as _LANGS

# Every language is one module in app/languages/ (replies, hedged replies, display and split names, the
# page's texts, its voice); these tables gather them, keyed by language code, default language first.
LANGUAGES = tuple(_LANGS)
DEFAULT_LANG = DEFAULT
NO_FACE = "noface"
UNSURE = "unsure-"

# Every label the catalogue knows is in the canonical order (model_core.labels, ARCHITECTURE.md
# contract 4); the page orders its score bars and legends by it. Each language names every one of them.
DISPLAY_NAMES: dict[str, dict[str, str]] = {c: dict(mod.display_names) for c, mod in _LANGS.items()}
# The test splits a model card may report metrics on, as the page names them; in model_core.labels.SPLITS
# order, the page's order of preference for the accuracy it headlines (tests/app/test_assistant.py).
SPLIT_NAMES: dict[str, dict[str, str]] = {c: dict(mod.split_names) for c, mod in _LANGS.items()}
# Entry n of a label in one language translates entry n in every other.
REPLIES: dict[str, dict[str, tuple[str, ...]]] = {c: dict(mod.replies) for c, mod in _LANGS.items()}
# When the model is not sure (its top probability or its margin to the runner-up is below the card's
# confidence rule, chosen on validation by training/heads.py) the assistant says so and asks. Reply ids
# are "unsure-<label>.<n>".
HEDGED: dict[str, dict[str, tuple[str, ...]]] = {c: dict(mod.hedged) for c, mod in _LANGS.items()}
# The page's language menu (code -> the language's own name) and its texts (static/js/strings.js).
LANGUAGE_NAMES: dict[str, str] = {c: mod.name for c, mod in _LANGS.items()}
UI_STRINGS: dict[str, dict] = {c: dict(mod.ui) for c, mod in _LANGS.items()}


@dataclass(frozen=True)
class Reply:
    id: str  # "<label>.<n>" or "unsure-<label>.<n>", the same in every language
    emotion: str | None  # None for the no-face reply
    lang: str
    text: str
    display: str | None  # the emotion's name in `lang`
    hedged: bool = False  # the model was not sure: the reply asks rather than tells


def display_name(label: str, lang: str = DEFAULT_LANG) -> str:
    return DISPLAY_NAMES.get(lang, DISPLAY_NAMES[DEFAULT_LANG]).get(label, label)


def _stable_index(label: str, seed: str | int | None, n: int) -> int:
    if n == 1:
        return 0
    return zlib.crc32(f"{label}:{seed}".encode()) % n


def choose_reply(
    emotion: str | None, lang: str = DEFAULT_LANG, seed: str | int | None = None, confident: bool = True
) -> Reply:
    """The reply for an emotion (None: no face). Deterministic: the same emotion and seed give the
    same reply in every process; pass a different seed (e.g. derived from the scores) for variety.
    `confident=False` (the model's scores fail its card's confidence rule): a hedged reply that asks."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; use one of {LANGUAGES}")
    if not confident and emotion in HEDGED[lang]:
        texts = HEDGED[lang][emotion]
        n = _stable_index(UNSURE + emotion, seed, len(texts))
        return Reply(
            id=f"{UNSURE}{emotion}.{n}",
            emotion=emotion,
            lang=lang,
            text=texts[n],
            display=display_name(emotion, lang),
            hedged=True,
        )
    label = emotion if emotion in REPLIES[lang] else None
    key = label or NO_FACE
    if emotion is not None and label is None:
        # An emotion the catalogue does not know (a model with extra labels): speak neutrally of it.
        key = "neutral"
    texts = REPLIES[lang][key]
    n = _stable_index(key, seed, len(texts))
    return Reply(
        id=f"{key}.{n}",
        emotion=emotion,
        lang=lang,
        text=texts[n],
        display=display_name(emotion, lang) if emotion else None,
    )


def reply_by_id(reply_id: str, lang: str) -> Reply | None:
    try:
        key, n = reply_id.rsplit(".", 1)
        # A catalogue index as the app writes it: "0", "12"; not "00", "+0", " 0", "-1" (which read
        # the last entry, issue 24) or other digits than ASCII ones.
        if not (n.isascii() and n.isdigit()) or n != str(int(n)):
            return None
        hedged = key.startswith(UNSURE)
        if hedged:
            key = key[len(UNSURE) :]
            text = HEDGED[lang][key][int(n)]
        else:
            text = REPLIES[lang][key][int(n)]
    except (KeyError, ValueError, IndexError):
        return None
    emotion = None if key == NO_FACE else key
    return Reply(
        id=reply_id,
        emotion=emotion,
        lang=lang,
        text=text,
        display=display_name(emotion, lang) if emotion else None,
        hedged=hedged,
    )


def catalogue(lang: str) -> Mapping[str, tuple[str, ...]]:
    return REPLIES[lang]
