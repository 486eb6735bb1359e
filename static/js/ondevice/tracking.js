// app/tracking.py in the browser (private mode): the last frame's faces re-found around their boxes by
// ONet alone, with a full detection when there is no usable hint, every `full_every` frames, on a
// stale or absurd hint, or when a face is lost. The numbers come from /api/ondevice's "tracking";
// tests/e2e/test_ondevice.py holds both sides to the same answers.

export function boxIou(a, b) {  // app.faces.box_iou
  const inter = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]))
    * Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

// tracking.box_fits
export function boxFits(box, width, height, minSide) {
  const [x, y, w, h] = box;
  if (!box.every(Number.isFinite)) return false;
  if (w < minSide || h < minSide || w > width || h > height) return false;
  if (!(w / h >= 0.4 && w / h <= 2.5)) return false;
  const iw = Math.min(x + w, width) - Math.max(x, 0), ih = Math.min(y + h, height) - Math.max(y, 0);
  return iw > 0 && ih > 0 && iw * ih >= 0.5 * w * h;
}

function plausible(found, hinted, t) {  // tracking._plausible
  if (!found) return false;
  const ratio = Math.sqrt(Math.max(found.box[2] * found.box[3], 1) / Math.max(hinted[2] * hinted[3], 1));
  return ratio >= 1 / t.size_change && ratio <= t.size_change && boxIou(found.box, hinted) > 0.1;
}

// tracking.assign_ids: a full detection's faces take the ids of the hinted boxes they overlap.
export function assignIds(faces, hintFaces, t) {
  const pairs = [];
  faces.forEach((f, fi) => hintFaces.forEach((h) => pairs.push([boxIou(f.box, h.box), fi, h.id])));
  // Python sorts the (overlap, face index, id) tuples in reverse: ties by the larger index first
  pairs.sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2]);
  const ids = new Map(), used = new Set();
  for (const [overlap, fi, id] of pairs) {
    if (overlap < t.match_iou) break;
    if (ids.has(fi) || used.has(id)) continue;
    ids.set(fi, id);
    used.add(id);
  }
  let next = Math.max(0, ...hintFaces.map((h) => h.id)) + 1;
  return faces.map((f, fi) => ({ ...f, track: ids.has(fi) ? ids.get(fi) : next++ }));
}

function dedupe(faces, t) {  // tracking._dedupe
  const kept = [];
  for (const f of faces.slice().sort((a, b) => a.track - b.track)) {
    if (kept.every((k) => boxIou(f.box, k.box) <= t.duplicate_iou)) kept.push(f);
  }
  return kept.sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]);
}

// tracking.locate. hint: {faces: [{id, box}], since_full, age_ms} or null; detector: Mtcnn.
export async function locate(detector, rgb, hint, minFace, t) {
  const faces = (hint && Array.isArray(hint.faces)) ? hint.faces.slice(0, detector.s.max_faces) : [];
  const sinceFull = hint && Number.isInteger(hint.since_full) && hint.since_full >= 0 ? hint.since_full : 0;
  let reason;
  if (!faces.length) reason = 'no_faces';
  else if (sinceFull + 1 >= t.full_every) reason = 'periodic';
  else if (Number(hint.age_ms) > t.max_age_ms) reason = 'stale';
  else if (!faces.every((f) => Array.isArray(f.box) && f.box.length === 4 && boxFits(f.box, rgb.width, rgb.height, detector.s.min_face_size))) reason = 'bad_box';
  else if (faces.length > t.max_tracked) reason = 'many_faces';
  else {
    // one face at a time: the first one lost ends the attempt (a bad hint costs one crop's passes)
    const out = [];
    for (const f of faces) {
      const [found] = await detector.refind(rgb, [f.box], t.passes);
      if (!plausible(found, f.box, t)) break;
      out.push({ ...found, track: f.id });
    }
    if (out.length === faces.length) {
      return { faces: dedupe(out, t), mode: 'tracked', reason: 'ok', sinceFull: sinceFull + 1 };
    }
    reason = 'lost';
  }
  const detected = await detector.detect(rgb, minFace);
  return { faces: assignIds(detected, faces, t), mode: 'full', reason, sinceFull: 0 };
}
