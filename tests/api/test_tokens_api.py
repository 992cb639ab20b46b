"""GET/POST /api/my-account/tokens and DELETE /api/my-account/tokens/{id}: the
user's personal access tokens, under the policy field ``tokens``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, PersonalAccessToken, User
from accounts.services.audit import Action
from accounts.services.tokens import token_digest
from tests.api.conftest import ApiClient, assert_error, make_token, verify
from tests.conftest import reauthenticate

pytestmark = pytest.mark.django_db

TOKENS = "/api/my-account/tokens"


def one(path: str = TOKENS, pk: int | str | None = None) -> str:
    return f"{TOKENS}/{pk}"


def body(**changes: Any) -> dict[str, Any]:
    data = {
        "name": "Backup script",
        "scopes": ["account:read"],
        "expires_at": (timezone.now() + timedelta(days=30)).isoformat(),
    }
    data.update(changes)
    return data


def subjects() -> list[str]:
    return [str(m.subject) for m in mail.outbox]


def web(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    reauthenticate(client)
    return client


def web_create(user: User) -> int:
    day = (timezone.localdate() + timedelta(days=30)).isoformat()
    data = {"name": "Web", "scopes": ["account:read"], "expires_at": day}
    return web(user).post(reverse("token_create"), data).status_code


# --- List -------------------------------------------------------------------------------------


def test_list_shows_the_users_tokens_without_secrets(
    api: ApiClient, user: User, user_factory: Any
) -> None:
    make_token(user_factory(username="bob"))
    response = api.get(TOKENS)
    assert response.status_code == 200, response.content
    [item] = response.json()
    token = PersonalAccessToken.objects.get(user=user)
    assert set(item) == {
        "id", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"
    }  # fmt: skip
    assert item["id"] == token.pk
    assert item["prefix"] == f"pat_{token.prefix}…"
    assert item["scopes"] == ["account:read", "account:write"]
    assert item["last_used_at"] is not None  # this very call
    assert item["revoked_at"] is None
    assert token.digest not in response.content.decode()
    assert api.token is not None
    assert api.token not in response.content.decode()


def test_list_shows_recently_revoked_and_expired_tokens_for_30_days(
    api: ApiClient, user: User
) -> None:
    revoked = PersonalAccessToken.objects.get(pk=_new(user))
    PersonalAccessToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired = _new(user)
    PersonalAccessToken.objects.filter(pk=expired).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    old = _new(user)
    PersonalAccessToken.objects.filter(pk=old).update(
        revoked_at=timezone.now() - timedelta(days=31)
    )
    items = {i["id"]: i for i in api.get(TOKENS).json()}
    assert items[revoked.pk]["revoked_at"] is not None
    assert expired in items
    assert old not in items


def _new(user: User) -> int:
    make_token(user)
    return PersonalAccessToken.objects.filter(user=user).latest("pk").pk


def test_list_needs_the_read_scope(user: User) -> None:
    assert_error(
        ApiClient(make_token(user, ["account:write"])).get(TOKENS), 403, "token.insufficient_scope"
    )


# --- Create -----------------------------------------------------------------------------------


def test_create_returns_the_token_once(verified_api: ApiClient, user: User) -> None:
    response = verified_api.post(TOKENS, body(scopes=["account:read", "account:write"]))
    assert response.status_code == 201, response.content
    data = response.json()
    secret = data["token"]
    assert secret.startswith("pat_")
    assert len(secret) >= 4 + 43
    token = PersonalAccessToken.objects.get(pk=data["id"])
    assert (token.user, token.name, token.scopes) == (
        user,
        "Backup script",
        ["account:read", "account:write"],
    )
    assert data["prefix"] == f"pat_{token.prefix}…"
    # Stored hashed only.
    assert token.digest == token_digest(secret[4:])
    assert secret[4:] not in token.digest
    # It works, and is never shown again.
    assert ApiClient(secret).get("/api/my-account").json()["username"] == "alice"
    assert secret not in verified_api.get(TOKENS).content.decode()
    event = AuditEvent.objects.filter(action=Action.TOKEN_CREATED).latest("pk")
    assert event.actor == user
    assert event.data["name"] == "Backup script"
    assert subjects() == ["[Account portal] A personal access token was created for your account"]
    assert "Backup script" in mail.outbox[0].body
    assert secret not in mail.outbox[0].body


def test_create_needs_a_verification(api: ApiClient, user: User, user_factory: Any) -> None:
    assert_error(api.post(TOKENS, body()), 401, "verification.required")
    api.verification = verify(ApiClient(make_token(user_factory(username="bob"))))
    assert_error(api.post(TOKENS, body()), 401, "verification.invalid")
    assert PersonalAccessToken.objects.filter(user=user).count() == 1
    assert not mail.outbox


def test_create_with_a_reauthenticated_session(auth_client: Client, user: User) -> None:
    response = auth_client.post(TOKENS, body(), content_type="application/json")
    assert_error(response, 401, "verification.required")
    reauthenticate(auth_client)
    response = auth_client.post(TOKENS, body(), content_type="application/json")
    assert response.status_code == 201, response.content


def test_create_with_a_session_needs_csrf(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(TOKENS, body(), content_type="application/json")
    assert_error(response, 403, "csrf_failed")
    assert not PersonalAccessToken.objects.exists()


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"name": "   "}, {"name"}),
        ({"name": "a\x00b"}, {"name"}),
        ({"name": "x" * 101}, {"name"}),
        ({"name": "x" * 301}, {"name"}),
        ({"scopes": []}, {"scopes"}),
        ({"scopes": ["admin"]}, {"scopes"}),
        ({"scopes": ["x" * 51]}, {"scopes.0"}),
        ({"scopes": "account:read"}, {"scopes"}),
        ({"expires_at": "2020-01-01T00:00:00Z"}, {"expires_at"}),
        ({"expires_at": (timezone.now() + timedelta(days=367)).isoformat()}, {"expires_at"}),
        ({"expires_at": "tomorrow"}, {"expires_at"}),
        ({"expires_at": "9999-12-31T23:59:59-23:59"}, {"expires_at"}),
        (
            {"name": "", "scopes": ["nope"], "expires_at": "2001-01-01T00:00:00Z"},
            {"name", "scopes", "expires_at"},
        ),
        ({"owner": "bob"}, {"owner"}),
    ],
    ids=[
        "blank-name", "nul", "name-101", "name-301", "no-scope", "unknown-scope",
        "long-scope", "scopes-not-a-list", "past", "over-a-year", "not-a-date",
        "far-future", "all-three", "extra",
    ],
)  # fmt: skip
def test_bad_input_is_422(
    verified_api: ApiClient, user: User, changes: dict[str, Any], fields: set[str]
) -> None:
    data = body(**changes)
    details = assert_error(verified_api.post(TOKENS, data), 422, "validation_error")["details"]
    assert set(details) == fields
    assert PersonalAccessToken.objects.filter(user=user).count() == 1
    assert not mail.outbox


def test_missing_fields_are_422(verified_api: ApiClient) -> None:
    details = assert_error(verified_api.post(TOKENS, {}), 422, "validation_error")["details"]
    assert set(details) == {"name", "scopes", "expires_at"}


def test_too_many_live_tokens_is_409(verified_api: ApiClient, user: User, settings: Any) -> None:
    settings.PERSONAL_ACCESS_TOKENS_PER_USER = 3
    make_token(user)
    expired = PersonalAccessToken.objects.filter(user=user).latest("pk")
    assert verified_api.post(TOKENS, body()).status_code == 201
    assert_error(verified_api.post(TOKENS, body()), 409, "tokens.too_many")
    # Dead tokens do not count.
    PersonalAccessToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    assert verified_api.post(TOKENS, body()).status_code == 201


def test_creating_is_rate_limited(verified_api: ApiClient, user: User) -> None:
    for _ in range(10):
        assert verified_api.post(TOKENS, body()).status_code == 201
    response = verified_api.post(TOKENS, body())
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0
    # The settings page counts in the same bucket.
    assert web_create(user) == 429


def test_create_needs_the_write_scope(user: User) -> None:
    reader = ApiClient(make_token(user, ["account:read"]))
    reader.verification = verify(ApiClient(make_token(user, ["account:write"])))
    assert_error(reader.post(TOKENS, body()), 403, "token.insufficient_scope")


# --- Revoke -----------------------------------------------------------------------------------


def test_revoke(verified_api: ApiClient, user: User) -> None:
    other = make_token(user)
    token = PersonalAccessToken.objects.filter(user=user).latest("pk")
    response = verified_api.delete(one(pk=token.pk))
    assert response.status_code == 200, response.content
    assert response.json()["revoked_at"] is not None
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert_error(ApiClient(other).get("/api/my-account"), 401, "unauthenticated")
    assert AuditEvent.objects.filter(action=Action.TOKEN_REVOKED, actor=user).count() == 1
    assert subjects() == ["[Account portal] A personal access token of your account was revoked"]
    # Again: the same answer, nothing more happens.
    assert verified_api.delete(one(pk=token.pk)).status_code == 200
    assert AuditEvent.objects.filter(action=Action.TOKEN_REVOKED).count() == 1
    assert len(mail.outbox) == 1


def test_a_token_can_revoke_itself(verified_api: ApiClient, user: User) -> None:
    token = PersonalAccessToken.objects.get(user=user)
    assert verified_api.delete(one(pk=token.pk)).status_code == 200
    assert_error(verified_api.get(TOKENS), 401, "unauthenticated")


def test_revoke_needs_a_verification(api: ApiClient, user: User) -> None:
    token = PersonalAccessToken.objects.get(user=user)
    assert_error(api.delete(one(pk=token.pk)), 401, "verification.required")
    token.refresh_from_db()
    assert token.revoked_at is None


def test_someone_elses_token_is_404(verified_api: ApiClient, user_factory: Any) -> None:
    bob = user_factory(username="bob")
    bobs = make_token(bob)
    token = PersonalAccessToken.objects.get(user=bob)
    assert_error(verified_api.delete(one(pk=token.pk)), 404, "not_found")
    token.refresh_from_db()
    assert token.revoked_at is None
    assert ApiClient(bobs).get("/api/my-account").status_code == 200
    assert not mail.outbox


@pytest.mark.parametrize("pk", ["0", "-1", "999999", str(2**63), str(2**70)])
def test_unknown_ids_are_404(verified_api: ApiClient, pk: str) -> None:
    assert_error(verified_api.delete(one(pk=pk)), 404, "not_found")


@pytest.mark.parametrize("pk", ["abc", "1.5", "%00"])
def test_malformed_ids_are_422(verified_api: ApiClient, pk: str) -> None:
    assert_error(verified_api.delete(one(pk=pk)), 422, "validation_error")


def test_revoke_needs_the_write_scope(user: User) -> None:
    reader = ApiClient(make_token(user, ["account:read"]))
    reader.verification = verify(ApiClient(make_token(user, ["account:write"])))
    token = PersonalAccessToken.objects.filter(user=user).first()
    assert token is not None
    assert_error(reader.delete(one(pk=token.pk)), 403, "token.insufficient_scope")


# --- The policy, as on the settings page -------------------------------------------------------


@pytest.fixture
def session_api(user: User) -> Client:
    """alice's browser, recently re-authenticated: the API and the page side by side."""
    return web(user)


