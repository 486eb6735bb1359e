"""Uploaded bytes -> an RGB uint8 array, or a clear 4xx error. Nothing is written to disk.

Order matters for safety: the byte size is checked first, then the file type from its magic bytes,
then the pixel count, the sides and the aspect ratio from the header (so a PNG declaring 20000x20000
is refused before a single row is decompressed), then, for a JPEG, the number of scans counted from
the bytes (each scan of a progressive JPEG is another pass over the whole image, so a few hundred KB
can cost minutes of CPU), then the memory the decode will hold, estimated from the header's size and
pixel mode (issue 16: a 90 KB 16-bit PNG of 40 MP held 574 MB), and only then is the image decoded.

Decoding holds at most Pillow's image (1-4 bytes a pixel) plus the RGB result (3): conversions run
in strips of about a megapixel. An image at least twice `DECODE_SIDE` on its long side is analysed
smaller, its long side still at least `DECODE_SIDE` (twice what detection looks at): a JPEG is decoded
at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, Pillow's `draft`), any other image is box-averaged
by a whole factor strip by strip as it is converted. `Decoded.scale` says how to map pixels of the
result back to the uploaded image's.

Error messages speak of the app's documented limits, never of Pillow's internals.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import re
import struct
import threading
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from math import ceil

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .security import quote

log = logging.getLogger(__name__)

# Formats a browser or phone sends; MPO is the JPEG flavour of many phone cameras.
Image.init()  # register every plugin Pillow has, then keep the ones we accept
FORMATS = tuple(f for f in ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF") if f in Image.OPEN)
ACCEPTED_TYPES = "JPEG, PNG, WebP, BMP or GIF"

# Signatures of the accepted formats. Bytes that start like one of them but do not decode are a
# broken image (400); anything else is a type we do not take (415).
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")

_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.IGNORECASE
)


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_URLSAFE = str.maketrans("-_", "+/")


class ImageError(Exception):
    """An upload the app refuses; `status` and `code` go straight into the JSON error."""

    status = 400
    code = "bad_image"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class BadImage(ImageError):
    status = 400
    code = "bad_image"


class ImageTooLarge(ImageError):
    status = 413
    code = "image_too_large"


class UnsupportedImage(ImageError):
    status = 415
    code = "unsupported_type"


class ImageTooComplex(ImageError):
    """Small and well-formed, but too costly to decode (a JPEG with too many scans)."""

    status = 422
    code = "image_too_complex"


# Decoding a progressive JPEG costs about one pass over every pixel per scan (~0.8 ns per pixel per scan
# here: a 6000x6000 JPEG with 5 000 copies of one scan is 436 KB and minutes of CPU). Encoders write
# 1-3 scans (baseline) or ~10 (libjpeg's and mozjpeg's progressive scripts), so the caps leave room:
# at most MAX_JPEG_SCANS scans, and at most MAX_JPEG_SCAN_PIXELS scans x pixels (25 scans at 40 MP,
# about 0.8 s of CPU; 83 at 12 MP).
MAX_JPEG_SCANS = 100
MAX_JPEG_SCAN_PIXELS = 1_000_000_000

# Issue 16: what one decode may cost in memory and shape.
MAX_IMAGE_SIDE = 16384  # pixels, either side (a 40 MP panorama of 16384 x 2441 still fits)
MAX_ASPECT_RATIO = 20  # long side / short side: a phone panorama is ~4-8
# Peak bytes a decode may hold, estimated from the header (`decode_cost`): 40 MP fits in every mode
# (RGB/RGBA: 4 + 3 bytes a pixel, 280 MB); lower it to refuse large images sooner.
MAX_DECODE_BYTES = 300_000_000
DECODE_SIDE = 2048  # an image at least twice this on its long side is analysed at a reduced scale
STRIP_PIXELS = 1 << 20  # conversions to RGB run on strips of about this many pixels
LARGE_DECODE_BYTES = 64 << 20  # decodes estimated over this run one at a time per process
_LARGE_DECODE = threading.Lock()

# Bytes a pixel takes in Pillow's storage, by mode (Pillow keeps 3-channel and 2-channel modes in
# 4 bytes a pixel); every other mode takes 4.
_PILLOW_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Decoders that first decode into a buffer of their own and then copy it into Pillow's.
_DECODER_BUFFER = {"WEBP": 4}


def decode_cost(fmt: str, mode: str, width: int, height: int, factor: int = 1) -> int:
    """Peak bytes `decode_image` holds for an image of this format, Pillow mode and (decoded) size:
    Pillow's image, the decoder's own buffer if it has one, and the RGB result (3 bytes a pixel, at
    1/`factor` of the size when it is reduced).
    Strip-wise conversion keeps everything else to a few MB. Measured peak RSS growth of a decode at
    7300x5475 (40 MP): RGB / RGBA / LA / 16-bit RGBA PNG 277-281 MB (estimate 288), 16-bit grey 205
    (208), palette with transparency 164 (168), JPEG at 1/2 scale 78."""
    per_pixel = _PILLOW_BYTES.get(mode, 4) + _DECODER_BUFFER.get(fmt, 0)
    result = 3 * (-(-width // factor)) * (-(-height // factor))
    return width * height * per_pixel + result + 8 * STRIP_PIXELS  # + a strip's conversion (measured ~1-3 MB)


# The end of a JPEG's entropy-coded data: 0xFF followed by a marker code (not a stuffed 0x00, a restart
# marker RST0-7, or another fill 0xFF).
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_STANDALONE = frozenset([0x01, 0xD8, *range(0xD0, 0xD8)])


def jpeg_scan_count(data: bytes, stop_after: int | None = None) -> int:
    """The number of scans (SOS segments) of the first image of a JPEG, read from the bytes alone.

    Linear in the file's size and allocation-free: segments are skipped by their length, entropy-coded
    data by a regex search for the next marker. Stops at EOI (so an MPO's other images, an EXIF
    thumbnail inside APP1, or bytes appended after the image do not count) or after `stop_after` scans.
    """
    scans, i, n = 0, 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:  # junk between segments: libjpeg skips to the next marker, and so do we
            m = _JPEG_NEXT_MARKER.search(data, i)
            if m is None:
                break
            i = m.start()
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # EOI
            break
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if i + 4 > n:
            break
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:
            scans += 1
            if stop_after is not None and scans > stop_after:
                break
            m = _JPEG_NEXT_MARKER.search(data, i)
            if m is None:
                break
            i = m.start()
    return scans


def check_jpeg_scans(
    data: bytes, width: int, height: int, max_scans: int = MAX_JPEG_SCANS, max_scan_pixels: int = MAX_JPEG_SCAN_PIXELS
) -> None:
    allowed = max(1, min(max_scans, max_scan_pixels // max(1, width * height)))
    scans = jpeg_scan_count(data, stop_after=allowed)
    if scans > allowed:
        raise ImageTooComplex(
            f"a JPEG of {width}x{height} pixels may have at most {allowed} scans; this one has "
            f"more (re-save it as a baseline or standard progressive JPEG)"
        )


@dataclass
class Decoded:
    rgb: np.ndarray  # (h, w, 3) uint8, EXIF orientation applied; smaller than the upload for a big JPEG
    format: str
    width: int  # of the uploaded image (EXIF orientation applied), not of `rgb`
    height: int
    scale: tuple[float, float] = (1.0, 1.0)  # (x, y): uploaded pixels per pixel of `rgb`


def _looks_like_image(data: bytes) -> bool:
    return data.startswith(_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def decode_data_url(value: str, max_bytes: int) -> bytes:
    """`data:image/...;base64,...` (or bare base64) -> bytes. Size is checked before decoding."""
    if not isinstance(value, str) or not value.strip():
        raise BadImage("the 'image' field is empty", code="missing_image")
    value = value.strip()
    if value[:5].lower() == "data:":
        m = _DATA_URL.match(value)
        if not m:
            raise BadImage("malformed data URL", code="bad_data_url")
        if not m.group("b64"):
            raise BadImage("the data URL must be base64-encoded (';base64,')", code="bad_data_url")
        mime = (m.group("mime") or "").lower()
        if mime and not mime.startswith("image/"):
            raise UnsupportedImage(f"data URL of type {quote(mime)}; send a {ACCEPTED_TYPES} image")
        payload = value[m.end() :]
    else:
        payload = value
    payload = re.sub(r"\s+", "", payload)
    if len(payload) * 3 // 4 > max_bytes:
        raise ImageTooLarge(f"image larger than the limit of {max_bytes} bytes")
    if not payload:
        raise BadImage("the data URL carries no image bytes", code="empty_image")
    # Standard or URL-safe base64 (browsers and some tools emit the latter), padding optional; anything
    # else is refused as bad base64 rather than skipped (issue 16: "!!!!" decoded to 0 bytes, and the
    # error said the image was empty).
    if _BASE64.fullmatch(payload) is None:
        raise BadImage(
            "the image is not valid base64 (only A-Z, a-z, 0-9, '+', '/', '-', '_' and '=' padding)", code="bad_base64"
        )
    body = payload.rstrip("=").translate(_URLSAFE)
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadImage("the image is not valid base64", code="bad_base64") from None
    if not data:
        raise BadImage("the image is not valid base64: it decodes to no bytes", code="bad_base64")
    return data


def _grey_scaling(img: Image.Image) -> float | None:
    """For a 16/32-bit or float grey image, what to multiply by to get 0-255 (decided once for the
    whole image, so that every strip is scaled alike); None for other modes."""
    mode = img.mode
    if mode.startswith("I;16"):
        return 1 / 257.0
    if mode == "F":
        hi = img.getextrema()[1]
        return 255.0 if isinstance(hi, (int, float)) and hi == hi and hi <= 1.0 else 1.0
    if mode == "I":
        hi = img.getextrema()[1]
        return 1 / 257.0 if isinstance(hi, (int, float)) and hi > 255 else 1.0  # 16-bit data in a 32-bit container
    return None


def _strip_to_rgb(img: Image.Image, grey_scale: float | None) -> np.ndarray:
    """Any Pillow mode -> RGB uint8. Transparency is flattened onto white (as a page shows it)."""
    mode = img.mode
    if grey_scale is not None:
        arr = np.asarray(img)
        if grey_scale != 1.0:
            arr = arr.astype(np.float32) * np.float32(grey_scale)
        grey = np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("1", "L", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        img = background
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def _to_rgb(img: Image.Image, factor: int = 1) -> np.ndarray:
    """The whole image as RGB uint8, converted a strip of about STRIP_PIXELS at a time into one
    preallocated array: the only large buffers are Pillow's image and the result (issue 16: a
    whole-image conversion held up to 5 copies, 574 MB for a 40 MP 16-bit PNG). With `factor` > 1
    each strip is box-averaged by it (Pillow's `reduce`; strips are whole multiples of it high, so the
    result is the whole image's reduce)."""
    width, height = img.size
    grey_scale = _grey_scaling(img)
    out = np.empty((-(-height // factor), -(-width // factor), 3), np.uint8)
    rows = max(factor, STRIP_PIXELS // max(1, width) // factor * factor)
    for top in range(0, height, rows):
        strip = img.crop((0, top, width, min(height, top + rows)))  # keeps the palette and transparency
        rgb = _strip_to_rgb(strip, grey_scale)
        if factor > 1:
            rgb = np.asarray(Image.fromarray(rgb).reduce(factor))
        out[top // factor : top // factor + rgb.shape[0]] = rgb
    return out


# EXIF orientation -> the same transform as ImageOps.exif_transpose, on the array (views, then one copy)
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block should not cost the user their photo
        return 1
    return value if value in _ORIENT else 1


def _decode_failure(exc: Exception) -> ImageError:
    """A Pillow exception -> a 4xx in the app's words (Pillow's own wording names its internals)."""
    text = str(exc)
    if "MAX_TEXT_CHUNK" in text or "text chunks" in text:
        return BadImage(
            "the image carries too much text metadata (a PNG text chunk over 1 MB); save it again without metadata"
        )
    return BadImage("the image could not be decoded: it is corrupt or uses a variant this server does not read")


@contextmanager
def _pillow_errors(max_pixels: int):
    """Pillow's exceptions while opening or loading an image -> the app's 4xx errors."""
    try:
        with warnings.catch_warnings():
            # Pillow warns about odd but readable files (corrupt EXIF tags, ...): never let a warnings
            # filter (PYTHONWARNINGS=error, pytest -W error) turn those into a 500. Bombs do raise.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own bomb check (89 M / 179 M pixels) fires inside Image.open, before ours can: same cap.
        raise ImageTooLarge(f"image over the limit of {max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise BadImage("the image data is corrupt or not a supported format") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, MemoryError) as exc:
        log.info("undecodable image: %s: %s", type(exc).__name__, str(exc)[:200])
        raise _decode_failure(exc) from None


def decode_image(
    data: bytes,
    max_bytes: int,
    max_pixels: int,
    max_jpeg_scans: int = MAX_JPEG_SCANS,
    max_jpeg_scan_pixels: int = MAX_JPEG_SCAN_PIXELS,
    *,
    max_decode_bytes: int = MAX_DECODE_BYTES,
    max_side: int = MAX_IMAGE_SIDE,
    max_aspect: float = MAX_ASPECT_RATIO,
    decode_side: int | None = DECODE_SIDE,
) -> Decoded:
    if not data:
        raise BadImage("the image is empty (0 bytes)", code="empty_image")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image of {len(data)} bytes; the limit is {max_bytes}")
    if not _looks_like_image(data):
        raise UnsupportedImage(f"not an image this app reads; send a {ACCEPTED_TYPES} image")
    with _pillow_errors(max_pixels):
        img = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = img.size  # from the header; nothing decoded yet
        if width * height > max_pixels:
            raise ImageTooLarge(f"image of {width}x{height} pixels; the limit is {max_pixels} pixels")
        if width < 1 or height < 1:
            raise BadImage("the image has no pixels")
        if max(width, height) > max_side:
            raise ImageTooLarge(f"image of {width}x{height} pixels; the limit is {max_side} pixels a side")
        if max(width, height) > max_aspect * min(width, height):
            raise ImageTooComplex(
                f"image of {width}x{height} pixels; the limit is an aspect ratio of {max_aspect:g}:1",
                code="bad_aspect_ratio",
            )
        fmt = img.format or "unknown"
        if fmt in ("JPEG", "MPO"):
            check_jpeg_scans(data, width, height, max_jpeg_scans, max_jpeg_scan_pixels)
            if decode_side and max(width, height) >= 2 * decode_side:
                k = decode_side / max(width, height)  # libjpeg picks the largest scale >= this
                img.draft(None, (max(1, ceil(width * k)), max(1, ceil(height * k))))
        if getattr(img, "is_animated", False):
            img.seek(0)  # an animation is read as its first frame
        # What the JPEG draft did not shrink (or any other format) is box-reduced as it is converted.
        factor = max(1, max(img.size) // decode_side) if decode_side else 1
        cost = decode_cost(fmt, img.mode, *img.size, factor=factor)
        if cost > max_decode_bytes:
            raise ImageTooLarge(
                f"image of {width}x{height} pixels in mode {img.mode} would take "
                f"{cost >> 20} MB to decode; the limit is {max_decode_bytes >> 20} MB"
            )
    # One large decode at a time per process: two threads of a worker decoding 40 MP at once held both
    # peaks together. A second one waits (at most about a second) for the first to finish.
    with _LARGE_DECODE if cost > LARGE_DECODE_BYTES else nullcontext():
        with _pillow_errors(max_pixels):
            img.load()
        with warnings.catch_warnings():  # as above: a corrupt EXIF tag or an odd palette is only a warning
            warnings.simplefilter("ignore")
            orientation = _orientation(img)
            try:
                rgb = _to_rgb(img, factor)
            except (OSError, ValueError) as exc:
                log.info("image not convertible to RGB: %s: %s", type(exc).__name__, str(exc)[:200])
                raise _decode_failure(exc) from None
        img.close()  # Pillow's copy goes before the turned one is made
    del img
    if orientation != 1:
        rgb = np.ascontiguousarray(_ORIENT[orientation](rgb))
        if orientation >= 5:  # a quarter turn: the uploaded image's sides swap too
            width, height = height, width
    scale = (width / rgb.shape[1], height / rgb.shape[0])
    return Decoded(rgb=rgb, format=fmt, width=width, height=height, scale=scale)


def downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink an image so its longer side is at most `max_side`; returns (image, scale) with
    original = small / scale. Detection is much faster on the small copy and finds the same faces."""
    h, w = rgb.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return rgb, 1.0
    scale = max_side / float(longest)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def decode_with_config(data: bytes, cfg, max_bytes: int) -> Decoded:
    """`decode_image` with the caps of an app's config (`EMOTION_*`, app/__init__.py's DEFAULTS): the
    route and the library (app/analyzer.py) decode alike; `max_bytes` is the caller's file-size cap."""
    return decode_image(
        data,
        int(max_bytes),
        int(cfg["MAX_PIXELS"]),
        int(cfg["MAX_JPEG_SCANS"]),
        int(cfg["MAX_JPEG_SCAN_PIXELS"]),
        max_decode_bytes=int(cfg["MAX_DECODE_BYTES"]),
        max_side=int(cfg["MAX_IMAGE_SIDE"]),
        max_aspect=float(cfg["MAX_ASPECT_RATIO"]),
        decode_side=int(cfg["DECODE_SIDE"]) or None,
    )
