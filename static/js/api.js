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

export async function predict(blob, { model = null, lang, speak = false, minFace = 0 } = {}) {
  const form = new FormData();
  form.append('image', blob, 'frame.jpg');
  if (minFace) form.append('min_face', String(minFace));
  if (model) form.append('model', model);
  form.append('lang', lang);
  form.append('speak', speak ? 'true' : 'false');
  const resp = await fetch('/api/predict', { method: 'POST', body: form, credentials: 'same-origin' });
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
