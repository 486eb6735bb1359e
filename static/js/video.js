// The video panel (issue 25): pick a clip and get a report, drawn as a timeline per face on a canvas
// with its segments, exported as CSV and JSON, and summed up by the assistant. Two sources feed the
// same events ({type: 'start' | 'frame' | 'report' | 'error'}) to one renderer (onEvent, renderVideo):
// - the server: the clip posted to /api/video, its NDJSON stream read as it comes; Stop aborts the
//   request and the server stops too;
// - private mode: the clip decoded and analysed in this browser (js/videolocal.js) and nothing of it
//   sent; Stop ends the loop.
import { ApiError } from './api.js';
import { colorOf, labelName, sortedLabels } from './labels.js';
import { showReply } from './reply.js';
import { el, state } from './state.js';
import { t } from './strings.js';
import { pct, setStatusT } from './ui.js';
import { LocalVideoError, analyseLocally } from './videolocal.js';

export const VIDEO_MAX_BYTES = 16 * 1024 * 1024;   // the server's VIDEO_MAX_BYTES (docs/API.md)
const VIDEO_TYPES = /^video\/|\.(mp4|m4v|mov|webm|mkv|avi)$/i;

export async function handleVideo(file) {
  if (!file) return;
  if (state.videoAbort) state.videoAbort.abort();
  if (!(VIDEO_TYPES.test(file.type || '') || VIDEO_TYPES.test(file.name || ''))) {
    setStatusT(el.videoStatus, 'error', 'videoNotVideo');
    return;
  }
  const local = state.private;   // private mode: analysed here, nothing sent (its limits come with the engine)
  if (!local && file.size > VIDEO_MAX_BYTES) { setStatusT(el.videoStatus, 'error', 'videoTooBig', Math.round(file.size / 1048576)); return; }
  const controller = new AbortController();
  state.videoAbort = controller;
  state.video = { labels: [], fps: 0, expected: 0, frames: [], report: null, reply: null, info: null, name: file.name, ondevice: local };
  el.videoResults.hidden = true;
  el.videoTracks.textContent = '';
  el.videoProgress.hidden = false;
  el.videoProgress.removeAttribute('value');
  el.videoCancel.disabled = false;
  el.videoCsv.disabled = true;
  el.videoJson.disabled = true;
  setStatusT(el.videoStatus, 'busy', local ? 'videoLocalStarting' : 'videoUploading');
  try {
    if (local) {
      let lastDraw = 0;
      await analyseLocally(file, {
        signal: controller.signal,
        model: state.model || state.defaultModel,
        cards: state.models,
        lang: state.lang,
        speak: !state.muted,
        onEvent: (ev) => {
          if (controller.signal.aborted || state.videoAbort !== controller) return;
          onEvent(ev);
          if (performance.now() - lastDraw > 250) { lastDraw = performance.now(); renderVideo(); }
        },
      });
      renderVideo();
    } else {
      await postClip(file, controller);
    }
  } catch (err) {
    if (controller.signal.aborted) { setStatusT(el.videoStatus, null, local ? 'videoLocalCancelled' : 'videoCancelled'); }
    else if (err instanceof LocalVideoError) { setStatusT(el.videoStatus, 'error', err.key, ...err.args); }
    else {
      state.errors.push(String(err));
      if (err instanceof ApiError) setStatusT(el.videoStatus, 'error', 'requestFailed', err.message);
      else if (local) setStatusT(el.videoStatus, 'error', 'videoLocalFailed', (err && err.message) || String(err));
      else setStatusT(el.videoStatus, 'error', 'networkFailed');
    }
  } finally {
    if (state.videoAbort === controller) state.videoAbort = null;
    el.videoCancel.disabled = true;
    el.videoProgress.hidden = true;
  }
}

