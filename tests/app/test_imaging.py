"""app.imaging: every kind of upload becomes RGB uint8 or a precise 4xx error, before any heavy work."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from app.imaging import (
    MAX_JPEG_SCANS,
    BadImage,
    ImageError,
    ImageTooComplex,
    ImageTooLarge,
    UnsupportedImage,
    decode_data_url,
    decode_image,
    downscale,
    jpeg_scan_count,
)
from tests.app import imagegen as g

BIG = 50 * 1024 * 1024
PIXELS = 40_000_000


@pytest.fixture(scope="module")
def photo():
    return g.astronaut()


@pytest.mark.parametrize(
    "make",
    [
        g.jpeg,
        g.png,
        g.cmyk_jpeg,
        g.grey_png,
        g.rgba_png,
        g.grey16_png,
        g.palette_gif,
        lambda a: g.encode(a, "BMP"),
        lambda a: g.encode(a, "WEBP"),
    ],
)
def test_modes_become_rgb_uint8(photo, make):
    out = decode_image(make(photo), BIG, PIXELS)
    assert out.rgb.dtype == np.uint8 and out.rgb.shape == (512, 512, 3)
    # The same photo in any container decodes to nearly the same pixels (grey versions included).
    grey_in = photo.mean(axis=2)
    grey_out = out.rgb.astype(np.float32).mean(axis=2)
    assert np.abs(grey_out[60:] - grey_in[60:]).mean() < 12


def test_16_bit_keeps_its_range(photo):
    out = decode_image(g.grey16_png(photo), BIG, PIXELS)
    assert out.rgb.max() > 200 and out.rgb.min() < 50


def test_exif_orientation_is_applied(photo):
    out = decode_image(g.exif_rotated_jpeg(photo), BIG, PIXELS)
    assert np.abs(out.rgb.astype(int) - photo.astype(int)).mean() < 8


def test_animated_gif_reads_first_frame(photo):
    out = decode_image(g.palette_gif(photo, frames=3), BIG, PIXELS)
    assert out.rgb.mean() > 50  # frame 0 is the photo; later frames are black


@pytest.mark.parametrize(
    "data, error",
    [
        (b"", BadImage),
        (b"hello, I am text", UnsupportedImage),
        (g.HTML, UnsupportedImage),
        (g.SVG, UnsupportedImage),
        (g.minimal_pdf(), UnsupportedImage),
        (b"\xff\xd8\xff\xe0" + b"\0" * 20, BadImage),  # JPEG magic, nothing behind it
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 5, BadImage),
        (g.pixel_bomb_png(), ImageTooLarge),
        (g.pixel_bomb_png(8000, 8000), ImageTooLarge),  # under Pillow's own limit, over ours
    ],
    ids=["empty", "text", "html", "svg", "pdf", "jpeg-magic-only", "png-garbage", "bomb-20000", "bomb-8000"],
)
def test_refusals(data, error):
    with pytest.raises(error):
        decode_image(data, BIG, PIXELS)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.95])
def test_truncated_is_400(photo, fmt, fraction):
    data = getattr(g, fmt)(photo)
    with pytest.raises(BadImage):
        decode_image(data[: max(12, int(len(data) * fraction))], BIG, PIXELS)


def test_byte_cap(photo):
    data = g.png(photo)
    with pytest.raises(ImageTooLarge):
        decode_image(data, len(data) - 1, PIXELS)


def test_pixel_cap_is_checked_before_decoding(monkeypatch):
    from PIL import ImageFile

    def boom(*a, **k):
        raise AssertionError("decoded an image that is over the pixel cap")

    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    with pytest.raises(ImageTooLarge):
        decode_image(g.pixel_bomb_png(8000, 8000), BIG, PIXELS)


def test_one_pixel_image_decodes():
    out = decode_image(g.png(np.zeros((1, 1, 3), np.uint8)), BIG, PIXELS)
    assert out.rgb.shape == (1, 1, 3)


def test_data_urls(photo):
    raw = g.jpeg(photo)
    b64 = base64.b64encode(raw).decode()
    assert decode_data_url(f"data:image/jpeg;base64,{b64}", BIG) == raw
    assert decode_data_url(b64, BIG) == raw  # bare base64 is accepted too
    assert decode_data_url(f"data:image/jpeg;base64,{b64[:40]}\n{b64[40:]}", BIG) == raw
    with pytest.raises(BadImage):
        decode_data_url("data:image/png;base64,@@@not base64@@@", BIG)
    with pytest.raises(BadImage):
        decode_data_url("data:image/png,rawdata", BIG)
    with pytest.raises(UnsupportedImage):
        decode_data_url("data:text/html;base64,PGh0bWw+", BIG)
    with pytest.raises(ImageTooLarge):
        decode_data_url(f"data:image/jpeg;base64,{b64}", 1000)
    with pytest.raises(BadImage):
        decode_data_url("", BIG)


def test_downscale_maps_back(photo):
    big = np.repeat(np.repeat(photo, 4, axis=0), 4, axis=1)  # 2048x2048
    small, scale = downscale(big, 1024)
    assert small.shape == (1024, 1024, 3) and scale == 0.5
    same, one = downscale(photo, 1024)
    assert same is photo and one == 1.0


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\0\0\0\0WEBP"]),
    body=st.binary(max_size=400),
)
def test_random_bytes_never_escape_as_other_errors(prefix, body):
    try:
        out = decode_image(prefix + body, BIG, PIXELS)
    except ImageError as exc:
        assert exc.status in (400, 413, 415, 422)
    else:
        assert out.rgb.dtype == np.uint8 and out.rgb.ndim == 3


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(min_value=3, max_value=5000), flip=st.integers(min_value=0, max_value=255))
def test_damaged_jpeg_is_a_clean_error_or_an_image(cut, flip):
    data = bytearray(_small_jpeg())
    data[min(cut, len(data) - 1)] ^= flip
    try:
        decode_image(bytes(data[: max(cut, 200)]), BIG, PIXELS)
    except ImageError as exc:
        assert exc.status == 400


_cache = {}


def _small_jpeg() -> bytes:
    if "jpeg" not in _cache:
        _cache["jpeg"] = g.jpeg(g.astronaut()[::4, ::4])
    return _cache["jpeg"]


# --- issue 11: decoding cost is bounded, and messages name the app's limits, not Pillow's -----------


def test_scan_count_of_ordinary_jpegs(photo):
    assert jpeg_scan_count(g.jpeg(photo)) == 1  # baseline, interleaved
    assert jpeg_scan_count(g.progressive_jpeg(photo)) == 10  # libjpeg's progressive script
    assert jpeg_scan_count(g.progressive_jpeg((64, 64))) == 6  # greyscale
    # An EXIF thumbnail (a whole JPEG inside APP1) and bytes after EOI do not count.
    exif = Image.Exif()
    exif[0x0112] = 1
    with_thumb = g.encode(photo, "JPEG", exif=exif.tobytes())
    thumb = g.progressive_jpeg(photo[::8, ::8])
    app1 = b"\xff\xe1" + (len(thumb) + 8).to_bytes(2, "big") + b"Exif\0\0" + thumb
    assert jpeg_scan_count(with_thumb[:2] + app1 + with_thumb[2:] + thumb) == 1


def test_scan_bomb_is_refused_before_decoding(monkeypatch):
    """The issue's file: 6000x6000 (36 MP, under the 40 MP cap), 436 KB, one scan repeated 5 000 times;
    decoding it takes minutes of CPU. It is refused from the bytes in milliseconds."""
    from PIL import ImageFile

    bomb = g.scan_bomb_jpeg(6000, 6000, 5000)
    assert len(bomb) < 500_000
    assert Image.open(io.BytesIO(bomb)).size == (6000, 6000)

    def no_decoding(*a, **k):
        raise AssertionError("decoded a JPEG with thousands of scans")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    t0 = time.perf_counter()
    with pytest.raises(ImageTooComplex) as err:
        decode_image(bomb, BIG, PIXELS)
    assert time.perf_counter() - t0 < 0.5
    assert err.value.status == 422 and err.value.code == "image_too_complex"
    assert "at most 27 scans" in err.value.message  # 10^9 scan-pixels / 36 M pixels


def test_scan_caps(photo):
    # A small image may have up to MAX_JPEG_SCANS scans, and not one more.
    ok = g.scan_bomb_jpeg(64, 64, MAX_JPEG_SCANS - 6)
    assert jpeg_scan_count(ok) == MAX_JPEG_SCANS
    assert decode_image(ok, BIG, PIXELS).rgb.shape == (64, 64, 3)
    with pytest.raises(ImageTooComplex):
        decode_image(g.scan_bomb_jpeg(64, 64, MAX_JPEG_SCANS - 5), BIG, PIXELS)
    # The scans x pixels budget: 512x512 with 10 scans is 2.6 M scan-pixels.
    progressive = g.progressive_jpeg(photo)
    assert decode_image(progressive, BIG, PIXELS, max_jpeg_scan_pixels=512 * 512 * 10).width == 512
    with pytest.raises(ImageTooComplex):
        decode_image(progressive, BIG, PIXELS, max_jpeg_scan_pixels=512 * 512 * 10 - 1)


def test_messages_name_the_app_limits_not_pillow_internals(photo):
    with pytest.raises(ImageTooLarge) as err:  # 400 MP: Pillow's own bomb check fires inside open()
        decode_image(g.pixel_bomb_png(20000, 20000), BIG, PIXELS)
    assert err.value.message == f"image over the limit of {PIXELS} pixels"
    with pytest.raises(BadImage) as err:
        decode_image(g.png_text_bomb(photo[::8, ::8]), BIG, PIXELS)
    assert "MAX_TEXT_CHUNK" not in err.value.message and "Pillow" not in err.value.message
    assert "metadata" in err.value.message
    with pytest.raises(BadImage) as err:
        decode_image(g.jpeg(photo)[:3000], BIG, PIXELS)
    assert "PIL" not in err.value.message and "Error" not in err.value.message


# ---- issue 16: bounded memory per decode ------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations_match_pillow(orientation):
    """The turn is applied on the array (no second Pillow image); it must be Pillow's exif_transpose."""
    from PIL import ImageOps

    rng = np.random.default_rng(orientation)
    stored = Image.fromarray(rng.integers(0, 256, (6, 10, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = g.encode(stored, "PNG", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    out = decode_image(data, BIG, PIXELS)
    assert np.array_equal(out.rgb, expected)
    assert (out.height, out.width) == expected.shape[:2] and out.scale == (1.0, 1.0)


def test_side_and_aspect_ratio_are_checked_from_the_header():
    with pytest.raises(ImageTooLarge) as err:  # 20 000 x 100: 2 MP, but a side over 16 384
        decode_image(g.pixel_bomb_png(20000, 1000), BIG, PIXELS)
    assert "16384 pixels a side" in err.value.message
    with pytest.raises(ImageTooComplex) as err:
        decode_image(g.pixel_bomb_png(4000, 100), BIG, PIXELS)
    assert err.value.status == 422 and err.value.code == "bad_aspect_ratio"
    assert decode_image(g.flat_png(2000, 100, "RGB"), BIG, PIXELS).rgb.shape == (100, 2000, 3)  # 20:1 is fine


@pytest.mark.parametrize(
    "mode, bit_depth, per_pixel",
    [("L", 8, 4), ("P", 8, 4), ("L", 16, 5), ("RGB", 8, 7), ("RGB", 16, 7), ("LA", 8, 7), ("RGBA", 16, 7)],
)
def test_decode_cost_is_estimated_from_the_header(monkeypatch, mode, bit_depth, per_pixel):
    """Pillow's bytes a pixel for the mode (16-bit grey: 2, palette: 1, 2-4 channels: 4) plus 3 for the
    RGB result, and refused over the budget before a row is decompressed."""
    from PIL import ImageFile

    from app.imaging import STRIP_PIXELS, decode_cost

    data = g.flat_png(300, 200, mode, bit_depth)
    img = Image.open(io.BytesIO(data))
    cost = decode_cost("PNG", img.mode, 300, 200)
    assert cost == 300 * 200 * per_pixel + 8 * STRIP_PIXELS
    assert decode_image(data, BIG, PIXELS, max_decode_bytes=cost).rgb.shape == (200, 300, 3)

    def no_decoding(*a, **k):
        raise AssertionError("decoded an image over the decode budget")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageTooLarge) as err:
        decode_image(data, BIG, PIXELS, max_decode_bytes=cost - 1)
    assert err.value.status == 413 and "MB to decode" in err.value.message


def test_strips_give_the_same_pixels_as_a_whole_conversion(photo, monkeypatch):
    import app.imaging as imaging

    for make in (g.rgba_png, g.grey16_png, lambda a: g.encode(Image.fromarray(a).convert("P"), "PNG")):
        data = make(photo)
        whole = decode_image(data, BIG, PIXELS).rgb
        monkeypatch.setattr(imaging, "STRIP_PIXELS", 512 * 7)  # 7 rows a strip: strips end mid-image
        assert np.array_equal(decode_image(data, BIG, PIXELS).rgb, whole)
        monkeypatch.undo()


def test_large_jpeg_is_decoded_at_a_reduced_scale(photo):
    big = np.asarray(Image.fromarray(photo).resize((4608, 4096), Image.BILINEAR))
    out = decode_image(g.jpeg(big), BIG, PIXELS)
    assert (out.width, out.height) == (4608, 4096)  # the upload's size is what the API reports
    assert out.rgb.shape == (2048, 2304, 3) and out.scale == (2.0, 2.0)
    assert decode_image(g.jpeg(big), BIG, PIXELS, decode_side=None).rgb.shape == (4096, 4608, 3)
    small = decode_image(g.jpeg(big[:4095, :4095]), BIG, PIXELS)  # under 2 x 2048: decoded whole
    assert small.rgb.shape == (4095, 4095, 3)


def test_other_large_images_are_box_reduced_as_they_are_converted(photo, monkeypatch):
    """A PNG (any non-JPEG) at least twice DECODE_SIDE is reduced by a whole factor strip by strip: the
    same pixels as Pillow's reduce of the whole image, at a third of the memory for 40 MP."""
    import app.imaging as imaging

    big = np.asarray(Image.fromarray(photo).resize((6200, 4700), Image.BILINEAR))  # factor 6200 // 2048 = 3
    rgba = Image.fromarray(big).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.arange(4700, dtype=np.uint32)[:, None] % 256, (1, 6200)).astype(np.uint8)))
    for data in (g.encode(big, "PNG"), g.encode(rgba, "PNG")):
        out = decode_image(data, BIG, PIXELS)
        assert (out.width, out.height) == (6200, 4700) and out.rgb.shape == (1567, 2067, 3)
        assert out.scale == (6200 / 2067, 4700 / 1567)
        whole = decode_image(data, BIG, PIXELS, decode_side=None).rgb
        assert np.array_equal(out.rgb, np.asarray(Image.fromarray(whole).reduce(3)))
        monkeypatch.setattr(imaging, "STRIP_PIXELS", 6200 * 7)  # 7 rows -> strips of 6: a multiple of 3
        assert np.array_equal(decode_image(data, BIG, PIXELS).rgb, out.rgb)
        monkeypatch.undo()
    assert decode_image(g.encode(big[:2000, :4095], "PNG"), BIG, PIXELS).rgb.shape == (2000, 4095, 3)  # under 2x


