from __future__ import annotations

from html import unescape
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.actor import Actor
from accounts.flows.errors import AccessDenied, ImpersonationRefused
from accounts.flows.reauth import reauth_code_confirm, reauth_code_send
from accounts.models import AuditEvent, User
from accounts.services.codes import CodeResult
from tests.conftest import reauthenticate
from tests.helpers import code_from_last_email

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/settings/email/"}


@pytest.fixture
def social_only(user_factory: Any) -> User:
    """No password, no second factor: as after a social sign-up."""
    return user_factory(username="sol", password=None)


@pytest.fixture
def social_client(social_only: User) -> Client:
    client = Client()
    client.force_login(social_only, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_fresh_sign_in_is_not_a_reauthentication(auth_client: Client) -> None:
    response = auth_client.post(reverse("email"), {"email": "n@example.org"})
    assert response["Location"].startswith(reverse("account_reauthenticate"))


def test_password_reauthentication_resumes_the_change(auth_client: Client, user: User) -> None:
    first = auth_client.post(reverse("email"), {"email": "n@example.org"})
    assert "next=%2Fsettings%2Femail%2F" in first["Location"]
    resumed = auth_client.post(first["Location"], {"password": "correct-horse-battery-staple-42"})
    # The suspended POST is replayed: the code went out.
    assert resumed.status_code == 302
    assert code_from_last_email("n@example.org")


def test_wrong_password_does_not_reauthenticate(auth_client: Client) -> None:
    response = auth_client.post(reverse("account_reauthenticate"), {"password": "not-the-password"})
    assert response.status_code == 200
    assert auth_client.post(reverse("email"), {"email": "n@example.org"})["Location"].startswith(
        reverse("account_reauthenticate")
    )


def test_htmx_gets_a_client_redirect_back_to_its_page(auth_client: Client) -> None:
    response = auth_client.post(reverse("email"), {"email": "n@example.org"}, **HTMX)
    assert response.status_code == 200
    assert (
        response["HX-Redirect"]
        == reverse("account_reauthenticate") + "?next=%2Fsettings%2Femail%2F"
    )


def test_htmx_return_path_must_be_this_site(auth_client: Client) -> None:
    response = auth_client.post(
        reverse("email"),
        {"email": "n@example.org"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="https://evil.example/phish",
    )
    assert "evil.example" not in response["HX-Redirect"]


def test_social_only_user_is_never_treated_as_reauthenticated(
    social_client: Client, social_only: User
) -> None:
    # allauth alone would let this through; the portal asks for an email code.
    response = social_client.post(
        reverse("account_set_password"), {"password1": "x" * 20, "password2": "x" * 20}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("reauthenticate_email"))
    social_only.refresh_from_db()
    assert not social_only.has_usable_password()
    response = social_client.post(reverse("email"), {"email": "n@example.org"})
    assert response["Location"].startswith(reverse("reauthenticate_email"))


def test_social_only_user_reauthenticates_with_an_email_code(
    social_client: Client, social_only: User
) -> None:
    page = social_client.get(reverse("reauthenticate_email"))
    assert page.status_code == 200
    assert not mail.outbox  # nothing is sent on GET
    sent = social_client.post(
        reverse("reauthenticate_email"), {"action": "send", "next": "/settings/email/"}
    )
    assert sent.status_code == 302
    code = code_from_last_email("sol@example.org")
    wrong = social_client.post(
        reverse("reauthenticate_email"), {"code": "000000" if code != "000000" else "111111"}
    )
    assert "That code is not right" in unescape(wrong.content.decode())
    done = social_client.post(
        reverse("reauthenticate_email"), {"code": code, "next": "/settings/email/"}
    )
    assert done.status_code == 302
    assert done["Location"] == "/settings/email/"
    assert AuditEvent.objects.filter(action="reauthenticated", subject=social_only).exists()
    # Now the sensitive change goes through.
    response = social_client.post(reverse("email"), {"email": "n@example.org"})
    assert response["Location"] == reverse("email_confirm")


def test_email_code_reauthentication_refuses_unsafe_next(social_client: Client) -> None:
    social_client.post(reverse("reauthenticate_email"), {"action": "send"})
    code = code_from_last_email("sol@example.org")
    done = social_client.post(
        reverse("reauthenticate_email"), {"code": code, "next": "https://evil.example/"}
    )
    assert done["Location"] == reverse("settings_home")


def test_email_code_page_is_only_for_accounts_without_password(auth_client: Client) -> None:
    assert auth_client.get(reverse("reauthenticate_email")).status_code == 404


def test_email_code_sending_is_rate_limited(social_client: Client) -> None:
    social_client.post(reverse("reauthenticate_email"), {"action": "send"})
    response = social_client.post(reverse("reauthenticate_email"), {"action": "send"})
    assert response.status_code == 429
    assert len(mail.outbox) == 1


def test_user_without_verified_email_is_told_to_contact_support(user_factory: Any) -> None:
    lonely = user_factory(username="lonely", password=None, verified=False)
    client = Client()
    client.force_login(lonely, backend="django.contrib.auth.backends.ModelBackend")
    page = client.get(reverse("reauthenticate_email")).content.decode()
    assert "contact support" in page
    client.post(reverse("reauthenticate_email"), {"action": "send"})
    assert not mail.outbox


def test_reauthentication_window_is_one_setting(auth_client: Client, settings: Any) -> None:
    reauthenticate(auth_client)
    settings.ACCOUNT_REAUTHENTICATION_TIMEOUT = 0
    response = auth_client.post(reverse("email"), {"email": "n@example.org"})
    assert response["Location"].startswith(reverse("account_reauthenticate"))


def test_the_email_code_flow_is_only_for_accounts_without_password(user: User) -> None:
    with pytest.raises(AccessDenied):
        reauth_code_send(ctx=Actor(user=user, surface="api"))
    with pytest.raises(AccessDenied):
        reauth_code_confirm(ctx=Actor(user=user, surface="api"), code="123456")
    assert not mail.outbox


def test_the_email_code_flow_from_another_surface(social_only: User, settings: Any) -> None:
    settings.VERIFICATION_CODE_TIMEOUT = 600
    ctx = Actor(user=social_only, surface="api")
    assert reauth_code_send(ctx=ctx) == "sol@example.org"
    assert "It expires in 10 minutes." in mail.outbox[-1].body
    code = code_from_last_email("sol@example.org")
    assert reauth_code_confirm(ctx=ctx, code=code) is CodeResult.OK
    event = AuditEvent.objects.get(action="reauthenticated", subject=social_only)
    assert event.data == {"method": "email_code"}
    # A code works once.
    assert reauth_code_confirm(ctx=ctx, code=code) is CodeResult.MISSING


def test_the_email_code_flow_refuses_while_impersonating(
    social_only: User, user_factory: Any
) -> None:
    staff = user_factory(username="staff", is_staff=True)
    with pytest.raises(ImpersonationRefused):
        reauth_code_send(ctx=Actor(user=social_only, surface="web", impersonator_id=staff.pk))
    assert not mail.outbox


# --- Wrong passwords at re-authentication -----------------------------------


@pytest.fixture
def frozen_time(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The limiter's clock, moved by hand: ``frozen_time[0] += seconds``."""
    import time

    now = [1_800_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def _wrong_passwords(client: Client, n: int) -> None:
    for _ in range(n):
        response = client.post(reverse("account_reauthenticate"), {"password": "not-it-at-all"})
        assert response.status_code == 200
        assert response.context["form"].errors == {"password": ["Incorrect password."]}


def test_sixth_wrong_password_signs_out_with_429(
    auth_client: Client, frozen_time: list[float]
) -> None:
    _wrong_passwords(auth_client, 3)
    frozen_time[0] += 60
    _wrong_passwords(auth_client, 2)
    frozen_time[0] += 30
    response = auth_client.post(reverse("account_reauthenticate"), {"password": "still-wrong!"})
    assert response.status_code == 429
    # The first of the five frees its slot 15 minutes after it was made.
    assert response["Retry-After"] == str(15 * 60 - 90)
    assert "so you have been signed out to protect your account" in unescape(
        response.content.decode()
    )
    assert "_auth_user_id" not in auth_client.session
    settings_page = auth_client.get(reverse("email"))
    assert settings_page.status_code == 302
    assert settings_page["Location"].startswith(reverse("account_login"))


def test_a_right_password_does_not_count(auth_client: Client) -> None:
    _wrong_passwords(auth_client, 4)
    reauthenticate(auth_client)
    reauthenticate(auth_client)
    _wrong_passwords(auth_client, 1)
    assert auth_client.get(reverse("email")).status_code == 200


def test_signing_in_again_restarts_the_count(user: User) -> None:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    _wrong_passwords(client, 5)
    assert client.post(reverse("account_reauthenticate"), {"password": "x" * 12}).status_code == 429
    signed_in = client.post(
        reverse("account_login"),
        {"login": user.username, "password": "correct-horse-battery-staple-42"},
    )
    assert signed_in.status_code == 302
    reauthenticate(client)
