from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, User
from tests.conftest import PASSWORD
from tests.helpers import LimiterClock, code_from_last_email

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-fresh-and-long-passphrase-2026"


def sign_in(login: str = "alice", password: str = PASSWORD) -> Client:
    """A separate browser signing in through allauth's page."""
    client = Client()
    response = client.post(reverse("account_login"), {"login": login, "password": password})
    assert response.status_code == 302, response.content[:500]
    assert SESSION_KEY in client.session
    return client


def can_sign_in(password: str, login: str = "alice") -> bool:
    client = Client()
    client.post(reverse("account_login"), {"login": login, "password": password})
    return SESSION_KEY in client.session


def change(client: Client, new: str, old: str = PASSWORD) -> Any:
    return client.post(
        reverse("account_change_password"),
        {"oldpassword": old, "password1": new, "password2": new},
    )


def notifications_to(address: str) -> list[Any]:
    return [m for m in mail.outbox if m.to == [address]]


def errors(response: Any) -> str:
    return unescape(response.content.decode())


# --- Changing ---------------------------------------------------------------------


def test_change_ends_every_other_session_and_keeps_this_one(user: User) -> None:
    first = sign_in()
    second = sign_in()
    assert UserSession.objects.filter(user=user).count() == 2
    assert second.get(reverse("settings_home")).status_code == 200
    mail.outbox.clear()

    response = change(first, NEW_PASSWORD)
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

    ended = second.get(reverse("settings_home"))
    assert ended.status_code == 302
    assert ended["Location"].startswith(reverse("account_login"))
    assert first.get(reverse("settings_home")).status_code == 200
    assert list(UserSession.objects.filter(user=user).values_list("session_key", flat=True)) == [
        first.session.session_key
    ]

    event = AuditEvent.objects.get(action="password.changed")
    assert event.subject == user
    assert event.actor == user
    notices = notifications_to("alice@example.org")
    assert len(notices) == 1
    assert "Your password was changed" in notices[0].subject
    assert "Every other signed-in session has been signed out." in notices[0].body
    assert can_sign_in(NEW_PASSWORD)
    assert not can_sign_in(PASSWORD)


def test_wrong_current_password_changes_nothing(auth_client: Client, user: User) -> None:
    response = change(auth_client, NEW_PASSWORD, old="not-my-password-at-all")
    assert response.status_code == 200
    assert response.context["form"].errors["oldpassword"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action__startswith="password.").exists()
    assert not mail.outbox


# --- Password rules -----------------------------------------------------------------

REFUSED = [
    ("eleven-char", "too short"),
    ("x7" * 2048 + "!", "too long"),
    ("password1234", "too common"),
    ("alice@example.org", "too similar"),
]


@pytest.mark.parametrize(("candidate", "message"), REFUSED, ids=[r[1] for r in REFUSED])
def test_password_rules_refuse(
    auth_client: Client, user: User, candidate: str, message: str
) -> None:
    response = change(auth_client, candidate)
    assert response.status_code == 200
    assert message in errors(response)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action="password.changed").exists()
    assert not mail.outbox


def test_lengths_at_the_limits(auth_client: Client, user: User) -> None:
    assert len("x7" * 2048 + "!") == 4097
    twelve = "kq3-vz8-wm2-"
    assert len(twelve) == 12
    assert change(auth_client, twelve).status_code == 302
    user.refresh_from_db()
    assert user.check_password(twelve)
    longest = "x7" * 2048
    assert len(longest) == 4096
    assert change(auth_client, longest, old=twelve).status_code == 302
    user.refresh_from_db()
    assert user.check_password(longest)


def test_unicode_password_works_for_sign_in(auth_client: Client, user: User) -> None:
    unicode_password = "mot-de-passe-été-ünïcødé-42"
    assert change(auth_client, unicode_password).status_code == 302
    user.refresh_from_db()
    assert user.check_password(unicode_password)
    assert can_sign_in(unicode_password)
    # Not folded to another form of the same letters.
    assert not can_sign_in("mot-de-passe-ete-unicode-42")


