// Every text of the page in every language: the static text (elements with data-i18n="key") and the
// messages the modules show. A new language is one more table here (and its replies, display names
// and voice on the server: app/assistant.py, app/speech.py).
import { state } from './state.js';

// UI strings. Values may contain simple markup (they are our own constants, never user data).
export const STRINGS = {
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
    notImage: 'That file is not an image this browser can open. Use a JPEG, PNG, WebP, BMP or GIF photo.',
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
    calmRate: (rate, n) => `Calm faces read as negative: <strong>${rate}</strong> of ${n} clearly neutral test faces (at least 7 of 10 annotators said neutral) were called angry, sad, afraid, disgusted or contemptuous.`,
    hedgedNote: 'The model is not sure about this one.',
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
    notImage: 'Trình duyệt không mở được tệp này. Hãy dùng ảnh JPEG, PNG, WebP, BMP hoặc GIF.',
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
    calmRate: (rate, n) => `Mặt bình thản bị đọc thành tiêu cực: <strong>${rate}</strong> trong ${n} khuôn mặt kiểm tra rõ ràng là bình thường (ít nhất 7/10 người gán nhãn nói bình thường) bị gọi là tức giận, buồn, sợ hãi, ghê tởm hay khinh thường.`,
    hedgedNote: 'Mô hình không chắc chắn về khuôn mặt này.',
    expressionIs: (label) => `Biểu cảm thể hiện: ${label}`,
    scoresNote: (title, acc, split) => `Điểm số là độ tin cậy của mô hình, không phải phép đo cảm xúc. ${title} đúng với ${acc} số khuôn mặt của ${split}.`,
    timelineEmpty: 'Bật camera để ghi lại biểu cảm thay đổi thế nào.',
    playBlocked: 'Trình duyệt chặn phát âm thanh; bấm Nghe lại để nghe câu trả lời.',
    faceTrack: (i) => `Mặt ${i}`,
    legendNone: 'Không có mặt',
    csvEmpty: 'Chưa có dữ liệu diễn biến.',
  },
};

export function t(key, ...args) {
  const table = STRINGS[state.lang] || STRINGS.en;
  const v = key in table ? table[key] : STRINGS.en[key];
  return typeof v === 'function' ? v(...args) : v;
}

export function applyStrings() {
  document.documentElement.lang = state.lang;
  document.title = t('title');
  for (const node of document.querySelectorAll('[data-i18n]')) {
    const v = t(node.dataset.i18n);
    if (typeof v !== 'string') continue;
    if (v.includes('<')) node.innerHTML = v; else node.textContent = v;
  }
}
