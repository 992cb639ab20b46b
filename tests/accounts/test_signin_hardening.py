from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from django.urls import reverse

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
