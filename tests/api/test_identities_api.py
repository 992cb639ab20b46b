"""Linked accounts through the Account API: list them, unlink one (the last way to
sign in is kept)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, User
from accounts.services.audit import Action
from tests.api.conftest import ApiClient, assert_error, make_token, verify
from tests.conftest import PASSWORD, reauthenticate
from tests.helpers import code_from_last_email

pytestmark = pytest.mark.django_db

LIST = "/api/my-account/identities"


def link(user: User, uid: str, **extra_data: Any) -> SocialAccount:
    """A linked account, as allauth stores one after a sign-in with the provider."""
    data = {
        "id": uid,
        "username": f"{user.username}-on-dummy-{uid}",
        "email": f"{user.username}.{uid}@dummy.example",
        **extra_data,
    }
    return SocialAccount.objects.create(user=user, provider="dummy", uid=uid, extra_data=data)


def url(account: SocialAccount | None = None, provider: str = "", uid: str = "") -> str:
    if account is not None:
        provider, uid = account.provider, account.uid
    return f"{LIST}/{provider}/{uid}"


def state() -> dict[str, Any]:
    return {
        "linked": sorted(SocialAccount.objects.values_list("pk", "user_id", "uid")),
        "audit": list(AuditEvent.objects.values_list("action", flat=True)),
        "mail": len(mail.outbox),
    }


def web_client(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    reauthenticate(client)
    return client


def verified_by_email_code(user: User) -> ApiClient:
    """A user without a password proves it with a code sent to their address."""
    client = ApiClient(make_token(user))
    pending = client.post("/api/verifications/code", {"channel": "email"})
    assert pending.status_code == 200, pending.content
    done = client.post(
        "/api/verifications/code/verify",
        {
            "verification_id": pending.json()["verification_id"],
            "code": code_from_last_email(user.email),
        },
    )
    assert done.status_code == 200, done.content
    client.verification = done.json()["verification_id"]
    return client


@pytest.fixture
def bob(user_factory: Callable[..., User]) -> User:
    return user_factory(username="bob")


# --- GET /api/my-account/identities -------------------------------------------------------


def test_list(api: ApiClient, user: User, bob: User) -> None:
    first = link(user, "101", username="alice-dummy-handle")
    SocialAccount.objects.filter(pk=first.pk).update(date_joined=timezone.now() - timedelta(days=3))
    link(user, "102", email="")
    link(bob, "202", username="bob-dummy-handle")
    response = api.get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert [(i["provider"], i["uid"]) for i in body] == [("dummy", "101"), ("dummy", "102")]
    assert body[0]["provider_name"] == "Dummy"
    assert body[0]["display_name"] == "alice-dummy-handle"
    assert body[0]["email"] == "alice.101@dummy.example"
    assert body[1]["email"] is None
    first.refresh_from_db()
    assert body[0]["linked_at"].startswith(first.date_joined.date().isoformat())
    assert body[0]["last_login"] is not None
    assert "bob-dummy-handle" not in response.content.decode()


def test_list_of_an_account_of_a_provider_no_longer_set_up(api: ApiClient, user: User) -> None:
    SocialAccount.objects.create(user=user, provider="gone", uid="7", extra_data={})
    body = api.get(LIST).json()
    assert body[0]["provider"] == "gone"
    assert body[0]["provider_name"] == "gone"
    assert body[0]["display_name"] == ""


def test_list_when_nothing_is_linked(api: ApiClient) -> None:
    assert api.get(LIST).json() == []


# --- DELETE /api/my-account/identities/{provider}/{uid} ------------------------------------


def test_unlink_needs_a_verification(api: ApiClient, user: User) -> None:
    account = link(user, "101")
    before = state()
    assert_error(api.delete(url(account)), 401, "verification.required")
    assert state() == before


def test_unlink(verified_api: ApiClient, user: User) -> None:
    account = link(user, "101")
    other = link(user, "102")
    response = verified_api.delete(url(account))
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True}
    assert list(SocialAccount.objects.filter(user=user)) == [other]
    event = AuditEvent.objects.get(action=Action.SOCIAL_UNLINKED)
    assert event.subject == user
    assert event.actor == user
    assert event.data["provider"] == "Dummy"
    assert [m.subject for m in mail.outbox if user.email in m.to] == [
        "[Account portal] An account was unlinked from yours"
    ]
    assert [i["uid"] for i in verified_api.get(LIST).json()] == ["102"]


def test_unlink_an_uid_with_a_slash(verified_api: ApiClient, user: User) -> None:
    account = SocialAccount.objects.create(
        user=user, provider="dummy", uid="https://id.example/alice", extra_data={}
    )
    response = verified_api.delete(f"{LIST}/dummy/https://id.example/alice")
    assert response.status_code == 200, response.content
    assert not SocialAccount.objects.filter(pk=account.pk).exists()


def test_the_last_way_to_sign_in_is_kept(user_factory: Callable[..., User]) -> None:
    carol = user_factory(username="carol", password=None)
    account = link(carol, "301")
    client = verified_by_email_code(carol)
    mail.outbox.clear()
    before = state()
    body = assert_error(client.delete(url(account)), 409, "social.last_sign_in_method")
    assert "password" in body["message"].lower()
    assert state() == before
    # With a second linked account, the first can go.
    link(carol, "302")
    assert client.delete(url(account)).status_code == 200
    assert list(SocialAccount.objects.filter(user=carol).values_list("uid", flat=True)) == ["302"]


def test_with_a_password_but_no_verified_address_the_last_account_is_kept(
    user_factory: Callable[..., User],
) -> None:
    dave = user_factory(username="dave", verified=False)
    account = link(dave, "401")
    client = ApiClient(make_token(dave))
    verify(client, PASSWORD)
    assert_error(client.delete(url(account)), 409, "social.last_sign_in_method")
    assert SocialAccount.objects.filter(pk=account.pk).exists()


@pytest.mark.parametrize(
    ("provider", "uid"),
    [("dummy", "202"), ("dummy", "999"), ("google", "101"), ("nope", "x" * 191)],
    ids=["someone-else", "unknown-uid", "other-provider", "unknown"],
)
def test_someone_elses_or_unknown_identity_is_404(
    verified_api: ApiClient, user: User, bob: User, provider: str, uid: str
) -> None:
    link(user, "101")
    link(bob, "202")
    before = state()
    assert_error(verified_api.delete(url(provider=provider, uid=uid)), 404, "not_found")
    assert state() == before


@pytest.mark.parametrize(
    "path",
    [
        f"{LIST}/dummy/1%000",
        f"{LIST}/du%01mmy/101",
        f"{LIST}/dummy/{'1' * 192}",
        f"{LIST}/{'d' * 201}/101",
    ],
    ids=["nul", "control", "uid-too-long", "provider-too-long"],
)
def test_bad_provider_or_uid_is_422(verified_api: ApiClient, user: User, path: str) -> None:
    link(user, "101")
    before = state()
    assert_error(verified_api.delete(path), 422, "validation_error")
    assert state() == before


# --- Every endpoint: policy, scope, verification ---------------------------------------


# mode -> (API status, code, web status) for each endpoint.
# With the master switch off the page shows its one notice (200), the API refuses.
READ = {
    "edit": (200, None, 200),
    "read_only": (200, None, 200),
    "off": (404, "policy.field_not_enabled", 404),
    "master_off": (403, "policy.not_enabled", 200),
}
WRITE = {
    "read_only": (403, "policy.field_not_editable", 403),
    "off": (404, "policy.field_not_enabled", 404),
    "master_off": (403, "policy.not_enabled", 403),
}


def _set(policy_modes: Any, mode: str) -> None:
    if mode == "master_off":
        policy_modes(enabled=False)
    elif mode != "edit":
        policy_modes(social=mode)


@pytest.mark.parametrize("mode", list(READ))
def test_list_follows_the_policy_like_the_page(
    api: ApiClient, user: User, policy_modes: Any, mode: str
) -> None:
    link(user, "101")
    web = web_client(user)
    _set(policy_modes, mode)
    status, code, page_status = READ[mode]
    response = api.get(LIST)
    if code:
        assert_error(response, status, code)
    else:
        assert response.status_code == status
        assert len(response.json()) == 1
    assert web.get(reverse("socialaccount_connections")).status_code == page_status


@pytest.mark.parametrize("mode", list(WRITE))
def test_unlink_follows_the_policy_like_the_page(
    verified_api: ApiClient, user: User, policy_modes: Any, mode: str
) -> None:
    account = link(user, "101")
    web = web_client(user)
    _set(policy_modes, mode)
    status, code, page_status = WRITE[mode]
    before = state()
    assert_error(verified_api.delete(url(account)), status, code)
    page = web.post(reverse("socialaccount_connections"), {"account": account.pk})
    assert page.status_code == page_status
    assert state() == before


def test_unlink_in_edit_mode_on_the_page_too(user: User) -> None:
    """The control for the refusals above: the page's request, as sent, unlinks."""
    account = link(user, "101")
    page = web_client(user).post(reverse("socialaccount_connections"), {"account": account.pk})
    assert page.status_code == 302
    assert not SocialAccount.objects.filter(pk=account.pk).exists()


