"""Avatar decoding: only an image we decoded and wrote ourselves is ever stored."""

from __future__ import annotations

import io
import warnings
from typing import IO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000  # 40 megapixels: far beyond any real photo, far below a pixel flood
AVATAR_SIZE = 256
ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP"}

INVALID = _("This file is not a PNG, JPEG or WebP image we can read.")


def process_avatar(upload: IO[bytes], *, size: int | None = None) -> ContentFile:
    """Decode, crop to a centred square, resize to 256 px and re-encode as WebP.

    Refuses oversize files, other types (SVG included), truncated or lying files and
    decompression bombs. EXIF and every other metadata are dropped by re-encoding.
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS)) as opened:
                if opened.format not in ALLOWED_FORMATS:
                    raise ValidationError(INVALID, code="format")
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise ValidationError(
                        _("The image has too many pixels."), code="too_many_pixels"
                    )
                opened.load()
                image: Image.Image = ImageOps.exif_transpose(opened)
                has_alpha = image.mode in {"RGBA", "LA", "PA"} or (
                    image.mode == "P" and "transparency" in image.info
                )
                image = image.convert("RGBA" if has_alpha else "RGB")
                image = ImageOps.fit(
                    image, (AVATAR_SIZE, AVATAR_SIZE), method=Image.Resampling.LANCZOS
                )
                out = io.BytesIO()
                image.save(out, format="WEBP", quality=85, method=4)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValidationError(_("The image has too many pixels."), code="too_many_pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(INVALID, code="invalid") from exc
    return ContentFile(out.getvalue())
