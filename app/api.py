"""The JSON API of docs/ARCHITECTURE.md (contract 3); docs/API.md documents it for people."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from . import assistant, metrics
from .emotion import ModelUnavailable, get_models
from .errors import ApiError
from .faces import get_detector
from .imaging import Decoded, ImageTooLarge, UnsupportedImage, decode_data_url, decode_with_config
from .pipeline import FaceResult, analyze, analyze_live, rescale
from .security import quote
from .speech import SpeechError, UnknownAudio, get_speech
from .tracking import BadHint, TrackHint, parse_hint

bp = Blueprint("api", __name__, url_prefix="/api")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


def _flag(value, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ApiError(400, f"bad_{name}", f"'{name}' must be true or false, got {quote(value, 40)}")


def _lang(value) -> str:
    if value is None or value == "":
        return assistant.DEFAULT_LANG
    lang = str(value).strip().lower().replace("_", "-").split("-")[0]
    if lang not in assistant.LANGUAGES:
        raise ApiError(400, "bad_lang", f"'lang' must be one of {list(assistant.LANGUAGES)}, got {quote(value, 40)}")
    return lang


def _min_face(value) -> int | None:
    """Optional smallest face to look for, in pixels of the posted image (the live page sends one)."""
    if value is None or value == "":
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        n = -1
    if not 0 <= n <= 10_000:
        raise ApiError(400, "bad_min_face", f"'min_face' must be a whole number of pixels, got {quote(value, 40)}")
    return n


def _read_upload() -> tuple[bytes, dict]:
    """The image bytes and the other fields, from multipart, JSON (data URL) or a raw image body."""
    cfg = current_app.config
    max_bytes = int(cfg["MAX_IMAGE_BYTES"])
    mimetype = request.mimetype or ""
    params = dict(request.args)
    if mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        params.update(request.form)
        upload = request.files.get("image")
        if upload is not None:
            data = upload.stream.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise ImageTooLarge(f"image larger than the limit of {max_bytes} bytes")
            return data, params
        if request.form.get("image"):  # a data URL sent as a text field
            return decode_data_url(request.form["image"], max_bytes), params
        got = sorted(set(request.files) | set(request.form))
        raise ApiError(
            400, "missing_image", f"send the photo in the multipart field 'image' (got fields {quote(', '.join(got))})"
        )
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # absurdly nested JSON: the parser gives up, the request is bad
            body = None
        if not isinstance(body, dict):
            raise ApiError(
                400, "bad_json", 'the body must be a JSON object like {"image": "data:image/jpeg;base64,..."}'
            )
        params.update({k: v for k, v in body.items() if k != "image"})
        image = body.get("image")
        if image is None:
            raise ApiError(
                400,
                "missing_image",
                f"the JSON object needs an 'image' data URL (got keys {quote(', '.join(sorted(body)))})",
            )
        if not isinstance(image, str):
            raise ApiError(400, "bad_data_url", "'image' must be a data URL string")
        return decode_data_url(image, max_bytes), params
    if mimetype.startswith("image/") or mimetype == "application/octet-stream":
        return request.get_data(cache=False), params
    if not request.content_length and not mimetype:
        raise ApiError(
            400, "missing_image", "the request has no image; send multipart field 'image' or JSON {\"image\": data URL}"
        )
    raise UnsupportedImage(f"request body of type {quote(mimetype)}; send multipart/form-data or application/json")


def _reply_payload(reply: assistant.Reply, speak: bool) -> tuple[dict, float]:
    """The reply as JSON, with the URL of its audio when asked to speak, and the seconds speaking took."""
    t0 = time.perf_counter()
    key = get_speech().speak(reply) if speak else None
    payload = {
        "id": reply.id,
        "text": reply.text,
        "lang": reply.lang,
        "emotion": reply.emotion,
        "display": reply.display,
        "hedged": reply.hedged,
        "audio_url": url_for("api.audio", key=key) if key else None,
    }
    return payload, (time.perf_counter() - t0) if speak else 0.0


@dataclass(frozen=True)
class PredictRequest:
    """A /api/predict request, checked: the decoded photo and the options."""

    image: Decoded
    model: str
    lang: str
    speak: bool
    min_face: int | None
    track: TrackHint | None  # a live frame's hint (app/tracking.py); None: a photo, no track ids


def _track(value, max_faces: int) -> TrackHint | None:
    """The optional `track` field: absent for photos; an empty or shaped hint for live frames."""
    if value is None:
        return None
    try:
        return parse_hint(value, max_faces)
    except BadHint as exc:
        raise ApiError(400, "bad_track", f"'track' is not a tracking hint: {exc}") from None


def _parse_predict(timings: dict[str, float]) -> PredictRequest:
    """The request's fields, checked, and its photo decoded (bad input raises a 4xx ApiError)."""
    cfg = current_app.config
    registry = get_models()
    data, params = _read_upload()
    lang = _lang(params.get("lang"))
    speak = _flag(params.get("speak"), "speak")
    min_face = _min_face(params.get("min_face"))
    track = _track(params.get("track"), int(cfg["MAX_FACES"]))
    model_name = params.get("model") or None
    if model_name is not None and (not isinstance(model_name, str) or model_name not in registry.cards):
        raise ApiError(400, "unknown_model", f"no model {quote(model_name, 60)}; GET /api/models lists them")
    model = model_name or registry.default
    if not registry.cards or model is None:
        raise ApiError(503, "no_model", "no model is installed on this server")
    t0 = time.perf_counter()
    decoded = decode_with_config(data, cfg, int(cfg["MAX_IMAGE_BYTES"]))
    timings["decode"] = time.perf_counter() - t0
    return PredictRequest(image=decoded, model=model, lang=lang, speak=speak, min_face=min_face, track=track)