def test_another_users_verification_is_refused(api: ApiClient, user: User, bob: User) -> None:
    account = link(user, "101")
    api.verification = verify(ApiClient(make_token(bob)))
    before = state()
    assert_error(api.delete(url(account)), 401, "verification.invalid")
    assert state() == before


def test_scopes(user: User) -> None:
    account = link(user, "101")
    reader = ApiClient(make_token(user, ["account:read"]))
    reader.verification = verify(ApiClient(make_token(user)))
    assert reader.get(LIST).status_code == 200
    assert_error(reader.delete(url(account)), 403, "token.insufficient_scope")
    assert SocialAccount.objects.filter(pk=account.pk).exists()
    writer = ApiClient(make_token(user, ["account:write"]))
    assert_error(writer.get(LIST), 403, "token.insufficient_scope")


def test_impersonating_staff_cannot_unlink(user: User, user_factory: Callable[..., User]) -> None:
    from tests.api.test_mfa_api import impersonated_by_staff

    account = link(user, "101")
    client = impersonated_by_staff(user, user_factory)
    before = state()
    assert_error(client.delete(url(account)), 403, "impersonation.refused")
    assert state() == before


# --- Query budgets: the count does not grow with the number of linked accounts ------------
# (the real count plus two)


@pytest.mark.parametrize("count", [2, 12])
def test_list_query_budget(user: User, count: int, django_assert_max_num_queries: Any) -> None:
    for n in range(count):
        link(user, str(100 + n))
    api = ApiClient(make_token(user))
    api.get("/api/my-account")
    with django_assert_max_num_queries(5):
        response = api.get(LIST)
    assert len(response.json()) == count


@pytest.mark.parametrize("count", [2, 12])
def test_unlink_query_budget(user: User, count: int, django_assert_max_num_queries: Any) -> None:
    accounts = [link(user, str(100 + n)) for n in range(count)]
    api = ApiClient(make_token(user))
    verify(api)
    api.get("/api/my-account")
    with django_assert_max_num_queries(16):
        response = api.delete(url(accounts[0]))
    assert response.status_code == 200, response.content
