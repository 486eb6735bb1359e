"""The page tried as a new user would (issue 24, item 6): what they see after a slow answer, a bad or
empty file, a language switch, an unsure model, a session without a face, a long label, a phone.

Each test asserts on what is on the screen (text, classes, computed styles, canvas pixels) or on the
requests the page made. The private-mode ones (downloads made once, no canvas readback warning) are
in test_ondevice.py.
"""

from __future__ import annotations

import pytest

from .test_browser import PREDICT_URL, goto_app, upload

NOT_AN_IMAGE = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"this is not a photo"}
EMPTY_PHOTO = {"name": "empty.jpg", "mimeType": "image/jpeg", "buffer": b""}


def ui(lang: str, key: str) -> str:
    from app import assistant

    return assistant.UI_STRINGS[lang][key]


def expected_refusals(log, status: int):
    """The browser logs a refused request as a console error: the one the test made is expected."""
    log.console_errors[:] = [e for e in log.console_errors if f"status of {status}" not in e]


def wait_status(page, state: str):
    page.wait_for_function(f"() => document.getElementById('photo-status').dataset.state === '{state}'")


def photo_panel(page) -> dict:
    return page.evaluate("""() => ({
        status: document.getElementById('photo-status').innerText,
        faces: document.querySelectorAll('#face-list li').length,
        resultsHidden: document.getElementById('photo-results').hidden,
        frameHidden: document.getElementById('photo-frame').hidden,
        result: window.emotionApp.photoResult,
        reply: document.getElementById('reply-text').innerText,
        replyEmotion: document.getElementById('reply-text').dataset.emotion || '',
        replyNote: document.getElementById('reply-emotion').innerText,
        replay: !document.getElementById('replay').disabled,
    })""")


def test_a_slow_photo_answer_never_overwrites_a_newer_error(app_page, server_url, media):
    """A photo's answer held back while the user picks a file that is not an image: the error stays,
    and the old photo's faces do not appear (without their photo) when its answer finally comes."""
    page, log = app_page
    held = []

    def hold_the_first(route):
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route(PREDICT_URL, hold_the_first)
    goto_app(page, server_url)
    page.set_input_files("#file-input", str(media["face_jpeg"]))
    while not held:
        page.wait_for_timeout(50)
    page.set_input_files("#file-input", files=[NOT_AN_IMAGE])
    wait_status(page, "error")
    try:
        held[0].continue_()  # the slow answer arrives now (unless the page gave up on it)
    except Exception:  # noqa: BLE001 - the page cancelled the request: nothing to release
        pass
    for _ in range(40):  # until the held request has finished or failed
        if log.predict_in_flight == 0:
            break
        page.wait_for_timeout(100)
    page.wait_for_timeout(500)
    seen = photo_panel(page)
    assert seen["status"] == ui("en", "notImage"), seen
    assert seen["faces"] == 0 and seen["resultsHidden"] and seen["frameHidden"] and seen["result"] is None, seen
    assert not seen["replyEmotion"], seen
    log.assert_clean()


@pytest.mark.parametrize("how", ["remembered", "switched"])
def test_the_status_line_under_the_header_speaks_the_pages_language(open_page, server_url, how):
    script = "localStorage.setItem('emotion.lang', 'vi');" if how == "remembered" else None
    page, log = open_page(init_script=script, viewport={"width": 1280, "height": 900})
    goto_app(page, server_url)
    if how == "switched":
        page.select_option("#lang", "vi")
    status = page.locator("#private-status")
    assert status.inner_text() == ui("vi", "privateOff")
    page.select_option("#lang", "en")
    assert status.inner_text() == ui("en", "privateOff")
    log.assert_clean()


