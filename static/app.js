/* Emotion assistant page: the entry module. It wires the page's controls to the modules in js/ and
 * exposes a small read-only view of the state on window.emotionApp for the e2e tests.
 *
 *   js/strings.js   every UI text in every language, as the server renders them (app/languages/)
 *   js/labels.js    labels, their display names and the test-split names, as the server renders them
 *   js/api.js       the same-origin JSON API
 *   js/models.js    the model list and the accuracy panel
 *   js/photo.js     upload a photo
 *   js/live.js      the live camera: frames, tracking, smoothing, when to speak
 *   js/private.js   private mode: the same pipeline in this browser (js/ondevice/), nothing sent
 *   js/timeline.js  the session timeline and its CSV
 *   js/video.js     a clip: the server's streamed report or private mode's, a timeline per face, CSV / JSON
 *   js/videolocal.js  private mode's clip: decoded and analysed here, nothing sent (js/videoreport.js)
 *   js/reply.js     the assistant's text and voice
 *   js/ui.js        bars, face rows, boxes, status lines
 *   js/state.js     the shared state
 *
 * Native ES modules: no build step, no external resource, no inline script (the server's CSP forbids
 * both).
 */
import { loadModels, renderModelInfo } from './js/models.js';
import { analysePhoto, drawPhoto, handleFile, onPhotoCanvasClick, renderPhotoResult } from './js/photo.js';
import { freshSmoothing, startCamera, stopCamera } from './js/live.js';
import { ensureEngine, setPrivate } from './js/private.js';
import { playAudio, renderReplyEmotion, translateLastReply } from './js/reply.js';
import { el, state } from './js/state.js';
import { applyStrings, pickLanguage } from './js/strings.js';
import { downloadCsv, drawTimeline, renderLegend, timelineCsv } from './js/timeline.js';
import { setStatusT } from './js/ui.js';
import { cancelVideo, downloadVideoCsv, downloadVideoJson, handleVideo, renderVideo, videoCsv } from './js/video.js';

const $ = (id) => document.getElementById(id);

function bind() {
  Object.assign(el, {
    modelSelect: $('model-select'), lang: $('lang'), mute: $('mute'),
    replyText: $('reply-text'), replyEmotion: $('reply-emotion'), replay: $('replay'), audio: $('reply-audio'),
    fileInput: $('file-input'), dropZone: $('drop-zone'), photoStatus: $('photo-status'),
    photoFrame: $('photo-frame'), photoCanvas: $('photo-canvas'), photoResults: $('photo-results'),
    faceList: $('face-list'), scores: $('scores'), photoPlaceholder: $('photo-placeholder'),
    startBtn: $('start-camera'), stopBtn: $('stop-camera'), cameraStatus: $('camera-status'),
    videoFrame: $('video-frame'), video: $('video'), overlay: $('overlay'),
    liveResults: $('live-results'), liveFaceList: $('live-face-list'), liveScores: $('live-scores'),
    timeline: $('timeline'), legend: $('timeline-legend'), downloadCsv: $('download-csv'),
    modelSummary: $('model-summary'), modelRecall: $('model-recall'),
    privateMode: $('private-mode'), privateStatus: $('private-status'),
    videoInput: $('video-input'), videoDrop: $('video-drop'), videoStatus: $('video-status'),
    videoProgress: $('video-progress'), videoCancel: $('video-cancel'), videoResults: $('video-results'),
    videoTracks: $('video-tracks'), videoCsv: $('video-csv'), videoJson: $('video-json'),
  });

  el.settingsForm = $('settings');
  el.settingsForm.addEventListener('submit', (e) => e.preventDefault());

  // the remembered choice, else the browser's languages in its order, else the server's default
  state.lang = pickLanguage(safeStorage('get', 'emotion.lang'), ...(navigator.languages || [navigator.language]));
  el.lang.value = state.lang;
  state.muted = safeStorage('get', 'emotion.muted') === '1';
  el.mute.checked = state.muted;

  el.lang.addEventListener('change', () => {
    state.lang = pickLanguage(el.lang.value);
    safeStorage('set', 'emotion.lang', state.lang);
    applyStrings();
    rerenderAll();
    translateLastReply();
  });
  el.mute.addEventListener('change', () => {
    state.muted = el.mute.checked;
    safeStorage('set', 'emotion.muted', state.muted ? '1' : '0');
    if (state.muted) el.audio.pause();
  });
  el.privateMode.addEventListener('change', () => {
    safeStorage('set', 'emotion.private', el.privateMode.checked ? '1' : '0');
    setPrivate(el.privateMode.checked);
    freshSmoothing();   // another engine: the next frame's scores start afresh
  });
  el.modelSelect.addEventListener('change', () => {
    state.model = el.modelSelect.value || null;
    if (state.private) ensureEngine().catch(() => { /* shown on the status line */ });
    renderModelInfo();
    freshSmoothing();   // different model (maybe other labels): start afresh
    if (state.photo && !state.live) analysePhoto();
  });
  el.replay.addEventListener('click', () => {
    const last = state.replies[state.replies.length - 1];
    if (last && last.audio_url && !last.cleared) playAudio(last.audio_url);
  });

  el.fileInput.addEventListener('change', () => {
    const f = el.fileInput.files && el.fileInput.files[0];
    handleFile(f);
    el.fileInput.value = '';      // picking the same file again still triggers a change
  });
  const dz = el.dropZone;
  const photoPanel = $('photo-panel');
  for (const target of [dz, photoPanel]) {
    target.addEventListener('dragover', (e) => {
      if (!e.dataTransfer || !Array.from(e.dataTransfer.types || []).includes('Files')) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
      dz.classList.add('dragover');
    });
    target.addEventListener('dragleave', (e) => {
      if (!photoPanel.contains(e.relatedTarget)) dz.classList.remove('dragover');
    });
    target.addEventListener('drop', (e) => {
      e.preventDefault();
      e.stopPropagation();
      dz.classList.remove('dragover');
      const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
      handleFile(f);
    });
  }
  el.photoCanvas.addEventListener('click', onPhotoCanvasClick);

  el.startBtn.addEventListener('click', startCamera);
  el.stopBtn.addEventListener('click', stopCamera);
  el.downloadCsv.addEventListener('click', downloadCsv);

  el.videoInput.addEventListener('change', () => {
    const f = el.videoInput.files && el.videoInput.files[0];
    handleVideo(f);
    el.videoInput.value = '';
  });
  el.videoDrop.addEventListener('dragover', (e) => {
    if (!e.dataTransfer || !Array.from(e.dataTransfer.types || []).includes('Files')) return;
    e.preventDefault();
    el.videoDrop.classList.add('dragover');
  });
  el.videoDrop.addEventListener('dragleave', () => el.videoDrop.classList.remove('dragover'));
  el.videoDrop.addEventListener('drop', (e) => {
    e.preventDefault();
    el.videoDrop.classList.remove('dragover');
    handleVideo(e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0]);
  });
  el.videoCancel.addEventListener('click', cancelVideo);
  el.videoCsv.addEventListener('click', downloadVideoCsv);
  el.videoJson.addEventListener('click', downloadVideoJson);

  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { drawPhoto(); drawTimeline(); renderVideo(); }, 100);
  });
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) el.audio.pause();
  });
  window.addEventListener('pagehide', stopCamera);
  window.addEventListener('pagehide', cancelVideo);
}

