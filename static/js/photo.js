// The photo panel: pick or drop a photo, post it, draw a box on every face, list them with their scores.
import { ApiError, canvasToBlob, predict } from './api.js';
import { predictLocal } from './private.js';
import { clearReply, showReply } from './reply.js';
import { el, state } from './state.js';
import { t } from './strings.js';
import { drawFaceBox, faceLabel, faceRowContent, pct, renderBars, setStatusT } from './ui.js';

const PHOTO_MAX_SIDE = 1280;      // uploaded photos are re-encoded at most this large

function loadImage(file) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
    img.onerror = () => { URL.revokeObjectURL(url); reject(new Error('decode')); };
    img.src = url;     // <img> applies EXIF orientation, so boxes match what the user sees
  });
}

// Only the latest photo may show: every new file (good or bad) and every new analysis takes a number,
// and an answer that comes back under an older number is dropped; the server request it made is
// cancelled when a newer one starts.
let photoSeq = 0;
let photoAbort = null;

function isCurrent(seq) { return seq === photoSeq; }

// What was shown for the previous answer (its faces, scores and reply) goes: it was about another
// image, or another model's reading of this one.
function clearPhotoResult() {
  state.photoResult = null;
  el.photoResults.hidden = true;
  el.faceList.textContent = '';
  el.scores.textContent = '';
  el.photoPlaceholder.hidden = false;
  drawPhoto();
  clearReply('photo');
}

// A file the page will not analyse: say why, and show no photo.
function photoFailed(key, ...args) {
  state.photo = null;
  el.photoFrame.hidden = true;
  clearPhotoResult();
  setStatusT(el.photoStatus, 'error', key, ...args);
}

