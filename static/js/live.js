// The live camera: frames posted one at a time, faces tracked and their scores smoothed across frames,
// labels drawn over the video, and the assistant asked to speak once an expression has held.
import { ApiError, canvasToBlob, predict } from './api.js';
import { boxIou } from './ondevice/tracking.js';
import { predictLocal } from './private.js';
import { showReply } from './reply.js';
import { el, state } from './state.js';
import { t } from './strings.js';
import { addTimelinePoint, drawTimeline, startTimeline } from './timeline.js';
import { argmax, drawFaceBox, faceLabel, faceRowContent, pct, renderBars, setStatusT } from './ui.js';

const LIVE_MAX_WIDTH = 480;       // frames are downscaled to this width before upload
// The next frame goes as soon as the previous answer is in (one request in flight), capped by the
// camera's rate and by a per-user budget: the server's own time for a frame (timings_ms.total) may
// take at most LIVE_SERVER_BUDGET of one core per user, so a slow server gets fewer frames, not a queue.
const LIVE_MAX_FPS = 12;          // when the server keeps up; a webcam gives more, but every frame costs the server
const LIVE_SERVER_BUDGET = 0.15;  // of one server core, per live user
const PRIVATE_BUDGET = 0.5;       // private mode: of one core of this device (the analysis runs in a worker)
// A face in front of a webcam fills far more than an eighth of the frame's height; asking the server
// to look only for faces that big (min_face) makes its detector several times cheaper.
const LIVE_MIN_FACE_FRACTION = 1 / 8;
// Smoothing and the voice are defined in time, not frames, so they behave the same at 4 or 12 frames/s.
const SMOOTH_TAU_MS = 250;        // scores are averaged with this time constant: a held expression shows in ~0.3 s
const TRACK_TTL_MS = 1000;        // a face not seen for this long is forgotten
const DEBOUNCE_MS = 1500;         // a new dominant expression must hold this long before the assistant speaks
const LABEL_HYSTERESIS = 0.05;    // a new label must beat the current one by this much (smoothed score)
const SPEAK_WAIT_MS = 1000;       // how long to wait for the server to agree with the smoothed label
const PREDICT_MAX_MS = 250;       // boxes follow a face between answers, extrapolated at most this far

// [string key, ...args] for a getUserMedia failure.
function cameraErrorMessage(err) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'PermissionDeniedError' || name === 'SecurityError') return ['cameraDenied'];
  if (name === 'NotFoundError' || name === 'DevicesNotFoundError' || name === 'OverconstrainedError') return ['cameraMissing'];
  if (name === 'NotReadableError' || name === 'TrackStartError' || name === 'AbortError') return ['cameraBusy'];
  return ['cameraOther', (err && err.message) || String(err)];
}

export async function startCamera() {
  if (state.live) return;
  el.startBtn.disabled = true;
  const md = navigator.mediaDevices;
  if (!md || typeof md.getUserMedia !== 'function') {
    setStatusT(el.cameraStatus, 'error', 'cameraUnsupported');
    el.cameraStatus.dataset.reason = 'unsupported';
    el.startBtn.disabled = false;
    return;
  }
  setStatusT(el.cameraStatus, 'busy', 'cameraStarting');
  let stream;
  try {
    stream = await md.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' },
      audio: false,
    });
  } catch (err) {
    state.errors.push(`camera: ${err && err.name}`);
    setStatusT(el.cameraStatus, 'error', ...cameraErrorMessage(err));
    el.cameraStatus.dataset.reason = (err && err.name) || 'error';
    el.startBtn.disabled = false;
    return;
  }
  delete el.cameraStatus.dataset.reason;
  state.stream = stream;
  state.live = true;
  el.video.srcObject = stream;
  try { await el.video.play(); } catch (_) { /* autoplay+muted normally succeeds */ }
  if (!el.video.videoWidth) {
    await new Promise((resolve) => el.video.addEventListener('loadedmetadata', resolve, { once: true }));
  }
  resetSession();
  el.videoFrame.hidden = false;
  el.liveResults.hidden = false;
  el.stopBtn.disabled = false;
  setStatusT(el.cameraStatus, 'ok', 'cameraWaiting');
  // Stop politely if the camera goes away (unplugged, permission revoked).
  for (const track of stream.getVideoTracks()) track.addEventListener('ended', () => stopCamera());
  scheduleFrame(0);
}

export function stopCamera() {
  if (!state.live) return;
  state.live = false;
  clearTimeout(state.liveTimer);
  state.liveTimer = null;
  if (state.stream) for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  el.video.srcObject = null;
  el.videoFrame.hidden = true;
  const ctx = el.overlay.getContext('2d');
  ctx.clearRect(0, 0, el.overlay.width, el.overlay.height);
  state.tracks = [];
  state.trackHint = null;
  cancelAnimationFrame(state.overlayLoop || 0);
  el.startBtn.disabled = false;
  el.stopBtn.disabled = true;
  setStatusT(el.cameraStatus, null, 'cameraStopped');
  drawTimeline();
}

