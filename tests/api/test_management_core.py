"""The Management API's door: staff management tokens only, within the staff
member's permissions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import AuditEvent, User
from accounts.services.audit import Action
from tests.api.conftest import ApiClient, assert_error, make_token, management_client

pytestmark = pytest.mark.django_db


def _in_a_month() -> str:
    from datetime import timedelta

    from django.utils import timezone

    return (timezone.now() + timedelta(days=30)).isoformat()


@pytest.fixture
def support(user_factory: Callable[..., User]) -> User:
    member = user_factory(username="sue", is_staff=True)
    member.groups.add(Group.objects.get(name="Support"))
    return member


def test_a_support_token_reads_a_user(support: User, user: User) -> None:
    response = management_client(support).get(f"/api/management/users/{user.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["username"], body["state"]) == (user.pk, "alice", "active")
    assert body["has_second_factor"] is False


def test_unknown_and_huge_ids_are_404(support: User) -> None:
    client = management_client(support)
    assert_error(client.get("/api/management/users/999999"), 404, "not_found")
    assert_error(client.get(f"/api/management/users/{2**70}"), 404, "not_found")


def test_end_users_tokens_and_sessions_get_403(user: User, auth_client: Client) -> None:
    end_user = ApiClient(make_token(user))
    assert_error(end_user.get(f"/api/management/users/{user.pk}"), 403, "forbidden")
    assert_error(auth_client.get(f"/api/management/users/{user.pk}"), 403, "forbidden")


def test_no_credentials_is_401(user: User) -> None:
    assert_error(Client().get(f"/api/management/users/{user.pk}"), 401, "unauthenticated")


def test_staff_without_the_permission_get_403(
    user_factory: Callable[..., User], user: User
) -> None:
    plain = user_factory(username="plain", is_staff=True)
    assert_error(management_client(plain).get(f"/api/management/users/{user.pk}"), 403, "forbidden")


def test_a_management_token_dies_when_its_owner_is_no_longer_staff_or_loses_the_factor(
    support: User, user: User
) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = management_client(support)
    assert client.get(f"/api/management/users/{user.pk}").status_code == 200
    TOTPDevice.objects.filter(user=support).delete()
    assert_error(client.get(f"/api/management/users/{user.pk}"), 403, "forbidden")
    TOTPDevice.objects.create(user=support, name="again", confirmed=True)
    support.is_staff = False
    support.save()
    assert_error(client.get(f"/api/management/users/{user.pk}"), 403, "forbidden")


def test_a_management_token_is_not_an_account_token(support: User) -> None:
    client = management_client(support)
    assert_error(client.get("/api/my-account"), 403, "token.insufficient_scope")


def test_only_staff_with_a_second_factor_make_management_tokens(user: User, support: User) -> None:
    from tests.api.conftest import verify

    client = ApiClient(make_token(user))
    verify(client)
    body = assert_error(
        client.post(
            "/api/my-account/tokens",
            {"name": "x", "scopes": ["management"], "expires_at": _in_a_month()},
        ),
        422,
        "validation_error",
    )
    assert list(body["details"]) == ["scopes"]
    staff = management_client(support)  # gives sue an app
    account = ApiClient(make_token(support))
    verify(account)
    response = account.post(
        "/api/my-account/tokens",
        {"name": "ops", "scopes": ["management"], "expires_at": _in_a_month()},
    )
    assert response.status_code == 201, response.content
    assert response.json()["scopes"] == ["management"]
    assert staff.token


def test_audit_events_record_their_surface(user: User, auth_client: Client) -> None:
    auth_client.post("/settings/profile/name/edit/", {"display_name": "Web"})
    ApiClient(make_token(user)).patch("/api/my-account", {"display_name": "Token"})
    surfaces = list(
        AuditEvent.objects.filter(action=Action.PROFILE_UPDATED)
        .order_by("id")
        .values_list("surface", flat=True)
    )
    assert surfaces == ["web", "token"]