export async function handleFile(file) {
  if (!file) return;
  const seq = ++photoSeq;
  if (photoAbort) photoAbort.abort();
  el.dropZone.removeAttribute('aria-busy');
  el.photoFrame.hidden = true;
  el.photoResults.hidden = true;
  if (file.size === 0) { photoFailed('emptyFile'); return; }
  if (file.type && !file.type.startsWith('image/')) { photoFailed('notImage'); return; }
  let img;
  try {
    img = await loadImage(file);
  } catch (_) {
    if (isCurrent(seq)) photoFailed('notImage');
    return;
  }
  if (!isCurrent(seq)) return;
  // Re-encode what we show, so the box coordinates are in exactly the pixels that were posted.
  const scale = Math.min(1, PHOTO_MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
  canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
  // private mode reads these pixels back (getImageData), once per model: a canvas's first getContext
  // fixes whether it is kept for readback, so it says so here
  canvas.getContext('2d', { willReadFrequently: true }).drawImage(img, 0, 0, canvas.width, canvas.height);
  const blob = await canvasToBlob(canvas, 0.92);
  if (!isCurrent(seq)) return;
  state.photo = { canvas, blob };
  state.photoResult = null;
  state.selectedFace = 0;
  drawPhoto();
  el.photoFrame.hidden = false;
  await analysePhoto();
}

export async function analysePhoto() {
  if (!state.photo) return;
  const seq = ++photoSeq;
  if (photoAbort) photoAbort.abort();
  const abort = photoAbort = new AbortController();
  setStatusT(el.photoStatus, 'busy', 'analysing');
  el.dropZone.setAttribute('aria-busy', 'true');
  try {
    // private mode: the canvas's pixels are analysed here and never posted
    const options = { model: state.model, lang: state.lang, speak: !state.muted };
    const result = state.private ? await predictLocal(state.photo.canvas, options)
      : await predict(state.photo.blob, { ...options, signal: abort.signal });
    if (!isCurrent(seq)) return;   // a newer photo, file or model came since: this answer is stale
    state.lastResult = result;
    state.photoResult = result;
    state.selectedFace = largestFaceIndex(result.faces);
    renderPhotoResult();
    const n = (result.faces || []).length;
    if (n) setStatusT(el.photoStatus, 'ok', 'facesFound', n); else setStatusT(el.photoStatus, null, 'noFace');
    showReply(result.reply, result.emotion, 'photo');
  } catch (err) {
    if (!isCurrent(seq)) return;   // cancelled or overtaken: the newer one speaks
    state.errors.push(String(err));
    clearPhotoResult();
    if (err instanceof ApiError && err.code === 'empty_image') setStatusT(el.photoStatus, 'error', 'emptyFile');
    else if (err instanceof ApiError) setStatusT(el.photoStatus, 'error', 'requestFailed', err.message);
    else if (state.private) setStatusT(el.photoStatus, 'error', 'privateFailed', err.message || String(err));
    else setStatusT(el.photoStatus, 'error', 'networkFailed');
  } finally {
    if (isCurrent(seq)) {
      el.dropZone.removeAttribute('aria-busy');
      photoAbort = null;
    }
  }
}

function largestFaceIndex(faces) {
  let best = 0, bestA = -1;
  (faces || []).forEach((f, i) => {
    const a = (f.box[2] || 0) * (f.box[3] || 0);
    if (a > bestA) { best = i; bestA = a; }
  });
  return best;
}

export function drawPhoto() {
  const src = state.photo && state.photo.canvas;
  if (!src) return;
  const c = el.photoCanvas;
  c.width = src.width;
  c.height = src.height;
  const ctx = c.getContext('2d');
  ctx.drawImage(src, 0, 0);
  const faces = (state.photoResult && state.photoResult.faces) || [];
  // Scale line widths and text to the displayed size, so labels stay readable on big photos.
  const shown = c.clientWidth || c.width;
  const scale = c.width / Math.max(1, shown);
  const tag = (f, i) => `${i + 1} · ${faceLabel(f.emotion, f.confident === false)} ${pct(f.scores && f.scores[f.emotion])}`;
  faces.forEach((f, i) => {
    if (i === state.selectedFace) return;
    drawFaceBox(ctx, f.box, f.emotion, tag(f, i), { scale, unsure: f.confident === false });
  });
  const sel = faces[state.selectedFace];
  if (sel) {
    drawFaceBox(ctx, sel.box, sel.emotion, tag(sel, state.selectedFace),
      { selected: faces.length > 1, scale, unsure: sel.confident === false });
  }
}

export function renderPhotoResult() {
  const faces = (state.photoResult && state.photoResult.faces) || [];
  el.faceList.textContent = '';
  faces.forEach((f, i) => {
    const li = document.createElement('li');
    li.dataset.emotion = f.emotion;
    li.dataset.index = String(i);
    li.dataset.testid = 'face-item';
    li.classList.toggle('unsure', f.confident === false);   // the model is not sure of this face
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.setAttribute('aria-pressed', i === state.selectedFace ? 'true' : 'false');
    faceRowContent(btn, t('face', i + 1), f.emotion, f.scores ? f.scores[f.emotion] : f.confidence, { unsure: f.confident === false });
    btn.addEventListener('click', () => selectFace(i));
    li.append(btn);
    el.faceList.append(li);
  });
  const sel = faces[state.selectedFace];
  renderBars(el.scores, sel ? sel.scores : null, { top: sel && sel.emotion, unsure: !!sel && sel.confident === false });
  el.scores.dataset.face = sel ? String(state.selectedFace) : '';
  el.photoResults.hidden = !faces.length;
  el.photoPlaceholder.hidden = !!faces.length;
  drawPhoto();
}

function selectFace(i) {
  state.selectedFace = i;
  renderPhotoResult();
}

export function onPhotoCanvasClick(ev) {
  const faces = (state.photoResult && state.photoResult.faces) || [];
  if (!faces.length) return;
  const c = el.photoCanvas;
  const rect = c.getBoundingClientRect();
  const x = (ev.clientX - rect.left) * (c.width / rect.width);
  const y = (ev.clientY - rect.top) * (c.height / rect.height);
  // Smallest box containing the point wins (a face inside a bigger false detection).
  let hit = -1, hitA = Infinity;
  faces.forEach((f, i) => {
    const [bx, by, bw, bh] = f.box;
    if (x >= bx && x <= bx + bw && y >= by && y <= by + bh && bw * bh < hitA) { hit = i; hitA = bw * bh; }
  });
  if (hit >= 0) selectFace(hit);
}
