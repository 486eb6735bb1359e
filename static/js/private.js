// Private mode (issue 18): the whole pipeline runs in this browser (js/ondevice/), and nothing of a photo
// or a camera frame is sent. The switch is remembered. predictLocal() answers in the shape of
// POST /api/predict, so photo.js and live.js draw both modes with the same code; the reply is chosen
// here, and only its id and the language go to GET /api/reply for the text in that language and the
// voice. When the runtime cannot run here (no WebAssembly SIMD) or fails to load, the page says so and
// sends nothing until private mode is turned off.
import { fetchReply } from './api.js';
import { createEngine, replyId, support } from './ondevice/engine.js';
import { el, state } from './state.js';
import { setStatusT } from './ui.js';

let enginePromise = null;
let settingsPromise = null;
// The model the engine was last given, as a promise every caller shares: a photo and the switch
// asking at once load it once. {engine, model, cards, promise}
let loading = null;

// The engine in a module worker (js/ondevice/worker.js): analysis never blocks the page. Same
// interface as the in-page engine, which is used where module workers are missing.
class WorkerEngine {
  constructor(worker) {
    this.worker = worker;
    this.calls = new Map();
    this.next = 1;
    worker.onmessage = (e) => {
      const call = this.calls.get(e.data.id);
      if (!call) return;
      this.calls.delete(e.data.id);
      if (e.data.error) call.reject(Object.assign(new Error(e.data.error.message), { reason: e.data.error.reason }));
      else call.resolve(e.data.result);
    };
    worker.onerror = (e) => {
      for (const call of this.calls.values()) call.reject(new Error(e.message || 'worker failed'));
      this.calls.clear();
    };
  }

  call(op, args, transfer = []) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  async init(options) {
    const r = await this.call('init', options);
    this.settings = r.settings;
    this.info = r.info;
    return this;
  }

  setCards(cards) { this.cards = cards; }

  async load(model) {
    this.info = (await this.call('load', { cards: this.cards, model })).info;
  }

  async analyze(pixels, options) {
    const r = await this.call('analyze', { pixels, options }, [pixels.data.buffer]);
    this.info = r.info;
    return r;
  }
}

function startEngine(options) {
  let worker = null;
  try {
    worker = new Worker(new URL('./ondevice/worker.js', import.meta.url), { type: 'module' });
  } catch (_) {
    return createEngine(options);   // no module workers: the same engine in the page
  }
  return new WorkerEngine(worker).init(options).then((engine) => {
    engine.setCards(options.cards);
    return engine;
  });
}

function mb(bytes) {
  return (bytes / 1e6).toFixed(1);
}

// GET /api/ondevice, once: the status line's download size and the engine both read it.
function ondeviceSettings() {
  if (!settingsPromise) {
    settingsPromise = fetch('/api/ondevice', { credentials: 'same-origin' }).then((resp) => {
      if (!resp.ok) throw new Error(`/api/ondevice: HTTP ${resp.status}`);
      return resp.json();
    });
    settingsPromise.catch(() => { settingsPromise = null; });   // asked again next time
  }
  return settingsPromise;
}

function downloadSize(s) {
  const model = s.models[state.model || state.defaultModel];
  return s.runtime.bytes + Object.values(s.detector.bytes).reduce((a, b) => a + b, 0) + (model ? model.bytes : 0);
}

async function bootEngine() {
  const settings = await ondeviceSettings();
  setStatusT(el.privateStatus, 'busy', 'privateLoading', mb(downloadSize(settings)));
  return startEngine({ cards: state.models, threads: state.privateThreads || 0, settings });
}

// Loads the engine (once) and the chosen model (once each); shows what is happening on the
// private-status line. Callers that come while either is loading wait for the same download.
export async function ensureEngine() {
  if (!enginePromise) enginePromise = bootEngine();
  try {
    const engine = await enginePromise;
    const model = state.model || state.defaultModel;
    // Every frame comes through here: the cards and the model go to the engine only when they change.
    if (!loading || loading.engine !== engine || loading.model !== model || loading.cards !== state.models) {
      engine.setCards(state.models);
      loading = { engine, model, cards: state.models, promise: engine.load(model) };
      loading.promise.then(() => {
        if (state.private) setStatusT(el.privateStatus, 'ok', 'privateOn');
      }, () => { /* handled below, by every caller */ });
    }
    await loading.promise;
    state.ondevice = { ...engine.info, where: engine instanceof WorkerEngine ? 'worker' : 'page' };
    return engine;
  } catch (err) {
    enginePromise = null;
    loading = null;
    state.errors.push(`ondevice: ${err && err.message}`);
    if (state.private) setStatusT(el.privateStatus, 'error', 'privateFailed', (err && err.message) || String(err));
    throw err;
  }
}

export function setPrivate(on) {
  state.private = !!on;
  el.privateMode.checked = state.private;
  if (!state.private) {
    setStatusT(el.privateStatus, null, 'privateOff');
    return;
  }
  const sup = support();
  if (!sup.ok) {
    setStatusT(el.privateStatus, 'error', 'privateUnsupported');
    el.privateStatus.dataset.reason = sup.reason;
    return;
  }
  delete el.privateStatus.dataset.reason;
  ensureEngine().then(() => {
    if (state.private) setStatusT(el.privateStatus, 'ok', 'privateOn');
  }).catch(() => { /* shown on the status line */ });
}

// A canvas's pixels through the on-device pipeline, answered like POST /api/predict.
// wantReply: fetch the reply text (and the voice when speak) for its id.
export async function predictLocal(canvas, { model = null, lang, speak = false, minFace = 0, wantReply = true, track = null } = {}) {
  if (!support().ok) throw new Error('private mode is not available in this browser');
  const engine = await ensureEngine();
  const { width, height } = canvas;
  const pixels = canvas.getContext('2d', { willReadFrequently: true }).getImageData(0, 0, width, height);
  const r = await engine.analyze(pixels, { model: model || state.defaultModel, minFace, track });
  const faces = r.faces;
  const emotion = faces.length ? faces[0].emotion : null;
  let reply = null;
  if (wantReply) {
    // the server's seed: the top score to 2 places, or the image's width when there is no face
    const seed = faces.length ? faces[0].scores[emotion].toFixed(2) : width;
    const id = replyId(engine.settings.replies, emotion, faces.length ? faces[0].confident : true, seed);
    reply = (await fetchReply(id, lang, speak)).reply;
  }
  state.lastTimings = r.timings_ms;
  return { faces, emotion, reply, model: r.model, image: { width, height }, timings_ms: r.timings_ms, track: r.track, ondevice: true };
}
