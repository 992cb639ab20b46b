from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.test import Client

from accounts.models import User

PASSWORD = "correct-horse-battery-staple-42"
_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def _test_settings(settings: Any, tmp_path: Any) -> None:
    """Only what the conventions allow: hasher speed, cache, email (and later SMS)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SMS_BACKEND = "accounts.sms.backends.locmem.SmsBackend"
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture(autouse=True)
def _commit_at_test_boundary(monkeypatch: Any) -> None:
    """Each test runs inside a transaction that is never committed, so callbacks
    scheduled with ``transaction.on_commit`` (notifications, text messages) would
    never run. Treat the end of the outermost atomic block opened by the code under
    test as the commit it would be outside the test, and run them then."""
    from django.db import transaction

    original_exit = transaction.Atomic.__exit__

    def exit_then_run_hooks(self: Any, exc_type: Any, exc_value: Any, traceback: Any) -> Any:
        result = original_exit(self, exc_type, exc_value, traceback)
        connection = transaction.get_connection(self.using)
        if (
            exc_type is None
            and not self._from_testcase
            and all(block._from_testcase for block in connection.atomic_blocks)
        ):
            hooks, connection.run_on_commit = connection.run_on_commit, []
            for _sids, func, _robust in hooks:
                func()
        return result

    monkeypatch.setattr(transaction.Atomic, "__exit__", exit_then_run_hooks)

    from django.db.backends.base.base import BaseDatabaseWrapper

    original_on_commit = BaseDatabaseWrapper.on_commit

    def on_commit(self: Any, func: Any, robust: bool = False) -> None:
        if self.in_atomic_block and all(b._from_testcase for b in self.atomic_blocks):
            func()  # outside the code's own transactions: autocommit, run at once
            return
        original_on_commit(self, func, robust)

    monkeypatch.setattr(BaseDatabaseWrapper, "on_commit", on_commit)


@pytest.fixture(autouse=True)
def _portal_requests(monkeypatch: Any) -> None:
    """The test client builds the request the portal's WSGI handler builds."""
    import django.test.client

    from accounts.requests import PortalWSGIRequest

    monkeypatch.setattr(django.test.client, "WSGIRequest", PortalWSGIRequest)


@pytest.fixture(autouse=True)
def _clear_cache() -> Any:
    from django.core.cache import cache

    from accounts.sms.backends import locmem

    cache.clear()
    locmem.outbox.clear()
    yield
    cache.clear()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def user_factory(db: Any) -> Callable[..., User]:
    def make(
        *,
        username: str | None = None,
        email: str | None = None,
        password: str | None = PASSWORD,
        verified: bool = True,
        **extra: Any,
    ) -> User:
        n = next(_counter)
        username = username or f"user{n}"
        email = email if email is not None else f"{username}@example.org"
        user = User(username=username, email=email, **extra)
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        user.save()
        if email:
            EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
        return user

    return make


@pytest.fixture
def user(user_factory: Callable[..., User]) -> User:
    return user_factory(username="alice", display_name="Alice Martin")


@pytest.fixture
def auth_client(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def staff_user(user_factory: Callable[..., User]) -> User:
    return user_factory(username="sam", is_staff=True)


def staff_signed_in(member: User, client: Client | None = None) -> Client:
    """``member`` signed in with their second factor (the back-office needs it), in
    ``client`` or a new one."""
    client = client or Client()
    client.force_login(member, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, member)
    return client


@pytest.fixture
def staff_client(staff_user: User) -> Client:
    """A staff member signed in with their second factor (the back-office needs it)."""
    return staff_signed_in(staff_user)


@pytest.fixture
def policy(db: Any) -> Callable[..., Any]:
    """Sets the field policy through the service, as an operator would: policy(email="off")."""
    from accounts.services.policy import policy_update

    def set_policy(**values: Any) -> Any:
        return policy_update(ctx=None, values=values)

    return set_policy


def reauthenticate(client: Client, password: str = PASSWORD) -> None:
    """Re-authenticates a signed-in client with its password, as the user would."""
    from django.urls import reverse

    response = client.post(reverse("account_reauthenticate"), {"password": password})
    assert response.status_code == 302, response.content[:500]


def verify_second_factor(client: Client, user: User) -> Any:
    """Gives ``user`` an authenticator app and marks the client's session as having
    used it, as the second step of sign-in does. Returns the device."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Test app", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


@pytest.fixture
def policy_modes(db: Any) -> Callable[..., Any]:
    """Sets the policy row directly and forgets the cached copy, without the
    service's audit event: for tests of the door, not of the policy's editing.
    ``policy_modes(email="read_only", enabled=False)``."""
    from accounts.models import AccountPolicy
    from accounts.policy import forget_policy

    def set_modes(**values: Any) -> Any:
        row, _created = AccountPolicy.objects.get_or_create(pk=1)
        for name, value in values.items():
            setattr(row, name, value)
        row.save()
        forget_policy()
        return row

    return set_modes