def test_off_hides_the_tokens_on_both_surfaces(
    session_api: Client, verified_api: ApiClient, user: User, policy_modes: Any
) -> None:
    token = PersonalAccessToken.objects.get(user=user)
    policy_modes(tokens="off")
    assert_error(session_api.get(TOKENS), 404, "policy.field_not_enabled")
    assert_error(
        session_api.post(TOKENS, body(), content_type="application/json"),
        404,
        "policy.field_not_enabled",
    )
    assert_error(session_api.delete(one(pk=token.pk)), 404, "policy.field_not_enabled")
    assert session_api.get(reverse("tokens")).status_code == 404
    assert session_api.post(reverse("token_revoke", args=[token.pk])).status_code == 404
    # A token the user can no longer see or revoke does not work either.
    assert_error(verified_api.get(TOKENS), 401, "unauthenticated")
    token.refresh_from_db()
    assert token.revoked_at is None


def test_read_only_lists_but_refuses_changes_on_both_surfaces(
    session_api: Client, verified_api: ApiClient, user: User, policy_modes: Any
) -> None:
    token = PersonalAccessToken.objects.get(user=user)
    policy_modes(tokens="read_only")
    assert verified_api.get(TOKENS).status_code == 200
    assert session_api.get(reverse("tokens")).status_code == 200
    assert_error(verified_api.post(TOKENS, body()), 403, "policy.field_not_editable")
    assert_error(verified_api.delete(one(pk=token.pk)), 403, "policy.field_not_editable")
    assert web_create(user) == 403
    assert session_api.post(reverse("token_revoke", args=[token.pk])).status_code == 403
    assert PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).count() == 1


