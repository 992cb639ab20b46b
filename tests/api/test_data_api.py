"""GET /api/my-account/security-activity (cursor paging), GET /api/my-account/export,
POST and DELETE /api/my-account/deletion."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core import mail, signing
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from accounts.actor import Actor
from accounts.models import AuditEvent, PersonalAccessToken, User
from accounts.services.audit import Action, audit_record
from accounts.services.deletion import account_deletion_schedule
from tests.api.conftest import ApiClient, assert_error, make_token, verify
from tests.conftest import PASSWORD, reauthenticate

pytestmark = pytest.mark.django_db

ACTIVITY = "/api/my-account/security-activity"
EXPORT = "/api/my-account/export"
DELETION = "/api/my-account/deletion"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


# --- Helpers ----------------------------------------------------------------------------


def add_events(user: User, count: int, *, actor: User | None = None) -> None:
    actions = [Action.PASSWORD_CHANGED, Action.PROFILE_UPDATED, Action.SIGNED_IN]
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        AuditEvent(
            action=actions[i % len(actions)],
            subject=user,
            subject_label=user.username,
            actor=actor or user,
            ip_address="192.0.2.1",
            user_agent=FIREFOX,
        )
        for i in range(count)
    )
    # Several events share a time: the cursor must still page through each once.
    for i, pk in enumerate(
        AuditEvent.objects.filter(subject=user).order_by("pk").values_list("pk", flat=True)
    ):
        AuditEvent.objects.filter(pk=pk).update(created_at=now - timedelta(seconds=i // 3))


def all_pages(client: ApiClient, page_size: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        query = {"page_size": page_size, **({"cursor": cursor} if cursor else {})}
        response = client.get(ACTIVITY, query)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def session_client(user: User, *, csrf: bool = False) -> Client:
    """``user`` signed in to the portal (also an account pending deletion)."""
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user, backend="accounts.backends.PortalAuthenticationBackend")
    return client


def csrf_header(client: Client, page: str = "/settings/") -> dict[str, str]:
    client.get(page)  # sets the CSRF cookie
    return {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}


def web_export(user: User) -> int:
    client = session_client(user)
    reauthenticate(client)
    return client.post(reverse("export")).status_code


def web_delete(user: User) -> int:
    client = session_client(user)
    reauthenticate(client)
    return client.post(reverse("delete_account"), {"confirmation": "alice"}).status_code


# --- Security activity ---------------------------------------------------------------------


def test_activity_lists_own_events_newest_first(
    api: ApiClient, user: User, user_factory: Any
) -> None:
    bob = user_factory(username="bob")
    add_events(bob, 5)
    audit_record(ctx=None, action=Action.PASSWORD_CHANGED, subject=user)
    response = api.get(ACTIVITY)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["next_cursor"] is None
    # The token's own creation (by the fixture) and the password change.
    assert [item["action"] for item in body["items"]] == ["password.changed", "token.created"]
    item = body["items"][0]
    assert set(item) == {
        "id", "action", "label", "time", "ip_address", "user_agent", "device", "by_staff"
    }  # fmt: skip
    assert item["label"] == "Password changed"
    assert item["by_staff"] is False


def test_cursor_paging_visits_every_event_once(api: ApiClient, user: User) -> None:
    add_events(user, 44)
    expected = list(
        AuditEvent.objects.filter(subject=user)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    assert len(expected) == 45
    pages = all_pages(api, 20)
    assert [len(page) for page in pages] == [20, 20, 5]
    assert [item["id"] for page in pages for item in page] == expected
    assert len(all_pages(api, settings.API_PAGE_SIZE_MAX)) == 1


def test_default_page_size_is_20(api: ApiClient, user: User) -> None:
    add_events(user, 30)
    body = api.get(ACTIVITY).json()
    assert len(body["items"]) == 20
    assert body["next_cursor"]


def test_items_show_the_device_and_mark_staff(api: ApiClient, user: User, staff_user: User) -> None:
    audit_record(
        ctx=Actor(user=user, ip="203.0.113.9", user_agent=FIREFOX),
        action=Action.PHONE_ADDED,
        subject=user,
    )
    audit_record(
        ctx=Actor(user=staff_user, ip="10.0.0.1", user_agent="staff browser"),
        action=Action.UPDATED_BY_STAFF,
        subject=user,
    )
    items = {i["action"]: i for i in api.get(ACTIVITY).json()["items"]}
    own = items[Action.PHONE_ADDED]
    assert (own["ip_address"], own["user_agent"], own["by_staff"]) == (
        "203.0.113.9",
        FIREFOX,
        False,
    )
    assert own["device"] == "Firefox on Linux"
    assert items[Action.UPDATED_BY_STAFF]["by_staff"] is True


def test_support_events_do_not_show_staff_address_or_device(
    api: ApiClient, user: User, staff_user: User
) -> None:
    audit_record(
        ctx=Actor(user=staff_user, ip="10.9.9.9", user_agent="Staff Secret Browser"),
        action=Action.IMPERSONATION_STARTED,
        subject=user,
    )
    response = api.get(ACTIVITY)
    item = next(i for i in response.json()["items"] if i["action"] == Action.IMPERSONATION_STARTED)
    assert (item["ip_address"], item["user_agent"], item["device"]) == (None, "", "")
    assert item["by_staff"] is True
    assert "10.9.9.9" not in response.content.decode()
    assert "Staff Secret" not in response.content.decode()
    assert "sam" not in response.content.decode()


def test_labels_follow_accept_language(api: ApiClient, user: User) -> None:
    audit_record(ctx=None, action=Action.PASSWORD_CHANGED, subject=user)
    item = api.get(ACTIVITY, HTTP_ACCEPT_LANGUAGE="fr").json()["items"][0]
    with translation.override("fr"):
        assert item["label"] == str(Action.LABELS[Action.PASSWORD_CHANGED])
    assert item["label"] != "Password changed"


def test_events_older_than_90_days_are_left_out(api: ApiClient, user: User) -> None:
    event = audit_record(ctx=None, action=Action.PASSWORD_CHANGED, subject=user)
    AuditEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(days=91))
    assert [i["action"] for i in api.get(ACTIVITY).json()["items"]] == ["token.created"]


@pytest.mark.parametrize(
    "cursor",
    ["nope", "\x00", "a" * 400, signing.dumps([1, "2026-01-01T00:00:00", 1], salt="other")],
    ids=["junk", "nul", "long", "wrong-salt"],
)
def test_a_bad_cursor_is_422(api: ApiClient, cursor: str) -> None:
    body = assert_error(api.get(ACTIVITY, {"cursor": cursor}), 422, "validation_error")
    assert list(body["details"]) == ["cursor"]


def test_a_tampered_or_foreign_cursor_is_422(api: ApiClient, user: User, user_factory: Any) -> None:
    add_events(user, 30)
    cursor = api.get(ACTIVITY).json()["next_cursor"]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert_error(api.get(ACTIVITY, {"cursor": tampered}), 422, "validation_error")
    bob = user_factory(username="bob")
    add_events(bob, 30)
    bobs = ApiClient(make_token(bob)).get(ACTIVITY).json()["next_cursor"]
    assert_error(api.get(ACTIVITY, {"cursor": bobs}), 422, "validation_error")
    # A cursor from the right signer but with a broken position.
    for position in ([user.pk, "not a date", 1], [user.pk, "2026-01-01T00:00:00", "1"], "x"):
        forged = signing.dumps(position, salt="accounts.api.security-activity")
        assert_error(api.get(ACTIVITY, {"cursor": forged}), 422, "validation_error")


@pytest.mark.parametrize("size", ["0", "-1", str(settings.API_PAGE_SIZE_MAX + 1), "x", "9" * 30])
def test_a_bad_page_size_is_422(api: ApiClient, size: str) -> None:
    body = assert_error(api.get(ACTIVITY, {"page_size": size}), 422, "validation_error")
    assert list(body["details"]) == ["page_size"]


def test_activity_needs_the_read_scope(user: User) -> None:
    writer = ApiClient(make_token(user, ["account:write"]))
    assert_error(writer.get(ACTIVITY), 403, "token.insufficient_scope")
    assert ApiClient(make_token(user, ["account:read"])).get(ACTIVITY).status_code == 200


def test_activity_with_a_session(auth_client: Client) -> None:
    assert auth_client.get(ACTIVITY).status_code == 200
    assert_error(Client().get(ACTIVITY), 401, "unauthenticated")


def test_activity_query_budget_does_not_grow_with_events(
    api: ApiClient, user: User, django_assert_max_num_queries: Any
) -> None:
    def measure(query: dict[str, Any]) -> int:
        api.get(ACTIVITY, query)
        with django_assert_max_num_queries(4), CaptureQueriesContext(connection) as ctx:
            assert api.get(ACTIVITY, query).status_code == 200
        return len(ctx.captured_queries)

    few = measure({"page_size": 100})
    add_events(user, 500)
    cursor = api.get(ACTIVITY, {"page_size": 100}).json()["next_cursor"]
    assert measure({"page_size": 100}) == few
    assert measure({"page_size": 100, "cursor": cursor}) == few


# --- Export -----------------------------------------------------------------------------------


def test_export(verified_api: ApiClient, user: User) -> None:
    response = verified_api.get(EXPORT)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["profile"]["username"] == "alice"
    assert data["emails"] == [{"email": "alice@example.org", "verified": True, "primary": True}]
    assert response["Content-Disposition"].startswith('attachment; filename="account-')
    assert "no-store" in response["Cache-Control"]
    event = AuditEvent.objects.get(action=Action.DATA_EXPORTED)
    assert (event.subject, event.actor) == (user, user)
    # No secret of the token that asked for it.
    token = PersonalAccessToken.objects.get(user=user)
    assert token.digest not in response.content.decode()


def test_export_needs_a_verification(api: ApiClient, user_factory: Any) -> None:
    assert_error(api.get(EXPORT), 401, "verification.required")
    api.verification = verify(ApiClient(make_token(user_factory(username="bob"))))
    assert_error(api.get(EXPORT), 401, "verification.invalid")
    assert not AuditEvent.objects.filter(action=Action.DATA_EXPORTED).exists()


def test_export_with_a_reauthenticated_session(auth_client: Client) -> None:
    assert_error(auth_client.get(EXPORT), 401, "verification.required")
    reauthenticate(auth_client)
    assert auth_client.get(EXPORT).status_code == 200


def test_export_shares_the_pages_rate_limit(verified_api: ApiClient, user: User) -> None:
    assert web_export(user) == 200
    for _ in range(2):
        assert verified_api.get(EXPORT).status_code == 200
    response = verified_api.get(EXPORT)
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0
    assert web_export(user) == 429
    assert AuditEvent.objects.filter(action=Action.DATA_EXPORTED).count() == 3


@pytest.mark.parametrize(
    ("modes", "status", "code"),
    [
        ({"data_export": "off"}, 404, "policy.field_not_enabled"),
        ({"data_export": "read_only"}, 403, "policy.field_not_editable"),
        ({"enabled": False}, 403, "policy.not_enabled"),
    ],
)
def test_export_follows_the_policy_as_the_page(
    verified_api: ApiClient,
    user: User,
    policy_modes: Any,
    modes: dict[str, Any],
    status: int,
    code: str,
) -> None:
    policy_modes(**modes)
    assert_error(verified_api.get(EXPORT), status, code)
    assert web_export(user) == status
    assert not AuditEvent.objects.filter(action=Action.DATA_EXPORTED).exists()


def test_export_scopes(user: User) -> None:
    reader = ApiClient(make_token(user, ["account:read"]))
    verify_with_session_free_token(reader, user)
    assert reader.get(EXPORT).status_code == 200
    writer = ApiClient(make_token(user, ["account:write"]))
    writer.verification = reader.verification
    assert_error(writer.get(EXPORT), 403, "token.insufficient_scope")


def verify_with_session_free_token(client: ApiClient, user: User) -> None:
    """A read-only token cannot POST a verification: make it with a writer token."""
    client.verification = verify(ApiClient(make_token(user, ["account:write"])))


def test_export_query_budget(
    verified_api: ApiClient, user: User, django_assert_max_num_queries: Any
) -> None:
    def measure() -> int:
        with django_assert_max_num_queries(16), CaptureQueriesContext(connection) as ctx:
            assert verified_api.get(EXPORT).status_code == 200
        return len(ctx.captured_queries)

    few = measure()
    add_events(user, 300)
    UserSession.objects.bulk_create(
        UserSession(user=user, session_key=f"key-{i:04}", ip="192.0.2.1", user_agent=FIREFOX)
        for i in range(30)
    )
    assert measure() == few


# --- Deletion --------------------------------------------------------------------------------


def test_schedule_deletion(verified_api: ApiClient, user: User, token_for: Any) -> None:
    other_token = ApiClient(token_for(user))
    browser = session_client(user)
    assert browser.get("/settings/").status_code == 200  # its session is recorded
    assert UserSession.objects.filter(user=user).exists()
    before = timezone.now()
    response = verified_api.post(DELETION, {"confirmation": "alice"})
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION
    assert user.deletion_scheduled_for is not None
    scheduled = response.json()["deletion_scheduled_for"]
    assert scheduled.startswith(user.deletion_scheduled_for.date().isoformat())
    grace = timedelta(days=settings.ACCOUNT_DELETION_GRACE_DAYS)
    assert before + grace <= user.deletion_scheduled_for <= timezone.now() + grace
    assert AuditEvent.objects.filter(action=Action.DELETION_SCHEDULED, subject=user).exists()
    assert any("scheduled for deletion" in str(m.subject) for m in mail.outbox)
    # Every token is dead, the one that asked included; every session is over.
    assert_error(verified_api.get("/api/my-account"), 401, "unauthenticated")
    assert_error(other_token.get("/api/my-account"), 401, "unauthenticated")
    assert not PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert SESSION_KEY not in browser.session
    assert not UserSession.objects.filter(user=user).exists()
    assert browser.get("/settings/").status_code == 302


def test_schedule_deletion_with_a_session_signs_it_out(user: User) -> None:
    client = session_client(user, csrf=True)
    headers = csrf_header(client)
    reauthenticate_with_csrf(client)
    response = client.post(
        DELETION, {"confirmation": "alice"}, content_type="application/json", **headers
    )
    assert response.status_code == 200, response.content
    assert SESSION_KEY not in client.session
    assert_error(client.get("/api/my-account"), 401, "unauthenticated")


def reauthenticate_with_csrf(client: Client) -> None:
    client.get(reverse("account_reauthenticate"))
    response = client.post(
        reverse("account_reauthenticate"),
        {"password": PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )
    assert response.status_code == 302


def test_schedule_deletion_needs_a_verification(
    api: ApiClient, user: User, user_factory: Any
) -> None:
    assert_error(api.post(DELETION, {"confirmation": "alice"}), 401, "verification.required")
    api.verification = verify(ApiClient(make_token(user_factory(username="bob"))))
    assert_error(api.post(DELETION, {"confirmation": "alice"}), 401, "verification.invalid")
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"confirmation": "bob"}, "confirmation"),
        ({"confirmation": ""}, "confirmation"),
        ({"confirmation": "ali\x00ce"}, "confirmation"),
        ({"confirmation": "a" * 151}, "confirmation"),
        ({}, "confirmation"),
        ({"confirmation": "alice", "reason": "x"}, "reason"),
    ],
    ids=["wrong", "empty", "nul", "long", "missing", "extra"],
)
def test_schedule_deletion_bad_input_is_422(
    verified_api: ApiClient, user: User, body: dict[str, Any], field: str
) -> None:
    details = assert_error(verified_api.post(DELETION, body), 422, "validation_error")["details"]
    assert field in details
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    assert PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).exists()


def test_the_confirmation_is_the_pages_case_insensitive_username(
    verified_api: ApiClient, user: User
) -> None:
    assert verified_api.post(DELETION, {"confirmation": " ALICE "}).status_code == 200


@pytest.mark.parametrize(
    ("modes", "status", "code"),
    [
        ({"delete_account": "off"}, 404, "policy.field_not_enabled"),
        ({"delete_account": "read_only"}, 403, "policy.field_not_editable"),
        ({"enabled": False}, 403, "policy.not_enabled"),
    ],
)
def test_schedule_deletion_follows_the_policy_as_the_page(
    verified_api: ApiClient,
    user: User,
    policy_modes: Any,
    modes: dict[str, Any],
    status: int,
    code: str,
) -> None:
    policy_modes(**modes)
    assert_error(verified_api.post(DELETION, {"confirmation": "alice"}), status, code)
    assert web_delete(user) == status
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE


def test_schedule_deletion_needs_the_write_scope(user: User) -> None:
    reader = ApiClient(make_token(user, ["account:read"]))
    verify_with_session_free_token(reader, user)
    assert_error(reader.post(DELETION, {"confirmation": "alice"}), 403, "token.insufficient_scope")
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE


def test_schedule_deletion_query_budget(
    user: User, user_factory: Callable[..., User], django_assert_max_num_queries: Any
) -> None:
    """The same cost with one token or many (they are revoked in one statement).
    Each session ends on its own (the session store has no bulk delete), as when
    the settings page schedules it."""

    def measure(owner: User, tokens: int) -> int:
        for _ in range(tokens):
            make_token(owner)
        client = ApiClient(make_token(owner))
        verify(client)
        with django_assert_max_num_queries(17), CaptureQueriesContext(connection) as ctx:
            response = client.post(DELETION, {"confirmation": owner.username})
            assert response.status_code == 200, response.content
        return len(ctx.captured_queries)

    assert measure(user, 0) == measure(user_factory(username="bob"), 20)


# --- Cancelling -------------------------------------------------------------------------------


def pending(user: User) -> User:
    return account_deletion_schedule(ctx=Actor(user=user), user=user)


def test_a_pending_account_cancels_with_its_session(user: User) -> None:
    pending(user)
    client = session_client(user, csrf=True)
    headers = csrf_header(client, reverse("deletion_pending"))
    response = client.delete(DELETION, content_type="application/json", **headers)
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True}
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    assert user.deletion_scheduled_for is None
    assert AuditEvent.objects.filter(action=Action.DELETION_CANCELLED, subject=user).exists()
    assert any("will not be deleted" in str(m.subject) for m in mail.outbox)
    # The account works again with the same session.
    assert client.get("/api/my-account").status_code == 200


def test_a_pending_account_cancels_with_the_master_switch_off(
    user: User, policy_modes: Any
) -> None:
    # Keeping one's account is not a settings change: the page and the API allow it.
    pending(user)
    policy_modes(enabled=False)
    client = session_client(user, csrf=True)
    headers = csrf_header(client, reverse("deletion_pending"))
    response = client.delete(DELETION, content_type="application/json", **headers)
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    assert_error(client.get("/api/my-account"), 403, "policy.not_enabled")


def test_cancelling_with_a_session_needs_csrf(user: User) -> None:
    pending(user)
    client = session_client(user, csrf=True)
    assert_error(client.delete(DELETION, content_type="application/json"), 403, "csrf_failed")
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION


def test_every_other_endpoint_refuses_a_pending_account(user: User) -> None:
    pending(user)
    client = session_client(user)
    for method, path, body in [
        ("get", "/api/my-account", None),
        ("get", ACTIVITY, None),
        ("get", EXPORT, None),
        ("post", DELETION, {"confirmation": "alice"}),
        ("get", "/api/my-account/tokens", None),
        ("post", "/api/verifications/password", {"password": "x"}),
    ]:
        if method == "get":
            response = client.get(path)
        else:
            response = client.post(path, body, content_type="application/json")
        assert_error(response, 401, "unauthenticated")
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION


def test_a_pending_accounts_token_cannot_cancel(user: User) -> None:
    client = ApiClient(make_token(user))
    pending(user)
    assert_error(client.delete(DELETION), 401, "unauthenticated")
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION


def test_a_suspended_account_cannot_cancel(user: User) -> None:
    from accounts.actor import cli_actor
    from accounts.services.moderation import user_suspend

    client = session_client(user)
    user_suspend(ctx=cli_actor(), user=user, reason="test")
    assert_error(client.delete(DELETION), 401, "unauthenticated")


def test_cancelling_an_active_account_is_409(
    api: ApiClient, auth_client: Client, user: User
) -> None:
    assert_error(api.delete(DELETION), 409, "deletion.wrong_state")
    assert_error(auth_client.delete(DELETION), 409, "deletion.wrong_state")
    assert not AuditEvent.objects.filter(action=Action.DELETION_CANCELLED).exists()


def test_cancelling_after_the_grace_period_is_409(user: User) -> None:
    pending(user)
    User.objects.filter(pk=user.pk).update(
        deletion_scheduled_for=timezone.now() - timedelta(minutes=1)
    )
    client = session_client(user)
    assert_error(client.delete(DELETION), 409, "deletion.wrong_state")


def test_cancelling_needs_the_write_scope(user: User) -> None:
    reader = ApiClient(make_token(user, ["account:read"]))
    assert_error(reader.delete(DELETION), 403, "token.insufficient_scope")


def test_cancelling_is_refused_while_impersonating(user: User, staff_user: User) -> None:
    from accounts.impersonation import STARTED_KEY

    pending(user)
    client = session_client(user)
    session = client.session
    session["hijack_history"] = [str(staff_user.pk)]
    session[STARTED_KEY] = time.time()
    session.save()
    assert_error(client.delete(DELETION), 403, "impersonation.refused")
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION


def test_cancel_query_budget(user: User, django_assert_max_num_queries: Any) -> None:
    pending(user)
    client = session_client(user)
    client.get(reverse("deletion_pending"))
    with django_assert_max_num_queries(14):
        assert client.delete(DELETION).status_code == 200


def test_schedule_then_cancel_round_trip(
    verified_api: ApiClient, user: User, user_factory: Callable[..., User]
) -> None:
    assert verified_api.post(DELETION, {"confirmation": "alice"}).status_code == 200
    client = session_client(User.objects.get(pk=user.pk))
    assert client.delete(DELETION).status_code == 200
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    # The tokens revoked by the scheduling stay revoked.
    assert_error(verified_api.get("/api/my-account"), 401, "unauthenticated")
