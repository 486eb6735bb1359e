// The on-device engine (private mode, issue 18): the server's pipeline, run in this browser on
// onnxruntime-web. `createEngine()` loads the runtime and the detector once; `engine.analyze(imageData,
// {card, minFace})` answers what POST /api/predict would, without sending anything: faces (box,
// confidence, keypoints, emotion, scores, confident), largest first, and the time each step took.
//
// What it downloads (once; the browser caches it): /api/ondevice (settings), the pinned runtime
// (/static/vendor/onnxruntime-web/), the detector's three networks and the chosen model's ONNX file.
import { combineMembers, confident, cropFace, scoresFor, singleProbs } from './classify.js';
import { fromImageData } from './imgproc.js';
import { Mtcnn } from './mtcnn.js';
import { locate } from './tracking.js';

// WebAssembly with SIMD (what the vendored runtime needs): a module whose one function uses v128.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0,
  65, 0, 253, 15, 253, 98, 11]);

export function support() {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.validate !== 'function') return { ok: false, reason: 'noWasm' };
  try {
    if (!WebAssembly.validate(SIMD_PROBE)) return { ok: false, reason: 'noSimd' };
  } catch (_) {
    return { ok: false, reason: 'noWasm' };
  }
  return { ok: true, threads: !!globalThis.crossOriginIsolated && (navigator.hardwareConcurrency || 1) > 1 };
}

async function fetchJson(url) {
  const resp = await fetch(url, { credentials: 'same-origin' });
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  return resp.json();
}

async function fetchBytes(url, counter) {
  const resp = await fetch(url, { credentials: 'same-origin' });
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  const buf = new Uint8Array(await resp.arrayBuffer());
  counter.bytes += buf.byteLength;
  return buf;
}

// threads: 0 = as many as the page may use (cross-origin isolated: up to 4), 1 = single-threaded.
// settings: /api/ondevice's answer when the caller already has it (private.js), else fetched here.
export async function createEngine({ threads = 0, cards = [], settings = null } = {}) {
  const sup = support();
  if (!sup.ok) throw Object.assign(new Error(sup.reason), { reason: sup.reason });
  const started = performance.now();
  settings = settings || await fetchJson('/api/ondevice');
  const ort = await import(settings.runtime.entry);
  ort.env.wasm.wasmPaths = settings.runtime.wasm_paths;
  const useThreads = threads === 1 || !sup.threads ? 1 : Math.min(4, threads || navigator.hardwareConcurrency || 1);
  ort.env.wasm.numThreads = useThreads;
  const downloaded = { bytes: 0 };
  // No memory pattern: every frame brings other batch sizes (candidates, faces), and re-planning for
  // them cost more than it saved (detection 23.5 -> 20.4 ms on a live frame here).
  const options = { executionProviders: ['wasm'], graphOptimizationLevel: 'all', enableMemPattern: false };
  const nets = {};
  for (const [name, url] of Object.entries(settings.detector.networks)) {
    nets[name] = await ort.InferenceSession.create(await fetchBytes(url, downloaded), options);
  }
  return new Engine(ort, settings, new Mtcnn(ort, nets, settings.detector), cards, options, {
    threads: useThreads, downloaded, setupMs: performance.now() - started,
  });
}

class Engine {
  constructor(ort, settings, detector, cards, options, info) {
    this.ort = ort;
    this.settings = settings;
    this.detector = detector;
    this.cards = new Map(cards.map((c) => [c.name, c]));
    this.options = options;
    this.info = info;
    this.sessions = new Map();
  }

  setCards(cards) { this.cards = new Map(cards.map((c) => [c.name, c])); }

  // The sessions a card needs (an ensemble's members), loaded once.
  async load(name) {
    const card = this.cards.get(name);
    if (!card) throw new Error(`no card ${name}`);
    const names = card.kind === 'ensemble' ? card.members.map((m) => m.name) : [name];
    for (const n of names) {
      if (this.sessions.has(n)) continue;
      const file = this.settings.models[n];
      if (!file) throw new Error(`model ${n} has no ONNX file to run in the browser`);
      const bytes = await fetchBytes(file.url, this.info.downloaded);
      this.sessions.set(n, await this.ort.InferenceSession.create(bytes, this.options));
    }
    return card;
  }

  async probs(card, faces) {
    if (card.kind !== 'ensemble') return singleProbs(this.ort, this.sessions.get(card.name), card, faces);
    const members = card.members.map((m) => this.cards.get(m.name));
    const rows = [];
    for (const m of members) rows.push(await singleProbs(this.ort, this.sessions.get(m.name), m, faces));
    return combineMembers(rows, members.map((m) => m.classes), card.members.map((m) => m.weight), card.classes);
  }

  // imageData: an ImageData (RGBA). minFace: the smallest face looked for, in its pixels. track: a
  // live frame's hint (app/tracking.py's shape: {faces: [{id, box}], since_full, age_ms}; {} to start):
  // the faces are then re-found around the hinted boxes when the rules allow, and carry track ids.
  // fullEvery: frames between full detections when they are not the live page's (a clip's samples).
  async analyze(imageData, { model, minFace = 0, track = null, fullEvery = null } = {}) {
    const t0 = performance.now();
    const card = await this.load(model);
    const t1 = performance.now();
    const { rgb } = fromImageData(imageData);
    let found, located = null;
    if (track) {
      const rules = fullEvery ? { ...this.settings.tracking, full_every: fullEvery } : this.settings.tracking;
      located = await locate(this.detector, rgb, track, minFace, rules);
      found = located.faces;
    } else {
      found = await this.detector.detect(rgb, minFace);
    }
    const t2 = performance.now();
    let faces = [];
    if (found.length) {
      const crops = found.map((f) => cropFace(rgb, f.box, f.keypoints, this.settings.crop));
      const rows = await this.probs(card, crops);
      faces = found.map((f, i) => {
        const { emotion, scores } = scoresFor(rows[i], card.classes);
        const face = { box: f.box, confidence: f.confidence, keypoints: f.keypoints, emotion, scores,
          confident: confident(card, scores) };
        if (f.track !== undefined) face.track = f.track;
        return face;
      });
    }
    const t3 = performance.now();
    const answer = { faces, model: card.name, timings_ms: { load: t1 - t0, detect: t2 - t1, classify: t3 - t2, total: t3 - t0 } };
    if (located) answer.track = { mode: located.mode, reason: located.reason, since_full: located.sinceFull };
    return answer;
  }
}

// app.assistant.choose_reply's id (crc32 of "<key>:<seed>" modulo the catalogue's size), so the browser
// picks the reply the server would; only this id and the language are sent, for the text and voice.
export function replyId(replies, emotion, isConfident, seed) {
  let key;
  if (emotion && !isConfident && replies.hedged[emotion]) {
    key = `${replies.unsure_prefix}${emotion}`;
    return `${key}.${stableIndex(key, seed, replies.hedged[emotion])}`;
  }
  key = emotion ? (replies.counts[emotion] ? emotion : 'neutral') : replies.no_face;
  return `${key}.${stableIndex(key, seed, replies.counts[key])}`;
}

function stableIndex(key, seed, n) {
  return n === 1 ? 0 : crc32(`${key}:${seed}`) % n;
}

let CRC_TABLE = null;
function crc32(text) {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let i = 0; i < 256; i += 1) {
      let c = i;
      for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