def _face_json(result: FaceResult, lang: str, confident: bool) -> dict:
    out = {
        "box": result.face.box,
        "confidence": result.face.confidence,
        "emotion": result.emotion,
        "display": assistant.display_name(result.emotion, lang),
        "scores": result.scores,
        "confident": confident,
        "keypoints": result.face.keypoints,
    }
    if result.face.track is not None:
        out["track"] = result.face.track
    return out


def _in_analysed_pixels(hint: TrackHint, scale: tuple[float, float]) -> TrackHint:
    """The hint's boxes (pixels of the upload) in pixels of the analysed image (a reduced decode)."""
    sx, sy = scale
    if (sx, sy) == (1.0, 1.0):
        return hint
    return TrackHint(
        faces=[(tid, [x / sx, y / sy, w / sx, h / sy]) for tid, (x, y, w, h) in hint.faces],
        since_full=hint.since_full,
        age_ms=hint.age_ms,
    )


@bp.post("/predict")
def predict():
    """parse -> analyze -> reply -> JSON."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    ask = _parse_predict(timings)
    image = ask.image
    # min_face is in pixels of the uploaded image; a large JPEG is analysed at a reduced scale.
    min_face = int(ask.min_face / max(image.scale)) if ask.min_face else ask.min_face
    located = None
    try:
        if ask.track is None:
            results = analyze(
                image.rgb,
                detector=get_detector(),
                models=get_models(),
                model=ask.model,
                min_face=min_face,
                timings=timings,
            )
        else:
            cfg = current_app.config
            results, located = analyze_live(
                image.rgb,
                _in_analysed_pixels(ask.track, image.scale),
                detector=get_detector(),
                models=get_models(),
                model=ask.model,
                min_face=min_face,
                full_every=int(cfg["TRACK_FULL_EVERY"]),
                max_age_ms=float(cfg["TRACK_MAX_AGE_MS"]),
                timings=timings,
            )
    except ModelUnavailable as exc:
        raise ApiError(503, "model_unavailable", str(exc)) from None
    results = rescale(results, image.scale, image.width, image.height)
    # Faces come largest first, so the first face is the one the assistant answers; it hedges when the
    # model's scores for that face fail its card's confidence rule.
    card = get_models().cards[ask.model]
    confident = [card.confident(r.scores) for r in results]
    emotion = results[0].emotion if results else None
    seed = f"{results[0].score:.2f}" if results else ask.image.width
    choice = assistant.choose_reply(emotion, ask.lang, seed=seed, confident=not results or confident[0])
    reply, timings["speech"] = _reply_payload(choice, ask.speak)
    timings["total"] = time.perf_counter() - t_start
    metrics.observe_predict(timings, model=ask.model, faces=len(results))
    if located is not None:
        metrics.observe_tracking(located.mode, located.reason, len(results))
    body = {
        "faces": [_face_json(r, ask.lang, c) for r, c in zip(results, confident, strict=True)],
        "emotion": emotion,
        "reply": reply,
        "model": ask.model,
        "image": {"width": ask.image.width, "height": ask.image.height, "format": ask.image.format},
        "timings_ms": {k: _ms(timings.get(k, 0.0)) for k in ("decode", "detect", "classify", "speech", "total")},
    }
    if located is not None:
        body["track"] = {"mode": located.mode, "reason": located.reason, "since_full": located.since_full}
    return jsonify(body)


@bp.get("/reply")
def reply():
    """A reply already given, in another language (the page re-renders it when the language changes):
    `id` as /api/predict returned it, `lang`, and `speak` for its audio."""
    lang = _lang(request.args.get("lang"))
    speak = _flag(request.args.get("speak"), "speak")
    reply_id = request.args.get("id", "")
    found = assistant.reply_by_id(reply_id, lang) if len(reply_id) <= 40 else None
    if found is None:
        raise ApiError(404, "unknown_reply", "no reply with this id")
    payload, _ = _reply_payload(found, speak)
    return jsonify({"reply": payload})


@bp.get("/audio/<path:key>")
def audio(key: str):
    try:
        body, mimetype = get_speech().serve(key)
    except UnknownAudio:
        raise ApiError(404, "unknown_audio", "no audio with this key") from None
    except SpeechError:
        raise ApiError(503, "speech_unavailable", "speech synthesis is not available right now") from None
    response = Response(body, mimetype=mimetype)
    # The key names the exact text and voice, so what it says never changes; its bytes may: espeak-ng
    # carries state from one utterance to the next (not reset by re-initialising it or by its random
    # seed), so two workers with different histories give WAVs a few samples apart. Hence an ETag of
    # the bytes served (a worker that made other bytes answers a full 200, never a wrong 304) and no
    # `immutable`.
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    return response.make_conditional(request)


@bp.get("/models")
def models():
    registry = get_models()
    loaded = set(registry.loaded())
    summaries = []
    for card in registry.cards.values():
        summary = card.summary()
        summary["loaded"] = card.name in loaded
        if summary["loaded"]:
            summary["runtime"] = getattr(registry.get(card.name), "runtime", "ensemble")
        summaries.append(summary)
    return jsonify({"default": registry.default, "models": summaries})


@bp.get("/health")
def health():
    """A readiness probe's answer: 200 once this worker can serve (`status` "ok", or "degraded" with no
    model installed); 503 while its warm-up is still loading ("starting") or when the warm-up left the
    detector or the default model unloaded ("unavailable"). With WARMUP=lazy it is always ready."""
    from . import warming_up

    registry = get_models()
    detector = get_detector()
    starting = warming_up(current_app)
    loaded = registry.loaded()
    ready = not starting and (
        current_app.config["WARMUP"] == "lazy"
        or registry.default is None
        or (detector.loaded and registry.default in loaded)
    )
    response = jsonify(
        {
            "status": (
                "starting" if starting else "unavailable" if not ready else "ok" if registry.default else "degraded"
            ),
            "ready": ready,
            "default": registry.default,
            "models": registry.names,
            "models_loaded": loaded,
            "detector_loaded": detector.loaded,
            "speech_engine": get_speech().engine_name(),
            "pid": os.getpid(),
        }
    )
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "1"
    return response