PEAK_SCRIPT = """
import resource, sys
from app.imaging import decode_image
from tests.app.imagegen import flat_png
data = flat_png(7300, 5475, sys.argv[1], int(sys.argv[2]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
decode_image(data, 10 << 20, 40_000_000)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


@pytest.mark.parametrize("mode, bit_depth, limit_mb", [("RGBA", 16, 220), ("L", 16, 140), ("P", 8, 100)])
def test_decoding_a_40_megapixel_png_bomb_stays_in_budget(mode, bit_depth, limit_mb):
    """Issue 16: 40 MP PNGs of under 400 KB held 534 MB (16-bit RGBA), 574 MB (16-bit grey) and 458 MB
    (palette with transparency) while decoding. Now Pillow's image + the RGB result (reduced by 3:
    13 MB) + a strip: measured 180, 109 and 64 MB."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, mode, str(bit_depth)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) < limit_mb


def test_large_decodes_run_one_at_a_time(monkeypatch):
    """Two threads of a worker decoding 40 MP images at once held both peaks together (issue 16): a
    decode estimated over LARGE_DECODE_BYTES waits for the one in progress; small ones do not wait."""
    import threading

    import app.imaging as imaging

    inside, most, lock = [0], [0], threading.Lock()
    real = imaging._to_rgb

    def slow_to_rgb(img, factor=1):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.2)
        try:
            return real(img, factor)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(imaging, "_to_rgb", slow_to_rgb)

    def run_pair(data):
        most[0] = 0
        threads = [threading.Thread(target=decode_image, args=(data, BIG, PIXELS)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        return most[0]

    large = g.flat_png(4000, 3000, "RGBA")  # 12 MP: 48 MB of Pillow image + 36 MB of result
    assert imaging.decode_cost("PNG", "RGBA", 4000, 3000) > imaging.LARGE_DECODE_BYTES
    assert run_pair(large) == 1
    assert run_pair(g.flat_png(300, 200, "RGBA")) == 2
