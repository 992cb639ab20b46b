"""The second step of sign-in (an allauth login stage) and re-authentication with a
second factor: authenticator app, backup codes, security keys and passkeys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from html import unescape
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_in
from django.core import mail
from django.core.cache import cache
from django.db import connection, connections
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.adapters import AccountAdapter
from accounts.models import AuditEvent, BackupCode, BackupCodeDevice, User
from accounts.services.mfa import backup_codes_generate
from tests.conftest import PASSWORD
from tests.helpers import code_from_last_email

pytestmark = pytest.mark.django_db

AUTHENTICATE_COMPLETE = "django_otp_webauthn.helpers.WebAuthnHelper.authenticate_complete"
AUTH_STATE = "otp_webauthn_authentication_state"


# --- Helpers ----------------------------------------------------------------------------


def totp_code(device: TOTPDevice, *, later: int = 0) -> str:
    """The code the user's app shows now (or ``later`` seconds from now)."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if later:
        totp.time = time.time() + later
    return str(totp.token()).zfill(device.digits)


def wrong_code(device: TOTPDevice) -> str:
    right = totp_code(device)
    return "000000" if right != "000000" else "111111"


def wait_out_throttle(device: Any) -> None:
    """As if the user waited long enough after wrong codes."""
    type(device).objects.filter(pk=device.pk, throttling_failure_timestamp__isnull=False).update(
        throttling_failure_timestamp=timezone.now() - timedelta(hours=1)
    )


def sign_in(client: Client, user: User) -> Any:
    return client.post(reverse("account_login"), {"login": user.username, "password": PASSWORD})


def second_step(client: Client, code: str, method: str = "totp") -> Any:
    return client.post(reverse("two_factor_verify"), {"method": method, "code": code})


def page_text(response: Any) -> str:
    return unescape(response.content.decode())


def subjects_to(address: str) -> list[str]:
    return [m.subject for m in mail.outbox if address in m.to]


def make_credential(user: User, name: str = "Blue key") -> WebAuthnCredential:
    n = WebAuthnCredential.objects.count() + 1
    return WebAuthnCredential.objects.create(
        user=user,
        name=name,
        confirmed=True,
        credential_id=f"credential-{user.pk}-{n}".encode(),
        public_key=b"public-key",
        sign_count=0,
        aaguid="00000000-0000-0000-0000-000000000000",
    )


@pytest.fixture
def totp_user(user: User) -> User:
    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    return user


@pytest.fixture
def logins() -> Iterator[list[Any]]:
    """Every user_logged_in signal sent during the test."""
    received: list[Any] = []

    def receiver(sender: Any, user: Any, **kwargs: Any) -> None:
        received.append(user)

    user_logged_in.connect(receiver, dispatch_uid="test-two-factor-logins")
    yield received
    user_logged_in.disconnect(dispatch_uid="test-two-factor-logins")


# --- Never half signed in ---------------------------------------------------------------


