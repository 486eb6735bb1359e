// Small pieces the panels share: numbers as percentages, status lines, score bars, face rows and boxes.
import { colorOf, labelName, sortedLabels } from './labels.js';
import { t } from './strings.js';

export function pct(p) { return `${Math.round((Number(p) || 0) * 100)}%`; }
export function pct1(p) { return `${((Number(p) || 0) * 100).toFixed(1)}%`; }

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

export function argmax(scores) {
  let best = null, bestP = -1;
  for (const [k, v] of Object.entries(scores || {})) if (v > bestP) { best = k; bestP = v; }
  return best;
}

export function setStatus(node, text, kind) {
  node.textContent = text || '';
  node.i18nMessage = null;
  if (kind) node.dataset.state = kind; else delete node.dataset.state;
}

// A status from the string table: remembered, so that it is re-translated when the language changes.
export function setStatusT(node, kind, key, ...args) {
  setStatus(node, t(key, ...args), kind);
  node.i18nMessage = [key, args];
}

// unsure: the model is not sure of this face (its card's confidence rule failed): the bars say so too.
export function renderBars(container, scores, { top, unsure = false } = {}) {
  container.textContent = '';
  container.classList.toggle('unsure', !!(scores && unsure));
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
    name.dataset.text = labelName(label);   // its bold width, reserved by style.css
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

/** A label as a face's tag shows it: with a "?" when the model is not sure of it. */
export function faceLabel(label, unsure = false) {
  return `${labelName(label)}${unsure ? '?' : ''}`;
}

export function faceRowContent(node, title, label, p, { unsure = false } = {}) {
  const sw = document.createElement('span');
  sw.className = 'swatch';
  sw.style.background = colorOf(label);
  const name = document.createElement('span');
  name.className = 'face-name';
  name.textContent = `${title}: ${faceLabel(label, unsure)}`;
  const val = document.createElement('span');
  val.className = 'face-pct';
  val.textContent = pct(p);
  node.append(sw, name);
  if (unsure) {
    const badge = document.createElement('span');
    badge.className = 'unsure-badge';
    badge.textContent = t('unsureBadge');
    node.append(badge);
  }
  node.append(val);
}

// unsure: a dashed box (the tag's text carries the "?", faceLabel).
export function drawFaceBox(ctx, box, label, text, { selected = false, scale = 1, unsure = false } = {}) {
  const [x, y, w, h] = box;
  const color = colorOf(label);
  const lw = Math.max(2, Math.round(scale * (selected ? 4 : 2.5)));
  ctx.lineWidth = lw;
  ctx.strokeStyle = color;
  if (unsure) ctx.setLineDash([lw * 3, lw * 2]);
  ctx.strokeRect(x, y, w, h);
  ctx.setLineDash([]);
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
