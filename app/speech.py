"""Text to speech for the assistant's replies, offline by default.

The offline engine is espeak-ng, shipped as a shared library plus voice data inside the
`espeakng-loader` wheel and driven through ctypes, so nothing needs apt or the network. The optional
gTTS engine (MP3, needs the internet) falls back to espeak-ng with one log line whenever it fails.

This module owns the voice: `Speech.speak(reply)` picks the engine (and the fallback) and gives the
reply's audio key; `Speech.serve(key)` gives the audio. Audio is cached by its key (`audio_key`:
engine, language, reply id, text hash), so a reply heard before costs no synthesis; any worker can
rebuild the audio for a key on demand because the key names a catalogue entry (app/assistant.py), not
something in one process's memory.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import logging
import re
import threading
import time
import wave
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from flask import current_app

from .assistant import LANGUAGES, Reply, reply_by_id
from .languages import LANGUAGES as _LANGS

log = logging.getLogger(__name__)

# espeak-ng's public API (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report a missing data file as an error instead of exit()ing the worker
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

# Voices of the wheel's espeak-ng-data for the app's languages (each language module's VOICE).
ESPEAK_VOICES = {code: lang.voice for code, lang in _LANGS.items()}
ESPEAK_RATE_WPM = 165


class SpeechError(RuntimeError):
    """A TTS engine could not synthesise a text."""


class EspeakEngine:
    """espeak-ng through ctypes: text -> 16-bit mono PCM WAV bytes, all in memory.

    The library keeps global state (one voice, one callback), so calls are serialised by a lock;
    synthesis of a short reply takes tens of milliseconds.
    """

    name = "espeak"
    mimetype = "audio/wav"

    def __init__(self, rate_wpm: int = ESPEAK_RATE_WPM):
        import espeakng_loader  # the wheel that carries libespeak-ng and its data

        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib = self._lib
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synchronize.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise SpeechError(f"espeak-ng failed to initialise with data at {data_path.decode()}")
        # Keep a reference: ctypes frees the trampoline when the Python object dies.
        self._callback = _SYNTH_CALLBACK(self._on_samples)
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0)
        self._voice: str | None = None

    _shared: EspeakEngine | None = None
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> EspeakEngine:
        """The process's engine: libespeak-ng has one global state (voice, callback), so two
        engines in one process would steal each other's audio."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def voice(self, lang: str) -> str:
        return "espeak-" + ESPEAK_VOICES[lang]

    def _on_samples(self, wav, numsamples, events):
        if numsamples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, numsamples * 2))
        return 0  # 0 = carry on

    def synthesize(self, text: str, lang: str) -> bytes:
        if lang not in ESPEAK_VOICES:
            raise SpeechError(f"no espeak-ng voice for language {lang!r}")
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            if self._voice != lang:
                if self._lib.espeak_SetVoiceByName(ESPEAK_VOICES[lang].encode()) != 0:
                    raise SpeechError(f"espeak-ng has no voice {ESPEAK_VOICES[lang]!r}")
                self._voice = lang
            self._chunks = []
            err = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if err != 0:
                raise SpeechError(f"espeak-ng synthesis failed with error {err}")
            self._lib.espeak_Synchronize()
            pcm = b"".join(self._chunks)
            self._chunks = []
        if not pcm:
            raise SpeechError("espeak-ng produced no audio")
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.sample_rate)
            w.writeframes(pcm)
        return out.getvalue()


class GTTSEngine:
    """Google Translate's TTS (MP3). Online only, so it is optional and always has a fallback."""

    name = "gtts"
    mimetype = "audio/mpeg"

    def __init__(self, timeout_s: float = 5.0):
        from gtts import gTTS  # noqa: F401  (fail at start-up, not per request, if it is missing)

        self.timeout_s = timeout_s

    def voice(self, lang: str) -> str:
        return "gtts-" + lang

    def synthesize(self, text: str, lang: str) -> bytes:
        from gtts import gTTS

        out = io.BytesIO()
        gTTS(text=text, lang=lang, timeout=self.timeout_s).write_to_fp(out)
        if not out.getvalue():
            raise SpeechError("gTTS returned no audio")
        return out.getvalue()


class Engine(Protocol):
    """What `Speech` needs of a voice engine."""

    name: str
    mimetype: str

    def voice(self, lang: str) -> str: ...

    def synthesize(self, text: str, lang: str) -> bytes: ...


# Every engine by the name that appears in audio keys; the first is the offline one every other falls
# back to. A new voice engine is a class with `name`, `mimetype`, `synthesize(text, lang)` and a line here.
ENGINES: dict[str, Callable[[], Engine]] = {"espeak": EspeakEngine.shared, "gtts": GTTSEngine}
OFFLINE = "espeak"

