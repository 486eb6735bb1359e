"""Vietnamese (tiếng Việt)."""

from __future__ import annotations

CODE = "vi"
NAME = "Tiếng Việt"  # in the language itself: the page's language menu shows it
VOICE = "vi"  # the espeak-ng voice (app/speech.py); gTTS is asked for CODE

# The labels' names (model_core.labels), as the page and the replies show them.
DISPLAY_NAMES = {
    "angry": "Tức giận",
    "disgust": "Ghê tởm",
    "fear": "Sợ hãi",
    "happy": "Vui vẻ",
    "sad": "Buồn",
    "surprise": "Ngạc nhiên",
    "neutral": "Bình thường",
    "contempt": "Khinh thường",
}

# The test splits a card reports on, in model_core.labels.SPLITS order (the page headlines the first
# one a card was measured on).
SPLIT_NAMES = {
    "fer2013_private": "tập kiểm tra riêng FER-2013",
    "fer2013_public": "tập kiểm tra công khai FER-2013",
    "ferplus_test": "tập kiểm tra FER+",
    "ferplus_val": "tập thẩm định FER+",
}

# What the assistant says, per label ("noface": no face found). Entry n of a label translates entry n
# of every other language: the reply id `<label>.<n>` names the same sentence in all of them.
REPLIES = {
    "angry": (
        "Bạn có vẻ đang bực bội. Mình cùng hít một hơi thật sâu nhé.",
        "Mình thấy có điều gì đó làm bạn khó chịu. Bạn có muốn chia sẻ không?",
        "Tức giận cũng không sao cả. Có lẽ đi dạo một chút sẽ giúp bạn dễ chịu hơn.",
    ),
    "disgust": (
        "Có điều gì đó làm bạn không thoải mái. Mình tạm tránh xa nó một chút nhé.",
        "Nét mặt này cho thấy bạn không thích điều đó. Mình chuyển sang chuyện khác vui hơn nhé?",
        "Không thích một điều gì đó cũng bình thường thôi. Hít thở và buông bỏ nhé.",
    ),
    "fear": (
        "Bạn trông có vẻ lo lắng. Ở đây bạn an toàn, cứ từ từ thôi.",
        "Sợ hãi cũng không sao cả. Mình cùng hít vào thật chậm, rồi thở ra nhé.",
        "Dù là chuyện gì, bạn cũng không phải đối mặt một mình.",
    ),
    "happy": (
        "Hôm nay bạn trông thật vui vẻ. Nụ cười ấy rất hợp với bạn!",
        "Nụ cười thật đẹp. Mong cả ngày của bạn luôn rạng rỡ như thế này.",
        "Niềm vui của bạn thật dễ lan tỏa. Cứ giữ vững nhé!",
    ),
    "sad": (
        "Bạn trông hơi buồn. Mình luôn ở đây với bạn.",
        "Đôi khi buồn cũng không sao. Hôm nay hãy dịu dàng với bản thân nhé.",
        "Có lẽ một tách trà và một chút nghỉ ngơi sẽ giúp bạn. Giữ gìn sức khỏe nhé.",
    ),
    "surprise": (
        "Ồ, bất ngờ quá! Có chuyện gì vậy?",
        "Bạn trông thật ngạc nhiên. Có điều gì bất ngờ sao?",
        "Chà, nét mặt thật thú vị! Mong đó là tin vui.",
    ),
    "neutral": (
        "Bạn trông thật bình tĩnh và tập trung. Rất vững vàng.",
        "Gương mặt bạn hôm nay thật bình lặng. Bạn cảm thấy thế nào?",
        "Bạn có vẻ thư thái. Nhớ nghỉ ngơi một chút sau mỗi lúc làm việc nhé.",
    ),
    "contempt": (
        "Bạn có vẻ chưa bị thuyết phục nhỉ? Cũng dễ hiểu thôi.",
        "Nụ cười nửa miệng ấy nói lên nhiều điều. Bạn muốn kể mình nghe không?",
        "Có điều gì đó chưa làm bạn hài lòng. Không sao cả.",
    ),
    "noface": (
        "Mình chưa thấy khuôn mặt nào. Một khuôn mặt rõ nét, đủ sáng sẽ giúp mình nhận ra.",
        "Không tìm thấy khuôn mặt. Khuôn mặt gần hơn và sáng hơn sẽ giúp mình nhận ra.",
    ),
}

