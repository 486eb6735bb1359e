"""The page, end to end, in Debian's Chromium against the real server, detector and shipped models.

1. upload a real face photo -> box + label in #face-list, score bars, screenshot for the README;
2. live session on Chromium's fake camera fed a clip of a real face -> labels over the video,
   one request in flight at most, a spoken reply, Stop, timeline + CSV;
3. camera refused / missing / unsupported -> a clear message;
4. no request leaves the origin, no console errors (CSP violations), and the CSP header is there.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest

from .media import ASTRONAUT_FACE_BOX

ROOT = Path(__file__).resolve().parents[2]
# /api/predict with or without a query string (a live frame sends its fields there)
PREDICT_URL = re.compile(r".*/api/predict(\?.*)?$")
LABELS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"}


def goto_app(page, server_url):
    page.goto(server_url + "/")
    page.wait_for_function("() => window.emotionApp && window.emotionApp.ready")


def upload(page, path):
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#face-list li[data-emotion]", timeout=60_000)


def overlap(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    return ix * iy / float(min(aw * ah, bw * bh))


def test_upload_photo_shows_boxes_labels_and_scores(app_page, server_url, media, tmp_path):
    page, log = app_page
    goto_app(page, server_url)
    assert page.locator("#model-select option").count() >= 1
    assert page.locator("#model-select").input_value()

    upload(page, media["face_jpeg"])

    items = page.locator("#face-list li[data-emotion]")
    assert items.count() >= 1
    emotions = {items.nth(i).get_attribute("data-emotion") for i in range(items.count())}
    assert emotions <= LABELS, emotions

    result = page.evaluate("window.emotionApp.photoResult")
    boxes = [f["box"] for f in result["faces"]]
    assert any(overlap(b, ASTRONAUT_FACE_BOX) > 0.5 for b in boxes), f"no box on the face: {boxes}"
    assert result["emotion"] in LABELS

    bars = page.locator("#scores .bar")
    assert bars.count() >= 7
    page.wait_for_function("""() => Math.max(...Array.from(document.querySelectorAll('#scores .bar-fill'),
                                             e => e.getBoundingClientRect().width)) > 10""")
    values = [float(v) for v in page.eval_on_selector_all("#scores .bar", "els => els.map(e => e.dataset.value)")]
    assert abs(sum(values) - 1.0) < 0.05, values

    # The canvas shows the photo with boxes drawn on it (not blank).
    painted = page.evaluate("""() => {
        const c = document.getElementById('photo-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4 * 97) if (d[i] > 0) n++;
        return {w: c.width, h: c.height, n};
    }""")
    assert painted["w"] == 512 and painted["h"] == 512 and painted["n"] > 100, painted

    # Clicking the face on the canvas selects it.
    x, y, w, h = boxes[0]
    rect = page.locator("#photo-canvas").bounding_box()
    k = rect["width"] / 512
    page.mouse.click(rect["x"] + (x + w / 2) * k, rect["y"] + (y + h / 2) * k)
    assert page.locator('#face-list li[data-index="0"] button').get_attribute("aria-pressed") == "true"

    # The assistant answered (text; audio only when not muted, which is the default).
    page.wait_for_function("() => document.getElementById('reply-text').dataset.emotion")
    assert page.locator("#reply-text").inner_text().strip()

    # The honesty panel names the model's accuracy on a split, with per-class recall.
    summary = page.locator("#model-summary").inner_text()
    assert "%" in summary and ("FER" in summary or "metrics" in summary), summary

    # The README's picture: E2E_SCREENSHOT=docs/screenshot.png writes it (a plain run leaves the repo alone).
    shot = Path(os.environ.get("E2E_SCREENSHOT") or tmp_path / "screenshot.png")
    shot = shot if shot.is_absolute() else ROOT / shot
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shot), full_page=False)

    # Vietnamese display names after switching language.
    page.select_option("#lang", "vi")
    first = page.locator("#face-list li").first.inner_text()
    assert "Mặt 1" in first, first
    # ... and the model names in the card's Vietnamese title, where it has one
    models = page.evaluate("fetch('/api/models').then(r => r.json())")
    default = next(m for m in models["models"] if m["name"] == models["default"])
    vi_title = (default.get("titles") or {}).get("vi")
    if vi_title:
        vi_short = (default.get("short") or {}).get("vi") or vi_title
        assert page.locator("#model-select option:checked").inner_text() == vi_short
        assert vi_title in page.locator("#model-summary").inner_text()
    log.assert_clean()


def test_drop_a_photo_and_phone_layout(open_page, server_url, media):
    page, log = open_page(viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
    goto_app(page, server_url)
    data = Path(media["face_jpeg"]).read_bytes()
    # Drop the photo on the drop zone, the way a drag from the desktop would.
    page.evaluate(
        """async (bytes) => {
        const file = new File([new Uint8Array(bytes)], 'face.jpg', {type: 'image/jpeg'});
        const dt = new DataTransfer(); dt.items.add(file);
        const zone = document.getElementById('drop-zone');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""",
        list(data),
    )
    page.wait_for_selector("#face-list li[data-emotion]", timeout=60_000)
    assert page.locator("#scores .bar").count() >= 7
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 375, f"the page is wider than a phone screen: {overflow}px"
    # Controls are labelled.
    for sel in ("#file-input", "#model-select", "#lang", "#mute"):
        assert page.locator(sel).evaluate("e => e.labels && e.labels.length > 0"), sel
    log.assert_clean()


def test_live_session_with_fake_camera(camera_page, server_url):
    page, log = camera_page
    goto_app(page, server_url)
    assert page.evaluate("window.emotionApp.framesSent") == 0, "frames sent before Start"

    page.click("#start-camera")
    # Boxes and labels over the video.
    page.wait_for_selector("#live-face-list li[data-emotion]", timeout=60_000)
    page.wait_for_function("() => window.emotionApp.overlayBoxes > 0")
    painted = page.evaluate("""() => {
        const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
    }""")
    assert painted > 200, "nothing drawn over the video"
    label = page.locator("#live-face-list li").first.get_attribute("data-emotion")
    assert label in LABELS

    # The assistant speaks once the smoothed expression has held for the debounce interval.
    page.wait_for_function("() => window.emotionApp.replies.some(r => r.source === 'live')", timeout=60_000)
    reply = [r for r in page.evaluate("window.emotionApp.replies") if r["source"] == "live"][-1]
    assert reply["text"].strip()
    assert page.locator("#reply-text").inner_text().strip() == reply["text"].strip()
    assert reply["audio_url"], "speak=true should give an audio_url"
    page.wait_for_function("() => window.emotionApp.audioPlayAttempts > 0")

    # Issue 23: after the first full detection the server re-finds the face from the hint the page
    # sends back, and the face keeps the server's track id.
    page.wait_for_function("() => (window.emotionApp.trackModes.tracked || 0) >= 3", timeout=30_000)
    modes = page.evaluate("window.emotionApp.trackModes")
    assert modes.get("full", 0) >= 1, modes
    last = page.evaluate("window.emotionApp.liveResult")
    assert last["track"]["mode"] in ("full", "tracked") and all(isinstance(f["track"], int) for f in last["faces"])
    assert {tr["id"] for tr in page.evaluate("window.emotionApp.tracks") if tr["seen"]} == {
        f["track"] for f in last["faces"]
    }
    # The next frame goes when the answer is in, not on a 250 ms clock (the page's old 4 frames/s).
    # Unless the server is so slow that the per-user budget (0.15 of a core of the server's own time a
    # frame) holds the page back: then the page must keep to that budget.
    n0, t0 = page.evaluate("[emotionApp.framesAnswered, performance.now()]")
    page.wait_for_timeout(3000)
    n1, t1, work = page.evaluate("[emotionApp.framesAnswered, performance.now(), emotionApp.liveWorkMs]")
    rate = (n1 - n0) / ((t1 - t0) / 1000)
    print(f"live: {rate:.1f} answered frames/s, server work {work:.1f} ms a frame, modes {modes}")
    assert rate <= 12 * 1.15, "faster than the page's 12 frames/s"
    if work < 1000 * 0.15 / 4.5:
        assert rate > 4.5
    else:
        assert rate * work / 1000 <= 0.15 * 1.3, "the per-user budget was not kept"

    state = page.evaluate("({sent: emotionApp.framesSent, max: emotionApp.maxInFlight, t: emotionApp.timeline.length})")
    assert state["sent"] >= 3, state
    assert state["max"] == 1, state
    assert log.predict_max_in_flight == 1, f"{log.predict_max_in_flight} /api/predict requests were in flight at once"

    page.click("#stop-camera")
    page.wait_for_function("() => !window.emotionApp.live")
    assert page.locator("#video-frame").is_hidden()
    sent = page.evaluate("window.emotionApp.framesSent")
    page.wait_for_timeout(800)
    assert page.evaluate("window.emotionApp.framesSent") == sent, "frames still sent after Stop"

    timeline = page.evaluate("window.emotionApp.timeline")
    assert len(timeline) >= 3 and any(p["emotion"] in LABELS for p in timeline)
    with page.expect_download() as dl_info:
        page.click("#download-csv")
    download = dl_info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
    assert rows[0][:4] == ["time_s", "timestamp", "faces", "emotion"]
    assert len(rows) - 1 == len(timeline) and len(rows) >= 4
    assert any(r[3] in LABELS for r in rows[1:])
    log.assert_clean()


REFUSALS = {
    "denied": (
        """navigator.mediaDevices.getUserMedia = () =>
                   Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));""",
        "refused",
    ),
    "missing": (
        """navigator.mediaDevices.getUserMedia = () =>
                   Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));""",
        "No camera",
    ),
    "unsupported": (
        "Object.defineProperty(navigator, 'mediaDevices', {value: undefined, configurable: true});",
        "does not offer camera access",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_camera_refused_or_missing_shows_a_clear_message(open_page, server_url, case):
    script, expected = REFUSALS[case]
    page, log = open_page(init_script=script, viewport={"width": 1280, "height": 900})
    goto_app(page, server_url)
    page.click("#start-camera")
    status = page.locator("#camera-status")
    page.wait_for_function("() => document.getElementById('camera-status').dataset.state === 'error'")
    assert expected in status.inner_text()
    assert page.locator("#start-camera").is_enabled(), "Start should be usable again"
    assert page.evaluate("window.emotionApp.framesSent") == 0
    if case == "denied":  # the message follows the language switch
        page.select_option("#lang", "vi")
        assert "từ chối" in status.inner_text()
    log.assert_clean()


def test_same_origin_only_and_csp(app_page, server_url, media):
    page, log = app_page
    response = page.goto(server_url + "/")
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp, f"missing CSP header: {csp!r}"
    page.wait_for_function("() => window.emotionApp && window.emotionApp.ready")
    upload(page, media["face_jpeg"])
    page.select_option("#lang", "vi")
    page.check("#mute")
    if page.locator("#model-select option").count() > 1:
        page.select_option("#model-select", index=1)
        page.wait_for_function("() => !document.getElementById('drop-zone').hasAttribute('aria-busy')")
    page.wait_for_selector("#face-list li[data-emotion]")
    assert log.requests, "no requests recorded"
    assert any(u.endswith("/static/app.js") for u in log.requests)
    log.assert_clean()


MEASURE_MENU = """() => {
    const s = document.getElementById('model-select');
    const cs = getComputedStyle(s);
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    return {width: s.getBoundingClientRect().width,
            pad: parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight),
            options: Array.from(s.options, o => ({value: o.value, text: o.text, px: ctx.measureText(o.text).width}))};
}"""


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_model_menu_is_readable_default_first_members_hidden(open_page, server_url, width, height):
    page, log = open_page(viewport={"width": width, "height": height})
    goto_app(page, server_url)
    models = page.evaluate("fetch('/api/models').then(r => r.json())")
    menu = page.evaluate(MEASURE_MENU)
    values = [o["value"] for o in menu["options"]]
    assert values[0] == models["default"], values
    hidden = {m["name"] for m in models["models"] if m.get("menu") is False}
    assert hidden and not hidden & set(values), (hidden, values)
    assert set(values) == {m["name"] for m in models["models"]} - hidden
    for o in menu["options"]:  # every name fits the closed menu: text + padding + the arrow
        assert o["px"] + menu["pad"] + 20 <= menu["width"], (width, o, menu["width"])
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # The accuracy panel is the default's, with its calm-face rate next to the per-class recall.
    default = next(m for m in models["models"] if m["name"] == models["default"])
    rate = page.locator("#calm-rate").get_attribute("data-rate")
    assert abs(float(rate) - default["metrics"]["ferplus_test"]["calm_face_rate"]) < 1e-9
    assert page.locator("#model-recall tbody tr").count() == len(default["classes"])
    log.assert_clean()


def test_switching_language_rerenders_the_reply_text_and_voice(app_page, server_url, media):
    page, log = app_page
    goto_app(page, server_url)
    page.select_option("#lang", "en")
    upload(page, media["face_jpeg"])
    page.wait_for_function("() => document.getElementById('reply-text').dataset.emotion")
    before = page.evaluate("window.emotionApp.replies.at(-1)")
    assert before["lang"] == "en" and before["id"]
    page.select_option("#lang", "vi")
    page.wait_for_function("() => document.getElementById('reply-text').lang === 'vi'")
    after = page.evaluate("window.emotionApp.replies.at(-1)")
    text = page.locator("#reply-text").inner_text()
    assert after["id"] == before["id"] and after["emotion"] == before["emotion"] and after["lang"] == "vi"
    assert text == after["text"] != before["text"] and any(ch in text for ch in "ạảãàáâầấậăđêếềệôốồộơớờợưứừự")
    # Its voice follows: the audio the Replay button (and autoplay) uses is the Vietnamese one.
    if before["audio_url"]:
        assert ".vi." in after["audio_url"] and ".vi." in page.evaluate("document.getElementById('reply-audio').src")
    page.select_option("#lang", "en")
    page.wait_for_function("() => document.getElementById('reply-text').lang === 'en'")
    assert page.locator("#reply-text").inner_text() == before["text"]
    log.assert_clean()


def test_language_menu_and_texts_come_from_the_server(app_page, server_url, media):
    """Issue 17: a language is one module on the server (app/languages/); the page keeps no table."""
    from app import assistant

    page, log = app_page
    goto_app(page, server_url)
    options = page.eval_on_selector_all("#lang option", "os => os.map(o => [o.value, o.textContent.trim()])")
    assert dict(options) == assistant.LANGUAGE_NAMES and [c for c, _ in options] == list(assistant.LANGUAGES)
    for code in assistant.LANGUAGES:
        page.select_option("#lang", code)
        ui = assistant.UI_STRINGS[code]
        assert page.locator("h1").inner_text() == ui["title"] and page.title() == ui["title"]
        assert page.evaluate("document.documentElement.lang") == code
    page.select_option("#lang", "en")
    upload(page, media["face_jpeg"])
    # a plural form and a filled placeholder, from the server's English table
    assert page.locator("#photo-status").inner_text() == "Found 1 face."
    assert page.locator("#face-list li").first.inner_text().startswith("Face 1")
    log.assert_clean()


def test_a_hedged_reply_says_the_model_is_not_sure(app_page, server_url, media):
    """When the server says the model is not sure of the face (reply.hedged), the page says so beside
    the label, in the page's language. The server's answer is changed in flight to a hedged one."""
    from app import assistant

    page, log = app_page

    def hedge(route):
        body = route.fetch().json()
        body["reply"].update(hedged=True, text="I'm not sure, but is that a little smile?", id="unsure-happy.0")
        for face in body["faces"]:
            face["confident"] = False
        route.fulfill(json=body)

    page.route(PREDICT_URL, hedge)
    goto_app(page, server_url)
    page.select_option("#lang", "en")
    upload(page, media["face_jpeg"])
    page.wait_for_function("() => document.getElementById('reply-text').dataset.hedged === 'true'")
    assert assistant.UI_STRINGS["en"]["hedgedNote"] in page.locator("#reply-emotion").inner_text()
    page.select_option("#lang", "vi")  # the reply and its note follow the language
    page.wait_for_function("() => document.getElementById('reply-text').lang === 'vi'")
    assert assistant.UI_STRINGS["vi"]["hedgedNote"] in page.locator("#reply-emotion").inner_text()
    assert page.locator("#reply-text").inner_text() == assistant.choose_reply("happy", "vi", confident=False).text
    log.assert_clean()


def test_live_mode_stays_silent_while_the_model_is_not_sure(camera_page, server_url):
    """Issue 15: live mode speaks only a confident, stable label. The same camera that gets a spoken
    reply above gets none while every answer says the model is not sure (changed in flight), and
    speaks once the answers are confident again."""
    page, log = camera_page
    unsure = {"on": True}

    def answer(route):
        body = route.fetch().json()
        if unsure["on"]:
            for face in body["faces"]:
                face["confident"] = False
            if body.get("emotion"):
                body["reply"].update(hedged=True, id=f"unsure-{body['emotion']}.0")
        route.fulfill(json=body)

    page.route(PREDICT_URL, answer)  # live frames carry their fields in the query string
    goto_app(page, server_url)
    page.click("#start-camera")
    page.wait_for_selector("#live-face-list li[data-emotion]", timeout=60_000)
    page.wait_for_function("() => window.emotionApp.framesAnswered >= 8", timeout=90_000)
    page.wait_for_timeout(2500)  # longer than the 1.5 s a label must hold
    assert not [r for r in page.evaluate("window.emotionApp.replies") if r["source"] == "live"]
    unsure["on"] = False
    page.wait_for_function("() => window.emotionApp.replies.some(r => r.source === 'live')", timeout=60_000)
    reply = [r for r in page.evaluate("window.emotionApp.replies") if r["source"] == "live"][-1]
    assert not reply["hedged"] and reply["text"].strip()
    page.click("#stop-camera")
    log.assert_clean()
