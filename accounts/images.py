"""Avatar decoding: only an image we decoded and wrote ourselves is ever stored.

Memory is bounded by the size cap: the header is read first and anything above
``MAX_SIDE`` x ``MAX_SIDE`` is refused before a pixel is decoded; a JPEG is decoded
straight at a reduced scale; other formats are decoded once and then shrunk a band
of rows at a time, so no second full-size copy is ever made. ``manage.py
benchmark_avatar`` measures the peak.
"""

from __future__ import annotations

import io
import struct
import warnings
from typing import IO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext_lazy as _
from PIL import ExifTags, Image, UnidentifiedImageError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_SIDE = 4096  # pixels, either way: 16.8 megapixels, 64 MB decoded at most (RGBA)
# Pillow decodes WebP through libwebp's animation decoder, which holds two canvases
# of 4 bytes a pixel, then copies the frame twice: 16 bytes a pixel (256 MB at 4096).
WEBP_MAX_SIDE = 2048
AVATAR_SIZE = 256
# Images are shrunk to at least this size (a whole factor, averaging) before the
# final high-quality resize to AVATAR_SIZE.
DECODE_SIZE = 2 * AVATAR_SIZE
ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP"}
BAND_ROWS = 32  # rows of the shrunk image converted and averaged at a time

INVALID = _("This file is not a PNG, JPEG or WebP image we can read.")
TOO_LARGE = _("The image is too large: at most %(max)d × %(max)d pixels.")  # noqa: RUF001 - the multiplication sign

# EXIF orientation -> the transposition that puts the picture upright.
ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _too_large(max_side: int = MAX_SIDE) -> ValidationError:
    return ValidationError(TOO_LARGE, code="too_large_dimensions", params={"max": max_side})


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size a WebP file declares, read from its header: Pillow allocates
    the canvas as soon as it opens the file, before its size can be checked."""
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _shrink(image: Image.Image, mode: str, factor: int) -> Image.Image:
    """``image`` in ``mode`` (RGB or RGBA), shrunk by a whole ``factor`` by averaging.

    Pillow's own ``convert``/``reduce``/``resize`` would each copy the whole decoded
    image first (RGBA is premultiplied into a full-size copy), doubling the peak; here
    one band of rows at a time is converted and averaged into the small result.
    """
    if factor == 1:
        return image if image.mode == mode else image.convert(mode)
    # Colours are averaged weighted by their opacity (premultiplied alpha), as Pillow does.
    work = "RGBa" if mode == "RGBA" else mode
    width, height = image.size
    out = Image.new(work, (-(-width // factor), -(-height // factor)))
    band = BAND_ROWS * factor
    for top in range(0, height, band):
        part = image.crop((0, top, width, min(top + band, height)))
        if part.mode != mode:
            part = part.convert(mode)
        if work != mode:
            part = part.convert(work)
        out.paste(part.reduce(factor), (0, top // factor))
    return out.convert(mode) if work != mode else out


def process_avatar(upload: IO[bytes], *, size: int | None = None) -> ContentFile:
    """Decode, crop to a centred square, resize to 256 px and re-encode as WebP.

    Refuses oversize files, images above ``MAX_SIDE`` pixels either way (WebP:
    ``WEBP_MAX_SIDE``), other types
    (SVG included), truncated or lying files and decompression bombs. EXIF and every
    other metadata are dropped by re-encoding.
    """
    size = size if size is not None else getattr(upload, "size", None)
    if size is not None and size > MAX_UPLOAD_BYTES:
        raise ValidationError(
            _("The image is larger than %(max)d MB."), code="too_large", params={"max": 5}
        )
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(
            _("The image is larger than %(max)d MB."), code="too_large", params={"max": 5}
        )
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        declared = _webp_size(data)
        if declared is None:
            raise ValidationError(INVALID, code="invalid")
        if max(declared) > WEBP_MAX_SIDE:
            raise _too_large(WEBP_MAX_SIDE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Image.open reads only the header: the size is known before decoding.
            with Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS)) as opened:
                if opened.format not in ALLOWED_FORMATS:
                    raise ValidationError(INVALID, code="format")
                max_side = WEBP_MAX_SIDE if opened.format == "WEBP" else MAX_SIDE
                if max(opened.size) > max_side:
                    raise _too_large(max_side)
                # A JPEG decodes at 1/2, 1/4 or 1/8 scale (no effect on other formats).
                opened.draft("RGB", (DECODE_SIZE, DECODE_SIZE))
                opened.load()
                orientation = opened.getexif().get(ExifTags.Base.Orientation)
                has_alpha = opened.mode in {"RGBA", "LA", "PA", "La", "RGBa"} or (
                    opened.mode == "P" and "transparency" in opened.info
                )
                width, height = opened.size
                factor = max(1, min(width, height) // DECODE_SIZE)
                image = _shrink(opened, "RGBA" if has_alpha else "RGB", factor)
            width, height = image.size
            side = min(width, height)
            left, top = (width - side) / 2, (height - side) / 2
            image = image.resize(
                (AVATAR_SIZE, AVATAR_SIZE),
                Image.Resampling.LANCZOS,
                box=(left, top, left + side, top + side),
            )
            # Upright after cropping: a centred square turns with the picture.
            if orientation in ORIENTATIONS:
                image = image.transpose(ORIENTATIONS[orientation])
            out = io.BytesIO()
            image.save(out, format="WEBP", quality=85, method=4)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large() from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(INVALID, code="invalid") from exc
    return ContentFile(out.getvalue())
