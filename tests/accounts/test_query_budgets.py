"""A query budget on every settings page and every back-office page, measured with
a user who has many sessions, devices, events and linked accounts. A budget is the
count measured when it was set plus a small margin; it must not grow with the data
(the pages that list rows cost the same with few and with many)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.management.account_data import (
    add_apps,
    add_backup_codes,
    add_events,
    add_passkeys,
    add_sessions,
    add_tokens,
)
from accounts.models import (
    User,
)
from accounts.views.mfa import CODES_SESSION_KEY
from tests.conftest import reauthenticate, verify_second_factor

pytestmark = pytest.mark.django_db

SESSIONS = 50
PASSKEYS = 20
EVENTS = 500
TOKENS = 20
APPS = 3
USERS = 200
# The goal of every settings page, whatever the user's data (issue 17).
SETTINGS_GOAL = 10


# --- Data -------------------------------------------------------------------------------


def heavy_user(
    user_factory: Callable[..., User],
    *,
    sessions: int = SESSIONS,
    passkeys: int = PASSKEYS,
    events: int = EVENTS,
    tokens: int = TOKENS,
    apps: int = APPS,
    staff: User | None = None,
) -> User:
    user = user_factory(username="heavy", display_name="Heavy User")
    User.objects.filter(pk=user.pk).update(phone="+33698765432", phone_verified=True)
    user.refresh_from_db()
    add_sessions(user, sessions)
    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    add_passkeys(user, passkeys)
    add_backup_codes(user)
    add_events(user, events, staff)
    add_tokens(user, tokens)
    add_apps(user, apps)
    for uid in range(3):
        SocialAccount.objects.create(
            user=user,
            provider="dummy",
            uid=str(1000 + uid),
            extra_data={"id": 1000 + uid, "username": f"heavy-{uid}"},
        )
    return user


@pytest.fixture
def heavy(user_factory: Callable[..., User]) -> User:
    """Some of their events were made by staff, some while staff impersonated them."""
    return heavy_user(user_factory, staff=user_factory(username="agent", is_staff=True))


@pytest.fixture
def heavy_client(heavy: User) -> Client:
    client = Client()
    client.force_login(heavy, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def admin_client_verified(user_factory: Callable[..., User]) -> Client:
    """A superuser signed in with a verified second factor (the back-office needs it)."""
    admin = user_factory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, admin)
    return client


def count(client: Client, url: str, status: int = 200) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return len(ctx.captured_queries)


def check(client: Client, url: str, budget: int, assert_max: Any, status: int = 200) -> int:
    """The page's cost once the session has settled: the first request of a session
    writes its bookkeeping (the session row, its activity time), not the page."""
    client.get(url)
    with assert_max(budget):
        return count(client, url, status)


# --- Settings pages ------------------------------------------------------------------------

# url name -> budget (measured + 2).
SETTINGS_PAGES: dict[str, int] = {
    "settings_home": 4,
    "profile": 4,
    "email": 5,
    "phone": 5,
    "security_activity": 6,
    "sessions": 5,
    "tokens": 5,
    "connected_apps": 5,
    "two_factor": 8,
    "export": 4,
    "delete_account": 4,
    "socialaccount_connections": 7,
    "account_change_password": 4,
    "account_reauthenticate": 6,
    "reauthenticate_two_factor": 7,
}


@pytest.mark.parametrize(("name", "budget"), SETTINGS_PAGES.items(), ids=list(SETTINGS_PAGES))
def test_settings_page_budget(
    heavy_client: Client, name: str, budget: int, django_assert_max_num_queries: Any
) -> None:
    check(heavy_client, reverse(name), budget, django_assert_max_num_queries)


# Pages behind a recent re-authentication.
REAUTH_PAGES: dict[str, int] = {"passkey_add": 4}


@pytest.mark.parametrize(("name", "budget"), REAUTH_PAGES.items(), ids=list(REAUTH_PAGES))
def test_reauthenticated_page_budget(
    heavy_client: Client, name: str, budget: int, django_assert_max_num_queries: Any
) -> None:
    reauthenticate(heavy_client)
    check(heavy_client, reverse(name), budget, django_assert_max_num_queries)


def test_totp_confirm_page_budget(
    heavy_client: Client, heavy: User, django_assert_max_num_queries: Any
) -> None:
    reauthenticate(heavy_client)
    TOTPDevice.objects.filter(user=heavy).delete()
    assert heavy_client.post(reverse("totp_start")).status_code == 302
    check(heavy_client, reverse("totp_confirm"), 7, django_assert_max_num_queries)


@pytest.mark.parametrize(
    ("name", "budget"), [("backup_codes_new", 4), ("backup_codes_download", 4)]
)
def test_backup_codes_page_budget(
    heavy_client: Client, name: str, budget: int, django_assert_max_num_queries: Any
) -> None:
    """The new codes, shown once after they were made (kept in the session)."""
    session = heavy_client.session
    session[CODES_SESSION_KEY] = {"codes": [f"CODE-{i:04}" for i in range(10)], "at": time.time()}
    session.save()
    check(heavy_client, reverse(name), budget, django_assert_max_num_queries)


@pytest.fixture
def passwordless_client(user_factory: Callable[..., User]) -> Client:
    """A user who signs in only with a linked account: set-password and the
    re-authentication by email code are their pages."""
    user = user_factory(username="linked", password=None)
    add_sessions(user, SESSIONS)
    add_events(user, EVENTS)
    SocialAccount.objects.create(user=user, provider="dummy", uid="77", extra_data={"id": 77})
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


PASSWORDLESS_PAGES: dict[str, int] = {"account_set_password": 4, "reauthenticate_email": 9}


@pytest.mark.parametrize(
    ("name", "budget"), PASSWORDLESS_PAGES.items(), ids=list(PASSWORDLESS_PAGES)
)
def test_passwordless_page_budget(
    passwordless_client: Client, name: str, budget: int, django_assert_max_num_queries: Any
) -> None:
    check(passwordless_client, reverse(name), budget, django_assert_max_num_queries)


# --- Back-office pages ------------------------------------------------------------------


def bulk_users(n: int) -> None:
    now = timezone.now()
    User.objects.bulk_create(
        User(
            username=f"bulk{i}",
            email=f"bulk{i}@example.org",
            email_key=f"bulk{i}@example.org",
            password="!",
            date_joined=now - timedelta(minutes=i),
        )
        for i in range(n)
    )


BACKOFFICE_PAGES: dict[str, int] = {
    "admin:index": 6,
    "admin:accounts_user_changelist": 7,
    "admin:accounts_auditevent_changelist": 9,
}
USER_PAGES: dict[str, int] = {
    "admin:accounts_user_change": 19,
    "admin:accounts_user_suspend": 6,
    "admin:accounts_user_end_sessions": 6,
    "admin:accounts_user_reset_mfa": 6,
    "admin:accounts_user_schedule_deletion": 6,
    "admin:accounts_user_purge": 6,
    "admin:accounts_user_impersonate": 6,
}


@pytest.mark.parametrize(("name", "budget"), BACKOFFICE_PAGES.items(), ids=list(BACKOFFICE_PAGES))
def test_backoffice_page_budget(
    admin_client_verified: Client,
    heavy: User,
    name: str,
    budget: int,
    django_assert_max_num_queries: Any,
) -> None:
    bulk_users(USERS)
    check(admin_client_verified, reverse(name), budget, django_assert_max_num_queries)


@pytest.mark.parametrize(("name", "budget"), USER_PAGES.items(), ids=list(USER_PAGES))
def test_backoffice_user_page_budget(
    admin_client_verified: Client,
    heavy: User,
    name: str,
    budget: int,
    django_assert_max_num_queries: Any,
) -> None:
    url = reverse(name, args=[heavy.pk])
    check(admin_client_verified, url, budget, django_assert_max_num_queries)


def test_policy_page_budget(
    admin_client_verified: Client, django_assert_max_num_queries: Any
) -> None:
    from accounts.models import AccountPolicy

    AccountPolicy.objects.get_or_create(pk=1)
    url = reverse("admin:accounts_accountpolicy_change", args=[1])
    check(admin_client_verified, url, 6, django_assert_max_num_queries)


# --- The cost does not grow with the data -------------------------------------------------


def test_the_settings_pages_cost_the_same_with_little_and_much_history(
    user_factory: Callable[..., User], django_assert_max_num_queries: Any
) -> None:
    """Every settings page, for a user signed in with their second factor (the
    middleware then loads the device), costs at most ``SETTINGS_GOAL`` queries, and
    the same with a little history as with 50 sessions, 20 security keys, 500
    events, 20 tokens and a few connected apps."""
    user = heavy_user(user_factory, sessions=5, passkeys=2, events=10, tokens=2, apps=1)
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, user)
    session = client.session
    session[CODES_SESSION_KEY] = {"codes": [f"CODE-{i:04}" for i in range(10)], "at": time.time()}
    session.save()
    budgets = {
        **SETTINGS_PAGES,
        **REAUTH_PAGES,
        "backup_codes_new": SETTINGS_GOAL,
        "backup_codes_download": SETTINGS_GOAL,
    }

    def measure() -> dict[str, int]:
        reauthenticate(client)
        return {
            name: check(
                client, reverse(name), min(budget, SETTINGS_GOAL), django_assert_max_num_queries
            )
            for name, budget in budgets.items()
        }

    few = measure()
    add_sessions(user, SESSIONS - 5)
    add_passkeys(user, PASSKEYS - 2)
    add_events(user, EVENTS - 10)
    add_tokens(user, TOKENS - 2)
    add_apps(user, APPS - 1)
    many = measure()
    assert few == many
    assert max(many.values()) <= SETTINGS_GOAL


def test_the_backoffice_pages_cost_the_same_with_little_and_much_history(
    admin_client_verified: Client,
    user_factory: Callable[..., User],
    django_assert_max_num_queries: Any,
) -> None:
    staff = user_factory(username="agent", is_staff=True)
    user = heavy_user(user_factory, sessions=5, passkeys=2, events=10, tokens=2, staff=staff)
    bulk_users(5)
    budgets = {**BACKOFFICE_PAGES, **USER_PAGES}
    urls = {
        "admin:accounts_user_changelist": reverse("admin:accounts_user_changelist"),
        "admin:accounts_auditevent_changelist": reverse("admin:accounts_auditevent_changelist"),
        "admin:accounts_user_change": reverse("admin:accounts_user_change", args=[user.pk]),
    }

    def measure() -> dict[str, int]:
        return {
            name: check(admin_client_verified, url, budgets[name], django_assert_max_num_queries)
            for name, url in urls.items()
        }

    few = measure()
    add_sessions(user, SESSIONS - 5)
    add_passkeys(user, PASSKEYS - 2)
    add_events(user, EVENTS - 10, staff)
    add_tokens(user, TOKENS - 2)
    User.objects.filter(username__startswith="bulk").delete()
    bulk_users(USERS)
    assert measure() == few


def test_linked_accounts_cost_the_same_with_apps_configured_in_the_database(
    user_factory: Callable[..., User], django_assert_max_num_queries: Any
) -> None:
    """Providers whose credentials are a social application row (not settings):
    the page reads the apps once, not once per linked account."""
    from allauth.socialaccount.models import SocialApp
    from django.contrib.sites.models import Site

    app = SocialApp.objects.create(provider="github", name="GitHub", client_id="id", secret="s")
    app.sites.add(Site.objects.get_current())
    user = user_factory(username="linked-many")
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, user)
    url = reverse("socialaccount_connections")

    def link(count: int) -> int:
        start = SocialAccount.objects.filter(user=user).count()
        for uid in range(start, start + count):
            SocialAccount.objects.create(
                user=user,
                provider="github",
                uid=str(uid),
                extra_data={"id": uid, "login": f"u{uid}"},
            )
        reauthenticate(client)
        return check(client, url, SETTINGS_GOAL, django_assert_max_num_queries)

    assert link(1) == link(4)
