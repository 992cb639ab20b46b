"""A signed-in user's pages are never cached; the language cookie is Secure and Lax."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tests.conftest import reauthenticate

pytestmark = pytest.mark.django_db

NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"


def _totp_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return str(totp.token()).zfill(device.digits)


def test_settings_home_is_not_stored(auth_client: Client) -> None:
    response = auth_client.get(reverse("settings_home"))
    assert response.status_code == 200
    assert response["Cache-Control"] == NEVER_CACHE


def test_the_totp_secret_and_the_new_backup_codes_are_not_stored(
    auth_client: Client, user: User
) -> None:
    reauthenticate(auth_client)
    auth_client.post(reverse("totp_start"))
    secret_page = auth_client.get(reverse("totp_confirm"))
    assert secret_page.status_code == 200
    assert secret_page["Cache-Control"] == NEVER_CACHE

    device = TOTPDevice.objects.get(user=user)
    done = auth_client.post(reverse("totp_confirm"), {"code": _totp_code(device)})
    assert done["Location"] == reverse("backup_codes_new")
    codes_page = auth_client.get(reverse("backup_codes_new"))
    assert codes_page.status_code == 200
    assert codes_page["Cache-Control"] == NEVER_CACHE


def test_a_back_office_page_is_not_stored(staff_client: Client) -> None:
    response = staff_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert response["Cache-Control"] == NEVER_CACHE


def test_a_redirect_for_a_signed_in_user_is_not_stored(auth_client: Client) -> None:
    response = auth_client.get(reverse("root"))
    assert response.status_code == 302
    assert response["Cache-Control"] == NEVER_CACHE


def test_an_anonymous_page_keeps_its_own_headers() -> None:
    response = Client().get(reverse("two_factor_help"))
    assert response.status_code == 200
    assert "Cache-Control" not in response


def test_the_same_page_signed_in_is_not_stored(auth_client: Client) -> None:
    response = auth_client.get(reverse("two_factor_help"))
    assert response.status_code == 200
    assert response["Cache-Control"] == NEVER_CACHE


def test_an_avatar_file_keeps_its_own_headers(auth_client: Client, settings: Any) -> None:
    from pathlib import Path

    name = "avatars/" + "0" * 32 + ".webp"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"RIFF")
    response = auth_client.get(settings.MEDIA_URL + name)
    assert response.status_code == 200
    assert "Cache-Control" not in response
