// A clip analysed in this browser (issue 25, private mode): nothing of it is sent. The file is played
// from an object URL in a <video> that is never shown; for each sample time t = k / fps it seeks, waits
// for 'seeked', draws the frame (shrunk to the analysis side) on a canvas and runs its pixels through
// private mode's engine (js/ondevice/, in its worker) with the previous frame's faces as the tracking
// hint, exactly as app/videoreport.py's track_frames does on the server. The limits (size, resolution,
// duration, frames, rate) and the report's rules come from /api/ondevice's "video", which the server
// reads from its own EMOTION_VIDEO_* settings. It emits the events of POST /api/video's NDJSON stream
// (start, a frame each, the report with the assistant's reply), so js/video.js draws both the same way;
// the reply is picked here and only its id and the language go to GET /api/reply.
//
// Differences from the server, by design: the sample is the frame shown at t (the server takes the
// first frame at or after t by its timestamp: at most one frame apart), each frame's `index` is its
// sample number (the browser does not number decoded frames) and `decoded_frames` the frames sampled.
import { fetchReply } from './api.js';
import { confident } from './ondevice/classify.js';
import { replyId, support } from './ondevice/engine.js';
import { ensureEngine } from './private.js';
import { buildReport, mainTrack, pyRound } from './videoreport.js';

// A refusal the page shows in its own words: `key` names one of the server's texts (js/strings.js).
export class LocalVideoError extends Error {
  constructor(key, ...args) {
    super(key);
    this.key = key;
    this.args = args;
  }
}

function abortError() {
  return new DOMException('the analysis was stopped', 'AbortError');
}

// The next `name` event of the <video> (or its error, or the abort), as a promise.
function mediaEvent(video, name, signal) {
  return new Promise((resolve, reject) => {
    const done = (fn, arg) => {
      video.removeEventListener(name, onEvent);
      video.removeEventListener('error', onError);
      signal.removeEventListener('abort', onAbort);
      fn(arg);
    };
    const onEvent = () => done(resolve);
    const onError = () => done(reject, new LocalVideoError('videoUndecodable'));
    const onAbort = () => done(reject, abortError());
    if (signal.aborted) { reject(abortError()); return; }
    video.addEventListener(name, onEvent);
    video.addEventListener('error', onError);
    signal.addEventListener('abort', onAbort);
  });
}

async function seek(video, t, signal) {
  const seeked = mediaEvent(video, 'seeked', signal);
  video.currentTime = t;
  await seeked;
}

function container(file) {
  const m = /\.([a-z0-9]+)$/i.exec(file.name || '');
  const ext = ((file.type || '').split('/')[1] || (m && m[1]) || '').toLowerCase();
  if (/webm|mkv|matroska/.test(ext)) return 'webm';
  if (/avi|msvideo/.test(ext)) return 'avi';
  return 'mp4';
}

// app.pipeline.rescale: boxes found on the shrunk frame, in pixels of the video, clipped to it.
function rescale(faces, sx, sy, width, height) {
  if (sx === 1 && sy === 1) return faces;
  return faces.map((f) => {
    const [x, y, w, h] = f.box;
    const x0 = Math.min(width - 1, pyRound(x * sx)), y0 = Math.min(height - 1, pyRound(y * sy));
    const x1 = Math.min(width, pyRound((x + w) * sx)), y1 = Math.min(height, pyRound((y + h) * sy));
    return { ...f, box: [x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0)] };
  });
}

/**
 * Analyse `file` here. onEvent gets {type: 'start' | 'frame' | 'report', ...} as from POST /api/video.
 * Throws LocalVideoError for a clip the limits refuse or the browser cannot play, an AbortError on stop.
 */
