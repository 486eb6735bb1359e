// Every text of the page in every language: the static text (elements with data-i18n="key") and the
// messages the modules show. The texts are the server's (app/languages/<code>.py, one module per
// language), rendered into <body data-strings> by app/pages.py with the language list
// (<body data-languages>, the default first); the language menu's options come from the server too.
// A new language is one module on the server; nothing here changes.
//
// A text is a string, or {one, other, ...} plural forms (Intl.PluralRules, chosen by the first argument).
// In it, {0}, {1} are the caller's arguments and {name} a field of its one object argument; a [...]
// segment holding a placeholder is left out when one inside it has no value (null, undefined, '' or
// false); other brackets are text.
// Values may contain simple markup: they are our own constants, never user data.
import { state } from './state.js';

const data = document.body.dataset;
export const STRINGS = JSON.parse(data.strings || '{}');                 // {lang: {key: text}}
export const LANGUAGES = JSON.parse(data.languages || '[]');             // codes, the default first
export const DEFAULT_LANG = LANGUAGES[0] || 'en';

const PLACEHOLDER = /\{(\w+)\}/g;
const SEGMENT = /\[([^\][]*\{\w+\}[^\][]*)\]/g;   // only a [...] with a placeholder in it

function empty(v) { return v === null || v === undefined || v === '' || v === false; }

function plural(forms, lang, n) {
  let rule = 'other';
  try { rule = new Intl.PluralRules(lang).select(Number(n)); } catch (_) { /* unknown locale */ }
  return forms[rule] ?? forms.other;
}

/** `text` with its placeholders filled from `args` (see above). */
export function format(text, args = []) {
  const named = args.length === 1 && args[0] && typeof args[0] === 'object' ? args[0] : null;
  const value = (k) => (named && k in named ? named[k] : args[Number(k)]);
  return String(text)
    .replace(SEGMENT, (_, seg) => ([...seg.matchAll(PLACEHOLDER)].some((m) => empty(value(m[1]))) ? '' : seg))
    .replace(PLACEHOLDER, (_, k) => { const v = value(k); return empty(v) ? '' : String(v); });
}

/** The language a stored or browser preference names, if the server speaks it, else the default. */
export function pickLanguage(...wanted) {
  for (const w of wanted) {
    const code = String(w || '').toLowerCase().replace('_', '-').split('-')[0];
    if (LANGUAGES.includes(code)) return code;
  }
  return DEFAULT_LANG;
}

export function t(key, ...args) {
  const table = STRINGS[state.lang] || STRINGS[DEFAULT_LANG] || {};
  let v = key in table ? table[key] : (STRINGS[DEFAULT_LANG] || {})[key];
  if (v === undefined) return key;
  if (v && typeof v === 'object') v = plural(v, state.lang, args[0]);
  return format(v, args);
}

export function applyStrings() {
  document.documentElement.lang = state.lang;
  document.title = t('title');
  for (const node of document.querySelectorAll('[data-i18n]')) {
    const v = t(node.dataset.i18n);
    if (v.includes('<')) node.innerHTML = v; else node.textContent = v;
  }
}
