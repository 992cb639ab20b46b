"""The avatar upload's bounds: the decoded size, the orientation kept while
decoding small, and the rate limit."""

from __future__ import annotations

import io
import struct
import zlib
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts.models import AuditEvent, User

pytestmark = pytest.mark.django_db


def solid_png(width: int, height: int) -> bytes:
    """A complete RGB PNG of one colour, a few hundred KB however large it is
    (the shape of the file that exhausted the workers' memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x7f" * (width * 3)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def post_avatar(client: Client, content: bytes, name: str = "me.png") -> Any:
    upload = SimpleUploadedFile(name, content, content_type="image/png")
    return client.post(reverse("profile_avatar"), {"avatar": upload})


def stored_files(settings: Any) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "avatars"
    return sorted(folder.glob("*")) if folder.exists() else []


def test_an_image_above_4096_pixels_is_refused_before_decoding(
    auth_client: Client, user: User, settings: Any, monkeypatch: Any
) -> None:
    content = solid_png(6320, 6320)
    assert len(content) < 300_000
    decoded = []
    original_load = Image.Image.load
    monkeypatch.setattr(
        Image.Image, "load", lambda im: decoded.append(im.size) or original_load(im)
    )

    response = post_avatar(auth_client, content)

    assert response.status_code == 400
    errors = response.context["avatar_form"].errors["avatar"]
    assert errors == ["The image is too large: at most 4096 × 4096 pixels."]
    assert "The image is too large: at most 4096 × 4096 pixels." in unescape(
        response.content.decode()
    )
    assert (6320, 6320) not in decoded
    user.refresh_from_db()
    assert not user.avatar
    assert stored_files(settings) == []
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(("width", "height"), [(4097, 16), (16, 4097)])
def test_one_pixel_too_many_either_way_is_refused(
    auth_client: Client, user: User, width: int, height: int
) -> None:
    response = post_avatar(auth_client, solid_png(width, height))
    assert response.status_code == 400
    assert response.context["avatar_form"].errors["avatar"] == [
        "The image is too large: at most 4096 × 4096 pixels."
    ]
    user.refresh_from_db()
    assert not user.avatar


def test_the_largest_accepted_image_is_stored(auth_client: Client, user: User) -> None:
    out = io.BytesIO()
    Image.new("L", (4096, 4096), 90).save(out, format="PNG")
    response = post_avatar(auth_client, out.getvalue())
    assert response.status_code == 302
    user.refresh_from_db()
    with Image.open(user.avatar.path) as stored:
        assert stored.size == (256, 256)
        assert stored.convert("L").getpixel((128, 128)) == pytest.approx(90, abs=3)


def test_a_turned_jpeg_is_stored_upright(auth_client: Client, user: User) -> None:
    """The EXIF orientation is applied to the small square: the same picture as
    turning the whole photo first."""
    photo = Image.new("RGB", (1600, 1200), (220, 0, 0))
    photo.paste((0, 0, 220), (800, 0, 1600, 1200))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: the left side is on top
    out = io.BytesIO()
    photo.save(out, format="JPEG", exif=exif, quality=95)
    response = post_avatar(auth_client, out.getvalue(), name="turned.jpg")
    assert response.status_code == 302
    user.refresh_from_db()
    with Image.open(user.avatar.path) as stored:
        top = stored.convert("RGB").getpixel((128, 20))
        bottom = stored.convert("RGB").getpixel((128, 235))
    assert top[0] > 150 > top[2]
    assert bottom[2] > 150 > bottom[0]


def test_uploads_are_rate_limited_per_user(auth_client: Client, user: User, settings: Any) -> None:
    small = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(small, format="PNG")
    for _ in range(9):
        assert post_avatar(auth_client, small.getvalue()).status_code == 302
    # Refused files count too: decoding is what the limit protects.
    assert post_avatar(auth_client, b"not an image").status_code == 400
    user.refresh_from_db()
    before = user.avatar.name

    response = post_avatar(auth_client, small.getvalue())

    assert response.status_code == 429
    user.refresh_from_db()
    assert user.avatar.name == before
    assert AuditEvent.objects.filter(action="avatar.changed").count() == 9


def test_a_webp_above_2048_pixels_is_refused(auth_client: Client, user: User) -> None:
    out = io.BytesIO()
    Image.new("RGB", (2049, 16), (10, 20, 30)).save(out, format="WEBP")
    response = post_avatar(auth_client, out.getvalue(), name="wide.webp")
    assert response.status_code == 400
    assert response.context["avatar_form"].errors["avatar"] == [
        "The image is too large: at most 2048 × 2048 pixels."
    ]
    user.refresh_from_db()
    assert not user.avatar


def test_a_webp_claiming_a_huge_canvas_is_refused_before_pillow_opens_it(
    auth_client: Client, user: User, monkeypatch: Any
) -> None:
    """Pillow allocates a WebP's canvas when it opens the file: the header is read first."""
    out = io.BytesIO()
    Image.new("RGBA", (8, 8)).save(out, format="WEBP")
    data = bytearray(out.getvalue())
    assert data[12:16] == b"VP8X"
    data[24:30] = (9999).to_bytes(3, "little") + (9999).to_bytes(3, "little")
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("Pillow opened the file"))

    response = post_avatar(auth_client, bytes(data), name="huge.webp")

    assert response.status_code == 400
    assert response.context["avatar_form"].errors["avatar"] == [
        "The image is too large: at most 2048 × 2048 pixels."
    ]
