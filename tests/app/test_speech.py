"""app.speech: offline espeak-ng WAV in English and Vietnamese, caching, and the gTTS fallback."""
from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from app import speech as speech_mod
from app.assistant import audio_key, choose_reply


def wav_stats(data: bytes) -> tuple[float, float]:
    """(duration in seconds, RMS of the 16-bit samples) of a WAV file."""
    with wave.open(io.BytesIO(data)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        frames = w.readframes(w.getnframes())
        duration = w.getnframes() / float(w.getframerate())
    samples = np.frombuffer(frames, np.int16).astype(np.float64)
    return duration, float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0


@pytest.fixture(scope="module")
def speech():
    return speech_mod.Speech(engine="espeak", cache_size=4)


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_espeak_speaks_both_languages(speech, lang):
    reply = choose_reply("happy", lang)
    data, mimetype = speech.audio(audio_key(reply, "espeak"), reply.text, lang, "espeak")
    assert mimetype == "audio/wav" and data[:4] == b"RIFF"
    duration, rms = wav_stats(data)
    assert duration > 0.3 and rms > 300


def test_cache_means_no_second_synthesis(speech, monkeypatch):
    reply = choose_reply("sad", "en")
    key = audio_key(reply, "espeak")
    first = speech.audio(key, reply.text, "en", "espeak")
    monkeypatch.setattr(speech, "_synthesize", lambda *a: pytest.fail("synthesised a cached reply"))
    assert speech.audio(key, reply.text, "en", "espeak") == first


def test_cache_is_bounded():
    s = speech_mod.Speech(engine="espeak", cache_size=2)
    for label in ("happy", "sad", "angry"):
        r = choose_reply(label, "en")
        s.audio(audio_key(r, "espeak"), r.text, "en", "espeak")
    assert len(s._cache) == 2


def test_gtts_failure_falls_back_to_espeak(monkeypatch, caplog):
    class Offline:
        mimetype = "audio/mpeg"

        def synthesize(self, text, lang):
            raise OSError("network is unreachable")

    s = speech_mod.Speech(engine="gtts")
    s._engines["gtts"] = Offline()
    reply = choose_reply("happy", "vi")
    with caplog.at_level("WARNING"):
        data, mimetype = s.audio(audio_key(reply, "gtts"), reply.text, "vi", "gtts")
    assert mimetype == "audio/wav" and wav_stats(data)[0] > 0.3
    assert sum("gTTS failed" in r.getMessage() for r in caplog.records) == 1
    assert s.engine_name() == "espeak"  # and new replies stay offline for a while


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError):
        speech_mod.Speech(engine="festival")