@pytest.mark.parametrize("bad", ["not an image", "refused by the server"])
def test_after_a_bad_file_the_previous_answer_is_gone(app_page, server_url, media, bad):
    page, log = app_page
    goto_app(page, server_url)
    page.select_option("#lang", "en")
    upload(page, media["face_jpeg"])
    page.wait_for_function("() => document.getElementById('reply-text').dataset.emotion")
    if bad == "not an image":
        page.set_input_files("#file-input", files=[NOT_AN_IMAGE])
        expected = ui("en", "notImage")
    else:
        page.route(
            PREDICT_URL,
            lambda route: route.fulfill(
                status=422, json={"error": {"code": "no_pixels", "message": "the image could not be decoded"}}
            ),
        )
        page.set_input_files("#file-input", str(media["face_jpeg"]))
        expected = ui("en", "requestFailed").replace("{0}", "the image could not be decoded")
    wait_status(page, "error")
    seen = photo_panel(page)
    assert seen["status"] == expected, seen
    # neither the old faces nor the old reply: they were about another photo
    assert seen["faces"] == 0 and seen["resultsHidden"] and seen["result"] is None, seen
    assert seen["reply"] == ui("en", "replyIdle") and not seen["replyEmotion"] and not seen["replyNote"], seen
    assert not seen["replay"], seen
    # nor does a language switch bring the old reply back
    page.select_option("#lang", "vi")
    page.wait_for_timeout(500)
    assert page.locator("#reply-text").inner_text() == ui("vi", "replyIdle")
    expected_refusals(log, 422)
    log.assert_clean()


def test_an_empty_file_is_called_empty(app_page, server_url, media):
    page, log = app_page
    goto_app(page, server_url)
    page.select_option("#lang", "en")
    page.set_input_files("#file-input", files=[EMPTY_PHOTO])
    wait_status(page, "error")
    assert page.locator("#photo-status").inner_text() == ui("en", "emptyFile")
    assert log.predict_requests == 0, "an empty file was posted"
    page.select_option("#lang", "vi")
    assert page.locator("#photo-status").inner_text() == ui("vi", "emptyFile")
    # the server's word for it (400 empty_image) reads the same
    page.route(
        PREDICT_URL,
        lambda route: route.fulfill(
            status=400, json={"error": {"code": "empty_image", "message": "the image is empty (0 bytes)"}}
        ),
    )
    with page.expect_response(PREDICT_URL):
        page.set_input_files("#file-input", str(media["face_jpeg"]))
    wait_status(page, "error")
    assert page.locator("#photo-status").inner_text() == ui("vi", "emptyFile")
    expected_refusals(log, 400)
    log.assert_clean()


# How much of the box's bottom edge is painted in the face's colour (a dashed box: about half).
EDGE_COVERAGE = """() => {
    const c = document.getElementById('photo-canvas');
    const [x, y, w, h] = window.emotionApp.photoResult.faces[0].box;
    const sw = document.querySelector('#face-list li .swatch');
    const rgb = getComputedStyle(sw).backgroundColor.match(/\\d+/g).map(Number);
    const x0 = Math.round(x + 0.1 * w), n = Math.round(0.8 * w);
    const d = c.getContext('2d').getImageData(x0, Math.round(y + h), n, 1).data;
    let hit = 0;
    for (let i = 0; i < n; i++) {
        const dist = Math.hypot(d[4 * i] - rgb[0], d[4 * i + 1] - rgb[1], d[4 * i + 2] - rgb[2]);
        if (dist < 60) hit++;
    }
    return hit / n;
}"""


def test_an_unsure_answer_looks_unsure_on_the_photo(app_page, server_url, media):
    """A face the model is not sure of (confident: false) gets a dashed box, a "?" after its label and
    a visible "not sure" badge in the face list; a sure one gets none of them."""
    page, log = app_page
    unsure = {"on": False}

    def answer(route):
        body = route.fetch().json()
        if unsure["on"]:
            for face in body["faces"]:
                face["confident"] = False
            body["reply"].update(hedged=True, id=f"unsure-{body['emotion']}.0")
        route.fulfill(json=body)

    page.route(PREDICT_URL, answer)
    goto_app(page, server_url)
    page.select_option("#lang", "en")
    upload(page, media["face_jpeg"])
    row = page.locator("#face-list li").first
    assert not row.locator(".unsure-badge").count()
    assert not row.locator(".face-name").inner_text().endswith("?")
    solid = page.evaluate(EDGE_COVERAGE)
    assert solid > 0.9, f"a sure face's box should be a solid line ({solid:.2f} of its edge)"

    unsure["on"] = True
    page.set_input_files("#file-input", str(media["face_jpeg"]))
    page.wait_for_selector("#face-list li.unsure .unsure-badge")
    row = page.locator("#face-list li").first
    badge = row.locator(".unsure-badge")
    assert badge.is_visible() and badge.inner_text() == ui("en", "unsureBadge")
    assert row.locator(".face-name").inner_text().endswith("?")
    dashed = page.evaluate(EDGE_COVERAGE)
    assert 0.25 < dashed < 0.8, f"an unsure face's box should be dashed ({dashed:.2f} of its edge)"
    page.select_option("#lang", "vi")
    assert page.locator("#face-list li .unsure-badge").first.inner_text() == ui("vi", "unsureBadge")
    # the longer Vietnamese note and badges still fit a phone
    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    log.assert_clean()