// After a change of engine or model the next answer's scores replace the smoothed ones (the labels
// may differ), and the server searches the frame afresh.
export function freshSmoothing() {
  for (const tr of state.tracks) { tr.t = undefined; tr.smoothed = {}; }
  state.trackHint = null;
}

function resetSession() {
  state.tracks = [];
  state.nextTrackId = 1;
  state.dominant = null;
  state.candidate = { label: null, since: 0 };
  state.spokenLabel = null;
  state.speakWanted = null;
  state.speakSince = 0;
  state.trackHint = null;
  state.trackModes = { full: 0, tracked: 0 };
  state.liveWorkMs = 0;
  state.liveStarted = performance.now();
  el.liveFaceList.textContent = '';
  el.liveScores.textContent = '';
  startTimeline();
  cancelAnimationFrame(state.overlayLoop || 0);
  state.overlayLoop = requestAnimationFrame(overlayFrame);
}

function scheduleFrame(delay) {
  clearTimeout(state.liveTimer);
  if (!state.live) return;
  state.liveTimer = setTimeout(sendFrame, Math.max(0, delay));
}

// What the server needs to re-find the last answer's faces instead of searching the frame again
// (app/tracking.py): their track ids and boxes, its count of frames since a full detection, and how
// old they are. The server checks all of it and falls back to a full detection when it must.
function trackHint(now) {
  const hint = state.trackHint;
  if (!hint) return {};
  return { faces: hint.faces, since_full: hint.sinceFull, age_ms: Math.round(now - hint.capturedAt) };
}

// One request in flight at most: the next frame is only scheduled once the previous one is answered.
async function sendFrame() {
  if (!state.live || state.inFlight > 0) return;
  const video = el.video;
  if (!video.videoWidth || video.readyState < 2) { scheduleFrame(100); return; }
  const started = performance.now();
  const scale = Math.min(1, LIVE_MAX_WIDTH / video.videoWidth);
  const w = Math.round(video.videoWidth * scale), h = Math.round(video.videoHeight * scale);
  const grab = state.grabCanvas || (state.grabCanvas = document.createElement('canvas'));
  if (grab.width !== w || grab.height !== h) { grab.width = w; grab.height = h; }
  // read back every frame (getImageData in private mode, toBlob otherwise); the first getContext fixes
  // the canvas's kind, and private mode may be turned on mid-session
  grab.getContext('2d', { willReadFrequently: true }).drawImage(video, 0, 0, w, h);
  const speak = !!state.speakWanted && !state.muted;
  const wantsReply = !!state.speakWanted;
  state.inFlight += 1;
  state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
  state.framesSent += 1;
  let result = null;
  try {
    const options = {
      model: state.model, lang: state.lang, speak,
      minFace: Math.round(Math.min(w, h) * LIVE_MIN_FACE_FRACTION),
    };
    const sameSize = state.trackHint && state.trackHint.w === w && state.trackHint.h === h;
    if (!sameSize) state.trackHint = null;
    if (state.private) {
      // private mode: the frame is analysed in this browser, tracked the same way; a reply (its id
      // and the language only) is fetched just when the assistant is about to speak
      result = await predictLocal(grab, { ...options, wantReply: wantsReply, track: trackHint(started) });
    } else {
      result = await predict(await canvasToBlob(grab, 0.8), { ...options, track: JSON.stringify(trackHint(started)) });
    }
    state.framesAnswered += 1;
  } catch (err) {
    state.liveErrors += 1;
    state.errors.push(String(err));
    state.trackHint = null;
    if (state.live) {
      if (err instanceof ApiError) setStatusT(el.cameraStatus, 'error', 'liveServerError', err.message);
      else if (state.private) setStatusT(el.cameraStatus, 'error', 'privateFailed', err.message || String(err));
      else setStatusT(el.cameraStatus, 'error', 'networkFailed');
    }
  } finally {
    state.inFlight -= 1;
  }
  if (!state.live) return;
  if (result) {
    state.frameSize = { w, h };
    rememberHint(result, { w, h }, started);
    onLiveResult(result, { w, h }, wantsReply, started);
    const elapsed = performance.now() - started;
    // the budget: this frame's processing time over the wait before the next one
    const work = state.private ? elapsed : Number((result.timings_ms || {}).total) || 0;
    state.liveWorkMs = state.liveWorkMs ? 0.8 * state.liveWorkMs + 0.2 * work : work;
    const budget = state.private ? PRIVATE_BUDGET : LIVE_SERVER_BUDGET;
    const interval = Math.max(1000 / LIVE_MAX_FPS, work / budget);
    scheduleFrame(interval - elapsed);
  } else {
    scheduleFrame(Math.min(4000, 500 * state.liveErrors));    // back off while the server is unhappy
  }
}

