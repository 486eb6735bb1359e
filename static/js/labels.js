// What the server says about labels and test splits, rendered into the page by app/pages.py (from
// app/assistant.py and model_core/labels.py), so the page, the spoken replies and the model cards always
// name them the same way. Nothing here is a copy of a server list.
import { state } from './state.js';

const data = document.body.dataset;
// Every label the server knows, in the canonical order (docs/ARCHITECTURE.md, contract 4): bars and legends follow it.
export const LABELS = JSON.parse(data.labels || '[]');
const LABEL_NAMES = JSON.parse(data.displayNames || '{}');   // {lang: {label: name}}
const SPLIT_NAMES = JSON.parse(data.splitNames || '{}');     // {lang: {split: name}}, in the server's order

const COLORS = {
  angry: '#e5484d', disgust: '#4d9b2c', fear: '#8e4ec6', happy: '#e2a400',
  sad: '#3e63dd', surprise: '#f76b15', neutral: '#8b8d98', contempt: '#12a594',
};
const FALLBACK_COLOR = '#6366f1';

export function colorOf(label) { return COLORS[label] || FALLBACK_COLOR; }

export function labelName(label) {
  if (!label) return '–';
  const names = LABEL_NAMES[state.lang] || LABEL_NAMES.en || {};
  return names[label] || (label.charAt(0).toUpperCase() + label.slice(1));
}

export function sortedLabels(scores) {
  const keys = Object.keys(scores || {});
  return keys.sort((a, b) => {
    const ia = LABELS.indexOf(a), ib = LABELS.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
}

export function splitName(split) {
  return (SPLIT_NAMES[state.lang] || SPLIT_NAMES.en || {})[split] || split;
}

// The measured split to headline for a card: the first, in the server's order, of the card's own label
// scheme (a split named "<scheme>_..."), else the first of any other it was measured on.
export function pickSplit(card) {
  const metrics = card.metrics || {};
  const scheme = String(card.label_scheme || '').toLowerCase();
  const known = Object.keys(SPLIT_NAMES.en || {});
  const order = [...known.filter((s) => scheme && s.startsWith(scheme + '_')),
    ...known.filter((s) => !(scheme && s.startsWith(scheme + '_')))];
  for (const split of order) if (metrics[split]) return split;
  const any = Object.keys(metrics);
  return any.length ? any[0] : null;
}
