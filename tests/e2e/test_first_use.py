"""The page tried as a new user would (issue 24, item 6): what they see after a slow answer, a bad or
empty file, a language switch, an unsure model, a session without a face, a long label, a phone.

Each test asserts on what is on the screen (text, classes, computed styles, canvas pixels) or on the
requests the page made. The private-mode ones (downloads made once, no canvas readback warning) are
in test_ondevice.py.
"""
from __future__ import annotations

import pytest

from .test_browser import goto_app

NOT_AN_IMAGE = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"this is not a photo"}
EMPTY_PHOTO = {"name": "empty.jpg", "mimeType": "image/jpeg", "buffer": b""}


def ui(lang: str, key: str) -> str:
    from app import assistant

    return assistant.UI_STRINGS[lang][key]


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


def contempt_on_top(route):
    """The photo's answer with "contempt" as the top label (the longest name in English)."""
    body = route.fetch().json()
    for face in body["faces"]:
        s = face["scores"]
        s["contempt"], s[face["emotion"]] = s[face["emotion"]], s["contempt"]
        face["emotion"] = "contempt"
    body["emotion"] = "contempt"
    route.fulfill(json=body)


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
