"""The table of staff actions on one user: each entry's permission, the account
looked up after it, CSRF, and the one view that runs them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from accounts.admin.actions import ACTIONS
from accounts.models import AuditEvent, User
from tests.conftest import staff_signed_in

pytestmark = pytest.mark.django_db

DATA: dict[str, dict[str, str]] = {
    "suspend": {"reason": "Spam"},
    "restore": {},
    "end-sessions": {},
    "reset-mfa": {"reason": "Lost phone, identity checked"},
    "schedule-deletion": {"reason": "Asked by email"},
    "purge": {"username": "target"},
}
SLUGS = [a.slug for a in ACTIONS]


def url(slug: str, pk: int) -> str:
    return reverse(f"admin:accounts_user_{slug.replace('-', '_')}", args=[pk])


def staff_with(
    user_factory: Callable[..., User], *codenames: str, client: Client | None = None
) -> tuple[User, Client]:
    member = user_factory(username="helper", is_staff=True)
    for codename in ("view_user", *codenames):
        member.user_permissions.add(Permission.objects.get(codename=codename))
    client = staff_signed_in(member, client)
    return member, client


def snapshot(user: User) -> dict[str, Any]:
    return User.objects.filter(pk=user.pk).values("state", "is_active").first() or {}


def test_every_action_of_the_page_is_in_the_table() -> None:
    assert set(SLUGS) == set(DATA)
    assert len({a.url_name for a in ACTIONS}) == len(ACTIONS)


@pytest.mark.parametrize("slug", SLUGS)
def test_without_the_permission_the_action_is_refused(
    user_factory: Callable[..., User], slug: str
) -> None:
    target = user_factory(username="target")
    others = {a.permission for a in ACTIONS if a.slug != slug} - {
        a.permission for a in ACTIONS if a.slug == slug
    }
    _member, client = staff_with(user_factory, *sorted(others))
    before = snapshot(target)

    assert client.get(url(slug, target.pk)).status_code == 403
    assert client.post(url(slug, target.pk), DATA[slug]).status_code == 403

    assert snapshot(target) == before
    assert not AuditEvent.objects.filter(subject=target).exclude(action="signed_in").exists()


@pytest.mark.parametrize("slug", SLUGS)
def test_without_the_permission_a_missing_account_is_a_403_too(
    user_factory: Callable[..., User], slug: str
) -> None:
    _member, client = staff_with(user_factory)
    assert client.post(url(slug, 999_999), DATA[slug]).status_code == 403


@pytest.mark.parametrize("slug", SLUGS)
def test_a_missing_account_is_a_404(user_factory: Callable[..., User], slug: str) -> None:
    permissions = sorted({a.permission for a in ACTIONS})
    _member, client = staff_with(user_factory, *permissions)
    assert client.get(url(slug, 999_999)).status_code == 404
    assert client.post(url(slug, 999_999), DATA[slug]).status_code == 404


@pytest.mark.parametrize("slug", SLUGS)
def test_ones_own_account_is_refused(user_factory: Callable[..., User], slug: str) -> None:
    permissions = sorted({a.permission for a in ACTIONS})
    member, client = staff_with(user_factory, *permissions)
    response = client.post(url(slug, member.pk), DATA[slug] | {"username": "helper"})
    assert response.status_code == 403
    assert User.objects.filter(pk=member.pk, state="active").exists()


@pytest.mark.parametrize("slug", SLUGS)
def test_csrf_is_enforced(user_factory: Callable[..., User], slug: str) -> None:
    target = user_factory(username="target")
    if slug == "restore":
        from accounts.services.moderation import user_suspend

        user_suspend(ctx=None, user=target, reason="Earlier")
    permissions = sorted({a.permission for a in ACTIONS})
    _member, client = staff_with(
        user_factory, *permissions, client=Client(enforce_csrf_checks=True)
    )
    before = snapshot(target)
    events = AuditEvent.objects.count()

    response = client.post(url(slug, target.pk), DATA[slug])

    assert response.status_code == 403
    assert snapshot(target) == before
    assert AuditEvent.objects.count() == events


def test_a_wrong_state_is_a_message_on_the_users_page(
    user_factory: Callable[..., User],
) -> None:
    target = user_factory(username="target")
    _member, client = staff_with(user_factory, "suspend_user")

    response = client.post(url("restore", target.pk), follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:accounts_user_change", args=[target.pk])
    assert "This account is already active." in response.content.decode()
    assert not AuditEvent.objects.filter(action="account.restored").exists()
