from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.signin_lockout import DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE
from tests.conftest import PASSWORD
from tests.helpers import code_from_last_email

pytestmark = pytest.mark.django_db

WRONG = "not-the-password-1"


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Counts password hashes computed (the test hasher's ``encode``: checking a
    password and the dummy hash for an unknown account both go through it)."""
    calls = []
    original = MD5PasswordHasher.encode

    def counting(self: Any, password: str, salt: str) -> str:
        calls.append(1)
        return original(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "encode", counting)

    def count() -> int:
        n = len(calls)
        calls.clear()
        return n

    return count


@pytest.mark.parametrize(
    "login",
    [
        "carol@example.org",  # known email, wrong password
        "Carol@Example.org",
        "nobody@example.org",  # unknown email
        "carol",  # known username, wrong password
        "nobody",  # unknown username
        "suspended@example.org",  # suspended account, wrong password
        "suspended",
        "leaving@example.org",  # account scheduled for deletion, wrong password
    ],
)
def test_every_failed_sign_in_costs_one_hash(
    client: Client, user_factory: Any, hash_calls: Callable[[], int], login: str
) -> None:
    user_factory(username="carol", email="carol@example.org")
    user_factory(username="suspended", state="suspended", is_active=False)
    user_factory(username="leaving", state="pending_deletion", is_active=False)
    hash_calls()
    response = client.post(reverse("account_login"), {"login": login, "password": WRONG})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert hash_calls() == 1


# --- Failed sign-ins count against the account and the IP --------------------

LOCKED = {"__all__": ["Too many failed login attempts. Try again later."]}
STRANGER = "203.0.113.9"


@pytest.fixture
def carol(user_factory: Any) -> User:
    return user_factory(username="carol", email="carol@example.org")


def _sign_in(client: Client, login: str, password: str, **extra: Any) -> Any:
    return client.post(reverse("account_login"), {"login": login, "password": password}, **extra)


def _known_browser(user: User) -> Client:
    """A browser the owner has signed in from, then signed out of."""
    browser = Client()
    assert _sign_in(browser, user.username, PASSWORD).status_code == 302
    browser.post(reverse("account_logout"))
    assert SESSION_KEY not in browser.session
    return browser


def test_failures_under_the_username_lock_the_email_too(client: Client, carol: User) -> None:
    for _ in range(5):
        assert _sign_in(client, "carol", WRONG).context["form"].errors == {
            "__all__": ["The username and/or password you specified are not correct."]
        }
    response = _sign_in(Client(), "Carol@Example.org", PASSWORD)
    assert response.status_code == 200
    assert response.context["form"].errors == LOCKED
    assert SESSION_KEY not in response.wsgi_request.session


def test_a_strangers_failures_do_not_lock_out_the_owners_browser(carol: User) -> None:
    owner = _known_browser(carol)
    stranger = Client()
    for _ in range(5):
        _sign_in(stranger, "carol@example.org", WRONG, REMOTE_ADDR=STRANGER)
    locked = _sign_in(stranger, "carol", PASSWORD, REMOTE_ADDR=STRANGER)
    assert locked.context["form"].errors == LOCKED
    # The owner's browser has its own count: the right password signs in.
    response = _sign_in(owner, "carol@example.org", PASSWORD)
    assert response.status_code == 302
    assert owner.session[SESSION_KEY] == str(carol.pk)


def test_another_accounts_device_cookie_gives_no_bucket_of_its_own(
    carol: User, user_factory: Any
) -> None:
    mallory = _known_browser(user_factory(username="mallory"))
    for _ in range(5):
        _sign_in(Client(), "carol", WRONG, REMOTE_ADDR=STRANGER)
    response = _sign_in(mallory, "carol", PASSWORD)
    assert response.context["form"].errors == LOCKED
    assert SESSION_KEY not in mallory.session


def test_the_ip_limit_applies_to_a_known_browser_too(carol: User) -> None:
    owner = _known_browser(carol)
    for n in range(10):
        _sign_in(Client(), f"nobody{n}", WRONG)
    response = _sign_in(owner, "carol", PASSWORD)
    assert response.context["form"].errors == LOCKED
    assert SESSION_KEY not in owner.session


def test_the_device_cookie_is_signed_http_only_and_lax(client: Client, carol: User) -> None:
    response = _sign_in(client, "carol", PASSWORD)
    cookie = response.cookies[DEVICE_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] is True
    assert cookie["max-age"] == DEVICE_COOKIE_MAX_AGE
    assert cookie.value.count(":") >= 2  # signed, not a bare id


def test_a_tampered_device_cookie_is_an_unknown_browser(client: Client, carol: User) -> None:
    _sign_in(client, "carol", PASSWORD)
    client.post(reverse("account_logout"))
    client.cookies[DEVICE_COOKIE] = client.cookies[DEVICE_COOKIE].value + "x"
    for _ in range(5):
        _sign_in(Client(), "carol", WRONG, REMOTE_ADDR=STRANGER)
    assert _sign_in(client, "carol", PASSWORD).context["form"].errors == LOCKED


def test_a_password_reset_from_a_known_browser_unlocks_the_account(carol: User) -> None:
    owner = _known_browser(carol)
    for _ in range(5):
        _sign_in(Client(), "carol", WRONG, REMOTE_ADDR=STRANGER)
    response = owner.post(reverse("account_reset_password"), {"email": "carol@example.org"})
    code = code_from_last_email("carol@example.org")
    confirmed = owner.post(response["Location"], {"code": code})
    new_password = "a-brand-new-passphrase-2026"
    owner.post(confirmed["Location"], {"password1": new_password, "password2": new_password})
    # Unlocked for every browser, not only the one that reset the password.
    elsewhere = _sign_in(Client(), "carol", new_password, REMOTE_ADDR=STRANGER)
    assert elsewhere.status_code == 302
