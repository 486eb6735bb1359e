"""What the assistant says: a fixed catalogue of short, caring replies per emotion, in English and Vietnamese.

Labels are the lower-case English names of docs/ARCHITECTURE.md (contract 4); this module is the one place that
translates them. Each reply has a stable id (`<label>.<n>`) that is the same in both languages (entry n
of a label is a translation of the same sentence), so a reply and its audio can be named by
language + id in any worker (the audio key, app/speech.py). When no face is found the assistant still answers, with the `noface`
replies, and `emotion` stays null.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Mapping

from model_core.labels import LABELS  # noqa: F401  (re-exported for the page)

LANGUAGES = ("en", "vi")
DEFAULT_LANG = "en"
NO_FACE = "noface"

DISPLAY_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "angry": "Angry", "disgust": "Disgusted", "fear": "Afraid", "happy": "Happy", "sad": "Sad",
        "surprise": "Surprised", "neutral": "Neutral", "contempt": "Contemptuous",
    },
    "vi": {
        "angry": "Tức giận", "disgust": "Ghê tởm", "fear": "Sợ hãi", "happy": "Vui vẻ", "sad": "Buồn",
        "surprise": "Ngạc nhiên", "neutral": "Bình thường", "contempt": "Khinh thường",
    },
}

# Every label the catalogue knows, in the canonical order (model_core.labels, ARCHITECTURE.md contract 4);
# the page orders its score bars and legends by it. Each language names every one of them.

# The test splits a model card may report metrics on, as the page names them; in model_core.labels.SPLITS
# order, the page's order of preference for the accuracy it headlines (tests/app/test_assistant.py).
SPLIT_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "fer2013_private": "FER-2013 private test set", "fer2013_public": "FER-2013 public test set",
        "ferplus_test": "FER+ test set", "ferplus_val": "FER+ validation set",
    },
    "vi": {
        "fer2013_private": "tập kiểm tra riêng FER-2013", "fer2013_public": "tập kiểm tra công khai FER-2013",
        "ferplus_test": "tập kiểm tra FER+", "ferplus_val": "tập thẩm định FER+",
    },
}

# Entry n of a label in "vi" translates entry n in "en".
REPLIES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "angry": (
            "You seem upset. Let's take a slow, deep breath together.",
            "I can see something is bothering you. Do you want to talk about it?",
            "It's okay to feel angry. Maybe a short walk would help.",
        ),
        "disgust": (
            "Something doesn't sit right with you. Let's step away from it for a moment.",
            "That look says you didn't like it. Want to switch to something nicer?",
            "It's fine to dislike things. Take a breath, and let it go.",
        ),
        "fear": (
            "You look worried. You're safe here, take your time.",
            "It's okay to feel scared. Let's breathe in slowly, and out.",
            "Whatever it is, you don't have to face it alone.",
        ),
        "happy": (
            "You look happy today. That smile suits you!",
            "What a lovely smile. I hope your day stays this bright.",
            "Your joy is contagious. Keep it up!",
        ),
        "sad": (
            "You look a little down. I'm here with you.",
            "It's okay to feel sad sometimes. Be gentle with yourself today.",
            "Maybe a cup of tea and a short break would help. Take care.",
        ),
        "surprise": (
            "Oh, that's a surprise! What happened?",
            "You look amazed. Something unexpected?",
            "Wow, what a face! I hope it's good news.",
        ),
        "neutral": (
            "You look calm and focused. Nice and steady.",
            "All quiet on your face today. How are you feeling?",
            "You seem relaxed. Remember to take a short break now and then.",
        ),
        "contempt": (
            "Not impressed, are you? Fair enough.",
            "That half smile says a lot. Want to tell me what you think?",
            "Something didn't win you over. That's okay.",
        ),
        NO_FACE: (
            "I can't see a face here. A clear, well-lit view of a face works best.",
            "No face found. A closer, brighter view of the face will help.",
        ),
    },
    "vi": {
        "angry": (
            "Bạn có vẻ đang bực bội. Mình cùng hít một hơi thật sâu nhé.",
            "Mình thấy có điều gì đó làm bạn khó chịu. Bạn có muốn chia sẻ không?",
            "Tức giận cũng không sao cả. Có lẽ đi dạo một chút sẽ giúp bạn dễ chịu hơn.",
        ),
        "disgust": (
            "Có điều gì đó làm bạn không thoải mái. Mình tạm tránh xa nó một chút nhé.",
            "Nét mặt này cho thấy bạn không thích điều đó. Mình chuyển sang chuyện khác vui hơn nhé?",
            "Không thích một điều gì đó cũng bình thường thôi. Hít thở và buông bỏ nhé.",
        ),
        "fear": (
            "Bạn trông có vẻ lo lắng. Ở đây bạn an toàn, cứ từ từ thôi.",
            "Sợ hãi cũng không sao cả. Mình cùng hít vào thật chậm, rồi thở ra nhé.",
            "Dù là chuyện gì, bạn cũng không phải đối mặt một mình.",
        ),
        "happy": (
            "Hôm nay bạn trông thật vui vẻ. Nụ cười ấy rất hợp với bạn!",
            "Nụ cười thật đẹp. Mong cả ngày của bạn luôn rạng rỡ như thế này.",
            "Niềm vui của bạn thật dễ lan tỏa. Cứ giữ vững nhé!",
        ),
        "sad": (
            "Bạn trông hơi buồn. Mình luôn ở đây với bạn.",
            "Đôi khi buồn cũng không sao. Hôm nay hãy dịu dàng với bản thân nhé.",
            "Có lẽ một tách trà và một chút nghỉ ngơi sẽ giúp bạn. Giữ gìn sức khỏe nhé.",
        ),
        "surprise": (
            "Ồ, bất ngờ quá! Có chuyện gì vậy?",
            "Bạn trông thật ngạc nhiên. Có điều gì bất ngờ sao?",
            "Chà, nét mặt thật thú vị! Mong đó là tin vui.",
        ),
        "neutral": (
            "Bạn trông thật bình tĩnh và tập trung. Rất vững vàng.",
            "Gương mặt bạn hôm nay thật bình lặng. Bạn cảm thấy thế nào?",
            "Bạn có vẻ thư thái. Nhớ nghỉ ngơi một chút sau mỗi lúc làm việc nhé.",
        ),
        "contempt": (
            "Bạn có vẻ chưa bị thuyết phục nhỉ? Cũng dễ hiểu thôi.",
            "Nụ cười nửa miệng ấy nói lên nhiều điều. Bạn muốn kể mình nghe không?",
            "Có điều gì đó chưa làm bạn hài lòng. Không sao cả.",
        ),
        NO_FACE: (
            "Mình chưa thấy khuôn mặt nào. Một khuôn mặt rõ nét, đủ sáng sẽ giúp mình nhận ra.",
            "Không tìm thấy khuôn mặt. Khuôn mặt gần hơn và sáng hơn sẽ giúp mình nhận ra.",
        ),
    },
}

# When the model is not sure (its top probability or its margin to the runner-up is below the card's
# confidence rule, chosen on validation by training/heads.py) the assistant says so and asks. Reply ids
# are "unsure-<label>.<n>"; entry n of "vi" translates entry n of "en".
UNSURE = "unsure-"
HEDGED: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "angry": ("I'm not sure, but you might be a little annoyed?",),
        "disgust": ("I'm not sure, but is something bothering you a little?",),
        "fear": ("I'm not sure, but you might be a little worried?",),
        "happy": ("I'm not sure, but is that a little smile?",),
        "sad": ("I'm not sure, you might be a little sad?",),
        "surprise": ("I'm not sure, but you might be a little surprised?",),
        "neutral": ("I'm not sure, but you seem fairly calm?",),
        "contempt": ("I'm not sure, but you might be a little unimpressed?",),
    },
    "vi": {
        "angry": ("Mình không chắc lắm, nhưng có phải bạn hơi bực mình không?",),
        "disgust": ("Mình không chắc lắm, nhưng có điều gì làm bạn hơi khó chịu à?",),
        "fear": ("Mình không chắc lắm, nhưng có phải bạn hơi lo lắng không?",),
        "happy": ("Mình không chắc lắm, nhưng đó có phải là một nụ cười nhẹ không?",),
        "sad": ("Mình không chắc lắm, có phải bạn đang hơi buồn không?",),
        "surprise": ("Mình không chắc lắm, nhưng có phải bạn hơi ngạc nhiên không?",),
        "neutral": ("Mình không chắc lắm, nhưng trông bạn khá bình thản?",),
        "contempt": ("Mình không chắc lắm, nhưng có vẻ bạn chưa thấy ấn tượng lắm?",),
    },
}


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


def choose_reply(emotion: str | None, lang: str = DEFAULT_LANG, seed: str | int | None = None,
                 confident: bool = True) -> Reply:
    """The reply for an emotion (None: no face). Deterministic: the same emotion and seed give the
    same reply in every process; pass a different seed (e.g. derived from the scores) for variety.
    `confident=False` (the model's scores fail its card's confidence rule): a hedged reply that asks."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; use one of {LANGUAGES}")
    if not confident and emotion in HEDGED[lang]:
        texts = HEDGED[lang][emotion]
        n = _stable_index(UNSURE + emotion, seed, len(texts))
        return Reply(id=f"{UNSURE}{emotion}.{n}", emotion=emotion, lang=lang, text=texts[n],
                     display=display_name(emotion, lang), hedged=True)
    label = emotion if emotion in REPLIES[lang] else None
    key = label or NO_FACE
    if emotion is not None and label is None:
        # An emotion the catalogue does not know (a model with extra labels): speak neutrally of it.
        key = "neutral"
    texts = REPLIES[lang][key]
    n = _stable_index(key, seed, len(texts))
    return Reply(id=f"{key}.{n}", emotion=emotion, lang=lang, text=texts[n],
                 display=display_name(emotion, lang) if emotion else None)


def reply_by_id(reply_id: str, lang: str) -> Reply | None:
    try:
        key, n = reply_id.rsplit(".", 1)
        if n != str(int(n)):  # "0" only: not "00", "+0" or " 0"
            return None
        hedged = key.startswith(UNSURE)
        if hedged:
            key = key[len(UNSURE):]
            text = HEDGED[lang][key][int(n)]
        else:
            text = REPLIES[lang][key][int(n)]
    except (KeyError, ValueError, IndexError):
        return None
    emotion = None if key == NO_FACE else key
    return Reply(id=reply_id, emotion=emotion, lang=lang, text=text,
                 display=display_name(emotion, lang) if emotion else None, hedged=hedged)


def catalogue(lang: str) -> Mapping[str, tuple[str, ...]]:
    return REPLIES[lang]
