// The model list and the accuracy panel of the selected model, from the cards the server serves.
import { fetchModels } from './api.js';
import { colorOf, labelName, pickSplit, sortedLabels, splitName } from './labels.js';
import { el, state } from './state.js';
import { t } from './strings.js';
import { escapeHtml, pct, pct1 } from './ui.js';

/** A card's title in the page's language (cards may carry `titles: {vi: ...}`), else its English one. */
export function modelTitle(m) {
  return (m.titles && m.titles[state.lang]) || m.title || m.name;
}

/** The menu's short name in the page's language (cards' `short`), else the title. */
export function menuName(m) {
  return (m.short && (m.short[state.lang] || m.short.en)) || modelTitle(m);
}

/** The models the menu offers: the default first, then the others in the server's order; an
 * ensemble's members that are not meant to be picked alone (`menu: false`) are left out. */
export function menuModels() {
  const shown = state.models.filter((m) => m.menu !== false || m.name === state.model);
  return shown.filter((m) => m.name === state.defaultModel).concat(shown.filter((m) => m.name !== state.defaultModel));
}

function fillSelect() {
  const select = el.modelSelect;
  select.textContent = '';
  for (const m of menuModels()) {
    const opt = new Option(menuName(m), m.name);
    opt.title = modelTitle(m);
    select.append(opt);
  }
  select.value = state.model;
}

export async function loadModels() {
  try {
    const data = await fetchModels();
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
  state.model = state.defaultModel && state.models.some((m) => m.name === state.defaultModel)
    ? state.defaultModel : state.models[0].name;
  fillSelect();
  select.disabled = false;
  renderModelInfo();
}

/** The calm-face rate a card reports on the FER+ test set (else validation). */
function pickCalm(card) {
  for (const split of ['ferplus_test', 'ferplus_val']) {
    const m = card.metrics && card.metrics[split];
    if (m && typeof m.calm_face_rate === 'number') return { rate: m.calm_face_rate, n: m.strong_neutral_faces || '?' };
  }
  return null;
}

export function currentModelCard() {
  return state.models.find((m) => m.name === state.model) || null;
}

function setScoresNote(text) {
  for (const node of document.querySelectorAll('.scores-note')) node.textContent = text || '';
}

export function renderModelInfo() {
  for (const opt of el.modelSelect.options) {
    const m = state.models.find((x) => x.name === opt.value);
    if (m) { opt.text = menuName(m); opt.title = modelTitle(m); }
  }
  const card = currentModelCard();
  setScoresNote('');
  const tbody = el.modelRecall.querySelector('tbody');
  tbody.textContent = '';
  if (!card) { el.modelRecall.hidden = true; return; }
  const title = modelTitle(card);
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
  const splitTitle = splitName(split);
  let html = t('modelSummary', {
    title: escapeHtml(title), acc: pct1(m.accuracy),
    f1: typeof m.macro_f1 === 'number' ? m.macro_f1.toFixed(3) : null,
    split: escapeHtml(splitTitle), n: n || null, k: classes.length,
    chance: classes.length ? pct(1 / classes.length) : '?',
  });
  if (card.kind === 'ensemble' && Array.isArray(card.members)) {
    const names = card.members.map((x) => escapeHtml(typeof x === 'string' ? x : (x.name || '?'))).join(', ');
    html += ' ' + t('ensembleOf', names);
  }
  const purpose = card.purpose && (card.purpose[state.lang] || card.purpose.en);
  if (purpose) html += ` ${escapeHtml(purpose)}`;
  const calm = pickCalm(card);
  if (calm) html += `<br><span id="calm-rate" data-rate="${calm.rate}">${t('calmRate', pct1(calm.rate), calm.n)}</span>`;
  el.modelSummary.innerHTML = html;
  setScoresNote(t('scoresNote', menuName(card), pct(m.accuracy), splitTitle));
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
    bar.style.setProperty('--recall', String(Math.max(0, Math.min(1, Number(c.recall) || 0))));   // width: style.css
    bar.style.background = colorOf(label);
    tdR.append(bar, pct(c.recall));
    const tdS = document.createElement('td');
    tdS.textContent = c.support != null ? String(c.support) : '–';
    tr.append(th, tdR, tdS);
    tbody.append(tr);
  }
  el.modelRecall.hidden = !tbody.children.length;
}
