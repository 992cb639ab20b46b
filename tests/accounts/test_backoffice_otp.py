"""The back-office (Django's admin) needs staff with a verified second factor."""

from __future__ import annotations

import base64
import time
from html import unescape
from io import StringIO
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, BackupCodeDevice, User
from tests.conftest import PASSWORD, verify_second_factor

pytestmark = pytest.mark.django_db

ADMIN = "/admin/"


def totp_code(device: TOTPDevice) -> str:
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return str(totp.token()).zfill(device.digits)


def signed_in(user: User) -> Client:
    """Signed in without using a second factor (force_login only)."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_staff_without_a_second_factor_are_sent_to_set_one_up(staff_user: User) -> None:
    client = signed_in(staff_user)
    response = client.get(ADMIN)
    assert response.status_code == 302
    followed = client.get(ADMIN, follow=True)
    assert followed.redirect_chain[-1][0] == reverse("two_factor")
    assert followed.status_code == 200
    assert "The back-office needs two-step verification" in unescape(followed.content.decode())
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 302


def test_staff_with_an_unverified_session_verify_again(staff_user: User) -> None:
    device = TOTPDevice.objects.create(user=staff_user, name="Phone", confirmed=True)
    client = signed_in(staff_user)
    assert client.get(ADMIN).status_code == 302
    followed = client.get(ADMIN, follow=True)
    target = f"{reverse('reauthenticate_two_factor')}?next={quote(ADMIN, safe='')}"
    assert followed.redirect_chain[-1][0] == target
    assert followed.status_code == 200

    done = client.post(target, {"method": "totp", "code": totp_code(device), "next": ADMIN})
    assert done.status_code == 302
    assert done["Location"] == ADMIN
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get(ADMIN).status_code == 200


def test_staff_with_a_verified_second_factor_use_the_back_office(staff_user: User) -> None:
    client = signed_in(staff_user)
    verify_second_factor(client, staff_user)
    response = client.get(ADMIN)
    assert response.status_code == 200
    assert b"Account portal back-office" in response.content


def test_staff_signing_in_through_the_second_step_reach_the_back_office(
    staff_user: User,
) -> None:
    device = TOTPDevice.objects.create(user=staff_user, name="Phone", confirmed=True)
    client = Client()
    first = client.post(
        reverse("account_login"), {"login": staff_user.username, "password": PASSWORD}
    )
    assert first["Location"] == reverse("two_factor_verify")
    assert client.get(ADMIN).status_code == 302
    client.post(reverse("two_factor_verify"), {"method": "totp", "code": totp_code(device)})
    assert client.session[SESSION_KEY] == str(staff_user.pk)
    assert client.get(ADMIN).status_code == 200


def test_anonymous_visitors_are_sent_to_sign_in(client: Client) -> None:
    response = client.get(ADMIN, follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("account_login"))
    assert "next=" in response.redirect_chain[-1][0]


@pytest.mark.parametrize("verified", [False, True])
def test_non_staff_are_refused(user: User, verified: bool) -> None:
    client = signed_in(user)
    if verified:
        verify_second_factor(client, user)
    response = client.get(ADMIN)
    assert response.status_code == 302
    followed = client.get(ADMIN, follow=True)
    assert followed.redirect_chain[-1][0] == reverse("settings_home")
    assert "The back-office is for staff only." in unescape(followed.content.decode())
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 302


def test_seed_demo_gives_the_staff_user_a_second_factor(settings: Any) -> None:
    settings.DEBUG = True
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)  # idempotent: one app, one set of codes
    sam = User.objects.get(username="sam")
    device = TOTPDevice.objects.get(user=sam)
    assert device.confirmed
    assert BackupCodeDevice.objects.filter(user=sam).count() == 1
    assert BackupCode.objects.filter(device__user=sam, used_at__isnull=True).count() == 10
    assert not TOTPDevice.objects.filter(user__username="alice").exists()

    last_run = out.getvalue().split("Demo accounts are ready.")[-1]
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    assert secret in last_run
    codes_line = next(line for line in last_run.splitlines() if "backup codes" in line)
    codes = codes_line.split(":", 1)[1].split()
    assert len(codes) == 10
    # The printed codes are the stored ones (hashed), and each works once.
    backup = BackupCodeDevice.objects.get(user=sam)
    assert backup.verify_token(codes[0])

    # The printed key signs sam in to the back-office.
    client = Client()
    client.post(reverse("account_login"), {"login": "sam", "password": "demo-sam-backoffice-2026"})
    totp = TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)), 30, 0, 6, 0)
    totp.time = time.time()
    code = str(totp.token()).zfill(6)
    client.post(reverse("two_factor_verify"), {"method": "totp", "code": code})
    assert client.get(ADMIN).status_code == 200


def test_the_libraries_credential_pages_are_not_in_the_back_office(
    user: Any, user_factory: Any
) -> None:
    """Emails, social tokens, devices and sessions change only through the portal's
    services (proof, audit, notification)."""
    from django.contrib import admin

    registered = {model._meta.label_lower for model in admin.site._registry}
    for hidden in (
        "account.emailaddress",
        "socialaccount.socialtoken",
        "otp_totp.totpdevice",
        "django_otp_webauthn.webauthncredential",
        "usersessions.usersession",
    ):
        assert hidden not in registered
    assert "socialaccount.socialapp" in registered  # providers are configured here


def test_staff_change_their_password_on_the_portals_page(user_factory: Any) -> None:
    from django.test import Client

    from tests.conftest import verify_second_factor

    boss = user_factory(username="boss", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(boss, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, boss)
    response = client.get("/admin/password_change/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/change/"