// The server's source: the clip posted to /api/video, its NDJSON lines fed to onEvent as they come.
async function postClip(file, controller) {
  const form = new FormData();
  form.append('video', file, file.name || 'clip');
  form.append('lang', state.lang);
  form.append('speak', state.muted ? 'false' : 'true');
  if (state.model) form.append('model', state.model);
  const resp = await fetch('/api/video', { method: 'POST', body: form, credentials: 'same-origin', signal: controller.signal });
  if (!resp.ok) {
    let body = null;
    try { body = await resp.json(); } catch (_) { /* not JSON */ }
    const err = (body && body.error) || {};
    throw new ApiError(err.message || `HTTP ${resp.status}`, err.code || 'http_error', resp.status);
  }
  await readStream(resp.body, controller);
}

export function cancelVideo() {
  if (state.videoAbort) state.videoAbort.abort();
}

async function readStream(body, controller) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let lastDraw = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (controller.signal.aborted) return;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line) onEvent(JSON.parse(line));
    }
    if (performance.now() - lastDraw > 250) { lastDraw = performance.now(); renderVideo(); }
  }
  renderVideo();
}

function onEvent(ev) {
  const v = state.video;
  if (ev.type === 'start') {
    Object.assign(v, { labels: ev.labels, fps: ev.fps, expected: ev.expected_frames, info: ev.video });
    el.videoProgress.max = Math.max(1, ev.expected_frames);
    el.videoProgress.value = 0;
    setStatusT(el.videoStatus, 'busy', 'videoProgress', 0, ev.expected_frames);
  } else if (ev.type === 'frame') {
    v.frames.push({ index: ev.index, time: ev.time, mode: ev.mode, faces: ev.faces });
    el.videoProgress.max = Math.max(1, ev.expected);
    el.videoProgress.value = ev.done;
    setStatusT(el.videoStatus, 'busy', 'videoProgress', ev.done, ev.expected);
    el.videoResults.hidden = false;
  } else if (ev.type === 'report') {
    v.report = ev.report;
    v.reply = ev.reply;
    const n = ev.report.tracks.length;
    if (ev.report.truncated) setStatusT(el.videoStatus, 'ok', 'videoTruncated', ev.report.duration_analysed.toFixed(1));
    else if (n) setStatusT(el.videoStatus, 'ok', 'videoDone', n);
    else setStatusT(el.videoStatus, null, 'videoNoFace');
    el.videoCsv.disabled = false;
    el.videoJson.disabled = false;
    el.videoResults.hidden = false;
    showReply(ev.reply, ev.report.emotion, 'video');
  } else if (ev.type === 'error') {
    setStatusT(el.videoStatus, 'error', 'requestFailed', ev.error.message);
  }
}

// Each face's points over time: [{time, scores, emotion}], by track id in order of appearance.
function series(frames) {
  const byTrack = new Map();
  for (const f of frames) {
    for (const face of f.faces) {
      if (!byTrack.has(face.track)) byTrack.set(face.track, []);
      byTrack.get(face.track).push({ time: f.time, scores: face.scores, emotion: face.emotion });
    }
  }
  return byTrack;
}

export function renderVideo() {
  const v = state.video;
  if (!v) return;
  const byTrack = series(v.frames);
  const tracks = v.report ? new Map(v.report.tracks.map((tr) => [tr.id, tr])) : new Map();
  const end = Math.max(1, ...v.frames.map((f) => f.time + 1 / Math.max(0.1, v.fps || 1)),
    v.info && v.info.duration ? Math.min(v.info.duration, 3600) : 0);
  el.videoTracks.textContent = '';
  for (const [id, points] of byTrack) {
    const tr = tracks.get(id);
    const box = document.createElement('div');
    box.className = 'video-track';
    box.dataset.track = String(id);
    const h = document.createElement('h4');
    h.textContent = tr ? t('videoFaceSummary', id, labelName(tr.dominant), pct(tr.shares[tr.dominant]))
      : t('faceTrack', id);
    const canvas = document.createElement('canvas');
    canvas.height = 110;
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', h.textContent);
    box.append(h, canvas);
    if (tr) {
      const ol = document.createElement('ol');
      ol.className = 'segments';
      for (const s of tr.segments) {
        const li = document.createElement('li');
        const sw = document.createElement('span');
        sw.className = 'swatch';
        sw.style.background = colorOf(s.emotion);
        li.dataset.emotion = s.emotion;
        li.append(sw, t('videoSegment', s.start.toFixed(1), s.end.toFixed(1), labelName(s.emotion)));
        ol.append(li);
      }
      box.append(ol);
    }
    el.videoTracks.append(box);
    drawTrack(canvas, points, tr, v.labels, end);
  }
}