# The model is not sure (its card's confidence rule fails): a reply that asks (ids `unsure-<label>.<n>`).
HEDGED = {
    "angry": ("Mình không chắc lắm, nhưng có phải bạn hơi bực mình không?",),
    "disgust": ("Mình không chắc lắm, nhưng có điều gì làm bạn hơi khó chịu à?",),
    "fear": ("Mình không chắc lắm, nhưng có phải bạn hơi lo lắng không?",),
    "happy": ("Mình không chắc lắm, nhưng đó có phải là một nụ cười nhẹ không?",),
    "sad": ("Mình không chắc lắm, có phải bạn đang hơi buồn không?",),
    "surprise": ("Mình không chắc lắm, nhưng có phải bạn hơi ngạc nhiên không?",),
    "neutral": ("Mình không chắc lắm, nhưng trông bạn khá bình thản?",),
    "contempt": ("Mình không chắc lắm, nhưng có vẻ bạn chưa thấy ấn tượng lắm?",),
}

# The page's texts (static/js/strings.js shows them): elements with data-i18n="key" and the modules'
# messages. Values may hold simple markup (our own constants, never user data). {0}, {1}: the
# caller's arguments, {name}: a field of its one object argument; [ ... ] is left out when a
# placeholder inside it has no value; {"one": ..., "other": ...}: plural forms (Intl.PluralRules),
# chosen by the first argument. A key a language lacks falls back to English.
UI = {
    "skip": "Chuyển đến nội dung",
    "title": "Trợ lý cảm xúc",
    "tagline": "Đọc biểu cảm khuôn mặt thể hiện ra trong ảnh hoặc trên webcam, và trả lời thành tiếng.",
    "model": "Mô hình",
    "language": "Ngôn ngữ",
    "mute": "Tắt tiếng",
    "loadingModels": "Đang tải mô hình…",
    "assistant": "Trợ lý",
    "replyIdle": "Hãy tải ảnh lên hoặc bật camera, tôi sẽ cho bạn biết tôi thấy gì.",
    "replay": "Nghe lại",
    "photoHeading": "Ảnh",
    "choosePhoto": "Chọn ảnh",
    "orDrop": "hoặc thả ảnh vào đây",
    "photoPlaceholder": "Các khuôn mặt tìm thấy trong ảnh và điểm số của chúng sẽ hiện ở đây.",
    "faces": "Khuôn mặt",
    "faceHint": "Bấm vào một khuôn mặt (hoặc một dòng) để xem điểm số.",
    "scores": "Điểm số",
    "smoothedScores": "Điểm số (đã làm mượt)",
    "liveHeading": "Camera trực tiếp",
    "start": "Bật camera",
    "stop": "Dừng",
    "cameraIdle": "Camera đang tắt. Camera chỉ bật khi bạn bấm Bật.",
    "timeline": "Diễn biến phiên",
    "downloadCsv": "Tải CSV",
    "timelineHint": "Dữ liệu diễn biến chỉ lưu trong trình duyệt này, không bao giờ được tải lên.",
    "timelineKey": "Các đường: mức thể hiện của từng biểu cảm (0-100%). Dải màu bên dưới: biểu cảm chính tại mỗi thời điểm (gạch chéo: không thấy khuôn mặt).",
    "aboutHeading": "Trang này cho biết gì, và chính xác đến đâu",
    "inferredHeading": "Điều được suy ra",
    "inferred": "Mô hình đọc <strong>biểu cảm khuôn mặt thể hiện ra bên ngoài</strong>: khuôn mặt trông thế nào, không phải người đó cảm thấy gì. Biểu cảm phụ thuộc vào văn hoá, hoàn cảnh và từng người; một nụ cười không chứng minh người đó đang vui. Đừng dùng kết quả để đưa ra quyết định về con người.",
    "privateMode": "Chế độ riêng tư",
    "privateOff": "Ảnh và khung hình camera được phân tích trên máy chủ.",
    "privateLoading": "Chế độ riêng tư: đang tải bộ chạy và mô hình vào trình duyệt này ({0} MB, một lần)…",
    "privateOn": "Chế độ riêng tư đang bật: ảnh và khung hình camera được phân tích ngay trong trình duyệt này và không bao giờ được gửi đi. Chỉ mã câu trả lời (ví dụ \u201chappy.2\u201d) và ngôn ngữ được gửi đến máy chủ để lấy giọng nói.",
    "privateUnsupported": "Chế độ riêng tư cần WebAssembly có SIMD, trình duyệt này không hỗ trợ; máy chủ sẽ phân tích ảnh của bạn (hãy tắt chế độ riêng tư).",
    "privateFailed": "Không khởi động được chế độ riêng tư ({0}). Không có gì được gửi đi; hãy tắt chế độ riêng tư để dùng máy chủ.",
    "privacyDevice": "Ở <strong>chế độ riêng tư</strong>, không phần nào của ảnh hay khung hình rời khỏi trình duyệt này: bộ tìm khuôn mặt và mô hình chạy tại đây. Chỉ mã câu trả lời và ngôn ngữ được gửi đi, để lấy giọng nói.",
    "privacyHeading": "Quyền riêng tư",
    "privacy": "Ảnh và khung hình camera chỉ được gửi đến máy chủ này, được phân tích trong bộ nhớ và <strong>không được lưu lại</strong>. Không có gì được gửi đi nơi khác. Diễn biến phiên chỉ được giữ trong trình duyệt của bạn.",
    "accuracyHeading": "Độ chính xác của mô hình đang chọn",
    "recallCaption": "Độ nhạy (recall) theo từng biểu cảm (tỉ lệ khuôn mặt thuộc lớp đó được nhận đúng)",
    "expression": "Biểu cảm",
    "recall": "Recall",
    "support": "Số mặt kiểm tra",
    "footer": "Mã nguồn mở. Mô hình được huấn luyện trên bộ dữ liệu công khai FER-2013 và FER+.",
    "analysing": "Đang phân tích ảnh…",
    "facesFound": "Tìm thấy {0} khuôn mặt.",
    "noFace": "Không tìm thấy khuôn mặt. Hãy thử ảnh sáng hơn, nhìn thẳng, khuôn mặt không quá nhỏ.",
    "notImage": "Trình duyệt không mở được tệp này. Hãy dùng ảnh JPEG, PNG, WebP, BMP hoặc GIF.",
    "emptyFile": "Tệp này trống (0 byte): không có ảnh nào bên trong. Hãy chọn lại ảnh, hoặc một ảnh khác.",
    "requestFailed": "Máy chủ không phân tích được ảnh: {0}",
    "networkFailed": "Không kết nối được máy chủ. Hãy kiểm tra kết nối và thử lại.",
    "face": "Mặt {0}",
    "cameraStarting": "Đang xin quyền dùng camera…",
    "cameraOn": "Camera đang bật. Khung hình được phân tích rồi bỏ đi.",
    "cameraWaiting": "Camera đang bật. Đang tìm khuôn mặt…",
    "cameraStopped": "Đã dừng camera.",
    "cameraDenied": "Quyền dùng camera bị từ chối. Hãy cho phép camera cho trang này trong cài đặt trình duyệt (biểu tượng camera trên thanh địa chỉ), rồi bấm Bật lại.",
    "cameraMissing": "Không tìm thấy camera. Hãy cắm camera, hoặc tải ảnh lên thay thế.",
    "cameraBusy": "Camera đang được ứng dụng khác dùng hoặc không khởi động được. Hãy đóng ứng dụng kia rồi bấm Bật lại.",
    "cameraUnsupported": "Trình duyệt không cho dùng camera trên trang này. Cần trình duyệt mới và địa chỉ an toàn (https hoặc localhost). Bạn vẫn có thể tải ảnh lên.",
    "cameraOther": "Không bật được camera: {0}",
    "liveServerError": "Khung hình chưa được phân tích: {0}. Đang thử lại…",
    "noModelMetrics": "Thẻ mô hình này chưa có số đo, nên chưa biết độ chính xác.",
    "modelsFailed": "Không tải được danh sách mô hình; dùng mô hình mặc định của máy chủ.",
    "modelSummary": "<strong>{title}</strong>: độ chính xác <strong>{acc}</strong>[, macro-F1 {f1}] trên {split}[ ({n} khuôn mặt)]. Đoán ngẫu nhiên với {k} lớp chỉ đạt khoảng {chance}.",
    "ensembleOf": "Tổ hợp của {0}.",
    "calmRate": "Mặt bình thản bị đọc thành tiêu cực: <strong>{0}</strong> trong {1} khuôn mặt kiểm tra rõ ràng là bình thường (ít nhất 7/10 người gán nhãn nói bình thường) bị gọi là tức giận, buồn, sợ hãi, ghê tởm hay khinh thường.",
    "hedgedNote": "Mô hình không chắc chắn về khuôn mặt này.",
    "unsureBadge": "chưa chắc",
    "expressionIs": "Biểu cảm thể hiện: {0}",
    "scoresNote": "Điểm số là độ tin cậy của mô hình, không phải phép đo cảm xúc. {0} đúng với {1} số khuôn mặt của {2}.",
    "videoHeading": "Video",
    "chooseVideo": "Chọn một đoạn video",
    "videoLimits": "MP4, MOV, WebM: tối đa 60 giây, 16 MB, 1080p",
    "videoTracks": "Khuôn mặt theo thời gian",
    "downloadJson": "Tải JSON",
    "videoUploading": "Đang gửi đoạn video…",
    "videoProgress": "Đang phân tích: khung hình {0} trên khoảng {1}…",
    "videoDone": {"other": "Xong: đã theo dõi {0} khuôn mặt trong đoạn video."},
    "videoNoFace": "Không tìm thấy khuôn mặt nào trong đoạn video.",
    "videoTruncated": "Xong, nhưng chỉ {0} giây đầu được phân tích (đoạn video vượt quá giới hạn).",
    "videoCancelled": "Đã dừng. Máy chủ cũng đã ngừng phân tích đoạn video.",
    "videoLocalStarting": "Đang phân tích đoạn video ngay trong trình duyệt này; không gửi đi gì cả…",
    "videoLocalCancelled": "Đã dừng.",
    "videoLocalFailed": "Trình duyệt này không phân tích được đoạn video: {0}",
    "videoTooLong": "Đoạn video dài {0} giây; giới hạn là {1} giây. Hãy cắt phần cần phân tích trước.",
    "videoTooLarge": "Đoạn video có {0}x{1} điểm ảnh; giới hạn là 1080p. Hãy mã hoá lại nhỏ hơn trước.",
    "videoUndecodable": "Trình duyệt này không phát được đoạn video đó. Hãy thử tệp MP4 (H.264) hoặc WebM.",
    "videoNoPicture": "Tệp này không có hình (chỉ có âm thanh?).",
    "videoTooBig": "Đoạn video này nặng {0} MB; giới hạn là 16 MB. Hãy cắt ngắn hoặc mã hoá lại (ví dụ 720p) trước.",
    "videoNotVideo": "Tệp này không phải video. Hãy dùng đoạn MP4, MOV, WebM, MKV hoặc AVI.",
    "videoFaceSummary": "Mặt {0}: chủ yếu {1} ({2} số khung hình)",
    "videoSegment": "{0}–{1} giây: {2}",
    "videoNotFor": "Không dùng để đánh giá con người: suy đoán cảm xúc của nhân viên hay học sinh bị cấm ở EU (Đạo luật AI, Điều 5(1)(f)). Khuôn mặt chỉ được đánh số trong từng đoạn video, không được nhận dạng; đoạn video được phân tích trong bộ nhớ và <strong>không được lưu</strong>.",
    "timelineEmpty": "Bật camera để ghi lại biểu cảm thay đổi thế nào.",
    "playBlocked": "Trình duyệt chặn phát âm thanh; bấm Nghe lại để nghe câu trả lời.",
    "faceTrack": "Mặt {0}",
    "legendNone": "Không có mặt",
    "csvEmpty": "Chưa có dữ liệu diễn biến.",
}
