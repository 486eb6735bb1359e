"""Text to speech for the assistant's replies, offline by default.

The offline engine is espeak-ng, shipped as a shared library plus voice data inside the
`espeakng-loader` wheel and driven through ctypes, so nothing needs apt or the network. The optional
gTTS engine (MP3, needs the internet) falls back to espeak-ng with one log line whenever it fails.

Audio is cached by its key (`app.assistant.audio_key`: engine, language, reply id, text hash), so a
reply heard before costs no synthesis; any worker can rebuild the audio for a key on demand because
the key names a catalogue entry, not something in one process's memory.
"""
from __future__ import annotations

import ctypes
import io
import logging
import threading
import time
import wave
from collections import OrderedDict

log = logging.getLogger(__name__)

# espeak-ng's public API (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report a missing data file as an error instead of exit()ing the worker
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.c_void_p)

# Voices of the wheel's espeak-ng-data for the app's languages.
ESPEAK_VOICES = {"en": "en", "vi": "vi"}
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
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synchronize.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path,
                                                 _INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise SpeechError(f"espeak-ng failed to initialise with data at {data_path.decode()}")
        # Keep a reference: ctypes frees the trampoline when the Python object dies.
        self._callback = _SYNTH_CALLBACK(self._on_samples)
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0)
        self._voice = None

    _shared: "EspeakEngine | None" = None
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> "EspeakEngine":
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


class Speech:
    """The app's speech service: a preferred engine, the offline fallback, and an LRU audio cache."""

    def __init__(self, engine: str = "espeak", cache_size: int = 128, retry_online_after_s: float = 300.0):
        if engine not in ("espeak", "gtts"):
            raise ValueError(f"unknown speech engine {engine!r}; use 'espeak' or 'gtts'")
        self.preferred = engine
        self.cache_size = cache_size
        self.retry_online_after_s = retry_online_after_s
        self._cache: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._engines: dict[str, object] = {}
        self._online_down_until = 0.0

    def _engine(self, name: str):
        with self._lock:
            if name not in self._engines:
                self._engines[name] = EspeakEngine.shared() if name == "espeak" else GTTSEngine()
            return self._engines[name]

    def warm_up(self) -> None:
        self._engine("espeak")

    def engine_name(self) -> str:
        """The engine a new reply is spoken with: the preferred one unless it failed recently."""
        if self.preferred == "gtts" and time.monotonic() < self._online_down_until:
            return "espeak"
        return self.preferred

    def audio(self, key: str, text: str, lang: str, engine: str) -> tuple[bytes, str]:
        """Audio bytes and mimetype for a catalogue entry, synthesised once per process."""
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        result = self._synthesize(text, lang, engine)
        with self._lock:
            self._cache[key] = result
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def _synthesize(self, text: str, lang: str, engine: str) -> tuple[bytes, str]:
        if engine == "gtts":
            try:
                eng = self._engine("gtts")
                return eng.synthesize(text, lang), eng.mimetype
            except Exception as exc:  # any failure of the online path degrades to offline
                self._online_down_until = time.monotonic() + self.retry_online_after_s
                log.warning("gTTS failed (%s: %s); speaking offline with espeak-ng",
                            type(exc).__name__, str(exc)[:200])
        eng = self._engine("espeak")
        return eng.synthesize(text, lang), eng.mimetype

    def cached(self, key: str) -> bool:
        with self._lock:
            return key in self._cache


def init_app(app) -> Speech:
    speech = Speech(engine=app.config["SPEECH_ENGINE"], cache_size=int(app.config["AUDIO_CACHE_SIZE"]))
    app.extensions["speech"] = speech
    return speech


def get_speech(app) -> Speech:
    return app.extensions["speech"]
