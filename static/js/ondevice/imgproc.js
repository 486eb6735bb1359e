// The image operations the server pipeline does with OpenCV, written for the browser: grey conversion,
// area and bilinear resizing, affine warps. Each follows OpenCV's definition (pixel centres at +0.5,
// cv::INTER_AREA's fractional box weights, RGB->grey with its fixed-point weights) so that a face crop
// reaches the model with the same pixels in both engines (tests/e2e/test_ondevice.py compares them).
//
// An image here is {data, width, height, channels}: data a Uint8ClampedArray/Uint8Array (0-255) or a
// Float32Array, row-major, channels interleaved.

export function image(data, width, height, channels) {
  return { data, width, height, channels };
}

// RGBA ImageData -> RGB uint8, what the detector works on (and the face crops are cut from).
export function fromImageData(imageData) {
  const { width, height, data } = imageData;
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0, j = 0, k = 0; i < n; i += 1, j += 4, k += 3) {
    rgb[k] = data[j]; rgb[k + 1] = data[j + 1]; rgb[k + 2] = data[j + 2];
  }
  return { rgb: image(rgb, width, height, 3) };
}

// cv::COLOR_RGB2GRAY on 8-bit (model_core.preprocess.to_grey): 14-bit fixed-point weights, rounded.
export function toGrey(img) {
  if (img.channels === 1) return img;
  const { width, height, data, channels: c } = img;
  const n = width * height;
  const grey = new Uint8Array(n);
  for (let i = 0, k = 0; i < n; i += 1, k += c) grey[i] = (data[k] * 4899 + data[k + 1] * 9617 + data[k + 2] * 1868 + 8192) >> 14;
  return image(grey, width, height, 1);
}

// cv::INTER_AREA's table for one axis when shrinking: parallel typed arrays of (dst index, src index,
// weight), in dst order.
function areaTable(ssize, dsize) {
  const scale = ssize / dsize;
  const cap = dsize * (Math.ceil(scale) + 2);
  const di = new Int32Array(cap), si = new Int32Array(cap), wt = new Float32Array(cap);
  let n = 0;
  const add = (d, src, w) => { di[n] = d; si[n] = src; wt[n] = w; n += 1; };
  for (let dx = 0; dx < dsize; dx += 1) {
    const fsx1 = dx * scale, fsx2 = fsx1 + scale;
    const cell = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1), sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, ssize - 1);
    sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) add(dx, sx1 - 1, (sx1 - fsx1) / cell);
    for (let sx = sx1; sx < sx2; sx += 1) add(dx, sx, 1 / cell);
    if (fsx2 - sx2 > 1e-3) add(dx, sx2, Math.min(Math.min(fsx2 - sx2, 1), cell) / cell);
  }
  return { di: di.subarray(0, n), si: si.subarray(0, n), wt: wt.subarray(0, n), n };
}

// Bilinear table for one axis (half-pixel centres, clamped at the edges): per dst index [i0, i1, w1].
function linearTable(ssize, dsize) {
  const scale = ssize / dsize;
  const i0 = new Int32Array(dsize), i1 = new Int32Array(dsize), w = new Float32Array(dsize);
  for (let d = 0; d < dsize; d += 1) {
    let f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    f -= s;
    if (s < 0) { s = 0; f = 0; }
    if (s >= ssize - 1) { s = ssize - 1; f = 0; }
    i0[d] = s; i1[d] = Math.min(s + 1, ssize - 1); w[d] = f;
  }
  return { i0, i1, w };
}

function outArray(src, n, asFloat) {
  return asFloat || src.data instanceof Float32Array ? new Float32Array(n) : new Uint8Array(n);
}

// cv::resize(src, (dw, dh), INTER_AREA) when shrinking (both sides); bilinear otherwise, as OpenCV
// does for INTER_AREA when enlarging.
export function resizeArea(src, dw, dh) {
  const { width: sw, height: sh, channels: c, data } = src;
  if (dw === sw && dh === sh) return src;
  if (dw > sw || dh > sh) return resizeLinear(src, dw, dh);
  const tx = areaTable(sw, dw), ty = areaTable(sh, dh);
  // separable, in float32 as OpenCV: every source row resized horizontally, then rows combined
  const rw = dw * c;
  const tmp = new Float32Array(sh * rw);
  const { di: xd, si: xs, wt: xw, n: nx } = tx;
  for (let y = 0; y < sh; y += 1) {
    const sb = y * sw * c, tb = y * rw;
    for (let m = 0; m < nx; m += 1) {
      const s0 = sb + xs[m] * c, d0 = tb + xd[m] * c, w = xw[m];
      for (let ch = 0; ch < c; ch += 1) tmp[d0 + ch] += data[s0 + ch] * w;
    }
  }
  const acc = new Float32Array(dh * rw);
  for (let k = 0; k < ty.n; k += 1) {
    const o = ty.di[k] * rw, sr = ty.si[k] * rw, w = ty.wt[k];
    for (let i = 0; i < rw; i += 1) acc[o + i] += tmp[sr + i] * w;
  }
  const out = outArray(src, dw * dh * c);
  if (out instanceof Uint8Array) for (let i = 0; i < out.length; i += 1) out[i] = roundEven(acc[i]);
  else for (let i = 0; i < out.length; i += 1) out[i] = acc[i];
  return image(out, dw, dh, c);
}

