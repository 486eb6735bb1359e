"""Test images built at test time from scikit-image's bundled photos (no data files in the repo)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def astronaut() -> np.ndarray:
    """Eileen Collins, smiling, one face near (182, 64, 83, 107) in a 512x512 photo."""
    from skimage import data

    return data.astronaut()


ASTRONAUT_FACE = (182, 64, 83, 107)


def no_face() -> np.ndarray:
    """A cup of coffee: a real photo with no face in it."""
    from skimage import data

    return data.coffee()


def several_faces() -> np.ndarray:
    """Three faces: the astronaut, her mirror image, and a smaller copy, side by side."""
    a = astronaut()
    small = np.asarray(Image.fromarray(a).resize((384, 384), Image.BILINEAR))
    pad = np.full((512, 384, 3), 255, np.uint8)
    pad[64:448] = small
    return np.hstack([a, a[:, ::-1], pad])


def encode(rgb: np.ndarray | Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg(rgb, quality: int = 90) -> bytes:
    return encode(rgb, "JPEG", quality=quality)


def png(rgb) -> bytes:
    return encode(rgb, "PNG")


def exif_rotated_jpeg(rgb: np.ndarray) -> bytes:
    """The photo stored lying on its side, with EXIF Orientation=6 ("rotate 90 CW to view")."""
    img = Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90)  # what a sideways camera stores
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(img, "JPEG", quality=90, exif=exif.tobytes())


def cmyk_jpeg(rgb) -> bytes:
    return encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=90)


def grey_png(rgb) -> bytes:
    return encode(Image.fromarray(rgb).convert("L"), "PNG")


def rgba_png(rgb) -> bytes:
    img = Image.fromarray(rgb).convert("RGBA")
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:40] = 0  # a transparent band that must not hide the face
    img.putalpha(Image.fromarray(alpha))
    return encode(img, "PNG")


def grey16_png(rgb) -> bytes:
    grey = np.asarray(Image.fromarray(rgb).convert("L")).astype(np.uint16) * 257
    return encode(Image.fromarray(grey), "PNG")  # uint16 -> mode I;16


def palette_gif(rgb, frames: int = 2) -> bytes:
    imgs = [Image.fromarray(rgb).convert("P")] + [Image.new("P", (rgb.shape[1], rgb.shape[0]))] * (frames - 1)
    buf = io.BytesIO()
    imgs[0].save(buf, "GIF", save_all=True, append_images=imgs[1:], duration=100)
    return buf.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def pixel_bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny PNG whose header declares width x height pixels (decompresses to ~1.2 GB if decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\0" + b"\0" * (width * 3)
    idat = zlib.compress(row * 16, 9)  # a few rows are enough: the header is what must be refused
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def minimal_pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b'<circle cx="50" cy="50" r="40" fill="red"/></svg>'
)
HTML = b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"


def progressive_jpeg(rgb_or_size, quality: int = 75) -> bytes:
    """A progressive JPEG (libjpeg's standard script: 10 scans for colour, 6 for grey)."""
    if isinstance(rgb_or_size, tuple):  # (width, height): a flat grey image, cheap to encode at any size
        img = Image.new("L", rgb_or_size, 128)
    else:
        img = Image.fromarray(rgb_or_size)
    return encode(img, "JPEG", progressive=True, quality=quality)


def _jpeg_segments(data: bytes):
    """(marker, start, end) of each segment; an SOS segment runs to the end of its entropy-coded data."""
    out, i = [], 2
    while i < len(data):
        marker = data[i + 1]
        if marker == 0xD9:
            out.append((marker, i, i + 2))
            break
        end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:
            while True:
                end = data.index(b"\xff", end)
                if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                    end += 2
                    continue
                break
        out.append((marker, i, end))
        i = end
    return out


def scan_bomb_jpeg(width: int, height: int, extra_scans: int) -> bytes:
    """A progressive JPEG whose last scan (header and data) is repeated `extra_scans` more times: small on
    the wire and valid to libjpeg, but every repeat is another pass over all the image's coefficients
    (issue 11: 6000x6000 with one scan repeated 5 000 times, 436 KB, ~10 s of CPU to decode)."""
    data = progressive_jpeg((width, height), quality=50)
    _, start, end = [s for s in _jpeg_segments(data) if s[0] == 0xDA][-1]
    return data[:end] + data[start:end] * extra_scans + data[end:]


def png_text_bomb(rgb) -> bytes:
    """A valid PNG with a zTXt chunk that inflates to 2 MB (over Pillow's MAX_TEXT_CHUNK of 1 MB)."""
    data = png(rgb)
    ztxt = b"Comment\0\0" + zlib.compress(b"a" * (2 << 20), 9)
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + _png_chunk(b"zTXt", ztxt) + data[iend:]


def flat_png(width: int, height: int, mode: str = "RGBA", bit_depth: int = 8) -> bytes:
    """A PNG bomb of issue 16: a small file (tens of KB) of one flat colour that decodes to
    width x height pixels. `mode` is the PNG colour type's Pillow name (L, LA, RGB, RGBA, or P with a
    transparent palette entry); bit_depth 16 for L / RGB / RGBA. Written row by row, so a 40 MP one is
    made without holding its pixels."""
    colour_type, channels = {"L": (0, 1), "RGB": (2, 3), "P": (3, 1), "LA": (4, 2), "RGBA": (6, 4)}[mode]
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    row = b"\0" + bytes([0x5A]) * (channels * width * bit_depth // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    extra = b""
    if mode == "P":
        extra = _png_chunk(b"PLTE", bytes(range(256)) * 3) + _png_chunk(b"tRNS", b"\0")
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + extra + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    )
