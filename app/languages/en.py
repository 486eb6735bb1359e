"""English."""

from __future__ import annotations

CODE = "en"
NAME = "English"  # in the language itself: the page's language menu shows it
VOICE = "en"  # the espeak-ng voice (app/speech.py); gTTS is asked for CODE

# The labels' names (model_core.labels), as the page and the replies show them.
DISPLAY_NAMES = {
    "angry": "Angry",
    "disgust": "Disgusted",
    "fear": "Afraid",
    "happy": "Happy",
    "sad": "Sad",
    "surprise": "Surprised",
    "neutral": "Neutral",
    "contempt": "Contemptuous",
}

# The test splits a card reports on, in model_core.labels.SPLITS order (the page headlines the first
# one a card was measured on).
SPLIT_NAMES = {
    "fer2013_private": "FER-2013 private test set",
    "fer2013_public": "FER-2013 public test set",
    "ferplus_test": "FER+ test set",
    "ferplus_val": "FER+ validation set",
}

# What the assistant says, per label ("noface": no face found). Entry n of a label translates entry n
# of every other language: the reply id `<label>.<n>` names the same sentence in all of them.
REPLIES = {
    "angry": (
        "You seem upset. Let's take a slow, deep breath together.",
        "I can see something is bothering you. Do you want to talk about it?",
        "It's okay to feel angry. Maybe a short walk would help.",
    ),
    "disgust": (
        "Something doesn't sit right with you. Let's step away from it for a moment.",
        "That look says you didn't like it. Want to switch to something nicer?",
        "It's fine to dislike things. Take a breath, and let it go.",
    ),
    "fear": (
        "You look worried. You're safe here, take your time.",
        "It's okay to feel scared. Let's breathe in slowly, and out.",
        "Whatever it is, you don't have to face it alone.",
    ),
    "happy": (
        "You look happy today. That smile suits you!",
        "What a lovely smile. I hope your day stays this bright.",
        "Your joy is contagious. Keep it up!",
    ),
    "sad": (
        "You look a little down. I'm here with you.",
        "It's okay to feel sad sometimes. Be gentle with yourself today.",
        "Maybe a cup of tea and a short break would help. Take care.",
    ),
    "surprise": (
        "Oh, that's a surprise! What happened?",
        "You look amazed. Something unexpected?",
        "Wow, what a face! I hope it's good news.",
    ),
    "neutral": (
        "You look calm and focused. Nice and steady.",
        "All quiet on your face today. How are you feeling?",
        "You seem relaxed. Remember to take a short break now and then.",
    ),
    "contempt": (
        "Not impressed, are you? Fair enough.",
        "That half smile says a lot. Want to tell me what you think?",
        "Something didn't win you over. That's okay.",
    ),
    "noface": (
        "I can't see a face here. A clear, well-lit view of a face works best.",
        "No face found. A closer, brighter view of the face will help.",
    ),
}

# The model is not sure (its card's confidence rule fails): a reply that asks (ids `unsure-<label>.<n>`).
HEDGED = {
    "angry": ("I'm not sure, but you might be a little annoyed?",),
    "disgust": ("I'm not sure, but is something bothering you a little?",),
    "fear": ("I'm not sure, but you might be a little worried?",),
    "happy": ("I'm not sure, but is that a little smile?",),
    "sad": ("I'm not sure, you might be a little sad?",),
    "surprise": ("I'm not sure, but you might be a little surprised?",),
    "neutral": ("I'm not sure, but you seem fairly calm?",),
    "contempt": ("I'm not sure, but you might be a little unimpressed?",),
}

