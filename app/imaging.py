"""Uploaded bytes -> an RGB uint8 array, or a clear 4xx error. Nothing is written to disk.

Order matters for safety: the byte size is checked first, then the file type from its magic bytes,
then the pixel count from the header (so a PNG declaring 20000x20000 is refused before a single row
is decompressed), and only then is the image decoded.
"""
from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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
        raise ImageTooLarge(f"image larger than {max_bytes} bytes")
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


def decode_image(data: bytes, max_bytes: int, max_pixels: int) -> Decoded:
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
            if getattr(img, "is_animated", False):
                img.seek(0)  # an animation is read as its first frame
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image too large to decode safely: {exc}") from None
    except UnidentifiedImageError:
        raise BadImage("the image data is corrupt or not a supported format") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
            struct.error, MemoryError) as exc:
        raise BadImage(f"the image could not be decoded ({type(exc).__name__}: {str(exc)[:120]})") from None
    with warnings.catch_warnings():  # as above: a corrupt EXIF tag or an odd palette is only a warning
        warnings.simplefilter("ignore")
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block should not cost the user their photo
            pass
        try:
            rgb = _to_rgb(img)
        except (OSError, ValueError) as exc:
            raise BadImage(f"the image could not be converted to RGB ({exc})") from None
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