def test_password_alone_does_not_sign_in_a_user_with_a_second_factor(
    client: Client, totp_user: User, logins: list[Any]
) -> None:
    device = TOTPDevice.objects.get(user=totp_user)
    response = sign_in(client, totp_user)
    assert response.status_code == 302
    assert response["Location"] == reverse("two_factor_verify")
    # Between the two steps: nobody is signed in, nothing is reachable.
    assert SESSION_KEY not in client.session
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert logins == []
    home = client.get(reverse("settings_home"))
    assert home.status_code == 302
    assert home["Location"].startswith(reverse("account_login"))
    assert client.get("/admin/").status_code == 302
    assert not AuditEvent.objects.filter(action="mfa.sign_in").exists()
    assert not mail.outbox

    page = client.get(reverse("two_factor_verify"))
    assert page.status_code == 200
    pending_key = client.session.session_key
    done = second_step(client, totp_code(device))
    assert done.status_code == 302
    assert done["Location"] == reverse("settings_home")
    assert logins == [totp_user]
    assert client.session[SESSION_KEY] == str(totp_user.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    event = AuditEvent.objects.get(action="mfa.sign_in")
    assert event.subject == totp_user
    assert event.data == {"method": "totp"}
    assert any("New sign-in to your account" in s for s in subjects_to(totp_user.email))
    assert client.get(reverse("settings_home")).status_code == 200
    # A new session key once signed in (no session fixation across the two steps).
    assert client.session.session_key != pending_key


def test_the_second_step_keeps_the_next_page(client: Client, totp_user: User) -> None:
    device = TOTPDevice.objects.get(user=totp_user)
    first = client.post(
        f"{reverse('account_login')}?next=/settings/security/",
        {"login": totp_user.username, "password": PASSWORD, "next": "/settings/security/"},
    )
    assert first["Location"] == reverse("two_factor_verify")
    done = second_step(client, totp_code(device))
    assert done["Location"] == "/settings/security/"


def test_the_second_step_needs_the_csrf_token(totp_user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("account_login"))
    token = client.cookies["csrftoken"].value
    first = client.post(
        reverse("account_login"),
        {"login": totp_user.username, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert first["Location"] == reverse("two_factor_verify")
    device = TOTPDevice.objects.get(user=totp_user)
    refused = client.post(
        reverse("two_factor_verify"), {"method": "totp", "code": totp_code(device)}
    )
    assert refused.status_code == 403
    assert SESSION_KEY not in client.session
    device.refresh_from_db()
    assert device.last_t == -1  # the code was not even checked


def test_a_user_without_a_second_factor_signs_in_directly(
    client: Client, user: User, logins: list[Any]
) -> None:
    response = sign_in(client, user)
    assert response.status_code == 302
    assert response["Location"] == reverse("settings_home")
    assert client.session[SESSION_KEY] == str(user.pk)
    assert logins == [user]
    assert not AuditEvent.objects.filter(action="mfa.sign_in").exists()


def test_the_second_step_keeps_working_whatever_the_policy(
    client: Client, totp_user: User, policy: Any
) -> None:
    policy(enabled=False, mfa="off", passkeys="off")
    device = TOTPDevice.objects.get(user=totp_user)
    assert sign_in(client, totp_user)["Location"] == reverse("two_factor_verify")
    assert SESSION_KEY not in client.session
    assert second_step(client, totp_code(device)).status_code == 302
    assert client.session[SESSION_KEY] == str(totp_user.pk)


def test_an_unconfirmed_app_is_not_a_second_step(client: Client, user: User) -> None:
    TOTPDevice.objects.create(user=user, name="Half set up", confirmed=False)
    response = sign_in(client, user)
    assert response["Location"] == reverse("settings_home")
    assert client.session[SESSION_KEY] == str(user.pk)


# --- Authenticator app codes ------------------------------------------------------------


def test_a_wrong_code_is_refused(client: Client, totp_user: User, logins: list[Any]) -> None:
    device = TOTPDevice.objects.get(user=totp_user)
    sign_in(client, totp_user)
    response = second_step(client, wrong_code(device))
    assert response.status_code == 400
    assert "That code is not right" in page_text(response)
    assert SESSION_KEY not in client.session
    assert logins == []
    assert client.get(reverse("settings_home")).status_code == 302
    assert not AuditEvent.objects.filter(action="mfa.sign_in").exists()


def test_a_code_cannot_be_replayed(totp_user: User) -> None:
    device = TOTPDevice.objects.get(user=totp_user)
    code = totp_code(device)
    first = Client()
    sign_in(first, totp_user)
    assert second_step(first, code).status_code == 302
    assert first.session[SESSION_KEY] == str(totp_user.pk)

    # Someone who saw the code tries it at once, from another browser.
    second = Client()
    sign_in(second, totp_user)
    replay = second_step(second, code)
    assert replay.status_code == 400
    assert SESSION_KEY not in second.session
    assert AuditEvent.objects.filter(action="mfa.sign_in").count() == 1


def test_a_later_code_used_first_makes_the_current_one_stale(totp_user: User) -> None:
    device = TOTPDevice.objects.get(user=totp_user)
    current = totp_code(device)
    following = totp_code(device, later=30)
    first = Client()
    sign_in(first, totp_user)
    assert second_step(first, following).status_code == 302

    second = Client()
    sign_in(second, totp_user)
    if current != following:
        assert second_step(second, current).status_code == 400
        assert SESSION_KEY not in second.session


def test_wrong_codes_are_throttled(client: Client, totp_user: User) -> None:
    device = TOTPDevice.objects.get(user=totp_user)
    sign_in(client, totp_user)
    for _ in range(3):
        assert second_step(client, wrong_code(device)).status_code == 400
    refused = second_step(client, totp_code(device))
    assert refused.status_code == 400
    assert "Too many wrong codes" in page_text(refused)
    assert SESSION_KEY not in client.session
    device.refresh_from_db()
    assert device.throttling_failure_count >= 1

    # After waiting, the right code works again.
    wait_out_throttle(device)
    assert second_step(client, totp_code(device)).status_code == 302
    assert client.session[SESSION_KEY] == str(totp_user.pk)


def test_an_app_code_typed_with_a_space_is_accepted(client: Client, totp_user: User) -> None:
    device = TOTPDevice.objects.get(user=totp_user)
    sign_in(client, totp_user)
    code = totp_code(device)
    done = second_step(client, f"{code[:3]} {code[3:]}")
    assert done.status_code == 302
    assert client.session[SESSION_KEY] == str(totp_user.pk)


# --- Backup codes -----------------------------------------------------------------------


def test_a_backup_code_signs_in_once(totp_user: User) -> None:
    codes = backup_codes_generate(user=totp_user)
    mail.outbox.clear()
    client = Client()
    sign_in(client, totp_user)
    done = second_step(client, codes[0], method="backup")
    assert done.status_code == 302
    assert client.session[SESSION_KEY] == str(totp_user.pk)
    device = BackupCodeDevice.objects.get(user=totp_user)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert AuditEvent.objects.filter(action="mfa.backup_code_used", subject=totp_user).count() == 1
    assert AuditEvent.objects.get(action="mfa.sign_in").data == {"method": "backup"}
    assert any("A backup code was used" in s for s in subjects_to(totp_user.email))
    assert BackupCode.objects.filter(device=device, used_at__isnull=False).count() == 1

    again = Client()
    sign_in(again, totp_user)
    refused = second_step(again, codes[0], method="backup")
    assert refused.status_code == 400
    assert SESSION_KEY not in again.session
    assert AuditEvent.objects.filter(action="mfa.backup_code_used").count() == 1


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(lambda code: code, id="as-shown"),
        pytest.param(lambda code: code.replace("-", ""), id="without-hyphen"),
        pytest.param(lambda code: code.upper(), id="upper-case"),
        pytest.param(lambda code: f"  {code.upper().replace('-', ' ')} ", id="spaces"),
    ],
)
def test_backup_codes_are_accepted_however_typed(
    totp_user: User, spelling: Callable[[str], str]
) -> None:
    codes = backup_codes_generate(user=totp_user)
    assert all("-" in code for code in codes)
    client = Client()
    sign_in(client, totp_user)
    assert second_step(client, spelling(codes[3]), method="backup").status_code == 302
    assert client.session[SESSION_KEY] == str(totp_user.pk)


def test_someone_elses_backup_code_does_not_work(totp_user: User, user_factory: Any) -> None:
    backup_codes_generate(user=totp_user)
    mallory = user_factory(username="mallory")
    TOTPDevice.objects.create(user=mallory, name="Phone", confirmed=True)
    theirs = backup_codes_generate(user=mallory)
    client = Client()
    sign_in(client, totp_user)
    assert second_step(client, theirs[0], method="backup").status_code == 400
    assert SESSION_KEY not in client.session
    assert not BackupCode.objects.filter(used_at__isnull=False).exists()


def test_backup_codes_are_hashed_at_rest(totp_user: User) -> None:
    codes = backup_codes_generate(user=totp_user)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    hashes = list(BackupCode.objects.values_list("code_hash", flat=True))
    assert len(hashes) == 10
    spellings = {s for c in codes for s in (c, c.replace("-", ""), c.upper())}
    for stored in hashes:
        assert not any(s in stored for s in spellings)
    table = BackupCode._meta.db_table
    device_table = BackupCodeDevice._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        rows = cursor.fetchall()
        cursor.execute(f"SELECT * FROM {device_table}")
        rows += cursor.fetchall()
    dump = repr(rows).lower()
    for code in codes:
        assert code not in dump
        assert code.replace("-", "") not in dump


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_uses_of_one_backup_code_give_one_success(user_factory: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs real concurrent transactions (PostgreSQL)")
    owner = user_factory(username="racer")
    TOTPDevice.objects.create(user=owner, name="Phone", confirmed=True)
    code = backup_codes_generate(user=owner)[0]
    barrier = threading.Barrier(2)
    results: list[bool] = []
    errors: list[BaseException] = []

    def use() -> None:
        try:
            device = BackupCodeDevice.objects.get(user=owner)
            barrier.wait(timeout=10)
            results.append(device.verify_token(code))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert sorted(results) == [False, True]
    assert BackupCode.objects.filter(used_at__isnull=False).count() == 1


# --- Security keys and passkeys ---------------------------------------------------------


def test_a_security_key_completes_the_second_step(client: Client, user: User) -> None:
    credential = make_credential(user)
    response = sign_in(client, user)
    assert response["Location"] == reverse("two_factor_verify")
    begin = client.post(
        reverse("two_factor_webauthn_begin"), data="{}", content_type="application/json"
    )
    assert begin.status_code == 200, begin.content
    assert AUTH_STATE in client.session
    with mock.patch(AUTHENTICATE_COMPLETE, return_value=credential):
        done = client.post(
            reverse("two_factor_webauthn_complete"), data="{}", content_type="application/json"
        )
    assert done.status_code == 200, done.content
    assert done.json()["redirect_url"] == reverse("settings_home")
    assert client.session[SESSION_KEY] == str(user.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == credential.persistent_id
    assert AuditEvent.objects.get(action="mfa.sign_in").data == {"method": "webauthn"}
    assert client.get(reverse("settings_home")).status_code == 200


def test_someone_elses_security_key_is_refused(
    client: Client, user: User, user_factory: Any, logins: list[Any]
) -> None:
    make_credential(user)
    mallory = user_factory(username="mallory")
    theirs = make_credential(mallory, name="Mallory's key")
    sign_in(client, user)
    session = client.session
    session[AUTH_STATE] = {"challenge": "x"}
    session.save()
    with mock.patch(AUTHENTICATE_COMPLETE, return_value=theirs):
        refused = client.post(
            reverse("two_factor_webauthn_complete"), data="{}", content_type="application/json"
        )
    assert refused.status_code == 403
    assert "redirect_url" not in refused.json()
    assert SESSION_KEY not in client.session
    assert logins == []
    assert not AuditEvent.objects.filter(action="mfa.sign_in").exists()


def test_the_webauthn_step_needs_a_pending_sign_in(client: Client, user: User) -> None:
    credential = make_credential(user)
    session = client.session
    session[AUTH_STATE] = {"challenge": "x"}
    session.save()
    with mock.patch(AUTHENTICATE_COMPLETE, return_value=credential):
        refused = client.post(
            reverse("two_factor_webauthn_complete"), data="{}", content_type="application/json"
        )
    assert refused.status_code == 403
    assert SESSION_KEY not in client.session


def test_passwordless_login_stays_off() -> None:
    assert settings.OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN is False
    for name in (
        "otp_webauthn:credential-authentication-begin",
        "otp_webauthn:credential-authentication-complete",
    ):
        with pytest.raises(NoReverseMatch):
            reverse(name)


WEBAUTHN_ENDPOINTS = [
    "two_factor_webauthn_begin",
    "two_factor_webauthn_complete",
    "reauthenticate_webauthn_begin",
    "reauthenticate_webauthn_complete",
    "passkey_register_begin",
    "passkey_register_complete",
]


@pytest.mark.parametrize("name", WEBAUTHN_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b"\xff", b"1" * 5000, b"[" * 100_000],
    ids=["not-utf8", "a-5000-digit-number", "nested-100000-deep"],
)
def test_a_webauthn_body_json_cannot_read_is_a_400(
    auth_client: Client, name: str, body: bytes
) -> None:
    """``json.loads`` raises more than ``JSONDecodeError``: each is a malformed request."""
    response = auth_client.post(reverse(name), data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


# --- The verify page --------------------------------------------------------------------


def test_verify_page_without_a_pending_sign_in(client: Client) -> None:
    response = client.get(reverse("two_factor_verify"))
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    assert second_step(client, "123456")["Location"] == reverse("account_login")


def test_lost_access_help(client: Client, totp_user: User) -> None:
    sign_in(client, totp_user)
    page = client.get(reverse("two_factor_verify")).content.decode()
    assert f'href="{reverse("two_factor_help")}"' in page
    help_page = client.get(reverse("two_factor_help"))
    assert help_page.status_code == 200
    assert "backup codes" in page_text(help_page)
    # Reading the help does not lose the pending sign-in.
    device = TOTPDevice.objects.get(user=totp_user)
    assert second_step(client, totp_code(device))["Location"] == reverse("settings_home")


# --- Re-authentication with a second factor ---------------------------------------------


def test_reauthentication_with_an_app_code_resumes_the_change(
    auth_client: Client, totp_user: User
) -> None:
    device = TOTPDevice.objects.get(user=totp_user)
    first = auth_client.post(reverse("email"), {"email": "new@example.org"})
    assert first.status_code == 302
    assert first["Location"].startswith(reverse("account_reauthenticate"))
    assert "next=%2Fsettings%2Femail%2F" in first["Location"]
    assert not mail.outbox

    url = f"{reverse('reauthenticate_two_factor')}?next=/settings/email/"
    page = auth_client.get(url)
    assert page.status_code == 200
    assert "Code from your authenticator app" in page_text(page)

    wrong = auth_client.post(url, {"method": "totp", "code": wrong_code(device)})
    assert wrong.status_code == 400
    assert not AuditEvent.objects.filter(action="reauthenticated").exists()
    wait_out_throttle(device)

    resumed = auth_client.post(
        url, {"method": "totp", "code": totp_code(device), "next": "/settings/email/"}
    )
    assert resumed.status_code == 302
    assert resumed["Location"] == reverse("email_confirm")
    assert code_from_last_email("new@example.org")
    assert AuditEvent.objects.get(action="reauthenticated").data == {"method": "totp"}
    # Still fresh: another change goes through without asking again.
    cache.clear()  # past the email code's resend limit
    again = auth_client.post(reverse("email"), {"email": "other@example.org"})
    assert again.status_code == 302
    assert again["Location"] == reverse("email_confirm")


def test_reauthentication_does_not_redirect_off_site(auth_client: Client, totp_user: User) -> None:
    device = TOTPDevice.objects.get(user=totp_user)
    response = auth_client.post(
        f"{reverse('reauthenticate_two_factor')}?next=https://evil.example/",
        {"method": "totp", "code": totp_code(device), "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]


def test_reauthentication_with_a_backup_code(auth_client: Client, totp_user: User) -> None:
    codes = backup_codes_generate(user=totp_user)
    response = auth_client.post(
        reverse("reauthenticate_two_factor"), {"method": "backup", "code": codes[0]}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("settings_home")
    assert AuditEvent.objects.filter(action="mfa.backup_code_used").count() == 1
    start = auth_client.post(reverse("email"), {"email": "new@example.org"})
    assert start["Location"] == reverse("email_confirm")


def test_reauthentication_with_a_security_key(auth_client: Client, user: User) -> None:
    credential = make_credential(user)
    session = auth_client.session
    session[AUTH_STATE] = {"challenge": "x"}
    session.save()
    with mock.patch(AUTHENTICATE_COMPLETE, return_value=credential):
        done = auth_client.post(
            reverse("reauthenticate_webauthn_complete"),
            data="{}",
            content_type="application/json",
        )
    assert done.status_code == 200, done.content
    assert AuditEvent.objects.get(action="reauthenticated").data == {"method": "webauthn"}
    start = auth_client.post(reverse("email"), {"email": "new@example.org"})
    assert start["Location"] == reverse("email_confirm")


def test_someone_elses_key_does_not_reauthenticate(
    auth_client: Client, user: User, user_factory: Any
) -> None:
    make_credential(user)
    theirs = make_credential(user_factory(username="mallory"))
    session = auth_client.session
    session[AUTH_STATE] = {"challenge": "x"}
    session.save()
    with mock.patch(AUTHENTICATE_COMPLETE, return_value=theirs):
        refused = auth_client.post(
            reverse("reauthenticate_webauthn_complete"),
            data="{}",
            content_type="application/json",
        )
    assert refused.status_code == 403
    assert not AuditEvent.objects.filter(action="reauthenticated").exists()
    start = auth_client.post(reverse("email"), {"email": "new@example.org"})
    assert start["Location"].startswith(reverse("account_reauthenticate"))


def test_a_social_only_user_with_an_app_reauthenticates_with_it(user_factory: Any) -> None:
    social = user_factory(username="sol", password=None)
    device = TOTPDevice.objects.create(user=social, name="Phone", confirmed=True)
    ids = [m["id"] for m in AccountAdapter().get_reauthentication_methods(social)]
    assert ids == ["two_factor"]
    client = Client()
    client.force_login(social, backend="django.contrib.auth.backends.ModelBackend")
    first = client.post(reverse("email"), {"email": "new@example.org"})
    assert first.status_code == 302
    assert first["Location"].startswith(reverse("reauthenticate_two_factor"))
    assert not mail.outbox  # no email code was sent
    page = client.get(first["Location"])
    assert page.status_code == 200
    assert "Use your password instead" not in page_text(page)
    resumed = client.post(
        first["Location"], {"method": "totp", "code": totp_code(device), "next": "/settings/email/"}
    )
    assert resumed.status_code == 302
    assert resumed["Location"] == reverse("email_confirm")