def test_long_passwords_are_not_truncated(auth_client: Client, user: User) -> None:
    long_password = "".join(f"{i:02d}-" for i in range(34))[:100]
    assert len(long_password) == 100
    assert change(auth_client, long_password).status_code == 302
    assert not can_sign_in(long_password[:72])
    assert can_sign_in(long_password)


# --- Setting a password (account without one) -----------------------------------


@pytest.fixture
def passwordless(user_factory: Callable[..., User]) -> User:
    return user_factory(username="sol", password=None)


@pytest.fixture
def passwordless_client(passwordless: User) -> Client:
    client = Client()
    client.force_login(passwordless, backend="django.contrib.auth.backends.ModelBackend")
    return client


def reauthenticate_by_email(client: Client, address: str, query: str = "") -> Any:
    url = reverse("reauthenticate_email") + query
    sent = client.post(url, {"action": "send"})
    assert sent.status_code == 302
    code = code_from_last_email(address)
    assert re.fullmatch(r"\d{6}", code)
    return client.post(sent["Location"], {"code": code})


def test_set_password_requires_an_email_code_reauthentication(
    passwordless_client: Client, passwordless: User
) -> None:
    data = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    refused = passwordless_client.post(reverse("account_set_password"), data)
    assert refused.status_code == 302
    assert refused["Location"].startswith(reverse("reauthenticate_email"))
    passwordless.refresh_from_db()
    assert not passwordless.has_usable_password()
    assert not AuditEvent.objects.filter(action="password.set").exists()

    confirmed = reauthenticate_by_email(passwordless_client, "sol@example.org")
    assert confirmed.status_code == 302
    assert AuditEvent.objects.filter(action="reauthenticated", subject=passwordless).exists()
    mail.outbox.clear()

    response = passwordless_client.post(reverse("account_set_password"), data)
    assert response.status_code == 302
    passwordless.refresh_from_db()
    assert passwordless.check_password(NEW_PASSWORD)
    event = AuditEvent.objects.get(action="password.set")
    assert event.subject == passwordless
    assert event.actor == passwordless
    assert [m.subject for m in notifications_to("sol@example.org")] == [
        "[Account portal] Your password was changed"
    ]
    assert can_sign_in(NEW_PASSWORD, login="sol")


def test_set_password_resumes_after_the_email_code(
    passwordless_client: Client, passwordless: User
) -> None:
    data = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    refused = passwordless_client.post(reverse("account_set_password"), data)
    query = refused["Location"][len(reverse("reauthenticate_email")) :]
    assert query.startswith("?next=")
    reauthenticate_by_email(passwordless_client, "sol@example.org", query)
    passwordless.refresh_from_db()
    assert passwordless.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action="password.set").count() == 1


# --- Reset by code --------------------------------------------------------------