function rerenderAll() {
  renderModelInfo();
  if (state.photoResult) renderPhotoResult();
  const last = state.replies[state.replies.length - 1];
  if (last && !last.cleared) renderReplyEmotion(last.emotion, last.hedged);
  el.legend.dataset.key = '';
  drawTimeline();
  renderVideo();
  for (const node of [el.cameraStatus, el.photoStatus, el.privateStatus, el.videoStatus]) {
    if (node.i18nMessage) setStatusT(node, node.dataset.state || null, node.i18nMessage[0], ...node.i18nMessage[1]);
  }
}

function safeStorage(op, key, value) {
  try {
    if (op === 'get') return window.localStorage.getItem(key);
    window.localStorage.setItem(key, value);
  } catch (_) { /* storage disabled: settings just aren't remembered */ }
  return null;
}

// Minimal, read-mostly view of the state for tests and debugging.
window.emotionApp = {
  get lastResult() { return state.lastResult; },
  get photoResult() { return state.photoResult; },
  get liveResult() { return state.liveResult; },
  get framesSent() { return state.framesSent; },
  get framesAnswered() { return state.framesAnswered; },
  get inFlight() { return state.inFlight; },
  get maxInFlight() { return state.maxInFlight; },
  get repliesPlayed() { return state.repliesPlayed; },
  get audioPlayAttempts() { return state.audioPlayAttempts; },
  get replies() { return state.replies.slice(); },
  get dominant() { return state.dominant; },
  get tracks() { return state.tracks.map((tr) => ({ id: tr.id, emotion: tr.emotion, box: tr.box.slice(), seen: tr.seen, frames: tr.frames || 0 })); },
  get liveWorkMs() { return state.liveWorkMs || 0; },
  get trackModes() { return { ...(state.trackModes || {}) }; },
  get liveFps() { return state.live && state.framesAnswered ? state.framesAnswered / ((performance.now() - state.liveStarted) / 1000) : 0; },
  get overlayBoxes() { return state.overlayBoxes || 0; },
  get overlayFramesWithBoxes() { return state.overlayFramesWithBoxes || 0; },
  get timeline() { return state.timeline.map((p) => ({ t: p.t, emotion: p.emotion, faces: p.faces })); },
  get live() { return state.live; },
  get model() { return state.model; },
  get lang() { return state.lang; },
  get muted() { return state.muted; },
  get errors() { return state.errors.slice(); },
  get ready() { return !!state.ready; },
  get private() { return state.private; },
  get ondevice() { return state.ondevice ? { ...state.ondevice, downloaded: state.ondevice.downloaded.bytes } : null; },
  get lastTimings() { return state.lastTimings; },
  timelineCsv,
  get video() {
    const v = state.video;
    return v ? { frames: v.frames.length, expected: v.expected, report: v.report, reply: v.reply, ondevice: v.ondevice } : null;
  },
  get videoRunning() { return !!state.videoAbort; },
  videoCsv,
};

async function init() {
  bind();
  applyStrings();
  setStatusT(el.cameraStatus, null, 'cameraIdle');
  // the server rendered these lines in its default language: say them in the page's, and remember them
  // as strings so that a language switch re-renders them too
  setStatusT(el.privateStatus, null, 'privateOff');
  drawTimeline();
  await loadModels();
  renderLegend();
  if (safeStorage('get', 'emotion.private') === '1') setPrivate(true);   // remembered (after the cards: it needs them)
  state.ready = true;
  document.documentElement.dataset.ready = 'true';
}

init();
