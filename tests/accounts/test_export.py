from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from allauth.usersessions.models import UserSession
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.actor import Actor
from accounts.flows.errors import ImpersonationRefused, RateLimited, ReauthenticationRequired
from accounts.flows.export import data_export
from accounts.models import AuditEvent, User
from accounts.policy import PolicyDenied
from accounts.services.mfa import backup_codes_generate
from tests.conftest import PASSWORD, reauthenticate

pytestmark = pytest.mark.django_db

URL = "/settings/export/"
FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)


# --- Helpers ----------------------------------------------------------------------------


def download(client: Client) -> Any:
    return client.post(URL)


def exported(response: Any) -> tuple[str, dict[str, Any]]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith("attachment;")
    assert ".json" in response["Content-Disposition"]
    body = response.content.decode()
    return body, json.loads(body)


@pytest.fixture
def signed_in(user: User) -> Client:
    """A real sign-in (so the user has a session row), from Firefox on Windows."""
    client = Client(HTTP_USER_AGENT=FIREFOX_ON_WINDOWS, REMOTE_ADDR="203.0.113.7")
    response = client.post(reverse("account_login"), {"login": "alice", "password": PASSWORD})
    assert response.status_code == 302
    return client


@pytest.fixture
def secrets_of(user: User) -> dict[str, Any]:
    """Everything the user has that carries a secret; returns the secrets."""
    user.phone = "+33612345678"
    user.phone_verified = True
    user.first_name, user.last_name = "Alice", "Martin"
    user.save()
    account = SocialAccount.objects.create(
        user=user,
        provider="dummy",
        uid="4242",
        extra_data={
            "id": 4242,
            "username": "alice-at-dummy",
            "access_token": "at-secret-in-extra-data",
            "refresh_token": "rt-secret-in-extra-data",
            "nested": {"access_token": "nested-at-secret", "locale": "fr"},
        },
    )
    SocialToken.objects.create(
        account=account, token="tok-secret", token_secret="tok-secret-secret"
    )
    device = TOTPDevice.objects.create(user=user, name="Pixel app", confirmed=True)
    return {
        "totp_hex": device.key,
        "totp_base32": base64.b32encode(device.bin_key).decode(),
        "password": user.password,
    }


def assert_no_secret(body: str, secrets: dict[str, Any]) -> None:
    for secret in (
        "tok-secret",
        "access_token",
        "refresh_token",
        "at-secret-in-extra-data",
        "rt-secret-in-extra-data",
        "nested-at-secret",
        secrets["totp_hex"],
        secrets["totp_base32"],
        secrets["totp_base32"].rstrip("="),
        secrets["password"],
        secrets["password"].rsplit("$", 1)[-1],
    ):
        assert secret.lower() not in body.lower(), secret
    for code in secrets.get("codes", []):
        assert code not in body
        assert code.replace("-", "") not in body
    assert "code_hash" not in body


# --- The download -------------------------------------------------------------------------


def test_url() -> None:
    assert reverse("export") == URL


def test_page(signed_in: Client) -> None:
    response = signed_in.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<h1>") == 1
    assert f'action="{URL}"' in html


def test_export_contains_everything_and_no_secret(
    signed_in: Client, user: User, secrets_of: dict[str, Any]
) -> None:
    reauthenticate(signed_in)
    body, data = exported(download(signed_in))

    assert data["profile"]["username"] == "alice"
    assert data["profile"]["display_name"] == "Alice Martin"
    assert data["profile"]["given_name"] == "Alice"
    assert data["profile"]["state"] == "active"
    assert data["emails"] == [{"email": "alice@example.org", "verified": True, "primary": True}]
    assert data["phone"] == {"number": "+33612345678", "verified": True}

    [linked] = data["linked_accounts"]
    assert (linked["provider"], linked["uid"]) == ("dummy", "4242")
    assert linked["date_joined"]
    assert linked["data"] == {"id": 4242, "username": "alice-at-dummy", "nested": {"locale": "fr"}}

    factors = data["second_factors"]
    assert [a["name"] for a in factors["authenticator_apps"]] == ["Pixel app"]
    assert factors["authenticator_apps"][0]["added"]
    assert factors["security_keys"] == []
    assert factors["backup_codes"] == {"created": None, "unused": 0}

    [session] = data["sessions"]
    assert session["device"] == "Firefox on Windows"
    assert session["ip_address"] == "203.0.113.7"
    assert session["signed_in"]
    assert session["last_seen"]

    activity = {e["action"]: e for e in data["security_activity"]}
    assert activity["signed_in"]["description"] == "Signed in"
    assert activity["signed_in"]["device"] == "Firefox on Windows"
    assert activity["signed_in"]["ip_address"] == "203.0.113.7"

    assert_no_secret(body, secrets_of)


def test_export_with_backup_codes(
    signed_in: Client, user: User, secrets_of: dict[str, Any]
) -> None:
    codes = backup_codes_generate(user=user, ctx=None)
    reauthenticate(signed_in)
    body, data = exported(download(signed_in))
    backup = data["second_factors"]["backup_codes"]
    assert backup["created"]
    assert backup["unused"] == len(codes) == 10
    assert "mfa.backup_codes_generated" in [e["action"] for e in data["security_activity"]]
    assert_no_secret(body, {**secrets_of, "codes": codes})


def test_export_is_audited(signed_in: Client, user: User) -> None:
    reauthenticate(signed_in)
    exported(download(signed_in))
    event = AuditEvent.objects.get(action="account.data_exported")
    assert event.subject == user
    assert event.actor == user
    assert event.ip_address == "203.0.113.7"


