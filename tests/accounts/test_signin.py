from __future__ import annotations

from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.conftest import PASSWORD
from tests.helpers import code_from_last_email

pytestmark = pytest.mark.django_db


def test_signup_verify_by_code_sign_in_and_out(client: Client) -> None:
    response = client.post(
        reverse("account_signup"),
        {
            "email": "new.person@example.org",
            "username": "newperson",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="newperson")
    assert not EmailAddress.objects.get(user=user).verified
    # Email verification is mandatory: not signed in before the code is entered.
    assert SESSION_KEY not in client.session
    assert client.get(reverse("settings_home")).status_code == 302

    code = code_from_last_email("new.person@example.org")
    wrong = client.post(response["Location"], {"code": "WRONG1"})
    assert wrong.status_code == 200
    assert not EmailAddress.objects.get(user=user).verified

    confirmed = client.post(response["Location"], {"code": code})
    assert confirmed.status_code == 302
    assert EmailAddress.objects.get(user=user).verified
    assert client.session[SESSION_KEY] == str(user.pk)

    home = client.get(reverse("settings_home"))
    assert home.status_code == 200
    assert b"newperson" in home.content

    # Sign-out is POST only: a GET shows a confirmation and keeps the session.
    client.get(reverse("account_logout"))
    assert client.session.get(SESSION_KEY) == str(user.pk)
    client.post(reverse("account_logout"))
    assert SESSION_KEY not in client.session
    assert client.get(reverse("settings_home")).status_code == 302


@pytest.mark.parametrize("login", ["alice", "ALICE", "alice@example.org", "Alice@Example.org"])
def test_sign_in_by_username_or_email(client: Client, user: User, login: str) -> None:
    response = client.post(reverse("account_login"), {"login": login, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("settings_home")
    assert client.session[SESSION_KEY] == str(user.pk)


def test_wrong_password_is_refused(client: Client, user: User) -> None:
    response = client.post(reverse("account_login"), {"login": "alice", "password": "nope" * 4})
    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    assert response.context["form"].errors


def test_sign_in_is_rate_limited(client: Client, user: User, settings: Any) -> None:
    for _ in range(5):
        client.post(reverse("account_login"), {"login": "alice", "password": "wrong-password!"})
    response = client.post(reverse("account_login"), {"login": "alice", "password": PASSWORD})
    # After five failures for the same login, even the right password waits.
    assert SESSION_KEY not in client.session
    assert response.status_code == 200


def test_password_reset_by_code(client: Client, user: User) -> None:
    response = client.post(reverse("account_reset_password"), {"email": "alice@example.org"})
    assert response.status_code == 302
    code = code_from_last_email("alice@example.org")
    confirm_url = response["Location"]
    confirmed = client.post(confirm_url, {"code": code})
    assert confirmed.status_code == 302
    new_password = "a-brand-new-passphrase-2026"
    done = client.post(
        confirmed["Location"], {"password1": new_password, "password2": new_password}
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)
    assert not user.check_password(PASSWORD)


def test_password_reset_for_unknown_address_reveals_nothing(client: Client, user: User) -> None:
    known = client.post(reverse("account_reset_password"), {"email": "alice@example.org"})
    other = Client()
    unknown = other.post(reverse("account_reset_password"), {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert [m.to for m in mail.outbox][-1] == ["nobody@example.org"]


@pytest.mark.parametrize(
    "url_name",
    ["settings_home", "profile", "email", "phone", "security_activity", "account_change_password"],
)
def test_settings_pages_require_sign_in(client: Client, url_name: str) -> None:
    url = reverse(url_name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "next=" in response["Location"]


def test_root_sends_anonymous_to_sign_in_and_users_to_settings(
    client: Client, auth_client: Client
) -> None:
    assert client.get("/")["Location"] == reverse("account_login")
    assert auth_client.get("/")["Location"] == reverse("settings_home")


def test_settings_home_shows_the_users_summary(auth_client: Client, user: User) -> None:
    response = auth_client.get(reverse("settings_home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Alice Martin" in html
    assert "alice@example.org" in html
    assert 'aria-current="page"' in html


def test_settings_home_query_budget(
    auth_client: Client, django_assert_max_num_queries: Any
) -> None:
    auth_client.get(reverse("settings_home"))
    with django_assert_max_num_queries(4):
        response = auth_client.get(reverse("settings_home"))
    assert response.status_code == 200


def test_signup_refuses_a_username_differing_only_in_case(client: Client, user: User) -> None:
    response = client.post(
        reverse("account_signup"),
        {
            "email": "someone.else@example.org",
            "username": "ALICE",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 200
    assert "username" in response.context["form"].errors
    assert User.objects.count() == 1
