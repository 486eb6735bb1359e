// The session timeline, kept in this browser only: a point per answered frame, drawn as a chart with a
// legend, downloadable as CSV.
import { LABELS, colorOf, labelName, sortedLabels } from './labels.js';
import { currentModelCard } from './models.js';
import { el, state } from './state.js';
import { t } from './strings.js';
import { setStatusT } from './ui.js';

const TIMELINE_MAX_POINTS = 20000;
// "No face" is hatched, not a colour: a flat grey read as Neutral's grey. The legend's swatch
// (.swatch-none in style.css) draws the same hatch.
const NO_FACE_INK = '#5d6075';
let noFacePattern = null;

function noFaceFill(ctx) {
  if (!noFacePattern) {
    const tile = document.createElement('canvas');
    tile.width = tile.height = 6;
    const g = tile.getContext('2d');
    g.strokeStyle = NO_FACE_INK;
    g.lineWidth = 1.5;
    g.beginPath();
    for (const d of [-6, 0, 6]) { g.moveTo(d, 6); g.lineTo(d + 6, 0); }   // 45° lines that tile seamlessly
    g.stroke();
    noFacePattern = ctx.createPattern(tile, 'repeat');
  }
  return noFacePattern;
}

// A new session: an empty timeline that starts now.
export function startTimeline() {
  state.sessionStart = performance.now();
  state.sessionStartWall = new Date();
  state.timeline = [];
  state.timelineLabels = [];
  el.downloadCsv.disabled = true;
  drawTimeline();
}

export function addTimelinePoint(now, nFaces, dom) {
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

export function drawTimeline() {
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
    ctx.fillStyle = pts[i].emotion ? colorOf(pts[i].emotion) : noFaceFill(ctx);
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

// The labels the timeline shows: those seen this session, else the selected model's, else all.
function timelineLabels() {
  if (state.timelineLabels.length) return state.timelineLabels;
  const card = currentModelCard();
  return (card && card.classes) || LABELS;
}

export function renderLegend() {
  const labels = timelineLabels();
  const key = state.lang + '|' + labels.join(',');
  if (el.legend.dataset.key === key) return;
  el.legend.dataset.key = key;
  el.legend.textContent = '';
  for (const label of labels) {
    const li = document.createElement('li');
    li.dataset.label = label;
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = colorOf(label);
    li.append(sw, labelName(label));
    el.legend.append(li);
  }
  const none = document.createElement('li');   // the band's hatch: no face at that moment
  none.dataset.label = 'none';
  const sw = document.createElement('span');
  sw.className = 'swatch swatch-none';
  none.append(sw, t('legendNone'));
  el.legend.append(none);
}

function csvCell(v) {
  const s = v == null ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function timelineCsv() {
  const labels = timelineLabels();
  const rows = [['time_s', 'timestamp', 'faces', 'emotion', ...labels.map((l) => `score_${l}`)]];
  for (const p of state.timeline) {
    rows.push([
      p.t.toFixed(2), p.wall.toISOString(), p.faces, p.emotion || '',
      ...labels.map((l) => (p.scores && p.scores[l] != null ? p.scores[l].toFixed(4) : '')),
    ]);
  }
  return rows.map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

export function downloadCsv() {
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