def test_export_leaves_out_others_and_impersonation(
    signed_in: Client, user: User, user_factory: Any, staff_user: User
) -> None:
    bob = user_factory(username="bob")
    SocialAccount.objects.create(user=bob, provider="dummy", uid="999", extra_data={"id": 999})
    AuditEvent.objects.create(action="profile.updated", subject=bob, subject_label="bob")
    UserSession.objects.create(
        user=user,
        session_key="impersonated-session-key-0001",
        ip="10.0.0.5",
        user_agent="staff browser",
        data={"impersonated_by": staff_user.pk},
    )
    reauthenticate(signed_in)
    body, data = exported(download(signed_in))
    assert data["linked_accounts"] == []
    assert [s["ip_address"] for s in data["sessions"]] == ["203.0.113.7"]
    assert "10.0.0.5" not in body
    assert "bob" not in body


def test_export_needs_a_recent_reauthentication(signed_in: Client) -> None:
    response = download(signed_in)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not AuditEvent.objects.filter(action="account.data_exported").exists()


def test_an_expired_reauthentication_is_not_enough(signed_in: Client) -> None:
    reauthenticate(signed_in)
    session = signed_in.session
    records = session["account_authentication_methods"]
    records[-1]["at"] = time.time() - 301
    session["account_authentication_methods"] = records
    session.save()
    assert download(signed_in).status_code == 302
    assert not AuditEvent.objects.filter(action="account.data_exported").exists()


def test_export_is_rate_limited(signed_in: Client, user: User) -> None:
    reauthenticate(signed_in)
    for _ in range(3):
        exported(download(signed_in))
    refused = download(signed_in)
    assert refused.status_code == 429
    assert not refused.get("Content-Disposition")
    assert AuditEvent.objects.filter(action="account.data_exported").count() == 3


def test_the_rate_limit_is_per_user(signed_in: Client, user: User, user_factory: Any) -> None:
    reauthenticate(signed_in)
    for _ in range(3):
        exported(download(signed_in))
    user_factory(username="bob")
    bob = Client(HTTP_USER_AGENT=FIREFOX_ON_WINDOWS, REMOTE_ADDR="203.0.113.7")
    bob.post(reverse("account_login"), {"login": "bob", "password": PASSWORD})
    reauthenticate(bob)
    exported(download(bob))


def test_csrf_is_enforced(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session["account_authentication_methods_user"] = str(user.pk)
    session["account_authentication_methods"] = [
        {"method": "password", "at": time.time(), "reauthenticated": True}
    ]
    session.save()
    response = download(client)
    assert response.status_code == 403
    assert not response.get("Content-Disposition")
    assert not AuditEvent.objects.filter(action="account.data_exported").exists()


def test_policy_off(signed_in: Client, policy: Any) -> None:
    reauthenticate(signed_in)
    policy(data_export="off")
    assert signed_in.get(URL).status_code == 404
    assert download(signed_in).status_code == 404
    assert not AuditEvent.objects.filter(action="account.data_exported").exists()


def test_policy_read_only(signed_in: Client, policy: Any) -> None:
    reauthenticate(signed_in)
    policy(data_export="read_only")
    page = signed_in.get(URL)
    assert page.status_code == 200
    assert "Download my data" not in page.content.decode()
    response = download(signed_in)
    assert response.status_code == 403
    assert not response.get("Content-Disposition")
    assert not AuditEvent.objects.filter(action="account.data_exported").exists()


def test_requires_sign_in(client: Client) -> None:
    for response in (client.get(URL), client.post(URL)):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    assert not AuditEvent.objects.exists()


# --- The flow, called as the Account API would call it ---------------------------


def api(user: User, **extra: Any) -> Actor:
    return Actor(**{"user": user, "surface": "api", "reauthenticated_at": time.time(), **extra})


def test_the_export_flow_returns_the_data_and_audits(user: User) -> None:
    result = data_export(ctx=api(user, ip="198.51.100.4"))
    assert result.data["profile"]["username"] == "alice"
    assert result.filename.startswith(f"account-{user.pk}-")
    assert result.filename.endswith(".json")
    event = AuditEvent.objects.get(action="account.data_exported")
    assert (event.actor, event.ip_address) == (user, "198.51.100.4")


def test_the_export_flow_shares_the_pages_rate_limit(user: User) -> None:
    for _ in range(3):
        data_export(ctx=api(user))
    with pytest.raises(RateLimited):
        data_export(ctx=api(user))
    assert AuditEvent.objects.filter(action="account.data_exported").count() == 3


@pytest.mark.parametrize(
    ("ctx_extra", "error"),
    [
        ({"reauthenticated_at": None}, ReauthenticationRequired),
        ({"impersonator_id": 999}, ImpersonationRefused),
    ],
    ids=["not-reauthenticated", "impersonating"],
)
def test_the_export_flow_refuses(
    user: User, ctx_extra: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        data_export(ctx=api(user, **ctx_extra))
    assert not AuditEvent.objects.filter(action="account.data_exported").exists()


def test_the_export_flow_follows_the_policy(user: User, policy: Any) -> None:
    policy(data_export="read_only")
    with pytest.raises(PolicyDenied):
        data_export(ctx=api(user))
    assert not AuditEvent.objects.filter(action="account.data_exported").exists()


def test_export_lists_personal_access_tokens_without_their_secret(user: User) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from accounts.actor import cli_actor
    from accounts.services.tokens import token_create

    new = token_create(
        ctx=cli_actor(),
        user=user,
        name="Backup script",
        scopes=["account:read"],
        expires_at=timezone.now() + timedelta(days=7),
    )
    data = data_export(ctx=Actor(user=user, surface="cli")).data
    body = json.dumps(data)
    [token] = data["api_tokens"]
    assert token["name"] == "Backup script"
    assert token["prefix"] == new.token.prefix
    assert token["scopes"] == ["account:read"]
    assert new.secret[12:] not in body
    assert new.token.digest not in body