function rememberHint(result, size, capturedAt) {
  const tr = result.track;
  if (tr) state.trackModes[tr.mode] = (state.trackModes[tr.mode] || 0) + 1;
  const faces = (result.faces || []).filter((f) => Number.isInteger(f.track));
  state.trackHint = tr ? {
    faces: faces.map((f) => ({ id: f.track, box: f.box })), sinceFull: tr.since_full,
    capturedAt, w: size.w, h: size.h,
  } : null;
}

function centreDistance(a, b) {
  const dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2), dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2);
  return Math.hypot(dx, dy) / Math.max(a[2], a[3], b[2], b[3], 1e-6);
}

// Exponential smoothing in time: a frame that arrives dt ms after the last one weighs 1 - exp(-dt/tau).
function smoothInto(tr, scores, now) {
  const dt = tr.t === undefined ? Infinity : Math.max(0, now - tr.t);
  const a = 1 - Math.exp(-dt / SMOOTH_TAU_MS);
  const next = {};
  for (const k of new Set([...Object.keys(tr.smoothed || {}), ...Object.keys(scores)])) {
    next[k] = (1 - a) * ((tr.smoothed || {})[k] || 0) + a * (Number(scores[k]) || 0);
  }
  tr.smoothed = next;
}

// A box's motion (normalised units per ms), from its last two answers, for drawing between answers.
function moveBox(tr, box, t) {
  if (tr.box && tr.boxAt !== undefined && t > tr.boxAt) {
    const dt = t - tr.boxAt;
    const v = box.map((b, i) => (b - tr.box[i]) / dt);
    tr.vel = tr.vel ? tr.vel.map((p, i) => 0.5 * p + 0.5 * v[i]) : v;
  } else {
    tr.vel = [0, 0, 0, 0];
  }
  tr.box = box;
  tr.boxAt = t;
}

// Match this frame's faces to the running tracks, in frame-normalised coordinates: by the server's
// track ids when it gives them (server mode), else greedily on overlap (private mode).
function updateTracks(faces, size, now, capturedAt) {
  const dets = faces.map((f) => ({
    box: [f.box[0] / size.w, f.box[1] / size.h, f.box[2] / size.w, f.box[3] / size.h],
    scores: f.scores || (f.emotion ? { [f.emotion]: 1 } : {}),
    track: Number.isInteger(f.track) ? f.track : null,
    unsure: f.confident === false,
  }));
  const matched = new Map();   // det index -> track
  if (dets.length && dets.every((d) => d.track !== null)) {
    dets.forEach((d, di) => {
      let tr = state.tracks.find((x) => x.id === d.track);
      if (!tr) { tr = { id: d.track }; state.tracks.push(tr); }
      matched.set(di, tr);
    });
  } else {
    const pairs = [];
    dets.forEach((d, di) => state.tracks.forEach((tr, ti) => {
      const o = boxIou(d.box, tr.box);
      if (o > 0.2 || centreDistance(d.box, tr.box) < 0.6) pairs.push({ di, ti, score: o - centreDistance(d.box, tr.box) * 0.1 });
    }));
    pairs.sort((a, b) => b.score - a.score);
    const usedT = new Set();
    for (const p of pairs) {
      if (matched.has(p.di) || usedT.has(p.ti)) continue;
      matched.set(p.di, state.tracks[p.ti]);
      usedT.add(p.ti);
    }
    dets.forEach((d, di) => {
      if (matched.has(di)) return;
      const tr = { id: state.nextTrackId++ };
      state.tracks.push(tr);
      matched.set(di, tr);
    });
  }
  for (const tr of state.tracks) tr.seen = false;
  for (const [di, tr] of matched) {
    moveBox(tr, dets[di].box, capturedAt);
    smoothInto(tr, dets[di].scores, now);
    tr.t = now;
    tr.frames = (tr.frames || 0) + 1;
    tr.lastSeen = now;
    tr.seen = true;
    tr.unsure = dets[di].unsure;   // the model's word on this face in the latest frame
  }
  state.tracks = state.tracks.filter((tr) => now - tr.lastSeen < TRACK_TTL_MS);
  for (const tr of state.tracks) {
    const best = argmax(tr.smoothed);
    // Hysteresis: keep the current label through near-ties so it doesn't flip back and forth.
    const keep = tr.emotion && tr.emotion !== best &&
      (tr.smoothed[tr.emotion] || 0) >= (tr.smoothed[best] || 0) - LABEL_HYSTERESIS;
    if (!keep) tr.emotion = best;
  }
}

