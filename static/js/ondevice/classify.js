// A detected face -> its scores, in the browser: model_core.preprocess.crop_face (square, eyes levelled),
// preprocess_faces (grey, source_size, size, the card's scale), predict_with_tta (the card's views),
// the card's serving temperature, ensemble voting by label name, and ModelCard.confident. Every number
// comes from the model card (/api/models) or the server's settings (/api/ondevice), none from here.
import { cropReplicate, resizeFace, toGrey, warp } from './imgproc.js';
import { pyRound } from './mtcnn.js';

const CAFFE_BGR_MEANS = [103.939, 116.779, 123.68];

// model_core.preprocess.eye_roll
export function eyeRoll(keypoints) {
  if (!keypoints || !keypoints.left_eye || !keypoints.right_eye) return null;
  const [a, b] = [keypoints.left_eye, keypoints.right_eye].map((p) => [Number(p[0]), Number(p[1])])
    .sort((p, q) => (p[0] - q[0]) || (p[1] - q[1]));
  if (b[0] - a[0] <= 0) return null;
  return (Math.atan2(b[1] - a[1], b[0] - a[0]) * 180) / Math.PI;
}

// model_core.preprocess.crop_face, then to_grey (as preprocess_faces does): the face as grey uint8.
export function cropFace(rgb, box, keypoints, crop) {
  const [x, y, w, h] = box.map(Number);
  const side = Math.max(w, h) * crop.margin;
  const cx = x + w / 2, cy = y + h / 2;
  const x0 = pyRound(cx - side / 2), y0 = pyRound(cy - side / 2);
  const s = Math.max(1, pyRound(side));
  const roll = keypoints ? eyeRoll(keypoints) : null;
  if (roll !== null && Math.abs(roll) >= crop.align_min_degrees && Math.abs(roll) <= crop.align_max_degrees) {
    // cv2.getRotationMatrix2D((cx, cy), roll, 1) shifted so the box centre lands at the square's centre,
    // inverted: warp() maps destination pixels to source points.
    const a = Math.cos((roll * Math.PI) / 180), b = Math.sin((roll * Math.PI) / 180);
    const tx = (1 - a) * cx - b * cy + (s / 2 - cx), ty = b * cx + (1 - a) * cy + (s / 2 - cy);
    // forward: [a, b, tx; -b, a, ty]; its inverse (a rotation): [a, -b; b, a] applied to (p - t)
    const inv = [a, -b, -(a * tx - b * ty), b, a, -(b * tx + a * ty)];
    return toGrey(warp(rgb, inv, s, s, 'replicate'));
  }
  return toGrey(cropReplicate(rgb, x0, y0, s, s));
}

// preprocess_faces for one grey face: Float32Array (size * size * channels), NHWC.
export function faceInput(face, spec) {
  let g = face;
  const source = spec.source_size;
  if (source && (g.width !== source || g.height !== source)) g = resizeFace(g, source);
  if (g.width !== spec.size || g.height !== spec.size) g = resizeFace(g, spec.size);
  const c = spec.channels, n = spec.size * spec.size;
  const out = new Float32Array(n * c);
  for (let i = 0; i < n; i += 1) {
    const v = g.data[i] / 255;
    for (let ch = 0; ch < c; ch += 1) {
      let x = v;
      if (spec.scale === 'centered') x = (v - 0.5) * 2;
      else if (spec.scale === 'caffe_bgr') x = v * 255 - CAFFE_BGR_MEANS[ch];
      out[i * c + ch] = x;
    }
  }
  return out;
}

function mirror(input, size, c) {  // a face's NHWC input, left-right flipped
  const out = new Float32Array(input.length);
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      const src = (y * size + x) * c, dst = (y * size + (size - 1 - x)) * c;
      for (let ch = 0; ch < c; ch += 1) out[dst + ch] = input[src + ch];
    }
  }
  return out;
}

function tempered(probs, k, temperature) {  // model_core.predictor.tempered, one row of k
  const logp = probs.map((p) => Math.log(Math.max(p, 1e-12)) / temperature);
  const m = Math.max(...logp);
  const e = logp.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

// One single model's probabilities for grey face crops: rows in card class order.
export async function singleProbs(ort, session, card, faces) {
  const spec = card.input;
  const size = spec.size, c = spec.channels, per = size * size * c;
  const views = ['', ...(card.tta || [])];
  const n = faces.length;
  const batch = new Float32Array(n * views.length * per);
  faces.forEach((face, i) => {
    const x = faceInput(face, spec);
    batch.set(x, i * per);
    views.slice(1).forEach((v, j) => {
      if (v !== 'flip') throw new Error(`unknown test-time augmentation ${v}`);
      batch.set(mirror(x, size, c), ((j + 1) * n + i) * per);
    });
  });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', batch, [n * views.length, size, size, c]) };
  const out = (await session.run(feeds))[session.outputNames[0]].data;
  const k = card.classes.length;
  const cal = card.calibration || {};
  const temperature = cal.applied === 'at_serving' ? Number(cal.temperature) : null;
  const rows = [];
  for (let i = 0; i < n; i += 1) {
    const mean = new Array(k).fill(0);
    for (let v = 0; v < views.length; v += 1) {
      let p = Array.from(out.subarray((v * n + i) * k, (v * n + i + 1) * k));
      if (temperature) p = tempered(p, k, temperature);
      for (let j = 0; j < k; j += 1) mean[j] += p[j] / views.length;
    }
    rows.push(mean);
  }
  return rows;
}

// model_core.preprocess.combine_members
export function combineMembers(memberProbs, memberClasses, weights, classes) {
  const n = memberProbs[0].length;
  const total = Array.from({ length: n }, () => new Array(classes.length).fill(0));
  memberProbs.forEach((probs, m) => {
    probs.forEach((row, i) => {
      const mapped = classes.map((label) => {
        const j = memberClasses[m].indexOf(label);
        return j >= 0 ? row[j] : 0;
      });
      const sum = Math.max(mapped.reduce((a, b) => a + b, 0), 1e-12);
      mapped.forEach((v, j) => { total[i][j] += weights[m] * (v / sum); });
    });
  });
  const wsum = Math.max(weights.reduce((a, b) => a + b, 0), 1e-12);
  return total.map((row) => row.map((v) => v / wsum));
}

// app.emotion.scores_for: the top label and {label: p} rounded to 5 places.
export function scoresFor(row, classes) {
  const clipped = row.map((p) => (Number.isFinite(p) && p > 0 ? p : 0));
  const total = clipped.reduce((a, b) => a + b, 0);
  const norm = total > 0 ? clipped.map((p) => p / total) : clipped.map(() => 1 / clipped.length);
  let top = 0;
  norm.forEach((p, j) => { if (p > norm[top]) top = j; });
  const scores = {};
  classes.forEach((label, j) => { scores[label] = Math.round(norm[j] * 1e5) / 1e5; });
  return { emotion: classes[top], scores };
}

// model_core.card.ModelCard.confident
export function confident(card, scores) {
  const rule = card.confidence || {};
  if (rule.min_top === undefined) return true;
  const values = Object.values(scores).sort((a, b) => b - a);
  const top = values[0], second = values.length > 1 ? values[1] : 0;
  return top >= rule.min_top && top - second >= (rule.min_margin || 0);
}