# The page's texts (static/js/strings.js shows them): elements with data-i18n="key" and the modules'
# messages. Values may hold simple markup (our own constants, never user data). {0}, {1}: the
# caller's arguments, {name}: a field of its one object argument; [ ... ] is left out when a
# placeholder inside it has no value; {"one": ..., "other": ...}: plural forms (Intl.PluralRules),
# chosen by the first argument. A key a language lacks falls back to English.
UI = {
    "skip": "Skip to content",
    "title": "Emotion assistant",
    "tagline": "Reads the apparent facial expression in a photo or on your webcam, and answers out loud.",
    "model": "Model",
    "language": "Language",
    "mute": "Mute voice",
    "loadingModels": "Loading models…",
    "assistant": "Assistant",
    "replyIdle": "Upload a photo or start the camera, and I will tell you what I see.",
    "replay": "Replay",
    "photoHeading": "Photo",
    "choosePhoto": "Choose a photo",
    "orDrop": "or drop one here",
    "photoPlaceholder": "The faces found in your photo and their scores appear here.",
    "faces": "Faces",
    "faceHint": "Click a face (or a row) to see its scores.",
    "scores": "Scores",
    "smoothedScores": "Smoothed scores",
    "liveHeading": "Live camera",
    "start": "Start camera",
    "stop": "Stop",
    "cameraIdle": "The camera is off. It only starts when you press Start.",
    "timeline": "Session timeline",
    "downloadCsv": "Download CSV",
    "timelineHint": "The timeline stays in this browser; it is never uploaded.",
    "timelineKey": "Lines: how strongly each expression shows (0-100%). Strip under them: the main expression at each moment (hatched: no face).",
    "aboutHeading": "What this shows, and how well",
    "inferredHeading": "What is inferred",
    "inferred": "The model reads the <strong>apparent facial expression</strong> of each face: how the face looks, not how the person feels. Expressions depend on culture, context and the person; a smile is not proof of happiness. Do not use it to make decisions about people.",
    "privateMode": "Private mode",
    "privateOff": "Photos and camera frames are analysed on the server.",
    "privateLoading": "Private mode: loading the runtime and the models into this browser ({0} MB, once)…",
    "privateOn": "Private mode is on: photos and camera frames are analysed in this browser and never sent. Only the reply's id (e.g. \u201chappy.2\u201d) and the language go to the server, to fetch the spoken reply.",
    "privateUnsupported": "Private mode needs WebAssembly with SIMD, which this browser does not offer; the server analyses your photos instead (turn private mode off).",
    "privateFailed": "Private mode could not start ({0}). Nothing was sent; turn private mode off to use the server.",
    "privacyDevice": "In <strong>private mode</strong> nothing of a photo or a frame leaves this browser: the face finder and the model run here. Only the reply's id and the language are sent, for the voice.",
    "privacyHeading": "Privacy",
    "privacy": "Photos and camera frames go only to this server, are analysed in memory and are <strong>not stored</strong>. Nothing is sent anywhere else. The session timeline is kept in your browser only.",
    "accuracyHeading": "Accuracy of the selected model",
    "recallCaption": "Recall per expression (share of test faces of that class it gets right)",
    "expression": "Expression",
    "recall": "Recall",
    "support": "Test faces",
    "footer": "Open source. Models trained on the public FER-2013 and FER+ data sets.",
    "analysing": "Analysing the photo…",
    "facesFound": {"one": "Found 1 face.", "other": "Found {0} faces."},
    "noFace": "No face found. Try a brighter, front-facing photo where the face is not too small.",
    "notImage": "That file is not an image this browser can open. Use a JPEG, PNG, WebP, BMP or GIF photo.",
    "emptyFile": "That file is empty (0 bytes): there is no picture in it. Choose the photo again, or another one.",
    "requestFailed": "The server could not analyse the image: {0}",
    "networkFailed": "The server cannot be reached. Check your connection and try again.",
    "face": "Face {0}",
    "cameraStarting": "Asking for the camera…",
    "cameraOn": "Camera on. Frames are analysed and then discarded.",
    "cameraWaiting": "Camera on. Looking for a face…",
    "cameraStopped": "Camera stopped.",
    "cameraDenied": "Camera access was refused. Allow the camera for this site in the browser settings (the camera icon in the address bar), then press Start again.",
    "cameraMissing": "No camera was found. Connect a camera, or upload a photo instead.",
    "cameraBusy": "The camera is in use by another application, or it failed to start. Close the other application and press Start again.",
    "cameraUnsupported": "This browser does not offer camera access on this page. Camera access needs a recent browser and a secure (https or localhost) address. You can still upload a photo.",
    "cameraOther": "The camera could not be started: {0}",
    "liveServerError": "Frames are not being analysed: {0}. Retrying…",
    "noModelMetrics": "This model card has no measured metrics yet, so its accuracy is unknown.",
    "modelsFailed": "Could not load the model list; the server default model is used.",
    "modelSummary": "<strong>{title}</strong>: accuracy <strong>{acc}</strong>[, macro-F1 {f1}] on the {split}[ ({n} faces)]. Chance level for {k} classes would be about {chance}.",
    "ensembleOf": "An ensemble of {0}.",
    "calmRate": "Calm faces read as negative: <strong>{0}</strong> of {1} clearly neutral test faces (at least 7 of 10 annotators said neutral) were called angry, sad, afraid, disgusted or contemptuous.",
    "hedgedNote": "The model is not sure about this one.",
    "unsureBadge": "not sure",
    "expressionIs": "Apparent expression: {0}",
    "scoresNote": "Scores are the model's confidence, not a measurement of feelings. {0} is right on {1} of the faces of the {2}.",
    "videoHeading": "Video",
    "chooseVideo": "Choose a clip",
    "videoLimits": "MP4, MOV, WebM: up to 60 s, 16 MB, 1080p",
    "videoTracks": "Faces over time",
    "downloadJson": "Download JSON",
    "videoUploading": "Sending the clip…",
    "videoProgress": "Analysing: frame {0} of about {1}…",
    "videoDone": {
        "one": "Done: 1 face followed through the clip.",
        "other": "Done: {0} faces followed through the clip.",
    },
    "videoNoFace": "No face found in the clip.",
    "videoTruncated": "Done, but only the first {0} s were analysed (the clip is over the limit).",
    "videoCancelled": "Stopped. The server stopped analysing the clip too.",
    "videoLocalStarting": "Analysing the clip in this browser; nothing of it is sent…",
    "videoLocalCancelled": "Stopped.",
    "videoLocalFailed": "This browser could not analyse the clip: {0}",
    "videoTooLong": "That clip is {0} s long; the limit is {1} s. Cut the part to analyse first.",
    "videoTooLarge": "That clip is {0}x{1} pixels; the limit is 1080p. Re-encode it smaller first.",
    "videoUndecodable": "This browser cannot play that clip. Try an MP4 (H.264) or WebM file.",
    "videoNoPicture": "That file has no picture (audio only?).",
    "videoTooBig": "That clip is {0} MB; the limit is 16 MB. Cut or re-encode it (e.g. 720p) first.",
    "videoNotVideo": "That file is not a video. Use an MP4, MOV, WebM, MKV or AVI clip.",
    "videoFaceSummary": "Face {0}: mostly {1} ({2} of its frames)",
    "videoSegment": "{0}–{1} s: {2}",
    "videoNotFor": "Not for judging people: inferring the emotions of employees or students is prohibited in the EU (AI Act, Article 5(1)(f)). Faces are numbered per clip and not recognised; the clip is analysed in memory and <strong>not stored</strong>.",
    "timelineEmpty": "Start the camera to record how the expression changes.",
    "playBlocked": "The browser blocked audio playback; press Replay to hear the reply.",
    "faceTrack": "Face {0}",
    "legendNone": "No face",
    "csvEmpty": "No timeline data yet.",
}
