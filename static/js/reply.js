// The assistant's answer: its text, the expression it answers, and its voice (muted or not).
import { colorOf, labelName } from './labels.js';
import { el, state } from './state.js';
import { t } from './strings.js';

export function showReply(reply, emotion, source) {
  if (!reply || !reply.text) return;
  const entry = { text: reply.text, lang: reply.lang, audio_url: reply.audio_url || null, emotion, source };
  state.replies.push(entry);
  el.replyText.textContent = reply.text;
  el.replyText.dataset.emotion = emotion || '';
  renderReplyEmotion(emotion);
  el.replay.disabled = !entry.audio_url;
  if (entry.audio_url && !state.muted) playAudio(entry.audio_url);
}

export function renderReplyEmotion(emotion) {
  el.replyEmotion.textContent = '';
  if (!emotion) return;
  const sw = document.createElement('span');
  sw.className = 'swatch';
  sw.style.background = colorOf(emotion);
  el.replyEmotion.append(sw, t('expressionIs', labelName(emotion)));
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
