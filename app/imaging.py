"""Uploaded bytes -> an RGB uint8 array, or a clear 4xx error. Nothing is written to disk.

Order matters for safety: the byte size is checked first, then the file type from its magic bytes,
then the pixel count from the header (so a PNG declaring 20000x20000 is refused before a single row
is decompressed), then, for a JPEG, the number of scans counted from the bytes (each scan of a
progressive JPEG is another pass over the whole image, so a few hundred KB can cost minutes of CPU),
and only then is the image decoded.

Error messages speak of the app's documented limits, never of Pillow's internals.
"""
from __future__ import annotations

import base64
import binascii
import io
import logging
import re
import struct
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

# Formats a browser or phone sends; MPO is the JPEG flavour of many phone cameras.
Image.init()  # register every plugin Pillow has, then keep the ones we accept
FORMATS = tuple(f for f in ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF") if f in Image.OPEN)
ACCEPTED_TYPES = "JPEG, PNG, WebP, BMP or GIF"

# Signatures of the accepted formats. Bytes that start like one of them but do not decode are a
# broken image (400); anything else is a type we do not take (415).
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,",
                       re.IGNORECASE)


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
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA:
            scans += 1
            if stop_after is not None and scans > stop_after:
                break
            m = _JPEG_NEXT_MARKER.search(data, i)
            if m is None:
                break
            i = m.start()
    return scans


def check_jpeg_scans(data: bytes, width: int, height: int, max_scans: int = MAX_JPEG_SCANS,
                     max_scan_pixels: int = MAX_JPEG_SCAN_PIXELS) -> None:
    allowed = max(1, min(max_scans, max_scan_pixels // max(1, width * height)))
    scans = jpeg_scan_count(data, stop_after=allowed)
    if scans > allowed:
        raise ImageTooComplex(f"a JPEG of {width}x{height} pixels may have at most {allowed} scans; this one has "
                              f"more (re-save it as a baseline or standard progressive JPEG)")


@dataclass
class Decoded:
    rgb: np.ndarray  # (H, W, 3) uint8, EXIF orientation applied
    format: str
    width: int
    height: int


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
            raise UnsupportedImage(f"data URL of type {mime!r}; send a {ACCEPTED_TYPES} image")
        payload = value[m.end():]
    else:
        payload = value
    payload = re.sub(r"\s+", "", payload)
    if len(payload) * 3 // 4 > max_bytes:
        raise ImageTooLarge(f"image larger than the limit of {max_bytes} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        try:  # browsers and some tools emit URL-safe base64
            data = base64.urlsafe_b64decode(payload)
        except (binascii.Error, ValueError):
            raise BadImage("the image is not valid base64", code="bad_base64") from None
    if not data:
        raise BadImage("the image is empty", code="empty_image")
    return data


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> RGB uint8. Transparency is flattened onto white (as a page shows it)."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img)
        if mode.startswith("I;16"):
            arr = arr.astype(np.float32) / 257.0
        elif mode == "F" and float(np.nanmax(arr, initial=0)) <= 1.0:
            arr = arr.astype(np.float32) * 255.0
        elif mode == "I" and int(arr.max(initial=0)) > 255:  # 16-bit data in a 32-bit container
            arr = arr.astype(np.float32) / 257.0
        grey = np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
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
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _decode_failure(exc: Exception) -> ImageError:
    """A Pillow exception -> a 4xx in the app's words (Pillow's own wording names its internals)."""
    text = str(exc)
    if "MAX_TEXT_CHUNK" in text or "text chunks" in text:
        return BadImage("the image carries too much text metadata (a PNG text chunk over 1 MB); "
                        "save it again without metadata")
    return BadImage("the image could not be decoded: it is corrupt or uses a variant this server does not read")


def decode_image(data: bytes, max_bytes: int, max_pixels: int, max_jpeg_scans: int = MAX_JPEG_SCANS,
                 max_jpeg_scan_pixels: int = MAX_JPEG_SCAN_PIXELS) -> Decoded:
    if not data:
        raise BadImage("the image is empty (0 bytes)", code="empty_image")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image of {len(data)} bytes; the limit is {max_bytes}")
    if not _looks_like_image(data):
        raise UnsupportedImage(f"not an image this app reads; send a {ACCEPTED_TYPES} image")
    try:
        with warnings.catch_warnings():
            # Pillow warns about odd but readable files (corrupt EXIF tags, ...): never let a warnings
            # filter (PYTHONWARNINGS=error, pytest -W error) turn those into a 500. Bombs do raise.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = img.size  # from the header; nothing decoded yet
            if width * height > max_pixels:
                raise ImageTooLarge(f"image of {width}x{height} pixels; the limit is {max_pixels} pixels")
            if width < 1 or height < 1:
                raise BadImage("the image has no pixels")
            fmt = img.format or "unknown"
            if fmt in ("JPEG", "MPO"):
                check_jpeg_scans(data, width, height, max_jpeg_scans, max_jpeg_scan_pixels)
            if getattr(img, "is_animated", False):
                img.seek(0)  # an animation is read as its first frame
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own bomb check (89 M / 179 M pixels) fires inside Image.open, before ours can: same cap.
        raise ImageTooLarge(f"image over the limit of {max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise BadImage("the image data is corrupt or not a supported format") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
            struct.error, MemoryError) as exc:
        log.info("undecodable image: %s: %s", type(exc).__name__, str(exc)[:200])
        raise _decode_failure(exc) from None
    with warnings.catch_warnings():  # as above: a corrupt EXIF tag or an odd palette is only a warning
        warnings.simplefilter("ignore")
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block should not cost the user their photo
            pass
        try:
            rgb = _to_rgb(img)
        except (OSError, ValueError) as exc:
            log.info("image not convertible to RGB: %s: %s", type(exc).__name__, str(exc)[:200])
            raise _decode_failure(exc) from None
    return Decoded(rgb=rgb, format=fmt, width=rgb.shape[1], height=rgb.shape[0])


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

