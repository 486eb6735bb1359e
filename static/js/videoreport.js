// app/videoreport.py's report in the browser (issue 25, private mode): a clip's analysed frames -> per
// track its mean scores, dominant expression, share of frames per label and segments, in the JSON
// shape of `VideoReport.to_dict()` (what POST /api/video's last line carries), so js/video.js draws
// both with the same code. The rules and numbers are the server's: smoothing and the shortest segment
// come from /api/ondevice's "video" (app/videoreport.py's SMOOTH_S and MIN_SEGMENT_S), and Python's
// rounding (half to even) is kept where it decides a count. tests/app/test_videoreport_js.py runs this
// module in Node against the Python on the same frames.

// Python's round(x) (to an integer, ties to even).
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
}

// Python's round(x, n): the exact binary value rounded, an exact tie (0.03125 to 4 places, a share of
// 2 frames in 64) to the even digit, where toFixed would round it up.
export function roundTo(x, n) {
  if (x < 0) return -roundTo(-x, n);
  const long = x.toFixed(n + 30);   // exact: a tie's expansion ends at digit n + 1
  const dot = long.indexOf('.');
  const cut = long.slice(0, n ? dot + 1 + n : dot);
  if (/^50*$/.test(long.slice(dot + 1 + n)) && Number(cut[cut.length - 1]) % 2 === 0) return Number(cut);
  return Number(x.toFixed(n));
}

function argmax(row) {  // numpy's: the first of equal maxima
  let k = 0;
  for (let i = 1; i < row.length; i += 1) if (row[i] > row[k]) k = i;
  return k;
}

function meanRows(rows, from, to, width) {  // rows[from..to) averaged column-wise
  const out = new Array(width).fill(0);
  for (let i = from; i < to; i += 1) for (let k = 0; k < width; k += 1) out[k] += rows[i][k];
  return out.map((v) => v / (to - from));
}

// videoreport._series: one track's frame times and score rows (in `labels` order).
function series(frames, trackId, labels) {
  const times = [], rows = [];
  for (const f of frames) {
    for (const face of f.faces) {
      if (face.track === trackId) {
        times.push(f.time);
        rows.push(labels.map((l) => face.scores[l] || 0));
      }
    }
  }
  return { times, rows };
}

// videoreport.segments: scores averaged over a centred window of `smoothS`, the top label per frame,
// runs shorter than `minSegmentS` folded into the run before (the first into the one after).
export function segments(times, rows, labels, fps, smoothS, minSegmentS) {
  const n = times.length;
  if (!n) return [];
  const width = labels.length;
  const half = Math.max(0, pyRound(smoothS * fps / 2));
  const top = [];
  for (let i = 0; i < n; i += 1) top.push(argmax(meanRows(rows, Math.max(0, i - half), Math.min(n, i + half + 1), width)));
  let runs = [];  // [label index, first frame, last frame]
  top.forEach((k, i) => {
    if (runs.length && runs[runs.length - 1][0] === k) runs[runs.length - 1][2] = i;
    else runs.push([k, i, i]);
  });
  const step = 1 / fps;
  const minFrames = Math.max(1, Math.ceil(minSegmentS * fps - 1e-9));
  let changed = true;
  while (changed && runs.length > 1) {
    changed = false;
    for (let j = 0; j < runs.length; j += 1) {
      const [, first, last] = runs[j];
      if (last - first + 1 < minFrames) {
        const into = j > 0 ? j - 1 : j + 1;
        runs[into][1] = Math.min(runs[into][1], first);
        runs[into][2] = Math.max(runs[into][2], last);
        runs.splice(j, 1);
        changed = true;
        break;
      }
    }
    const merged = [];
    for (const run of runs) {  // neighbours that now show the same label become one
      if (merged.length && merged[merged.length - 1][0] === run[0]) merged[merged.length - 1][2] = run[2];
      else merged.push(run);
    }
    runs = merged;
  }
  return runs.map(([k, first, last], j) => {
    const end = j + 1 < runs.length ? times[runs[j + 1][1]] : times[last] + step;
    let sum = 0;
    for (let i = first; i <= last; i += 1) sum += rows[i][k];
    return {
      start: roundTo(times[first], 3),
      end: roundTo(end, 3),
      emotion: labels[k],
      frames: last - first + 1,
      score: roundTo(sum / (last - first + 1), 4),
    };
  });
}

// videoreport.build_report(...).to_dict(): frames are POST /api/video's frame lines
// ({index, time, mode, faces: [{track, box, confidence, emotion, scores, confident}]}).
export function buildReport(frames, { video, model, labels, fps, smoothS, minSegmentS, source = null,
  truncated = null, decodedFrames = 0, timings = {} }) {
  const ids = [];
  for (const f of frames) for (const face of f.faces) if (face.track != null && !ids.includes(face.track)) ids.push(face.track);
  const tracks = ids.map((id) => {
    const { times, rows } = series(frames, id, labels);
    const mean = meanRows(rows, 0, rows.length, labels.length);
    const tops = rows.map(argmax);
    return {
      id,
      start: roundTo(times[0], 3),
      end: roundTo(times[times.length - 1] + 1 / fps, 3),
      frames: times.length,
      dominant: labels[argmax(mean)],
      mean_scores: Object.fromEntries(labels.map((l, k) => [l, roundTo(mean[k], 4)])),
      shares: Object.fromEntries(labels.map((l, k) => [l, roundTo(tops.filter((x) => x === k).length / tops.length, 4)])),
      segments: segments(times, rows, labels, fps, smoothS, minSegmentS),
    };
  });
  let main = null;  // the face seen longest; the first on ties (Python's max)
  for (const tr of tracks) if (!main || tr.frames > main.frames) main = tr;
  return {
    source,
    video,
    model,
    labels: [...labels],
    fps,
    analysed_frames: frames.length,
    decoded_frames: decodedFrames,
    truncated,
    duration_analysed: frames.length ? roundTo(frames[frames.length - 1].time, 3) : 0,
    emotion: main ? main.dominant : null,
    tracks,
    timings_s: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, roundTo(v, 3)])),
    frames,
  };
}

export function mainTrack(report) {
  let main = null;
  for (const tr of report.tracks) if (!main || tr.frames > main.frames) main = tr;
  return main;
}
