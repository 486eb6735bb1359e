// The assistant's answer: its text, the expression it answers, and its voice (muted or not).
import { fetchReply } from './api.js';
import { colorOf } from './labels.js';
import { el, state } from './state.js';
import { t } from './strings.js';
import { faceLabel } from './ui.js';

export function showReply(reply, emotion, source) {
  if (!reply || !reply.text) return;
  const entry = { id: reply.id || null, text: reply.text, lang: reply.lang, audio_url: reply.audio_url || null,
                  hedged: !!reply.hedged, emotion, source };
  state.replies.push(entry);
  renderEntry(entry);
  if (entry.audio_url && !state.muted) playAudio(entry.audio_url);
}

function renderEntry(entry) {
  el.replyText.textContent = entry.text;
  el.replyText.dataset.emotion = entry.emotion || '';
  el.replyText.dataset.hedged = entry.hedged ? 'true' : 'false';
  el.replyText.lang = entry.lang || '';
  renderReplyEmotion(entry.emotion, entry.hedged);
  el.replay.disabled = !entry.audio_url;
}

/** Take down the reply on screen when it came from `source` (the photo panel after a bad file or a
 * failed analysis: it was about another image); the idle prompt comes back, and neither Replay nor a
 * language switch brings the old reply back. */
export function clearReply(source) {
  const last = state.replies[state.replies.length - 1];
  if (!last || last.source !== source || last.cleared) return;
  last.cleared = true;
  el.audio.pause();
  const idle = document.createElement('span');
  idle.className = 'muted';
  idle.dataset.i18n = 'replyIdle';
  idle.textContent = t('replyIdle');
  el.replyText.replaceChildren(idle);
  delete el.replyText.dataset.emotion;
  delete el.replyText.dataset.hedged;
  el.replyText.lang = '';
  el.replyEmotion.textContent = '';
  el.replay.disabled = true;
}

/** The language changed: the reply on screen is fetched again in the new language (same reply id),
 * shown, and spoken unless muted. */
export async function translateLastReply() {
  const last = state.replies[state.replies.length - 1];
  if (!last || last.cleared || !last.id || last.lang === state.lang) return;
  const lang = state.lang;
  let data;
  try {
    data = await fetchReply(last.id, lang, !state.muted);
  } catch (err) {
    state.errors.push(String(err));
    return;
  }
  if (state.lang !== lang || state.replies[state.replies.length - 1] !== last || last.cleared || !data.reply) return;
  Object.assign(last, { text: data.reply.text, lang: data.reply.lang, audio_url: data.reply.audio_url || null });
  renderEntry(last);
  if (last.audio_url && !state.muted) playAudio(last.audio_url);
}

export function renderReplyEmotion(emotion, hedged = false) {
  el.replyEmotion.textContent = '';
  if (!emotion) return;
  const sw = document.createElement('span');
  sw.className = 'swatch';
  sw.style.background = colorOf(emotion);
  const label = document.createElement('span');   // the swatch stays with its words when the line wraps
  label.append(sw, ' ', t('expressionIs', faceLabel(emotion, hedged)));
  el.replyEmotion.append(label);
  if (hedged) {  // the model was not sure of this face: say so beside the label
    const note = document.createElement('span');
    note.className = 'hedged-note';
    note.textContent = t('hedgedNote');
    el.replyEmotion.append(note);
  }
}

export function playAudio(url) {
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
