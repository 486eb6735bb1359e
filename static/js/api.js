// The same-origin JSON API (docs/API.md): nothing else leaves the page.
//   GET  /api/models   -> model cards (select + accuracy panel)
//   POST /api/predict  -> faces, scores, reply (+ audio_url when speak=true)
//   GET  /api/reply    -> a reply already shown, in another language (language switch)
//   GET  /api/audio/…  -> reply speech, played by reply.js

export class ApiError extends Error {
  constructor(message, code, status) { super(message); this.code = code; this.status = status; }
}

async function readJson(resp) {
  let body = null;
  try { body = await resp.json(); } catch (_) { /* not JSON */ }
  if (!resp.ok) {
    const err = (body && body.error) || {};
    throw new ApiError(err.message || `HTTP ${resp.status}`, err.code || 'http_error', resp.status);
  }
  return body;
}

export async function fetchModels() {
  return readJson(await fetch('/api/models', { credentials: 'same-origin' }));
}

// signal: an AbortSignal that cancels the request (a newer photo replaces this one).
export async function predict(blob, { model = null, lang, speak = false, minFace = 0, track = null, signal } = {}) {
  const fields = { lang, speak: speak ? 'true' : 'false' };
  if (minFace) fields.min_face = String(minFace);
  if (model) fields.model = model;
  let resp;
  if (track !== null) {
    // A live frame: the JPEG is the whole body and the fields (with the tracking hint of
    // app/tracking.py) ride in the query string; no multipart to build or parse (about 2 ms of
    // server time a frame, docs/BENCHMARKS.md).
    const q = new URLSearchParams({ ...fields, track });
    resp = await fetch(`/api/predict?${q}`, {
      method: 'POST', body: blob, headers: { 'Content-Type': blob.type || 'image/jpeg' }, credentials: 'same-origin', signal,
    });
  } else {
    const form = new FormData();
    form.append('image', blob, 'frame.jpg');
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    resp = await fetch('/api/predict', { method: 'POST', body: form, credentials: 'same-origin', signal });
  }
  return readJson(resp);
}

export async function fetchReply(id, lang, speak = false) {
  const q = new URLSearchParams({ id, lang, speak: speak ? 'true' : 'false' });
  return readJson(await fetch(`/api/reply?${q}`, { credentials: 'same-origin' }));
}

// A canvas as the JPEG that is posted.
export function canvasToBlob(canvas, quality) {
  return new Promise((resolve, reject) => {
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('toBlob failed'))), 'image/jpeg', quality);
  });
}
