"""A signed-in user's pages are never cached; the language cookie is Secure and Lax."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tests.conftest import reauthenticate
from tests.security.test_settings_and_headers import PRODUCTION_OAUTH_KEY

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

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
    name = "avatars/" + "0" * 32 + ".webp"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"RIFF")
    response = auth_client.get(settings.MEDIA_URL + name)
    assert response.status_code == 200
    assert "Cache-Control" not in response


# --- The language cookie -------------------------------------------------------


def test_the_language_cookie_is_secure_lax_and_http_only(settings: Any) -> None:
    settings.LANGUAGE_COOKIE_SECURE = True  # what DJANGO_DEBUG=0 sets (checked below)
    response = Client().post(reverse("set_language"), {"language": "fr", "next": "/"})
    assert response.status_code == 302
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "fr"
    assert cookie["secure"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["httponly"] is True


def test_debug_off_makes_the_language_cookie_secure() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    clean.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="a-long-and-random-production-key-" + "Zq8#" * 8,
        DJANGO_ALLOWED_HOSTS="portal.example.org",
        OAUTH_PRIVATE_KEY=PRODUCTION_OAUTH_KEY,
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.LANGUAGE_COOKIE_SECURE, s.LANGUAGE_COOKIE_SAMESITE)",
        ],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True Lax"
