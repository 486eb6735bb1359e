// The page's state, shared by its modules. Tests read it through window.emotionApp (app.js).

export const state = {
  lang: 'en',
  muted: false,
  models: [],
  defaultModel: null,
  model: null,
  private: false,           // private mode: everything runs in this browser (js/private.js)
  privateThreads: 0,        // onnxruntime-web threads (0: as many as the page may use)
  ondevice: null,           // the on-device engine's info: threads, bytes downloaded, set-up time
  lastTimings: null,        // the last on-device analysis' timings (ms)

  photo: null,              // {canvas (offscreen, posted pixels), blob}
  lastResult: null,         // last /api/predict answer of any kind
  photoResult: null,
  selectedFace: 0,

  live: false,
  stream: null,
  liveTimer: null,
  inFlight: 0,              // live requests in flight right now
  maxInFlight: 0,           // the most live requests ever in flight at once (must stay 1)
  framesSent: 0,
  framesAnswered: 0,
  liveErrors: 0,
  frameSize: null,          // {w, h} of the frames posted
  tracks: [],
  nextTrackId: 1,
  liveResult: null,
  dominant: null,           // smoothed dominant label
  candidate: { label: null, since: 0 },
  spokenLabel: null,
  speakWanted: null,        // label we asked the server to speak for
  speakSince: 0,            // when we asked (performance.now())
  trackHint: null,          // the last answer's faces, for the server to re-find (js/live.js trackField)
  trackModes: {},           // live answers by how their faces were found: {full, tracked}
  speakInFlight: false,

  sessionStart: 0,
  timeline: [],
  timelineLabels: [],

  video: null,              // the clip being / last analysed (js/video.js): labels, frames, report, reply
  videoAbort: null,         // its request's AbortController while it runs

  replies: [],              // {text, lang, audio_url, emotion, source}
  repliesPlayed: 0,         // audio replies that actually started playing
  audioPlayAttempts: 0,
  errors: [],
};

// The page's elements by role, filled in once by app.js.
export const el = {};
