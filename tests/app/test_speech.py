"""app.speech: offline espeak-ng WAV in English and Vietnamese, caching, the gTTS fallback, and audio
keys that cannot name anything else."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from app import assistant, speech as speech_mod
from app.assistant import choose_reply
from app.speech import audio_key, parse_audio_key
from tests.app.test_assistant import LABELS


def wav_stats(data: bytes) -> tuple[float, float]:
    """(duration in seconds, RMS of the 16-bit samples) of a WAV file."""
    with wave.open(io.BytesIO(data)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        frames = w.readframes(w.getnframes())
        duration = w.getnframes() / float(w.getframerate())
    samples = np.frombuffer(frames, np.int16).astype(np.float64)
    return duration, float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


@pytest.fixture(scope="module")
def speech():
    return speech_mod.Speech(engine="espeak", cache_size=4)


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_espeak_speaks_both_languages(speech, lang):
    reply = choose_reply("happy", lang)
    key = speech.speak(reply)
    assert key == audio_key(reply, "espeak")
    data, mimetype = speech.serve(key)
    assert mimetype == "audio/wav" and data[:4] == b"RIFF"
    duration, rms = wav_stats(data)
    assert duration > 0.3 and rms > 300


def test_cache_means_no_second_synthesis(speech, monkeypatch):
    key = speech.speak(choose_reply("sad", "en"))
    first = speech.serve(key)
    monkeypatch.setattr(speech, "_synthesize", lambda *a: pytest.fail("synthesised a cached reply"))
    assert speech.speak(choose_reply("sad", "en")) == key
    assert speech.serve(key) == first


def test_cache_is_bounded():
    s = speech_mod.Speech(engine="espeak", cache_size=2)
    for label in ("happy", "sad", "angry"):
        s.speak(choose_reply(label, "en"))
    assert len(s._cache) == 2


class Offline:
    mimetype = "audio/mpeg"

    def synthesize(self, text, lang):
        raise OSError("network is unreachable")


def test_gtts_failure_falls_back_to_espeak(caplog):
    s = speech_mod.Speech(engine="gtts")
    s._engines["gtts"] = Offline()
    reply = choose_reply("happy", "vi")
    with caplog.at_level("WARNING"):
        data, mimetype = s.serve(audio_key(reply, "gtts"))
    assert mimetype == "audio/wav" and wav_stats(data)[0] > 0.3
    assert sum("gtts failed" in r.getMessage() for r in caplog.records) == 1
    assert s.engine_name() == "espeak"  # and new replies stay offline for a while


def test_speak_names_the_engine_that_actually_spoke():
    s = speech_mod.Speech(engine="gtts")
    s._engines["gtts"] = Offline()
    reply = choose_reply("sad", "vi")
    key = s.speak(reply)
    assert key == audio_key(reply, "espeak")
    assert s.serve(key)[1] == "audio/wav"


def test_speak_without_any_voice_is_none_and_serve_says_so(monkeypatch):
    s = speech_mod.Speech(engine="espeak")

    def broken(*a):
        raise speech_mod.SpeechError("no voice")

    monkeypatch.setattr(s, "_synthesize", broken)
    reply = choose_reply("happy", "en")
    assert s.speak(reply) is None
    with pytest.raises(speech_mod.SpeechError):
        s.serve(audio_key(reply, "espeak"))


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError):
        speech_mod.Speech(engine="festival")


def test_audio_keys_round_trip():
    for lang in assistant.LANGUAGES:
        for label in LABELS + [assistant.NO_FACE]:
            for n in range(len(assistant.REPLIES[lang][label])):
                reply = assistant.reply_by_id(f"{label}.{n}", lang)
                key = audio_key(reply, "espeak")
                assert speech_mod.AUDIO_KEY.match(key)
                engine, back = parse_audio_key(key)
                assert engine == "espeak" and back == reply


@pytest.mark.parametrize(
    "key",
    [
        "",
        "..",
        "../../etc/passwd",
        "espeak.en.happy.0",
        "espeak.en.happy.0.00000000",
        "espeak.en.happy.99.12345678",
        "espeak.fr.happy.0.12345678",
        "say.en.happy.0.12345678",
        "espeak.en.happy.0.12345678/../../x",
        "espeak.en.HAPPY.0.12345678",
        "espeak.en.happy.-1.12345678",
    ],
)
def test_bad_audio_keys_are_rejected(key):
    assert parse_audio_key(key) is None
    with pytest.raises(speech_mod.UnknownAudio):
        speech_mod.Speech(engine="espeak").serve(key)


def test_online_keys_are_unknown_to_an_offline_server():
    reply = choose_reply("happy", "en", seed=1)
    with pytest.raises(speech_mod.UnknownAudio):
        speech_mod.Speech(engine="espeak").serve(audio_key(reply, "gtts"))