// cv::resize(src, (dw, dh), INTER_LINEAR) (in floating point; OpenCV's 8-bit path rounds the same
// values through fixed point, a difference of at most one grey level).
export function resizeLinear(src, dw, dh) {
  const { width: sw, height: sh, channels: c, data } = src;
  if (dw === sw && dh === sh) return src;
  const tx = linearTable(sw, dw), ty = linearTable(sh, dh);
  const out = outArray(src, dw * dh * c);
  const isByte = out instanceof Uint8Array;
  for (let y = 0; y < dh; y += 1) {
    const r0 = ty.i0[y] * sw * c, r1 = ty.i1[y] * sw * c, wy = ty.w[y];
    for (let x = 0; x < dw; x += 1) {
      const c0 = tx.i0[x] * c, c1 = tx.i1[x] * c, wx = tx.w[x];
      for (let ch = 0; ch < c; ch += 1) {
        const top = data[r0 + c0 + ch] * (1 - wx) + data[r0 + c1 + ch] * wx;
        const bottom = data[r1 + c0 + ch] * (1 - wx) + data[r1 + c1 + ch] * wx;
        const v = top * (1 - wy) + bottom * wy;
        out[(y * dw + x) * c + ch] = isByte ? Math.round(v) : v;
      }
    }
  }
  return image(out, dw, dh, c);
}

// cv::resize chooses area for shrinking and linear for enlarging, as model_core.preprocess does.
export function resizeFace(src, side) {
  return src.width > side ? resizeArea(src, side, side) : resizeLinear(src, side, side);
}

function roundEven(v) {  // cv::saturate_cast<uchar>: round half to even, clamp
  const r = Math.round(v);
  const fixed = Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  return fixed < 0 ? 0 : fixed > 255 ? 255 : fixed;
}

// cv::warpAffine with WARP_INVERSE_MAP semantics: m = [a, b, tx, c, d, ty] maps a destination pixel
// (x, y) to the source point (a x + b y + tx, c x + d y + ty), sampled bilinearly. border: a number
// (constant value) or 'replicate'. Returns a `side` x `side` image of src's type.
export function warp(src, m, dw, dh, border, asFloat = false) {
  const { width: sw, height: sh, channels: c, data } = src;
  const out = outArray(src, dw * dh * c, asFloat);
  const isByte = out instanceof Uint8Array;
  const replicate = border === 'replicate';
  const fill = replicate ? 0 : border;
  const idx = new Int32Array(4);     // the four neighbours' offsets, -1 when outside (constant border)
  for (let y = 0; y < dh; y += 1) {
    for (let x = 0; x < dw; x += 1) {
      // OpenCV quantises the source position to 1/32 pixel (INTER_BITS = 5)
      const fx = Math.round((m[0] * x + m[1] * y + m[2]) * 32) / 32;
      const fy = Math.round((m[3] * x + m[4] * y + m[5]) * 32) / 32;
      const x0 = Math.floor(fx), y0 = Math.floor(fy);
      const ax = fx - x0, ay = fy - y0;
      for (let k = 0; k < 4; k += 1) {
        let px = x0 + (k & 1), py = y0 + (k >> 1);
        if (px < 0 || py < 0 || px >= sw || py >= sh) {
          if (!replicate) { idx[k] = -1; continue; }
          px = px < 0 ? 0 : px >= sw ? sw - 1 : px;
          py = py < 0 ? 0 : py >= sh ? sh - 1 : py;
        }
        idx[k] = (py * sw + px) * c;
      }
      const w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
      const o = (y * dw + x) * c;
      for (let ch = 0; ch < c; ch += 1) {
        const v = (idx[0] < 0 ? fill : data[idx[0] + ch]) * w00 + (idx[1] < 0 ? fill : data[idx[1] + ch]) * w01
          + (idx[2] < 0 ? fill : data[idx[2] + ch]) * w10 + (idx[3] < 0 ? fill : data[idx[3] + ch]) * w11;
        out[o + ch] = isByte ? Math.round(v) : v;
      }
    }
  }
  return image(out, dw, dh, c);
}

// A sub-image [x0, x0 + w) x [y0, y0 + h), its outside filled by replicating the border
// (cv::copyMakeBorder BORDER_REPLICATE after slicing, as crop_face does).
export function cropReplicate(src, x0, y0, w, h) {
  const { width: sw, height: sh, channels: c, data } = src;
  const out = outArray(src, w * h * c);
  for (let y = 0; y < h; y += 1) {
    const sy = Math.min(sh - 1, Math.max(0, y0 + y));
    for (let x = 0; x < w; x += 1) {
      const sx = Math.min(sw - 1, Math.max(0, x0 + x));
      for (let ch = 0; ch < c; ch += 1) out[(y * w + x) * c + ch] = data[(sy * sw + sx) * c + ch];
    }
  }
  return image(out, w, h, c);
}