function drawTrack(c, points, track, labels, end) {
  const dpr = window.devicePixelRatio || 1;
  const cssW = c.clientWidth || 320, cssH = 110;
  c.width = Math.round(cssW * dpr); c.height = Math.round(cssH * dpr);
  const ctx = c.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const padL = 30, padR = 6, padT = 6, band = 9, padB = 16 + band;
  const plotW = cssW - padL - padR, plotH = cssH - padT - padB;
  const xOf = (tt) => padL + (tt / end) * plotW;
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#5d6075';
  ctx.strokeStyle = '#e3e5ef';
  ctx.textBaseline = 'middle';
  for (const v of [0, 0.5, 1]) {
    const y = padT + plotH * (1 - v);
    ctx.beginPath(); ctx.moveTo(padL, y); ctx.lineTo(padL + plotW, y); ctx.stroke();
    ctx.fillText(`${v * 100}%`, 2, y);
  }
  ctx.textBaseline = 'top';
  ctx.fillText('0 s', padL, cssH - 13);
  const endLabel = `${end.toFixed(1)} s`;
  ctx.fillText(endLabel, padL + plotW - ctx.measureText(endLabel).width, cssH - 13);
  // the segments (the report's) as a band under the lines, or each frame's label while it streams
  const bandY = padT + plotH + 2;
  const spans = track ? track.segments.map((s) => [s.start, s.end, s.emotion])
    : points.map((p, i) => [p.time, i + 1 < points.length ? points[i + 1].time : p.time + 0.25, p.emotion]);
  for (const [a, b, label] of spans) {
    ctx.fillStyle = colorOf(label);
    ctx.fillRect(xOf(a), bandY, Math.max(1, xOf(b) - xOf(a)), band);
  }
  ctx.lineWidth = 1.6;
  for (const label of sortedLabels(Object.fromEntries(labels.map((l) => [l, 0])))) {
    ctx.strokeStyle = colorOf(label);
    ctx.beginPath();
    points.forEach((p, i) => {
      const x = xOf(p.time), y = padT + plotH * (1 - (p.scores[label] || 0));
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
  }
}

function csvCell(v) {
  const s = v == null ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The report's timeline as CSV: the same columns as `emotion video`'s timeline.csv. */
export function videoCsv() {
  const v = state.video;
  if (!v) return '';
  const rows = [['time', 'frame', 'track', 'x', 'y', 'w', 'h', 'emotion', 'confident', ...v.labels]];
  for (const f of v.frames) {
    for (const face of f.faces) {
      rows.push([f.time, f.index, face.track, ...face.box, face.emotion, face.confident ? 'True' : 'False',
        ...v.labels.map((l) => face.scores[l] ?? 0)]);
    }
  }
  return rows.map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

export function videoJson() {
  const v = state.video;
  return v && v.report ? JSON.stringify({ ...v.report, reply: v.reply }, null, 1) + '\n' : '';
}

function download(text, type, suffix) {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  const base = ((state.video && state.video.name) || 'clip').replace(/\.[^.]*$/, '');
  a.href = url;
  a.download = `${base}-emotion.${suffix}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function downloadVideoCsv() { if (state.video) download(videoCsv(), 'text/csv;charset=utf-8', 'csv'); }
export function downloadVideoJson() { if (state.video && state.video.report) download(videoJson(), 'application/json', 'json'); }
