/* Emotion assistant page.
 *
 * Talks to the same-origin API only (see docs in README / shared DESIGN.md):
 *   GET  /api/models   -> model cards (select + accuracy panel)
 *   POST /api/predict  -> faces, scores, reply (+ audio_url when speak=true)
 *   GET  /api/audio/…  -> reply speech, played through <audio id="reply-audio">
 *
 * No inline script, no external resources: the server's CSP forbids both.
 * A small read-only state object is exposed on window.emotionApp for the e2e tests.
 */
(function () {
  'use strict';

  // ---------------------------------------------------------------- settings

  const LIVE_MAX_WIDTH = 480;       // frames are downscaled to this width before upload
  const LIVE_INTERVAL_MS = 250;     // at most ~4 frames per second, and only one request in flight
  // A face in front of a webcam fills far more than an eighth of the frame's height; asking the server
  // to look only for faces that big (min_face) makes its detector several times cheaper.
  const LIVE_MIN_FACE_FRACTION = 1 / 8;
  const PHOTO_MAX_SIDE = 1280;      // uploaded photos are re-encoded at most this large
  const SMOOTH_FRAMES = 6;          // labels are averaged over the last N answered frames per face
  const TRACK_TTL_MS = 1500;        // a face not seen for this long is forgotten
  const DEBOUNCE_MS = 1500;         // a new dominant expression must hold this long before the assistant speaks
  const LABEL_HYSTERESIS = 0.05;    // a new label must beat the current one by this much (smoothed score)
  const SPEAK_RETRIES = 4;          // frames to wait for the server to agree with the smoothed label
  const TIMELINE_MAX_POINTS = 20000;

  const LABEL_ORDER = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral', 'contempt'];
  const COLORS = {
    angry: '#e5484d', disgust: '#4d9b2c', fear: '#8e4ec6', happy: '#e2a400',
    sad: '#3e63dd', surprise: '#f76b15', neutral: '#8b8d98', contempt: '#12a594',
  };
  const FALLBACK_COLOR = '#6366f1';

  // Display names come from the server's catalogue (app/assistant.py), rendered into the page, so the
  // page and the spoken replies always name an emotion the same way.
  const LABEL_NAMES = JSON.parse(document.body.dataset.displayNames || '{}');

  const SPLIT_NAMES = {
    en: {
      fer2013_private: 'FER-2013 private test set', fer2013_public: 'FER-2013 public test set',
      ferplus_test: 'FER+ test set', ferplus_val: 'FER+ validation set',
    },
    vi: {
      fer2013_private: 'tập kiểm tra riêng FER-2013', fer2013_public: 'tập kiểm tra công khai FER-2013',
      ferplus_test: 'tập kiểm tra FER+', ferplus_val: 'tập thẩm định FER+',
    },
  };
  // Which measured split is the honest headline for a model of each label scheme.
  const SPLIT_PREFERENCE = {
    ferplus: ['ferplus_test', 'ferplus_val', 'fer2013_private', 'fer2013_public'],
    fer2013: ['fer2013_private', 'fer2013_public', 'ferplus_test', 'ferplus_val'],
  };

  // UI strings. Values may contain simple markup (they are our own constants, never user data).
  const STRINGS = {
    en: {
      skip: 'Skip to content',
      title: 'Emotion assistant',
      tagline: 'Reads the apparent facial expression in a photo or on your webcam, and answers out loud.',
      model: 'Model', language: 'Language', mute: 'Mute voice', loadingModels: 'Loading models…',
      assistant: 'Assistant',
      replyIdle: 'Upload a photo or start the camera, and I will tell you what I see.',
      replay: 'Replay',
      photoHeading: 'Photo', choosePhoto: 'Choose a photo', orDrop: 'or drop one here',
      photoPlaceholder: 'The faces found in your photo and their scores appear here.',
      faces: 'Faces', faceHint: 'Click a face (or a row) to see its scores.', scores: 'Scores',
      smoothedScores: 'Smoothed scores',
      liveHeading: 'Live camera', start: 'Start camera', stop: 'Stop',
      cameraIdle: 'The camera is off. It only starts when you press Start.',
      timeline: 'Session timeline', downloadCsv: 'Download CSV',
      timelineHint: 'The timeline stays in this browser; it is never uploaded.',
      timelineKey: 'Lines: how strongly each expression shows (0-100%). Strip under them: the main expression at each moment (grey: no face).',
      aboutHeading: 'What this shows, and how well',
      inferredHeading: 'What is inferred',
      inferred: 'The model reads the <strong>apparent facial expression</strong> of each face: how the face looks, not how the person feels. Expressions depend on culture, context and the person; a smile is not proof of happiness. Do not use it to make decisions about people.',
      privacyHeading: 'Privacy',
      privacy: 'Photos and camera frames go only to this server, are analysed in memory and are <strong>not stored</strong>. Nothing is sent anywhere else. The session timeline is kept in your browser only.',
      accuracyHeading: 'Accuracy of the selected model',
      recallCaption: 'Recall per expression (share of test faces of that class it gets right)',
      expression: 'Expression', recall: 'Recall', support: 'Test faces',
      footer: 'Open source. Models trained on the public FER-2013 and FER+ data sets.',
      // dynamic
      analysing: 'Analysing the photo…',
      facesFound: (n) => (n === 1 ? 'Found 1 face.' : `Found ${n} faces.`),
      noFace: 'No face found. Try a brighter, front-facing photo where the face is not too small.',
      notImage: 'That file is not an image this browser can open. Use a JPEG, PNG, WebP or BMP photo.',
      requestFailed: (msg) => `The server could not analyse the image: ${msg}`,
      networkFailed: 'The server cannot be reached. Check your connection and try again.',
      face: (i) => `Face ${i}`,
      cameraStarting: 'Asking for the camera…',
      cameraOn: 'Camera on. Frames are analysed and then discarded.',
      cameraWaiting: 'Camera on. Looking for a face…',
      cameraStopped: 'Camera stopped.',
      cameraDenied: 'Camera access was refused. Allow the camera for this site in the browser settings (the camera icon in the address bar), then press Start again.',
      cameraMissing: 'No camera was found. Connect a camera, or upload a photo instead.',
      cameraBusy: 'The camera is in use by another application, or it failed to start. Close the other application and press Start again.',
      cameraUnsupported: 'This browser does not offer camera access on this page. Camera access needs a recent browser and a secure (https or localhost) address. You can still upload a photo.',
      cameraOther: (msg) => `The camera could not be started: ${msg}`,
      liveServerError: (msg) => `Frames are not being analysed: ${msg}. Retrying…`,
      noModelMetrics: 'This model card has no measured metrics yet, so its accuracy is unknown.',
      modelsFailed: 'Could not load the model list; the server default model is used.',
      modelSummary: (m) => `<strong>${m.title}</strong>: accuracy <strong>${m.acc}</strong>` +
        (m.f1 ? `, macro-F1 ${m.f1}` : '') + ` on the ${m.split}` +
        (m.n ? ` (${m.n} faces)` : '') + '. Chance level for ' + m.k + ' classes would be about ' + m.chance + '.',
      ensembleOf: (names) => `An ensemble of ${names}.`,
      expressionIs: (label) => `Apparent expression: ${label}`,
      scoresNote: (title, acc, split) => `Scores are the model's confidence, not a measurement of feelings. ${title} is right on ${acc} of the faces of the ${split}.`,
      timelineEmpty: 'Start the camera to record how the expression changes.',
      playBlocked: 'The browser blocked audio playback; press Replay to hear the reply.',
      faceTrack: (i) => `Face ${i}`,
      legendNone: 'No face',
      csvEmpty: 'No timeline data yet.',
    },
    vi: {
      skip: 'Chuyển đến nội dung',
      title: 'Trợ lý cảm xúc',
      tagline: 'Đọc biểu cảm khuôn mặt thể hiện ra trong ảnh hoặc trên webcam, và trả lời thành tiếng.',
      model: 'Mô hình', language: 'Ngôn ngữ', mute: 'Tắt tiếng', loadingModels: 'Đang tải mô hình…',
      assistant: 'Trợ lý',
      replyIdle: 'Hãy tải ảnh lên hoặc bật camera, tôi sẽ cho bạn biết tôi thấy gì.',
      replay: 'Nghe lại',
      photoHeading: 'Ảnh', choosePhoto: 'Chọn ảnh', orDrop: 'hoặc thả ảnh vào đây',
      photoPlaceholder: 'Các khuôn mặt tìm thấy trong ảnh và điểm số của chúng sẽ hiện ở đây.',
      faces: 'Khuôn mặt', faceHint: 'Bấm vào một khuôn mặt (hoặc một dòng) để xem điểm số.', scores: 'Điểm số',
      smoothedScores: 'Điểm số (đã làm mượt)',
      liveHeading: 'Camera trực tiếp', start: 'Bật camera', stop: 'Dừng',
      cameraIdle: 'Camera đang tắt. Camera chỉ bật khi bạn bấm Bật.',
      timeline: 'Diễn biến phiên', downloadCsv: 'Tải CSV',
      timelineHint: 'Dữ liệu diễn biến chỉ lưu trong trình duyệt này, không bao giờ được tải lên.',
      timelineKey: 'Các đường: mức thể hiện của từng biểu cảm (0-100%). Dải màu bên dưới: biểu cảm chính tại mỗi thời điểm (xám: không thấy khuôn mặt).',
      aboutHeading: 'Trang này cho biết gì, và chính xác đến đâu',
      inferredHeading: 'Điều được suy ra',
      inferred: 'Mô hình đọc <strong>biểu cảm khuôn mặt thể hiện ra bên ngoài</strong>: khuôn mặt trông thế nào, không phải người đó cảm thấy gì. Biểu cảm phụ thuộc vào văn hoá, hoàn cảnh và từng người; một nụ cười không chứng minh người đó đang vui. Đừng dùng kết quả để đưa ra quyết định về con người.',
      privacyHeading: 'Quyền riêng tư',
      privacy: 'Ảnh và khung hình camera chỉ được gửi đến máy chủ này, được phân tích trong bộ nhớ và <strong>không được lưu lại</strong>. Không có gì được gửi đi nơi khác. Diễn biến phiên chỉ được giữ trong trình duyệt của bạn.',
      accuracyHeading: 'Độ chính xác của mô hình đang chọn',
      recallCaption: 'Độ nhạy (recall) theo từng biểu cảm (tỉ lệ khuôn mặt thuộc lớp đó được nhận đúng)',
      expression: 'Biểu cảm', recall: 'Recall', support: 'Số mặt kiểm tra',
      footer: 'Mã nguồn mở. Mô hình được huấn luyện trên bộ dữ liệu công khai FER-2013 và FER+.',
      analysing: 'Đang phân tích ảnh…',
      facesFound: (n) => `Tìm thấy ${n} khuôn mặt.`,
      noFace: 'Không tìm thấy khuôn mặt. Hãy thử ảnh sáng hơn, nhìn thẳng, khuôn mặt không quá nhỏ.',
      notImage: 'Trình duyệt không mở được tệp này. Hãy dùng ảnh JPEG, PNG, WebP hoặc BMP.',
      requestFailed: (msg) => `Máy chủ không phân tích được ảnh: ${msg}`,
      networkFailed: 'Không kết nối được máy chủ. Hãy kiểm tra kết nối và thử lại.',
      face: (i) => `Mặt ${i}`,
      cameraStarting: 'Đang xin quyền dùng camera…',
      cameraOn: 'Camera đang bật. Khung hình được phân tích rồi bỏ đi.',
      cameraWaiting: 'Camera đang bật. Đang tìm khuôn mặt…',
      cameraStopped: 'Đã dừng camera.',
      cameraDenied: 'Quyền dùng camera bị từ chối. Hãy cho phép camera cho trang này trong cài đặt trình duyệt (biểu tượng camera trên thanh địa chỉ), rồi bấm Bật lại.',
      cameraMissing: 'Không tìm thấy camera. Hãy cắm camera, hoặc tải ảnh lên thay thế.',
      cameraBusy: 'Camera đang được ứng dụng khác dùng hoặc không khởi động được. Hãy đóng ứng dụng kia rồi bấm Bật lại.',
      cameraUnsupported: 'Trình duyệt không cho dùng camera trên trang này. Cần trình duyệt mới và địa chỉ an toàn (https hoặc localhost). Bạn vẫn có thể tải ảnh lên.',
      cameraOther: (msg) => `Không bật được camera: ${msg}`,
      liveServerError: (msg) => `Khung hình chưa được phân tích: ${msg}. Đang thử lại…`,
      noModelMetrics: 'Thẻ mô hình này chưa có số đo, nên chưa biết độ chính xác.',
      modelsFailed: 'Không tải được danh sách mô hình; dùng mô hình mặc định của máy chủ.',
      modelSummary: (m) => `<strong>${m.title}</strong>: độ chính xác <strong>${m.acc}</strong>` +
        (m.f1 ? `, macro-F1 ${m.f1}` : '') + ` trên ${m.split}` +
        (m.n ? ` (${m.n} khuôn mặt)` : '') + '. Đoán ngẫu nhiên với ' + m.k + ' lớp chỉ đạt khoảng ' + m.chance + '.',
      ensembleOf: (names) => `Tổ hợp của ${names}.`,
      expressionIs: (label) => `Biểu cảm thể hiện: ${label}`,
      scoresNote: (title, acc, split) => `Điểm số là độ tin cậy của mô hình, không phải phép đo cảm xúc. ${title} đúng với ${acc} số khuôn mặt của ${split}.`,
      timelineEmpty: 'Bật camera để ghi lại biểu cảm thay đổi thế nào.',
      playBlocked: 'Trình duyệt chặn phát âm thanh; bấm Nghe lại để nghe câu trả lời.',
      faceTrack: (i) => `Mặt ${i}`,
      legendNone: 'Không có mặt',
      csvEmpty: 'Chưa có dữ liệu diễn biến.',
    },
  };

  // ---------------------------------------------------------------- state

  const state = {
    lang: 'en',
    muted: false,
    models: [],
    defaultModel: null,
    model: null,

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
    speakTries: 0,
    speakInFlight: false,

    sessionStart: 0,
    timeline: [],
    timelineLabels: [],

    replies: [],              // {text, lang, audio_url, emotion, source}
    repliesPlayed: 0,         // audio replies that actually started playing
    audioPlayAttempts: 0,
    errors: [],
  };

  const $ = (id) => document.getElementById(id);
  const el = {};

  function t(key, ...args) {
    const table = STRINGS[state.lang] || STRINGS.en;
    const v = key in table ? table[key] : STRINGS.en[key];
    return typeof v === 'function' ? v(...args) : v;
  }

  function labelName(label) {
    if (!label) return '–';
    const names = LABEL_NAMES[state.lang] || LABEL_NAMES.en || {};
    return names[label] || (label.charAt(0).toUpperCase() + label.slice(1));
  }

  function colorOf(label) { return COLORS[label] || FALLBACK_COLOR; }
  function pct(p) { return `${Math.round((Number(p) || 0) * 100)}%`; }
  function pct1(p) { return `${((Number(p) || 0) * 100).toFixed(1)}%`; }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }

  function sortedLabels(scores) {
    const keys = Object.keys(scores || {});
    return keys.sort((a, b) => {
      const ia = LABEL_ORDER.indexOf(a), ib = LABEL_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
  }

  function argmax(scores) {
    let best = null, bestP = -1;
    for (const [k, v] of Object.entries(scores || {})) if (v > bestP) { best = k; bestP = v; }
    return best;
  }

  function setStatus(node, text, kind) {
    node.textContent = text || '';
    node.i18nMessage = null;
    if (kind) node.dataset.state = kind; else delete node.dataset.state;
  }

  // A status from the string table: remembered, so that it is re-translated when the language changes.
  function setStatusT(node, kind, key, ...args) {
    setStatus(node, t(key, ...args), kind);
    node.i18nMessage = [key, args];
  }

  // ---------------------------------------------------------------- i18n

  function applyStrings() {
    document.documentElement.lang = state.lang;
    document.title = t('title');
    for (const node of document.querySelectorAll('[data-i18n]')) {
      const v = t(node.dataset.i18n);
      if (typeof v !== 'string') continue;
      if (v.includes('<')) node.innerHTML = v; else node.textContent = v;
    }
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
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

  async function predict(blob, { speak = false, minFace = 0 } = {}) {
    const form = new FormData();
    form.append('image', blob, 'frame.jpg');
    if (minFace) form.append('min_face', String(minFace));
    if (state.model) form.append('model', state.model);
    form.append('lang', state.lang);
    form.append('speak', speak ? 'true' : 'false');
    const resp = await fetch('/api/predict', { method: 'POST', body: form, credentials: 'same-origin' });
    return readJson(resp);
  }

  function canvasToBlob(canvas, quality) {
    return new Promise((resolve, reject) => {
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('toBlob failed'))), 'image/jpeg', quality);
    });
  }

  // ---------------------------------------------------------------- models

  async function loadModels() {
    try {
      const data = await readJson(await fetch('/api/models', { credentials: 'same-origin' }));
      state.models = Array.isArray(data.models) ? data.models : [];
      state.defaultModel = data.default || (state.models[0] && state.models[0].name) || null;
    } catch (err) {
      state.errors.push(String(err));
      state.models = [];
    }
    const select = el.modelSelect;
    select.textContent = '';
    if (!state.models.length) {
      const opt = new Option(t('modelsFailed'), '');
      select.append(opt);
      select.disabled = true;
      el.modelSummary.textContent = t('modelsFailed');
      return;
    }
    for (const m of state.models) {
      select.append(new Option(m.title || m.name, m.name));
    }
    state.model = state.defaultModel && state.models.some((m) => m.name === state.defaultModel)
      ? state.defaultModel : state.models[0].name;
    select.value = state.model;
    select.disabled = false;
    renderModelInfo();
  }

  function currentModelCard() {
    return state.models.find((m) => m.name === state.model) || null;
  }

  function pickSplit(card) {
    const metrics = card.metrics || {};
    const scheme = String(card.label_scheme || '').toLowerCase().includes('plus') ? 'ferplus' : 'fer2013';
    for (const split of SPLIT_PREFERENCE[scheme]) if (metrics[split]) return split;
    const any = Object.keys(metrics);
    return any.length ? any[0] : null;
  }

  function setScoresNote(text) {
    for (const node of document.querySelectorAll('.scores-note')) node.textContent = text || '';
  }

  function renderModelInfo() {
    const card = currentModelCard();
    setScoresNote('');
    const tbody = el.modelRecall.querySelector('tbody');
    tbody.textContent = '';
    if (!card) { el.modelRecall.hidden = true; return; }
    const title = card.title || card.name;
    const split = pickSplit(card);
    const m = split ? card.metrics[split] : null;
    if (!m || typeof m.accuracy !== 'number') {
      el.modelSummary.innerHTML = `<strong>${escapeHtml(title)}</strong>: ${escapeHtml(t('noModelMetrics'))}`;
      el.modelSummary.classList.add('muted');
      el.modelRecall.hidden = true;
      return;
    }
    const perClass = m.per_class || {};
    const classes = Array.isArray(card.classes) && card.classes.length ? card.classes : sortedLabels(perClass);
    let n = Number(m.samples) || 0;
    if (!n) for (const c of Object.values(perClass)) n += Number(c && c.support) || 0;
    const splitName = (SPLIT_NAMES[state.lang] || SPLIT_NAMES.en)[split] || split;
    let html = t('modelSummary', {
      title: escapeHtml(title), acc: pct1(m.accuracy),
      f1: typeof m.macro_f1 === 'number' ? m.macro_f1.toFixed(3) : null,
      split: escapeHtml(splitName), n: n || null, k: classes.length,
      chance: classes.length ? pct(1 / classes.length) : '?',
    });
    if (card.kind === 'ensemble' && Array.isArray(card.members)) {
      const names = card.members.map((x) => escapeHtml(typeof x === 'string' ? x : (x.name || '?'))).join(', ');
      html += ' ' + t('ensembleOf', names);
    }
    el.modelSummary.innerHTML = html;
    setScoresNote(t('scoresNote', title, pct(m.accuracy), splitName));
    el.modelSummary.classList.remove('muted');
    for (const label of classes) {
      const c = perClass[label];
      if (!c) continue;
      const tr = document.createElement('tr');
      tr.dataset.label = label;
      const th = document.createElement('th');
      th.scope = 'row';
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = colorOf(label);
      th.append(sw, ' ', labelName(label));
      const tdR = document.createElement('td');
      const bar = document.createElement('span');
      bar.className = 'mini-bar';
      bar.style.width = `${Math.round((Number(c.recall) || 0) * 60)}px`;
      bar.style.background = colorOf(label);
      tdR.append(bar, pct(c.recall));
      const tdS = document.createElement('td');
      tdS.textContent = c.support != null ? String(c.support) : '–';
      tr.append(th, tdR, tdS);
      tbody.append(tr);
    }
    el.modelRecall.hidden = !tbody.children.length;
  }

  // ---------------------------------------------------------------- bars and face lists

  function renderBars(container, scores, { top } = {}) {
    container.textContent = '';
    if (!scores) return;
    const best = top || argmax(scores);
    for (const label of sortedLabels(scores)) {
      const p = Math.max(0, Math.min(1, Number(scores[label]) || 0));
      const row = document.createElement('div');
      row.className = 'bar' + (label === best ? ' top' : '');
      row.setAttribute('role', 'listitem');
      row.dataset.label = label;
      row.dataset.value = p.toFixed(4);
      const name = document.createElement('span');
      name.className = 'bar-label';
      name.textContent = labelName(label);
      const track = document.createElement('span');
      track.className = 'bar-track';
      track.setAttribute('role', 'meter');
      track.setAttribute('aria-valuemin', '0');
      track.setAttribute('aria-valuemax', '100');
      track.setAttribute('aria-valuenow', String(Math.round(p * 100)));
      track.setAttribute('aria-label', labelName(label));
      const fill = document.createElement('span');
      fill.className = 'bar-fill';
      fill.style.background = colorOf(label);
      fill.style.width = `${(p * 100).toFixed(1)}%`;
      track.append(fill);
      const value = document.createElement('span');
      value.className = 'bar-value';
      value.textContent = pct(p);
      row.append(name, track, value);
      container.append(row);
    }
  }

  function faceRowContent(node, title, label, p) {
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = colorOf(label);
    const name = document.createElement('span');
    name.className = 'face-name';
    name.textContent = `${title}: ${labelName(label)}`;
    const val = document.createElement('span');
    val.className = 'face-pct';
    val.textContent = pct(p);
    node.append(sw, name, val);
  }

  // ---------------------------------------------------------------- drawing boxes

  function drawFaceBox(ctx, box, label, text, { selected = false, scale = 1 } = {}) {
    const [x, y, w, h] = box;
    const color = colorOf(label);
    const lw = Math.max(2, Math.round(scale * (selected ? 4 : 2.5)));
    ctx.lineWidth = lw;
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, w, h);
    if (selected) {
      ctx.lineWidth = Math.max(1, lw / 3);
      ctx.strokeStyle = '#ffffff';
      ctx.strokeRect(x - lw, y - lw, w + 2 * lw, h + 2 * lw);
    }
    const fontPx = Math.max(12, Math.round(15 * scale));
    ctx.font = `600 ${fontPx}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
    const pad = Math.round(fontPx * 0.35);
    const tw = ctx.measureText(text).width + pad * 2;
    const th = fontPx + pad * 2;
    let ty = y - th;
    if (ty < 0) ty = y + h;                       // no room above: put the tag under the box
    let tx = Math.min(Math.max(0, x - lw / 2), ctx.canvas.width - tw);
    ctx.fillStyle = color;
    ctx.fillRect(tx, ty, tw, th);
    ctx.fillStyle = '#ffffff';
    ctx.textBaseline = 'middle';
    ctx.fillText(text, tx + pad, ty + th / 2 + 1);
  }

  // ---------------------------------------------------------------- assistant reply

  function showReply(reply, emotion, source) {
    if (!reply || !reply.text) return;
    const entry = { text: reply.text, lang: reply.lang, audio_url: reply.audio_url || null, emotion, source };
    state.replies.push(entry);
    el.replyText.textContent = reply.text;
    el.replyText.dataset.emotion = emotion || '';
    renderReplyEmotion(emotion);
    el.replay.disabled = !entry.audio_url;
    if (entry.audio_url && !state.muted) playAudio(entry.audio_url);
  }

  function renderReplyEmotion(emotion) {
    el.replyEmotion.textContent = '';
    if (!emotion) return;
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = colorOf(emotion);
    el.replyEmotion.append(sw, t('expressionIs', labelName(emotion)));
  }

  function playAudio(url) {
    const audio = el.audio;
    state.audioPlayAttempts += 1;
    try { audio.pause(); } catch (_) { /* ignore */ }
    audio.src = url;
    let p;
    try { p = audio.play(); } catch (err) { p = Promise.reject(err); }
    Promise.resolve(p).then(() => {
      state.repliesPlayed += 1;
    }).catch((err) => {
      // Autoplay refused or no audio device: say so once, keep the Replay button.
      state.errors.push(`audio: ${err && err.name}`);
      if (err && err.name === 'NotAllowedError') el.replyEmotion.textContent = t('playBlocked');
    });
  }

  // ---------------------------------------------------------------- photo

  function loadImage(file) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(file);
      const img = new Image();
      img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
      img.onerror = () => { URL.revokeObjectURL(url); reject(new Error('decode')); };
      img.src = url;     // <img> applies EXIF orientation, so boxes match what the user sees
    });
  }

  async function handleFile(file) {
    if (!file) return;
    el.photoFrame.hidden = true;
    el.photoResults.hidden = true;
    if (file.type && !file.type.startsWith('image/')) {
      setStatusT(el.photoStatus, 'error', 'notImage');
      return;
    }
    let img;
    try {
      img = await loadImage(file);
    } catch (_) {
      setStatusT(el.photoStatus, 'error', 'notImage');
      return;
    }
    // Re-encode what we show, so the box coordinates are in exactly the pixels that were posted.
    const scale = Math.min(1, PHOTO_MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
    canvas.getContext('2d').drawImage(img, 0, 0, canvas.width, canvas.height);
    const blob = await canvasToBlob(canvas, 0.92);
    state.photo = { canvas, blob };
    state.photoResult = null;
    state.selectedFace = 0;
    drawPhoto();
    el.photoFrame.hidden = false;
    await analysePhoto();
  }

  async function analysePhoto() {
    if (!state.photo) return;
    setStatusT(el.photoStatus, 'busy', 'analysing');
    el.dropZone.setAttribute('aria-busy', 'true');
    try {
      const result = await predict(state.photo.blob, { speak: !state.muted });
      state.lastResult = result;
      state.photoResult = result;
      state.selectedFace = largestFaceIndex(result.faces);
      renderPhotoResult();
      const n = (result.faces || []).length;
      if (n) setStatusT(el.photoStatus, 'ok', 'facesFound', n); else setStatusT(el.photoStatus, null, 'noFace');
      showReply(result.reply, result.emotion, 'photo');
    } catch (err) {
      state.errors.push(String(err));
      if (err instanceof ApiError) setStatusT(el.photoStatus, 'error', 'requestFailed', err.message);
      else setStatusT(el.photoStatus, 'error', 'networkFailed');
    } finally {
      el.dropZone.removeAttribute('aria-busy');
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

  function drawPhoto() {
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
    faces.forEach((f, i) => {
      if (i === state.selectedFace) return;
      drawFaceBox(ctx, f.box, f.emotion, `${i + 1} · ${labelName(f.emotion)} ${pct(f.scores && f.scores[f.emotion])}`, { scale });
    });
    const sel = faces[state.selectedFace];
    if (sel) {
      drawFaceBox(ctx, sel.box, sel.emotion, `${state.selectedFace + 1} · ${labelName(sel.emotion)} ${pct(sel.scores && sel.scores[sel.emotion])}`, { selected: faces.length > 1, scale });
    }
  }

  function renderPhotoResult() {
    const faces = (state.photoResult && state.photoResult.faces) || [];
    el.faceList.textContent = '';
    faces.forEach((f, i) => {
      const li = document.createElement('li');
      li.dataset.emotion = f.emotion;
      li.dataset.index = String(i);
      li.dataset.testid = 'face-item';
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.setAttribute('aria-pressed', i === state.selectedFace ? 'true' : 'false');
      faceRowContent(btn, t('face', i + 1), f.emotion, f.scores ? f.scores[f.emotion] : f.confidence);
      btn.addEventListener('click', () => selectFace(i));
      li.append(btn);
      el.faceList.append(li);
    });
    const sel = faces[state.selectedFace];
    renderBars(el.scores, sel ? sel.scores : null, { top: sel && sel.emotion });
    el.scores.dataset.face = sel ? String(state.selectedFace) : '';
    el.photoResults.hidden = !faces.length;
    el.photoPlaceholder.hidden = !!faces.length;
    drawPhoto();
  }

  function selectFace(i) {
    state.selectedFace = i;
    renderPhotoResult();
  }

  function onPhotoCanvasClick(ev) {
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

  // ---------------------------------------------------------------- live camera

  // [string key, ...args] for a getUserMedia failure.
  function cameraErrorMessage(err) {
    const name = err && err.name;
    if (name === 'NotAllowedError' || name === 'PermissionDeniedError' || name === 'SecurityError') return ['cameraDenied'];
    if (name === 'NotFoundError' || name === 'DevicesNotFoundError' || name === 'OverconstrainedError') return ['cameraMissing'];
    if (name === 'NotReadableError' || name === 'TrackStartError' || name === 'AbortError') return ['cameraBusy'];
    return ['cameraOther', (err && err.message) || String(err)];
  }

  async function startCamera() {
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

  function stopCamera() {
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
    el.startBtn.disabled = false;
    el.stopBtn.disabled = true;
    setStatusT(el.cameraStatus, null, 'cameraStopped');
    drawTimeline();
  }

  function resetSession() {
    state.tracks = [];
    state.nextTrackId = 1;
    state.dominant = null;
    state.candidate = { label: null, since: 0 };
    state.spokenLabel = null;
    state.speakWanted = null;
    state.speakTries = 0;
    state.sessionStart = performance.now();
    state.sessionStartWall = new Date();
    state.timeline = [];
    state.timelineLabels = [];
    el.downloadCsv.disabled = true;
    el.liveFaceList.textContent = '';
    el.liveScores.textContent = '';
    drawTimeline();
  }

  function scheduleFrame(delay) {
    clearTimeout(state.liveTimer);
    if (!state.live) return;
    state.liveTimer = setTimeout(sendFrame, Math.max(0, delay));
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
    grab.getContext('2d').drawImage(video, 0, 0, w, h);
    const speak = !!state.speakWanted && !state.muted;
    const wantsReply = !!state.speakWanted;
    state.inFlight += 1;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    state.framesSent += 1;
    let result = null;
    try {
      const blob = await canvasToBlob(grab, 0.8);
      result = await predict(blob, { speak, minFace: Math.round(Math.min(w, h) * LIVE_MIN_FACE_FRACTION) });
      state.framesAnswered += 1;
    } catch (err) {
      state.liveErrors += 1;
      state.errors.push(String(err));
      if (state.live) {
        if (err instanceof ApiError) setStatusT(el.cameraStatus, 'error', 'liveServerError', err.message);
        else setStatusT(el.cameraStatus, 'error', 'networkFailed');
      }
    } finally {
      state.inFlight -= 1;
    }
    if (!state.live) return;
    if (result) {
      state.frameSize = { w, h };
      onLiveResult(result, { w, h }, wantsReply);
      const elapsed = performance.now() - started;
      scheduleFrame(LIVE_INTERVAL_MS - elapsed);
    } else {
      scheduleFrame(Math.min(4000, 500 * state.liveErrors));    // back off while the server is unhappy
    }
  }

  function iou(a, b) {
    const x1 = Math.max(a[0], b[0]), y1 = Math.max(a[1], b[1]);
    const x2 = Math.min(a[0] + a[2], b[0] + b[2]), y2 = Math.min(a[1] + a[3], b[1] + b[3]);
    const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
    const union = a[2] * a[3] + b[2] * b[3] - inter;
    return union > 0 ? inter / union : 0;
  }

  function centreDistance(a, b) {
    const dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2), dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2);
    return Math.hypot(dx, dy) / Math.max(a[2], a[3], b[2], b[3], 1e-6);
  }

  function smoothScores(history) {
    const sum = {};
    for (const s of history) for (const [k, v] of Object.entries(s)) sum[k] = (sum[k] || 0) + (Number(v) || 0);
    for (const k of Object.keys(sum)) sum[k] /= history.length;
    return sum;
  }

  // Match this frame's faces to the running tracks (greedy on overlap), in frame-normalised coordinates.
  function updateTracks(faces, size, now) {
    const dets = faces.map((f) => ({
      box: [f.box[0] / size.w, f.box[1] / size.h, f.box[2] / size.w, f.box[3] / size.h],
      scores: f.scores || (f.emotion ? { [f.emotion]: 1 } : {}),
    }));
    const pairs = [];
    dets.forEach((d, di) => state.tracks.forEach((tr, ti) => {
      const o = iou(d.box, tr.box);
      if (o > 0.2 || centreDistance(d.box, tr.box) < 0.6) pairs.push({ di, ti, score: o - centreDistance(d.box, tr.box) * 0.1 });
    }));
    pairs.sort((a, b) => b.score - a.score);
    const usedD = new Set(), usedT = new Set();
    for (const p of pairs) {
      if (usedD.has(p.di) || usedT.has(p.ti)) continue;
      usedD.add(p.di); usedT.add(p.ti);
      const tr = state.tracks[p.ti];
      tr.box = dets[p.di].box;
      tr.history.push(dets[p.di].scores);
      if (tr.history.length > SMOOTH_FRAMES) tr.history.shift();
      tr.lastSeen = now;
      tr.seen = true;
    }
    for (const tr of state.tracks) if (!usedT.has(state.tracks.indexOf(tr))) tr.seen = false;
    dets.forEach((d, di) => {
      if (usedD.has(di)) return;
      state.tracks.push({ id: state.nextTrackId++, box: d.box, history: [d.scores], lastSeen: now, seen: true });
    });
    state.tracks = state.tracks.filter((tr) => now - tr.lastSeen < TRACK_TTL_MS);
    for (const tr of state.tracks) {
      tr.smoothed = smoothScores(tr.history);
      const best = argmax(tr.smoothed);
      // Hysteresis: keep the current label through near-ties so it doesn't flip back and forth.
      const keep = tr.emotion && tr.emotion !== best &&
        (tr.smoothed[tr.emotion] || 0) >= (tr.smoothed[best] || 0) - LABEL_HYSTERESIS;
      if (!keep) tr.emotion = best;
    }
  }

  function onLiveResult(result, size, wantsReply) {
    const now = performance.now();
    state.lastResult = result;
    state.liveResult = result;
    state.liveErrors = 0;
    const faces = result.faces || [];
    updateTracks(faces, size, now);
    const visible = state.tracks.filter((tr) => tr.seen);
    setStatusT(el.cameraStatus, 'ok', visible.length ? 'cameraOn' : 'cameraWaiting');

    // Dominant face = the largest face seen in this frame; its smoothed label drives the assistant.
    let dom = null;
    for (const tr of visible) if (!dom || tr.box[2] * tr.box[3] > dom.box[2] * dom.box[3]) dom = tr;
    state.dominant = dom ? dom.emotion : null;

    drawOverlay(visible, dom);
    renderLiveFaces(visible, dom);
    addTimelinePoint(now, visible.length, dom);
    handleAssistant(result, now, wantsReply);
  }

  function handleAssistant(result, now, wantsReply) {
    const label = state.dominant;
    if (wantsReply && state.speakWanted) {
      state.speakTries += 1;
      // Speak only when the server's own label for this frame agrees with the smoothed one,
      // so the voice never contradicts the label on screen (give up waiting after a few frames).
      if (result.emotion === state.speakWanted || state.speakTries >= SPEAK_RETRIES) {
        if (result.reply && result.reply.text) {
          showReply(result.reply, result.emotion, 'live');
          state.spokenLabel = result.emotion === state.speakWanted ? state.speakWanted : result.emotion;
        }
        state.speakWanted = null;
        state.speakTries = 0;
      }
    }
    if (label !== state.candidate.label) {
      state.candidate = { label, since: now };
    } else if (label && label !== state.spokenLabel && !state.speakWanted && now - state.candidate.since >= DEBOUNCE_MS) {
      state.speakWanted = label;
      state.speakTries = 0;
    }
  }

  function drawOverlay(visible, dom) {
    const c = el.overlay;
    const vw = el.video.videoWidth, vh = el.video.videoHeight;
    if (c.width !== vw || c.height !== vh) { c.width = vw; c.height = vh; }
    const ctx = c.getContext('2d');
    ctx.clearRect(0, 0, c.width, c.height);
    const shown = c.clientWidth || c.width;
    const scale = c.width / Math.max(1, shown);
    let drawn = 0;
    for (const tr of visible) {
      // Back to video pixels, mirrored like the video element is.
      const w = tr.box[2] * vw, h = tr.box[3] * vh;
      const x = vw - (tr.box[0] * vw + w), y = tr.box[1] * vh;
      const p = tr.smoothed[tr.emotion];
      drawFaceBox(ctx, [x, y, w, h], tr.emotion, `${labelName(tr.emotion)} ${pct(p)}`, { selected: tr === dom && visible.length > 1, scale });
      drawn += 1;
    }
    state.overlayBoxes = drawn;
    state.overlayFramesWithBoxes = (state.overlayFramesWithBoxes || 0) + (drawn ? 1 : 0);
  }

  function renderLiveFaces(visible, dom) {
    el.liveFaceList.textContent = '';
    visible.forEach((tr) => {
      const li = document.createElement('li');
      li.dataset.emotion = tr.emotion;
      li.dataset.track = String(tr.id);
      const row = document.createElement('div');
      row.className = 'face-row';
      faceRowContent(row, t('faceTrack', tr.id), tr.emotion, tr.smoothed[tr.emotion]);
      li.append(row);
      el.liveFaceList.append(li);
    });
    renderBars(el.liveScores, dom ? dom.smoothed : null, { top: dom && dom.emotion });
  }

  // ---------------------------------------------------------------- timeline (browser only)

  function addTimelinePoint(now, nFaces, dom) {
    const point = {
      t: (now - state.sessionStart) / 1000,
      wall: new Date(),
      faces: nFaces,
      emotion: dom ? dom.emotion : null,
      scores: dom ? { ...dom.smoothed } : null,
    };
    if (dom) for (const k of Object.keys(dom.smoothed)) if (!state.timelineLabels.includes(k)) state.timelineLabels.push(k);
    state.timelineLabels = sortedLabels(Object.fromEntries(state.timelineLabels.map((k) => [k, 0])));
    state.timeline.push(point);
    if (state.timeline.length > TIMELINE_MAX_POINTS) state.timeline.shift();
    el.downloadCsv.disabled = false;
    drawTimeline();
  }

  function drawTimeline() {
    const c = el.timeline;
    const dpr = window.devicePixelRatio || 1;
    const cssW = c.clientWidth || 300, cssH = c.clientHeight || 140;
    if (c.width !== Math.round(cssW * dpr) || c.height !== Math.round(cssH * dpr)) {
      c.width = Math.round(cssW * dpr); c.height = Math.round(cssH * dpr);
    }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    const padL = 30, padR = 8, padT = 8, band = 10, padB = 20 + band;
    const plotW = cssW - padL - padR, plotH = cssH - padT - padB;
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#5d6075';
    ctx.strokeStyle = '#e3e5ef';
    ctx.lineWidth = 1;
    ctx.textBaseline = 'middle';
    for (const v of [0, 0.5, 1]) {
      const y = padT + plotH * (1 - v);
      ctx.beginPath(); ctx.moveTo(padL, y); ctx.lineTo(padL + plotW, y); ctx.stroke();
      ctx.fillText(`${v * 100}%`, 2, y);
    }
    const pts = state.timeline;
    const tMax = Math.max(10, pts.length ? pts[pts.length - 1].t : 0);
    const xOf = (tt) => padL + (tt / tMax) * plotW;
    ctx.textBaseline = 'top';
    ctx.fillText('0 s', padL, cssH - 14);
    const endLabel = `${tMax.toFixed(0)} s`;
    ctx.fillText(endLabel, padL + plotW - ctx.measureText(endLabel).width, cssH - 14);
    if (!pts.length) {
      ctx.fillStyle = '#5d6075';
      ctx.font = '13px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(t('timelineEmpty'), padL + plotW / 2, padT + plotH / 2 - 8, plotW - 10);
      ctx.textAlign = 'start';
      renderLegend();
      return;
    }

    // Dominant-expression band under the plot.
    const bandY = padT + plotH + 3;
    for (let i = 0; i < pts.length; i++) {
      const x0 = xOf(pts[i].t), x1 = i + 1 < pts.length ? xOf(pts[i + 1].t) : x0 + 2;
      ctx.fillStyle = pts[i].emotion ? colorOf(pts[i].emotion) : '#e3e5ef';
      ctx.fillRect(x0, bandY, Math.max(1, x1 - x0), band);
    }
    // One line per expression: the smoothed score of the dominant face.
    ctx.lineWidth = 1.8;
    ctx.lineJoin = 'round';
    for (const label of state.timelineLabels) {
      ctx.strokeStyle = colorOf(label);
      ctx.beginPath();
      let pen = false;
      for (const p of pts) {
        if (!p.scores) { pen = false; continue; }
        const x = xOf(p.t), y = padT + plotH * (1 - (p.scores[label] || 0));
        if (pen) ctx.lineTo(x, y); else { ctx.moveTo(x, y); pen = true; }
      }
      ctx.stroke();
    }
    renderLegend();
  }

  function renderLegend() {
    const labels = state.timelineLabels.length ? state.timelineLabels
      : (currentModelCard() && currentModelCard().classes) || LABEL_ORDER.slice(0, 7);
    const key = state.lang + '|' + labels.join(',');
    if (el.legend.dataset.key === key) return;
    el.legend.dataset.key = key;
    el.legend.textContent = '';
    for (const label of labels) {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = colorOf(label);
      li.append(sw, labelName(label));
      el.legend.append(li);
    }
  }

  function csvCell(v) {
    const s = v == null ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }

  function timelineCsv() {
    const labels = state.timelineLabels.length ? state.timelineLabels : LABEL_ORDER.slice(0, 7);
    const rows = [['time_s', 'timestamp', 'faces', 'emotion', ...labels.map((l) => `score_${l}`)]];
    for (const p of state.timeline) {
      rows.push([
        p.t.toFixed(2), p.wall.toISOString(), p.faces, p.emotion || '',
        ...labels.map((l) => (p.scores && p.scores[l] != null ? p.scores[l].toFixed(4) : '')),
      ]);
    }
    return rows.map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
  }

  function downloadCsv() {
    if (!state.timeline.length) { setStatusT(el.cameraStatus, null, 'csvEmpty'); return; }
    const blob = new Blob([timelineCsv()], { type: 'text/csv;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    const stamp = (state.sessionStartWall || new Date()).toISOString().replace(/[:.]/g, '-').slice(0, 19);
    a.href = url;
    a.download = `emotion-session-${stamp}.csv`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ---------------------------------------------------------------- wiring

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
    });

    el.settingsForm = $('settings');
    el.settingsForm.addEventListener('submit', (e) => e.preventDefault());

    const storedLang = safeStorage('get', 'emotion.lang');
    const browserVi = (navigator.language || '').toLowerCase().startsWith('vi');
    state.lang = storedLang === 'vi' || storedLang === 'en' ? storedLang : (browserVi ? 'vi' : 'en');
    el.lang.value = state.lang;
    state.muted = safeStorage('get', 'emotion.muted') === '1';
    el.mute.checked = state.muted;

    el.lang.addEventListener('change', () => {
      state.lang = el.lang.value === 'vi' ? 'vi' : 'en';
      safeStorage('set', 'emotion.lang', state.lang);
      applyStrings();
      rerenderAll();
    });
    el.mute.addEventListener('change', () => {
      state.muted = el.mute.checked;
      safeStorage('set', 'emotion.muted', state.muted ? '1' : '0');
      if (state.muted) el.audio.pause();
    });
    el.modelSelect.addEventListener('change', () => {
      state.model = el.modelSelect.value || null;
      renderModelInfo();
      for (const tr of state.tracks) tr.history = tr.history.slice(-1);   // different model, fresh smoothing
      if (state.photo && !state.live) analysePhoto();
    });
    el.replay.addEventListener('click', () => {
      const last = state.replies[state.replies.length - 1];
      if (last && last.audio_url) playAudio(last.audio_url);
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

    let resizeTimer = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { drawPhoto(); drawTimeline(); }, 100);
    });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) el.audio.pause();
    });
    window.addEventListener('pagehide', stopCamera);
  }

  function rerenderAll() {
    renderModelInfo();
    if (state.photoResult) renderPhotoResult();
    const last = state.replies[state.replies.length - 1];
    if (last) renderReplyEmotion(last.emotion);
    el.legend.dataset.key = '';
    drawTimeline();
    for (const node of [el.cameraStatus, el.photoStatus]) {
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
    get tracks() { return state.tracks.map((tr) => ({ id: tr.id, emotion: tr.emotion, box: tr.box.slice(), seen: tr.seen, frames: tr.history.length })); },
    get overlayBoxes() { return state.overlayBoxes || 0; },
    get overlayFramesWithBoxes() { return state.overlayFramesWithBoxes || 0; },
    get timeline() { return state.timeline.map((p) => ({ t: p.t, emotion: p.emotion, faces: p.faces })); },
    get live() { return state.live; },
    get model() { return state.model; },
    get lang() { return state.lang; },
    get muted() { return state.muted; },
    get errors() { return state.errors.slice(); },
    get ready() { return !!state.ready; },
    timelineCsv,
  };

  async function init() {
    bind();
    applyStrings();
    setStatusT(el.cameraStatus, null, 'cameraIdle');
    drawTimeline();
    await loadModels();
    renderLegend();
    state.ready = true;
    document.documentElement.dataset.ready = 'true';
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