def test_an_unsure_answer_looks_unsure_in_live_mode(camera_page, server_url):
    page, log = camera_page

    def answer(route):
        body = route.fetch().json()
        for face in body["faces"]:
            face["confident"] = False
        route.fulfill(json=body)

    page.route(PREDICT_URL, answer)
    goto_app(page, server_url)
    page.select_option("#lang", "en")
    page.click("#start-camera")
    page.wait_for_selector("#live-face-list li.unsure .unsure-badge", timeout=60_000)
    row = page.locator("#live-face-list li").first
    assert row.locator(".unsure-badge").inner_text() == ui("en", "unsureBadge")
    assert row.locator(".face-name").inner_text().endswith("?")
    page.click("#stop-camera")
    log.assert_clean()


# The timeline's band for 10 s: no face, then a neutral face, then no face again (through the page's
# own timeline module, the one live.js feeds).
FILL_TIMELINE = """async () => {
    const tl = await import('/static/js/timeline.js');
    const { state } = await import('/static/js/state.js');
    tl.startTimeline();
    const t0 = state.sessionStart;
    const neutral = { emotion: 'neutral', smoothed: { neutral: 0.8, happy: 0.2 } };
    for (let i = 0; i <= 20; i++) {
        const t = i * 0.5, face = t >= 3 && t < 6;
        tl.addTimelinePoint(t0 + t * 1000, face ? 1 : 0, face ? neutral : null);
    }
    const c = document.getElementById('timeline');
    const dpr = window.devicePixelRatio || 1;
    const cssW = c.clientWidth, padL = 30, plotW = cssW - 38, bandY = 8 + (c.clientHeight - 38) + 3;
    const xOf = (t) => padL + (t / 10) * plotW;
    const ctx = c.getContext('2d');
    const patch = (t0, t1) => {
        const x = Math.round(xOf(t0) * dpr), w = Math.round((xOf(t1) - xOf(t0)) * dpr);
        const d = ctx.getImageData(x, Math.round((bandY + 1) * dpr), w, Math.round(8 * dpr)).data;
        const px = [];
        for (let i = 0; i < d.length; i += 4) px.push([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        return px;
    };
    return { none: patch(0.3, 2.7), neutral: patch(3.3, 5.7) };
}"""