export async function analyseLocally(file, { signal, onEvent, model, cards, lang, speak }) {
  if (!support().ok) throw new LocalVideoError('privateUnsupported');
  const engine = await ensureEngine();
  const limits = engine.settings.video;
  if (file.size > limits.max_bytes) throw new LocalVideoError('videoTooBig', Math.round(file.size / 1048576));
  const card = cards.find((c) => c.name === model);
  const url = URL.createObjectURL(file);
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.preload = 'auto';
  const t0 = performance.now();
  try {
    const meta = mediaEvent(video, 'loadedmetadata', signal);
    video.src = url;
    await meta;
    let duration = video.duration;
    if (!Number.isFinite(duration)) {   // a recording without a declared duration: found at its end
      await seek(video, 1e9, signal);
      duration = video.duration;
    }
    const width = video.videoWidth, height = video.videoHeight;
    if (!width || !height) throw new LocalVideoError('videoNoPicture');
    if (width * height > limits.max_pixels || Math.max(width, height) > limits.max_side) {
      throw new LocalVideoError('videoTooLarge', width, height);
    }
    if (Number.isFinite(duration) && duration > limits.max_seconds) {
      throw new LocalVideoError('videoTooLong', Math.round(duration), limits.max_seconds);
    }
    // app.video's _to_rgb: the long side shrunk to the analysis side
    const k = limits.analysis_side ? Math.min(1, limits.analysis_side / Math.max(width, height)) : 1;
    const tw = Math.max(2, pyRound(width * k)), th = Math.max(2, pyRound(height * k));
    const canvas = document.createElement('canvas');
    canvas.width = tw;
    canvas.height = th;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const fps = limits.fps;
    // tracking.full_every_at: new faces are looked for as often in time as on the live page
    const tr = engine.settings.tracking;
    const fullEvery = Math.max(1, pyRound(tr.full_every * fps / tr.live_fps));
    const end = Number.isFinite(duration) ? Math.min(duration, limits.max_seconds) : limits.max_seconds;
    const expected = Math.min(limits.max_frames, Math.max(1, Math.ceil(end * fps)));
    const info = { format: container(file), codec: null, width, height, duration: Number.isFinite(duration) ? duration : null,
      frame_rate: null, frames: null, has_audio: null };
    onEvent({ type: 'start', video: info, fps, expected_frames: expected, model, labels: card.classes,
      limits: { max_seconds: limits.max_seconds, max_frames: limits.max_frames }, ondevice: true });
    const frames = [];
    let hint = { faces: [], since_full: 0, age_ms: 0 };
    let nextId = 1;
    let truncated = null;
    for (let n = 0; ; n += 1) {
      const t = n / fps;
      if (t >= end) {
        if (!Number.isFinite(duration) && t > limits.max_seconds) truncated = 'max_seconds';
        break;
      }
      await seek(video, t, signal);
      if (video.currentTime + 1e-3 < t) break;   // past the end of a clip that did not say its length
      ctx.drawImage(video, 0, 0, tw, th);
      const pixels = ctx.getImageData(0, 0, tw, th);
      // the hint is this loop's own, as fresh as the frames are apart: never stale (age 0), as on the server
      const r = await engine.analyze(pixels, { model, minFace: 0, track: hint, fullEvery });
      if (signal.aborted) throw abortError();
      const hinted = new Set(hint.faces.map((f) => f.id));
      // a face the tracker did not carry over takes the clip's next id (never a departed face's)
      const faces = r.faces.map((f) => ({ ...f, track: hinted.has(f.track) ? f.track : nextId++ }));
      hint = { faces: faces.map((f) => ({ id: f.track, box: f.box })), since_full: r.track.since_full, age_ms: 0 };
      const shown = rescale(faces, width / tw, height / th, width, height);
      const frame = {
        index: n,
        time: Math.round(t * 1e4) / 1e4,
        mode: r.track.mode,
        faces: shown.map((f) => ({ track: f.track, box: f.box, confidence: f.confidence, emotion: f.emotion,
          scores: f.scores, confident: f.confident })),
      };
      frames.push(frame);
      onEvent({ type: 'frame', ...frame, done: frames.length, expected: Math.max(expected, frames.length) });
      if (frames.length >= limits.max_frames) { truncated = 'max_frames'; break; }
    }
    const report = buildReport(frames, { video: info, model, labels: card.classes, fps, smoothS: limits.smooth_s,
      minSegmentS: limits.min_segment_s, truncated, decodedFrames: frames.length,
      timings: { total: (performance.now() - t0) / 1000 } });
    // app/videoapi.py's reply: the longest-seen face's dominant expression, seeded by its mean score
    const main = mainTrack(report);
    const id = replyId(engine.settings.replies, main ? main.dominant : null,
      main ? confident(card, main.mean_scores) : true, main ? main.mean_scores[main.dominant].toFixed(2) : 0);
    const { reply } = await fetchReply(id, lang, speak);
    if (signal.aborted) throw abortError();
    onEvent({ type: 'report', report, reply });
  } finally {
    video.removeAttribute('src');
    video.load();
    URL.revokeObjectURL(url);
  }
}
