// MTCNN in the browser: the cascade of app/mtcnn_ort.py and the size rules of app/faces.py, on
// onnxruntime-web, with the same three networks (GET /api/detector/<net>.onnx builds them from the
// mtcnn wheel's weights as the server does) and the settings the server reports (GET /api/ondevice).
// Each step names its Python counterpart; keep them in step (tests/e2e/test_ondevice.py fails when the
// two engines find different faces).
import { image, resizeArea, warp } from './imgproc.js';

// The networks take NCHW pixels in [0, 255] (the scaling is folded into their first convolution).
function toNCHW(img) {
  const { width: w, height: h, data } = img;
  const n = w * h;
  const out = new Float32Array(3 * n);
  for (let i = 0, j = 0; i < n; i += 1, j += 3) {
    out[i] = data[j]; out[n + i] = data[j + 1]; out[2 * n + i] = data[j + 2];
  }
  return out;
}

// Rows are [x1, y1, x2, y2, score, ...extra]; arrays of plain arrays.
function iouUnion(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

// mtcnn_ort.nms: greedy, best score first (a stable sort, as cv2.dnn.NMSBoxes and numpy's argsort).
export function nms(boxes, threshold, over = 'union') {
  const order = boxes.map((b, i) => i).sort((i, j) => (boxes[j][4] - boxes[i][4]) || (i - j));
  const keep = [];
  if (over === 'union') {
    for (const i of order) {
      if (keep.every((k) => iouUnion(boxes[i], boxes[k]) <= threshold)) keep.push(i);
    }
    return keep.map((i) => boxes[i]);
  }
  let rest = order;
  while (rest.length) {
    const i = rest[0];
    keep.push(i);
    const a = boxes[i];
    const areaA = Math.max(a[2] - a[0], 0) * Math.max(a[3] - a[1], 0);
    rest = rest.slice(1).filter((j) => {
      const b = boxes[j];
      const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
      const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
      const areaB = Math.max(b[2] - b[0], 0) * Math.max(b[3] - b[1], 0);
      const denom = Math.min(areaA, areaB);
      return (denom > 0 ? (w * h) / denom : 0) <= threshold;
    });
  }
  return keep.map((i) => boxes[i]);
}

function best(boxes, k) {  // mtcnn_ort.best: the k best-scored rows
  if (boxes.length <= k) return boxes;
  return boxes.slice().sort((a, b) => b[4] - a[4]).slice(0, k);
}

function square(boxes) {  // mtcnn_ort.square
  return boxes.map((b) => {
    const w = b[2] - b[0], h = b[3] - b[1], side = Math.max(w, h);
    const out = b.slice();
    out[0] = b[0] + (w - side) / 2; out[1] = b[1] + (h - side) / 2;
    out[2] = out[0] + side; out[3] = out[1] + side;
    return out;
  });
}

// mtcnn_ort.crops: side x side bilinear crops, NCHW, mid-grey outside the image.
function crops(img, boxes, side) {
  const { width: w, height: h } = img;
  const sx = (w - 1) / w, sy = (h - 1) / h;
  const per = 3 * side * side;
  const out = new Float32Array(boxes.length * per);
  boxes.forEach((b, k) => {
    const m = [(b[2] - b[0]) * sx / (side - 1), 0, b[0] * sx, 0, (b[3] - b[1]) * sy / (side - 1), b[1] * sy];
    out.set(toNCHW(warp(img, m, side, side, 127.5, true)), k * per);
  });
  return out;
}

// mtcnn_ort._settled: every box moved and resized by less than `tolerance` of its size.
function settled(before, after, tolerance = 0.02) {
  return before.every((b, i) => {
    const w = Math.max(b[2] - b[0], 1), h = Math.max(b[3] - b[1], 1);
    const a = after[i];
    return Math.abs(a[0] - b[0]) / w < tolerance && Math.abs(a[1] - b[1]) / h < tolerance
      && Math.abs(a[2] - b[2]) / w < tolerance && Math.abs(a[3] - b[3]) / h < tolerance;
  });
}

// mtcnn_ort.pyramid
export function pyramid(height, width, minFace, factor) {
  const scales = [];
  let scale = 12 / Math.max(minFace, 12);
  while (Math.min(height, width) * scale >= 12) {
    scales.push(scale);
    scale *= factor;
  }
  return scales;
}

function refine(boxes, reg, prob, threshold) {  // MtcnnOrt._refine
  const out = [];
  boxes.forEach((b, i) => {
    const score = prob[i * 2 + 1];
    if (!(score > threshold)) return;
    const w = b[2] - b[0] + 1, h = b[3] - b[1] + 1;
    const r = b.slice();
    r[0] += reg[i * 4] * w; r[1] += reg[i * 4 + 1] * h; r[2] += reg[i * 4 + 2] * w; r[3] += reg[i * 4 + 3] * h;
    r[4] = score;
    out.push(r);
  });
  return out;
}

export class Mtcnn {
  // ort: the onnxruntime-web module; sessions: {pnet, rnet, onet}; settings: /api/ondevice's "detector"
  constructor(ort, sessions, settings) {
    this.ort = ort;
    this.sessions = sessions;
    this.s = settings;
  }

  async run(name, data, dims) {
    const session = this.sessions[name];
    const feeds = { [session.inputNames[0]]: new this.ort.Tensor('float32', data, dims) };
    const out = await session.run(feeds);
    return session.outputNames.map((n) => out[n]);
  }

  // MtcnnOrt.detect_faces on a float RGB image: raw faces {box, confidence, keypoints} in its pixels.
  async detectRaw(img, minFace, factor) {
    const [t1, t2, t3] = this.s.thresholds;
    if (!(img.data instanceof Float32Array)) img = image(Float32Array.from(img.data), img.width, img.height, 3);
    const { width, height } = img;
    let found = [];
    for (const scale of pyramid(height, width, minFace, factor)) {
      const w = Math.trunc(width * scale), h = Math.trunc(height * scale);
      const level = resizeArea(img, w, h);
      const [reg, prob] = await this.run('pnet', toNCHW(level), [1, 3, h, w]);
      const [, , oh, ow] = prob.dims;
      const p = prob.data, r = reg.data, plane = oh * ow;
      let boxes = [];
      for (let y = 0; y < oh; y += 1) {
        for (let x = 0; x < ow; x += 1) {
          const score = p[plane + y * ow + x];
          if (!(score > t1)) continue;
          const d = [0, 1, 2, 3].map((c) => r[c * plane + y * ow + x] * 12);
          boxes.push([(x * 2 + d[0]) / scale, (y * 2 + d[1]) / scale,
            (x * 2 + 12 + d[2]) / scale, (y * 2 + 12 + d[3]) / scale, score]);
        }
      }
      if (!boxes.length) continue;
      boxes = best(boxes, this.s.pnet_max_per_level);
      found = found.concat(nms(boxes, 0.5));
    }
    if (!found.length) return [];
    let boxes = square(best(nms(found, 0.7), this.s.rnet_max_candidates));

    // Stage 2, RNet
    let [reg, prob] = await this.run('rnet', crops(img, boxes, 24), [boxes.length, 3, 24, 24]);
    boxes = refine(boxes, reg.data, prob.data, t2);
    boxes = square(best(nms(boxes, 0.7), this.s.onet_max_candidates));
    if (!boxes.length) return [];

    // Stage 3, ONet: score, box and five landmarks
    boxes = (await this.onet(img, boxes)).filter((b) => b[4] > t3);
    boxes = nms(boxes, 0.7, 'min');
    return boxes.map((row) => this.rawFace(row, width, height));
  }

  // MtcnnOrt._onet: ONet on square boxes -> rows [x1, y1, x2, y2, score, 5 xs, 5 ys], regressed, no threshold.
  async onet(img, boxes) {
    if (!boxes.length) return [];
    const [oreg, marks, oprob] = await this.run('onet', crops(img, boxes, 48), [boxes.length, 3, 48, 48]);
    const rows = boxes.map((b, i) => {
      const w = b[2] - b[0] + 1, h = b[3] - b[1] + 1;
      const xs = [], ys = [];
      for (let k = 0; k < 5; k += 1) {
        xs.push(marks.data[i * 10 + k] * w + b[0] - 1);
        ys.push(marks.data[i * 10 + 5 + k] * h + b[1] - 1);
      }
      return b.slice(0, 5).concat(xs, ys);
    });
    return refine(rows, oreg.data, oprob.data, -1);
  }

  // MtcnnOrt._faces: a row as a raw face, clipped to the image.
  rawFace(row, width, height) {
    const x1 = Math.max(row[0], 0), y1 = Math.max(row[1], 0);
    const x2 = Math.min(row[2], width), y2 = Math.min(row[3], height);
    const keypoints = {};
    this.s.keypoints.forEach((name, i) => { keypoints[name] = [pyRound(row[5 + i]), pyRound(row[10 + i])]; });
    return { box: [pyRound(x1), pyRound(y1), pyRound(x2 - x1), pyRound(y2 - y1)], confidence: row[4], keypoints };
  }

  // FaceDetector._to_image: a raw face in pixels of the analysed image, or null under min_confidence
  // or with less than 2 pixels inside it.
  toImage(face, scale, w, h) {
    const conf = face.confidence;
    if (conf < this.s.min_confidence) return null;
    const [bx, by, bw, bh] = face.box.map((v) => v / scale);
    const x0 = Math.max(0, pyRound(bx)), y0 = Math.max(0, pyRound(by));
    const x1 = Math.min(w, pyRound(bx + bw)), y1 = Math.min(h, pyRound(by + bh));
    if (x1 - x0 < 2 || y1 - y0 < 2) return null;
    const keypoints = {};
    for (const [name, p] of Object.entries(face.keypoints)) {
      keypoints[name] = [pyRound(Math.min(Math.max(p[0] / scale, 0), w - 1)),
        pyRound(Math.min(Math.max(p[1] / scale, 0), h - 1))];
    }
    return { box: [x0, y0, x1 - x0, y1 - y0], confidence: Math.round(conf * 1e4) / 1e4, keypoints };
  }

  // FaceDetector.refind (MtcnnOrt.refind): faces known from an earlier frame found again around their
  // boxes ([x, y, w, h], pixels of `img`) by ONet alone, `passes` times; one entry per box, or null.
  async refind(img, boxes, passes = 2) {
    const s = this.s;
    const { width: w, height: h } = img;
    if (!boxes.length || Math.min(h, w) < s.min_side) return boxes.map(() => null);
    let small = img, scale = 1;
    if (Math.max(w, h) > s.max_side) ({ img: small, scale } = downscale(img, s.max_side));
    let rows = boxes.map((b) => [b[0] * scale, b[1] * scale, (b[0] + b[2]) * scale, (b[1] + b[3]) * scale, 0]);
    for (let k = 0; k < Math.max(1, passes); k += 1) {
      const before = rows;
      rows = await this.onet(small, square(rows.map((r) => r.slice(0, 5))));
      if (settled(before, rows)) break;   // the faces did not move: another pass would find the same
    }
    return rows.map((row) => this.toImage(this.rawFace(row, small.width, small.height), scale, w, h));
  }

  // FaceDetector.detect: faces in pixels of `img`, clipped, largest first, at most max_faces.
  // minFace: the smallest face looked for, in pixels of `img` (live frames ask for large ones).
  async detect(img, minFace = 0) {
    const s = this.s;
    const { width: w, height: h } = img;
    if (Math.min(h, w) < s.min_side) return [];
    let small = img, scale = 1;
    if (Math.max(w, h) > s.max_side) ({ img: small, scale } = downscale(img, s.max_side));
    const wanted = Math.max(s.min_face_size, Math.trunc(minFace || 0) * scale);
    if (wanted > s.mtcnn_min_face) {
      const longest = Math.max(small.width, small.height);
      const r = downscale(small, Math.max(1, Math.trunc(longest * s.mtcnn_min_face / wanted)));
      small = r.img;
      scale *= r.scale;
    }
    if (Math.min(small.width, small.height) < s.min_side) return [];
    const raw = await this.detectRaw(small, Math.min(wanted, s.mtcnn_min_face), s.scale_factor);
    const faces = raw.map((face) => this.toImage(face, scale, w, h)).filter((f) => f !== null);
    faces.sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]);
    return faces.slice(0, s.max_faces);
  }
}

// app.imaging.downscale: the longer side to max_side, INTER_AREA; scale = small / original.
export function downscale(img, maxSide) {
  const longest = Math.max(img.width, img.height);
  if (longest <= maxSide) return { img, scale: 1 };
  const scale = maxSide / longest;
  const w = Math.max(1, pyRound(img.width * scale)), h = Math.max(1, pyRound(img.height * scale));
  return { img: resizeArea(img, w, h), scale };
}

// Python's round(): half to even.
export function pyRound(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