function onLiveResult(result, size, wantsReply, capturedAt) {
  const now = performance.now();
  state.lastResult = result;
  state.liveResult = result;
  state.liveErrors = 0;
  const faces = result.faces || [];
  updateTracks(faces, size, now, capturedAt);
  const visible = state.tracks.filter((tr) => tr.seen);
  setStatusT(el.cameraStatus, 'ok', visible.length ? 'cameraOn' : 'cameraWaiting');

  // Dominant face = the largest face seen in this frame; its smoothed label drives the assistant.
  let dom = null;
  for (const tr of visible) if (!dom || tr.box[2] * tr.box[3] > dom.box[2] * dom.box[3]) dom = tr;
  state.dominant = dom ? dom.emotion : null;
  state.dominantTrack = dom ? dom.id : null;

  renderLiveFaces(visible, dom);
  addTimelinePoint(now, visible.length, dom);
  handleAssistant(result, now, wantsReply);
}

function handleAssistant(result, now, wantsReply) {
  // Only a confident label counts towards "stable": a frame whose largest face fails the model's
  // confidence rule (the card's, chosen on validation) restarts the wait.
  const top = (result.faces || [])[0];
  const label = top && top.confident === false ? null : state.dominant;
  if (wantsReply && state.speakWanted) {
    // Speak only when the server's own label for this frame agrees with the smoothed one and the
    // model is sure of it, so the voice never contradicts the screen nor guesses aloud; after
    // SPEAK_WAIT_MS without that, give up and wait for the next stable label.
    const agrees = result.emotion === state.speakWanted && result.reply && !result.reply.hedged;
    if (agrees && result.reply.text) {
      showReply(result.reply, result.emotion, 'live');
      state.spokenLabel = state.speakWanted;
    }
    if (agrees || now - state.speakSince >= SPEAK_WAIT_MS) {
      if (!agrees) state.candidate = { label: null, since: now };
      state.speakWanted = null;
    }
  }
  if (label !== state.candidate.label) {
    state.candidate = { label, since: now };
  } else if (label && label !== state.spokenLabel && !state.speakWanted && now - state.candidate.since >= DEBOUNCE_MS) {
    state.speakWanted = label;
    state.speakSince = now;
  }
}

// The overlay is redrawn on every animation frame, each box moved along its face's recent motion
// (at most PREDICT_MAX_MS past its frame), so boxes glide between answers instead of jumping.
function overlayFrame() {
  if (!state.live) return;
  const now = performance.now();
  const visible = state.tracks.filter((tr) => tr.seen && now - tr.lastSeen < TRACK_TTL_MS);
  let dom = visible.find((tr) => tr.id === state.dominantTrack) || null;
  drawOverlay(visible, dom, now);
  state.overlayLoop = requestAnimationFrame(overlayFrame);
}

function drawOverlay(visible, dom, now) {
  const c = el.overlay;
  const vw = el.video.videoWidth, vh = el.video.videoHeight;
  if (!vw || !vh) return;
  if (c.width !== vw || c.height !== vh) { c.width = vw; c.height = vh; }
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  const shown = c.clientWidth || c.width;
  const scale = c.width / Math.max(1, shown);
  let drawn = 0;
  for (const tr of visible) {
    const ahead = Math.min(PREDICT_MAX_MS, Math.max(0, now - tr.boxAt));
    const box = tr.box.map((b, i) => b + (tr.vel ? tr.vel[i] : 0) * ahead);
    // Back to video pixels, mirrored like the video element is.
    const w = box[2] * vw, h = box[3] * vh;
    const x = vw - (box[0] * vw + w), y = box[1] * vh;
    const p = tr.smoothed[tr.emotion];
    drawFaceBox(ctx, [x, y, w, h], tr.emotion, `${faceLabel(tr.emotion, tr.unsure)} ${pct(p)}`,
      { selected: tr === dom && visible.length > 1, scale, unsure: tr.unsure });
    drawn += 1;
  }
  if (drawn !== state.overlayBoxes || drawn) {
    state.overlayBoxes = drawn;
    state.overlayFramesWithBoxes = (state.overlayFramesWithBoxes || 0) + (drawn ? 1 : 0);
  }
}

function renderLiveFaces(visible, dom) {
  el.liveFaceList.textContent = '';
  visible.forEach((tr) => {
    const li = document.createElement('li');
    li.dataset.emotion = tr.emotion;
    li.dataset.track = String(tr.id);
    li.classList.toggle('unsure', !!tr.unsure);
    const row = document.createElement('div');
    row.className = 'face-row';
    faceRowContent(row, t('faceTrack', tr.id), tr.emotion, tr.smoothed[tr.emotion], { unsure: tr.unsure });
    li.append(row);
    el.liveFaceList.append(li);
  });
  renderBars(el.liveScores, dom ? dom.smoothed : null, { top: dom && dom.emotion, unsure: !!dom && dom.unsure });
}