# engine.lang.label.n.texthash, e.g. "espeak.vi.happy.1.3fa2c19b" (a hedged reply's label is
# "unsure-happy", app/assistant.py). Only dots, hyphens, letters and digits:
# nothing here can name a path. The text hash makes the key content-addressed, so a worker running an
# edited catalogue answers 404 rather than someone else's audio.
AUDIO_KEY = re.compile(
    rf"^({'|'.join(ENGINES)})\.({'|'.join(LANGUAGES)})\.((?:unsure-)?[a-z]{{1,16}})\.(0|[1-9][0-9]?)\.([0-9a-f]{{8}})$"
)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def audio_key(reply: Reply, engine: str) -> str:
    return f"{engine}.{reply.lang}.{reply.id}.{text_hash(reply.text)}"


def parse_audio_key(key: str) -> tuple[str, Reply] | None:
    """(engine, reply) for a key of the catalogue's format whose text still matches; else None."""
    m = AUDIO_KEY.fullmatch(key or "")
    if not m:
        return None
    engine, lang, label, n, digest = m.groups()
    reply = reply_by_id(f"{label}.{n}", lang)
    if reply is None or text_hash(reply.text) != digest:
        return None
    if audio_key(reply, engine) != key:  # only the form the app issues: no "happy.00" for "happy.0"
        return None
    return engine, reply


class UnknownAudio(LookupError):
    """An audio key this server never issues (malformed, not in the catalogue, or another engine's)."""


class Speech:
    """The app's voice: which engine speaks a reply, the offline fallback, and an LRU audio cache.

    Two calls: `speak(reply)` gives the key a reply's audio is served under (made and cached now),
    `serve(key)` gives the audio for a key (made on demand, so any worker answers any key)."""

    def __init__(self, engine: str = OFFLINE, cache_size: int = 128, retry_online_after_s: float = 300.0):
        if engine not in ENGINES:
            raise ValueError(f"unknown speech engine {engine!r}; use one of {list(ENGINES)}")
        self.preferred = engine
        self.cache_size = cache_size
        self.retry_online_after_s = retry_online_after_s
        self._cache: OrderedDict[str, tuple[bytes, str, str]] = OrderedDict()  # key -> body, mimetype, engine
        self._lock = threading.Lock()
        self._engines: dict[str, Engine] = {}
        self._online_down_until = 0.0

    def _engine(self, name: str) -> Engine:
        with self._lock:
            if name not in self._engines:
                self._engines[name] = ENGINES[name]()
            return self._engines[name]

    def warm_up(self) -> None:
        self._engine(OFFLINE)

    def engine_name(self) -> str:
        """The engine a new reply is spoken with: the preferred one unless it failed recently."""
        if self.preferred != OFFLINE and time.monotonic() < self._online_down_until:
            return OFFLINE
        return self.preferred

    def speak(self, reply: Reply) -> str | None:
        """The audio key for `reply`, its audio already made and cached so the key plays at once.

        Spoken by `engine_name()`; when the online engine fails, the key names the offline engine that
        actually spoke. None when no audio could be made at all (logged: no voice is better than no
        answer)."""
        engine = self.engine_name()
        key = audio_key(reply, engine)
        try:
            spoken = self._audio(key, reply, engine)[2]
            if spoken != engine:  # the online engine fell back to offline
                key = audio_key(reply, spoken)
                self._audio(key, reply, spoken)
            return key
        except Exception:
            log.exception("speech synthesis failed for %s", key)
            return None

    def serve(self, key: str) -> tuple[bytes, str]:
        """Audio bytes and mimetype for a key `speak` issues, from the cache or synthesised now.

        Raises UnknownAudio for any other key, SpeechError when synthesis fails."""
        parsed = parse_audio_key(key)
        if parsed is None:
            raise UnknownAudio(key)
        engine, reply = parsed
        if engine != OFFLINE and engine != self.engine_name():
            # Only the configured online engine may reach the network; other keys were never issued here.
            raise UnknownAudio(key)
        try:
            body, mimetype, _ = self._audio(key, reply, engine)
        except Exception as exc:
            log.exception("speech synthesis failed for %s", key)
            raise SpeechError(f"no audio for {key}") from exc
        return body, mimetype

    def _audio(self, key: str, reply: Reply, engine: str) -> tuple[bytes, str, str]:
        """(bytes, mimetype, engine that spoke) for a catalogue entry, synthesised once per process."""
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        result = self._synthesize(reply.text, reply.lang, engine)
        with self._lock:
            self._cache[key] = result
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def _synthesize(self, text: str, lang: str, engine: str) -> tuple[bytes, str, str]:
        if engine != OFFLINE:
            try:
                eng = self._engine(engine)
                return eng.synthesize(text, lang), eng.mimetype, engine
            except Exception as exc:  # any failure of the online path degrades to offline
                self._online_down_until = time.monotonic() + self.retry_online_after_s
                log.warning(
                    "%s failed (%s: %s); speaking offline with %s", engine, type(exc).__name__, str(exc)[:200], OFFLINE
                )
        eng = self._engine(OFFLINE)
        return eng.synthesize(text, lang), eng.mimetype, OFFLINE


def init_app(app) -> Speech:
    speech = Speech(engine=app.config["SPEECH_ENGINE"], cache_size=int(app.config["AUDIO_CACHE_SIZE"]))
    app.extensions["speech"] = speech
    return speech


def get_speech() -> Speech:
    """The app's speech service (built by `init_app`)."""
    return current_app.extensions["speech"]