def test_password_reset_by_code_audits_and_ends_every_session(client: Client, user: User) -> None:
    other = sign_in()
    assert UserSession.objects.filter(user=user).count() == 1
    response = client.post(reverse("account_reset_password"), {"email": "alice@example.org"})
    assert response.status_code == 302
    code = code_from_last_email("alice@example.org")
    confirmed = client.post(response["Location"], {"code": code})
    assert confirmed.status_code == 302
    mail.outbox.clear()
    done = client.post(
        confirmed["Location"], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

    event = AuditEvent.objects.get(action="password.reset")
    assert event.subject == user
    assert event.actor is None
    assert not UserSession.objects.filter(user=user).exists()
    ended = other.get(reverse("settings_home"))
    assert ended.status_code == 302
    assert ended["Location"].startswith(reverse("account_login"))
    assert [m.subject for m in notifications_to("alice@example.org")] == [
        "[Account portal] Your password was changed"
    ]


# --- Language of the notification ---------------------------------------------


def test_notification_is_in_the_users_language(auth_client: Client, user: User) -> None:
    user.language = "fr"
    user.save(update_fields=["language"])
    assert change(auth_client, NEW_PASSWORD).status_code == 302
    (notice,) = notifications_to("alice@example.org")
    assert "Votre mot de passe a été modifié" in notice.subject
    assert "Le mot de passe de votre compte vient d’être modifié." in notice.body
    assert "Your password was changed" not in notice.subject


# --- CSRF ---------------------------------------------------------------------


def test_csrf_is_enforced_on_change(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = change(client, NEW_PASSWORD)
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not AuditEvent.objects.exists()
    assert not mail.outbox


# --- Reset requests: limits ------------------------------------------------------


def request_reset(address: str, ip: str) -> Any:
    return Client(REMOTE_ADDR=ip).post(reverse("account_reset_password"), {"email": address})


def assert_too_many(response: Any) -> None:
    assert response.status_code == 429
    page = unescape(response.content.decode())
    assert "<h1>Too many attempts</h1>" in page
    assert "You have tried this too often in a short time." in page


@pytest.mark.parametrize("address", ["alice@example.org", "nobody@example.org"])
def test_reset_requests_for_one_address_are_capped_per_hour(
    user: User, address: str, monkeypatch: Any
) -> None:
    """Ten an hour per address, whether or not it has an account, from any address."""
    clock = LimiterClock(monkeypatch)
    for n in range(10):
        assert request_reset(address, f"203.0.113.{n}").status_code == 302
        clock.advance(61)  # past the five a minute
    assert_too_many(request_reset(address.upper(), "198.51.100.1"))
    assert len(notifications_to(address)) == 10
    # Other addresses are not held back, and the address gets a code again once
    # the first request is an hour old.
    assert request_reset("bob@example.org", "198.51.100.1").status_code == 302
    clock.advance(3600 - 610 + 1)
    assert request_reset(address, "198.51.100.1").status_code == 302
    assert len(notifications_to(address)) == 11


def test_reset_requests_from_one_client_address_are_capped_per_hour(
    db: Any, monkeypatch: Any
) -> None:
    clock = LimiterClock(monkeypatch)
    for n in range(60):
        assert request_reset(f"someone{n}@example.org", "198.51.100.1").status_code == 302
        clock.advance(4)  # fifteen a minute: under the twenty a minute
    assert_too_many(request_reset("someone60@example.org", "198.51.100.1"))
    assert not notifications_to("someone60@example.org")
    assert len(mail.outbox) == 60
    assert request_reset("someone60@example.org", "198.51.100.2").status_code == 302


# --- The page's help texts ---------------------------------------------------------


def helptexts(response: Any) -> list[str]:
    return re.findall(r'<div class="helptext"[^>]*>(.*?)</div>', response.content.decode(), re.S)


def test_help_texts_follow_the_language_and_the_settings(
    auth_client: Client, user: User, settings: Any
) -> None:
    """The help texts are kept between requests, per language, until a setting changes."""
    url = reverse("account_change_password")
    forgot = '<a href="/accounts/password/reset/">{}</a>'
    english = [
        forgot.format("Forgot your password?"),
        "<ul><li>Your password can’t be too similar to your other personal information.</li>"
        "<li>Your password must contain at least 12 characters.</li>"
        "<li>Your password can be at most 4096 characters long.</li>"
        "<li>Your password can’t be a commonly used password.</li></ul>",
    ]
    assert helptexts(auth_client.get(url)) == english
    assert helptexts(auth_client.get(url)) == english
    user.language = "fr"
    user.save(update_fields=["language"])
    assert helptexts(auth_client.get(url)) == [
        forgot.format("Mot de passe oublié ?"),
        "<ul><li>Votre mot de passe ne peut pas trop ressembler à vos autres informations "
        "personnelles.</li>"
        "<li>Votre mot de passe doit contenir au minimum 12 caractères.</li>"
        "<li>Votre mot de passe peut contenir au plus 4096 caractères.</li>"
        "<li>Votre mot de passe ne peut pas être un mot de passe couramment utilisé.</li></ul>",
    ]
    settings.AUTH_PASSWORD_VALIDATORS = [
        {
            "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
            "OPTIONS": {"min_length": 20},
        }
    ]
    assert helptexts(auth_client.get(url)) == [
        forgot.format("Mot de passe oublié ?"),
        "<ul><li>Votre mot de passe doit contenir au minimum 20 caractères.</li></ul>",
    ]