def test_master_switch_refuses_the_list_and_changes_on_both_surfaces(
    session_api: Client, verified_api: ApiClient, user: User, policy_modes: Any
) -> None:
    token = PersonalAccessToken.objects.get(user=user)
    policy_modes(enabled=False)
    assert_error(verified_api.get(TOKENS), 403, "policy.not_enabled")
    assert_error(verified_api.post(TOKENS, body()), 403, "policy.not_enabled")
    assert_error(verified_api.delete(one(pk=token.pk)), 403, "policy.not_enabled")
    assert web_create(user) == 403
    assert session_api.post(reverse("token_revoke", args=[token.pk])).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_edit_lets_both_surfaces_create(verified_api: ApiClient, user: User) -> None:
    assert verified_api.post(TOKENS, body()).status_code == 201
    assert web_create(user) == 302
    assert PersonalAccessToken.objects.filter(user=user).count() == 3


def test_impersonating_staff_cannot_create_or_revoke(user: User, staff_user: User) -> None:
    import time

    from accounts.impersonation import STARTED_KEY

    make_token(user)
    token = PersonalAccessToken.objects.get(user=user)
    client = web(user)
    session = client.session
    session["hijack_history"] = [str(staff_user.pk)]
    session[STARTED_KEY] = time.time()
    session.save()
    assert_error(
        client.post(TOKENS, body(), content_type="application/json"), 403, "impersonation.refused"
    )
    assert_error(client.delete(one(pk=token.pk)), 403, "impersonation.refused")
    token.refresh_from_db()
    assert token.revoked_at is None


# --- Query budgets ----------------------------------------------------------------------------


def test_list_query_budget_does_not_grow_with_tokens(
    api: ApiClient, user: User, django_assert_max_num_queries: Any
) -> None:
    def measure() -> int:
        with django_assert_max_num_queries(4), CaptureQueriesContext(connection) as ctx:
            assert api.get(TOKENS).status_code == 200
        return len(ctx.captured_queries)

    api.get(TOKENS)
    few = measure()
    for _ in range(19):
        make_token(user)
    assert measure() == few


def test_create_query_budget(
    verified_api: ApiClient, user: User, django_assert_max_num_queries: Any
) -> None:
    verified_api.get(TOKENS)
    with django_assert_max_num_queries(12):
        assert verified_api.post(TOKENS, body()).status_code == 201


def test_revoke_query_budget(
    verified_api: ApiClient,
    user: User,
    user_factory: Callable[..., User],
    django_assert_max_num_queries: Any,
) -> None:
    for _ in range(10):
        make_token(user)
    token = PersonalAccessToken.objects.filter(user=user).latest("pk")
    verified_api.get(TOKENS)
    with django_assert_max_num_queries(13):
        assert verified_api.delete(one(pk=token.pk)).status_code == 200