def test_no_face_on_the_timeline_looks_unlike_neutral(app_page, server_url):
    page, log = app_page
    goto_app(page, server_url)
    page.select_option("#lang", "en")
    bands = page.evaluate(FILL_TIMELINE)
    neutral_rgb = (0x8B, 0x8D, 0x98)

    def near_neutral(p):
        return p[3] > 200 and sum((a - b) ** 2 for a, b in zip(p[:3], neutral_rgb, strict=True)) ** 0.5 < 40

    def tone(p):  # what the eye sees on the page's white: the pixel over the canvas's #fafbff
        a = p[3] / 255
        return sum(c * a + 250 * (1 - a) for c in p[:3]) / 3

    assert sum(map(near_neutral, bands["neutral"])) > 0.9 * len(bands["neutral"]), "the neutral band is not neutral"
    none = bands["none"]
    assert sum(map(near_neutral, none)) < 0.1 * len(none), "no face is drawn like a neutral face"
    tones = sorted(map(tone, none))
    dark, light = tones[len(tones) // 20], tones[-len(tones) // 20]
    assert light - dark > 80, f"no face should be hatched, not one flat tone ({dark:.0f}..{light:.0f})"
    # the legend says so, with a swatch in the same look
    item = page.locator("#timeline-legend li[data-label='none']")
    assert item.inner_text().strip() == ui("en", "legendNone")
    look = item.locator(".swatch").evaluate(
        "e => ({image: getComputedStyle(e).backgroundImage, color: getComputedStyle(e).backgroundColor})"
    )
    assert "gradient" in look["image"], look
    assert "grey" not in ui("en", "timelineKey") and "xám" not in ui("vi", "timelineKey")
    page.select_option("#lang", "vi")
    assert page.locator("#timeline-legend li[data-label='none']").inner_text().strip() == ui("vi", "legendNone")
    log.assert_clean()


def contempt_on_top(route):
    """The photo's answer with "contempt" as the top label (the longest name in English)."""
    body = route.fetch().json()
    for face in body["faces"]:
        s = face["scores"]
        s["contempt"], s[face["emotion"]] = s[face["emotion"]], s["contempt"]
        face["emotion"] = "contempt"
    body["emotion"] = "contempt"
    route.fulfill(json=body)


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("lang", ["en", "vi"])
def test_every_score_label_fits(open_page, server_url, media, lang, width):
    page, log = open_page(viewport={"width": width, "height": 900}, is_mobile=width < 500, has_touch=width < 500)
    page.route(PREDICT_URL, contempt_on_top)
    goto_app(page, server_url)
    page.select_option("#lang", lang)
    upload(page, media["face_jpeg"])
    labels = page.eval_on_selector_all(
        "#scores .bar-label", "els => els.map(e => [e.textContent, e.scrollWidth, e.clientWidth])"
    )
    assert len(labels) == 8  # the default model's eight classes, the longest names among them
    cut = [lab for lab in labels if lab[1] > lab[2]]
    assert not cut, f"labels cut off: {cut}"
    assert page.locator("#scores .bar.top").get_attribute("data-label") == "contempt"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    log.assert_clean()


# Per recall row: is its bar on the same line as its percentage, and its swatch beside its name?
RECALL_ROWS = """() => Array.from(document.querySelectorAll('#model-recall tbody tr'), (tr) => {
    const mid = (r) => (r.top + r.bottom) / 2;
    const textRect = (node) => {
        const text = Array.from(node.childNodes).find((n) => n.nodeType === 3 && n.textContent.trim());
        const range = document.createRange(); range.selectNodeContents(text);
        const rects = range.getClientRects();
        return { rect: rects[0], lines: rects.length };
    };
    const bar = tr.querySelector('.mini-bar').getBoundingClientRect();
    const value = textRect(tr.cells[1]);
    const sw = tr.querySelector('.swatch').getBoundingClientRect();
    const name = textRect(tr.cells[0]);
    return { label: tr.dataset.label,
             barBeside: bar.right <= value.rect.left + 1 && Math.abs(mid(bar) - mid(value.rect)) < 6,
             swatchBeside: sw.right <= name.rect.left + 1 && Math.abs(mid(sw) - mid(name.rect)) < 8,
             nameLines: name.lines };
})"""


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_the_recall_table_fits_a_phone(open_page, server_url, lang):
    page, log = open_page(viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
    goto_app(page, server_url)
    page.select_option("#lang", lang)
    rows = page.evaluate(RECALL_ROWS)
    assert len(rows) == 8, rows
    bad = [r for r in rows if not (r["barBeside"] and r["swatchBeside"] and r["nameLines"] == 1)]
    assert not bad, f"rows that wrap on a phone: {bad}"
    fits = page.evaluate("""() => { const t = document.getElementById('model-recall');
                                    return t.scrollWidth <= t.parentElement.clientWidth; }""")
    assert fits and page.evaluate("document.documentElement.scrollWidth") <= 375
    log.assert_clean()
