"""Sessions through the Account API: list them, end one, end every other one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditEvent, User
from accounts.services.audit import Action
from tests.api.conftest import ApiClient, assert_error, make_token, verify
from tests.conftest import PASSWORD, reauthenticate

pytestmark = pytest.mark.django_db

LIST = "/api/my-account/sessions"
END_OTHERS = "/api/my-account/sessions/end-others"
FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)
SAFARI_ON_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


# --- Helpers ----------------------------------------------------------------------------


def sign_in(
    login: str = "alice", *, user_agent: str = FIREFOX_ON_WINDOWS, ip: str = "203.0.113.7"
) -> Client:
    """A separate browser signing in through allauth's page."""
    client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    response = client.post(reverse("account_login"), {"login": login, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def row_of(client: Client) -> UserSession:
    return UserSession.objects.get(session_key=client.session.session_key)


def is_signed_in(client: Client) -> bool:
    return SESSION_KEY in client.session and client.get(reverse("settings_home")).status_code == 200


def fake_session(user: User, **fields: Any) -> UserSession:
    return UserSession.objects.create(
        user=user,
        session_key=uuid.uuid4().hex,
        ip=fields.pop("ip", "198.51.100.1"),
        user_agent=fields.pop("user_agent", SAFARI_ON_IPHONE),
        **fields,
    )


def impersonated(session: UserSession, staff: User) -> UserSession:
    """As the back-office marks a session opened by staff viewing the account."""
    session.data = {"impersonated_by": staff.pk}
    session.save(update_fields=["data"])
    return session


def state() -> dict[str, Any]:
    return {
        "sessions": sorted(UserSession.objects.values_list("pk", flat=True)),
        "audit": list(AuditEvent.objects.values_list("action", flat=True)),
    }


def url(pk: Any) -> str:
    return f"{LIST}/{pk}"


@pytest.fixture
def bob(user_factory: Callable[..., User]) -> User:
    return user_factory(username="bob")


# --- GET /api/my-account/sessions ----------------------------------------------------------


def test_list_with_a_token(api: ApiClient, user: User, bob: User, staff_user: User) -> None:
    first = sign_in(user_agent=FIREFOX_ON_WINDOWS, ip="203.0.113.7")
    second = sign_in(user_agent=SAFARI_ON_IPHONE, ip="198.51.100.23")
    sign_in("bob", ip="192.0.2.99")
    impersonated(fake_session(user, ip="10.0.0.5"), staff_user)
    response = api.get(LIST)
    assert response.status_code == 200
    body = response.json()
    by_ip = {row["ip"]: row for row in body}
    assert set(by_ip) == {"203.0.113.7", "198.51.100.23"}
    mine = by_ip["203.0.113.7"]
    assert mine["id"] == row_of(first).pk
    assert mine["device"] == "Firefox on Windows"
    assert mine["user_agent"] == FIREFOX_ON_WINDOWS
    assert by_ip["198.51.100.23"]["id"] == row_of(second).pk
    assert by_ip["198.51.100.23"]["device"].startswith("Mobile Safari on iOS")
    assert set(mine) == {
        "id",
        "ip",
        "user_agent",
        "device",
        "created_at",
        "last_seen_at",
        "current",
    }
    # A token runs in no session.
    assert not any(row["current"] for row in body)


def test_list_with_the_session_marks_the_current_one(user: User) -> None:
    first = sign_in()
    sign_in(ip="198.51.100.23")
    body = first.get(LIST).json()
    assert [(row["ip"], row["current"]) for row in body if row["current"]] == [
        ("203.0.113.7", True)
    ]
    assert len(body) == 2


# --- DELETE /api/my-account/sessions/{id} --------------------------------------------------


def test_end_needs_a_verification(api: ApiClient, user: User) -> None:
    other = sign_in()
    before = state()
    assert_error(api.delete(url(row_of(other).pk)), 401, "verification.required")
    assert state() == before
    assert is_signed_in(other)


def test_end_a_session(verified_api: ApiClient, user: User) -> None:
    other = sign_in(user_agent=SAFARI_ON_IPHONE, ip="198.51.100.23")
    target = row_of(other)
    key = target.session_key
    response = verified_api.delete(url(target.pk))
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True}
    assert not UserSession.objects.filter(pk=target.pk).exists()
    assert not Session.objects.filter(session_key=key).exists()
    assert not is_signed_in(other)
    event = AuditEvent.objects.get(action=Action.SESSION_ENDED)
    assert event.subject == user
    assert event.actor == user
    assert event.data == {"ip": "198.51.100.23", "user_agent": SAFARI_ON_IPHONE}


def test_the_session_making_the_request_is_not_ended_here(user: User) -> None:
    first = sign_in()
    reauthenticate(first)
    assert_error(first.delete(url(row_of(first).pk)), 409, "session.current")
    assert is_signed_in(first)
    assert not AuditEvent.objects.filter(action=Action.SESSION_ENDED).exists()


@pytest.mark.parametrize("which", ["someone_else", "impersonation", "unknown", "huge", "zero"])
def test_someone_elses_or_unknown_session_is_404(
    verified_api: ApiClient, user: User, bob: User, staff_user: User, which: str
) -> None:
    bobs = sign_in("bob", ip="192.0.2.99")
    staffs = impersonated(row_of(sign_in(ip="10.0.0.5")), staff_user)
    pk = {
        "someone_else": row_of(bobs).pk,
        "impersonation": staffs.pk,
        "unknown": 987654,
        "huge": 2**70,
        "zero": 0,
    }[which]
    before = state()
    assert_error(verified_api.delete(url(pk)), 404, "not_found")
    assert state() == before
    assert is_signed_in(bobs)


def test_a_session_id_that_is_not_a_number_is_422(verified_api: ApiClient) -> None:
    assert_error(verified_api.delete(url("abc")), 422, "validation_error")
    assert_error(verified_api.delete(url("1%00")), 422, "validation_error")


# --- POST /api/my-account/sessions/end-others ----------------------------------------------


def test_end_others_needs_a_verification(api: ApiClient, user: User) -> None:
    other = sign_in()
    assert_error(api.post(END_OTHERS), 401, "verification.required")
    assert is_signed_in(other)


def test_end_others_with_a_token_ends_every_web_session(
    verified_api: ApiClient, user: User, bob: User, staff_user: User
) -> None:
    browsers = [sign_in(ip=f"198.51.100.{i}") for i in (1, 2, 3)]
    bobs = sign_in("bob", ip="192.0.2.99")
    staffs = impersonated(row_of(sign_in(ip="10.0.0.5")), staff_user)
    response = verified_api.post(END_OTHERS)
    assert response.status_code == 200, response.content
    assert response.json() == {"ended": 3}
    assert not any(is_signed_in(b) for b in browsers)
    assert is_signed_in(bobs)
    # Not the user's to end: the session of staff viewing the account.
    assert list(UserSession.objects.filter(user=user)) == [staffs]
    event = AuditEvent.objects.get(action=Action.SESSIONS_ENDED)
    assert event.data == {"count": 3}
    # The token itself keeps working.
    assert verified_api.get(LIST).json() == []


def test_end_others_with_the_session_keeps_it(user: User) -> None:
    first = sign_in()
    others = [sign_in(ip=f"198.51.100.{i}") for i in (1, 2)]
    reauthenticate(first)
    response = first.post(END_OTHERS, {}, content_type="application/json")
    assert response.json() == {"ended": 2}
    assert is_signed_in(first)
    assert not any(is_signed_in(o) for o in others)


def test_end_others_with_none_left(verified_api: ApiClient, user: User) -> None:
    assert verified_api.post(END_OTHERS).json() == {"ended": 0}
    assert not AuditEvent.objects.filter(action=Action.SESSIONS_ENDED).exists()


def test_end_others_ignores_a_body(verified_api: ApiClient, user: User) -> None:
    """It takes no input: a body is not read (as the page ignores form fields)."""
    sign_in()
    assert verified_api.post(END_OTHERS, {"all": True}).json() == {"ended": 1}


# --- Every endpoint: policy, scope, verification ---------------------------------------


# mode -> (API status, code, page status): with the master switch off the page shows
# its one notice, the API refuses.
READ = {
    "edit": (200, None, 200),
    "read_only": (200, None, 200),
    "off": (404, "policy.field_not_enabled", 404),
    "master_off": (403, "policy.not_enabled", 200),
}
WRITE = {
    "read_only": (403, "policy.field_not_editable"),
    "off": (404, "policy.field_not_enabled"),
    "master_off": (403, "policy.not_enabled"),
}


def _set(policy_modes: Any, mode: str) -> None:
    if mode == "master_off":
        policy_modes(enabled=False)
    elif mode != "edit":
        policy_modes(sessions=mode)


@pytest.mark.parametrize("mode", list(READ))
def test_list_follows_the_policy_like_the_page(
    api: ApiClient, user: User, policy_modes: Any, mode: str
) -> None:
    web = sign_in()
    _set(policy_modes, mode)
    status, code, page_status = READ[mode]
    response = api.get(LIST)
    if code:
        assert_error(response, status, code)
    else:
        assert response.status_code == status
    assert web.get(reverse("sessions")).status_code == page_status


@pytest.mark.parametrize("mode", list(WRITE))
@pytest.mark.parametrize("endpoint", ["end", "end_others"])
def test_writes_follow_the_policy_like_the_page(
    verified_api: ApiClient, user: User, policy_modes: Any, mode: str, endpoint: str
) -> None:
    web = sign_in()
    other = sign_in(ip="198.51.100.23")
    reauthenticate(web)
    _set(policy_modes, mode)
    status, code = WRITE[mode]
    before = state()
    if endpoint == "end":
        response = verified_api.delete(url(row_of(other).pk))
        page = web.post(reverse("session_end", args=[row_of(other).pk]))
    else:
        response = verified_api.post(END_OTHERS)
        page = web.post(reverse("sessions_end_others"))
    assert_error(response, status, code)
    assert page.status_code == status
    assert state() == before
    assert is_signed_in(other)


@pytest.mark.parametrize("endpoint", ["end", "end_others"])
def test_another_users_verification_is_refused(
    api: ApiClient, user: User, bob: User, endpoint: str
) -> None:
    other = sign_in()
    api.verification = verify(ApiClient(make_token(bob)))
    before = state()
    response = api.delete(url(row_of(other).pk)) if endpoint == "end" else api.post(END_OTHERS)
    assert_error(response, 401, "verification.invalid")
    assert state() == before


def test_scopes(user: User) -> None:
    other = sign_in()
    reader = ApiClient(make_token(user, ["account:read"]))
    reader.verification = verify(ApiClient(make_token(user)))
    assert reader.get(LIST).status_code == 200
    assert_error(reader.delete(url(row_of(other).pk)), 403, "token.insufficient_scope")
    assert_error(reader.post(END_OTHERS), 403, "token.insufficient_scope")
    assert is_signed_in(other)
    writer = ApiClient(make_token(user, ["account:write"]))
    assert_error(writer.get(LIST), 403, "token.insufficient_scope")


def test_impersonating_staff_cannot_end_sessions(
    user: User, user_factory: Callable[..., User]
) -> None:
    from tests.api.test_mfa_api import impersonated_by_staff

    other = sign_in()
    client = impersonated_by_staff(user, user_factory)
    assert client.get(LIST).status_code == 200
    assert_error(client.delete(url(row_of(other).pk)), 403, "impersonation.refused")
    assert_error(
        client.post(END_OTHERS, {}, content_type="application/json"),
        403,
        "impersonation.refused",
    )
    assert is_signed_in(other)


# --- Query budgets: the count does not grow with the number of sessions -------------------
# (the real count plus two)


@pytest.mark.parametrize("count", [2, 20])
def test_list_query_budget(user: User, count: int, django_assert_max_num_queries: Any) -> None:
    for i in range(count):
        fake_session(user, ip=f"198.51.100.{i + 1}", user_agent=f"{FIREFOX_ON_WINDOWS} {i}")
    api = ApiClient(make_token(user))
    api.get("/api/my-account")
    with django_assert_max_num_queries(5):
        response = api.get(LIST)
    assert len(response.json()) == count


@pytest.mark.parametrize("count", [2, 20])
def test_end_query_budget(user: User, count: int, django_assert_max_num_queries: Any) -> None:
    rows = [fake_session(user, ip=f"198.51.100.{i + 1}") for i in range(count)]
    api = ApiClient(make_token(user))
    verify(api)
    api.get("/api/my-account")
    with django_assert_max_num_queries(12):
        response = api.delete(url(rows[0].pk))
    assert response.status_code == 200, response.content


def stored_session(user: User, ip: str) -> UserSession:
    """A session in the session store, listed for ``user``."""
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store.create()
    return UserSession.objects.create(
        user=user, session_key=store.session_key, ip=ip, user_agent=SAFARI_ON_IPHONE
    )


def test_end_others_costs_the_same_whatever_the_number_of_sessions(
    user_factory: Callable[..., User], django_assert_max_num_queries: Any
) -> None:
    """The database session store's rows and the list's are deleted in one statement
    each, not session by session."""

    def measure(owner: User, count: int) -> int:
        ended = [stored_session(owner, f"198.51.100.{i + 1}") for i in range(count)]
        api = ApiClient(make_token(owner))
        verify(api)
        api.get("/api/my-account")
        with django_assert_max_num_queries(12), CaptureQueriesContext(connection) as ctx:
            response = api.post(END_OTHERS)
        assert response.json() == {"ended": count}
        keys = [session.session_key for session in ended]
        assert not Session.objects.filter(session_key__in=keys).exists()
        assert not UserSession.objects.filter(user=owner).exists()
        return len(ctx.captured_queries)

    assert measure(user_factory(username="few"), 2) == measure(user_factory(username="many"), 20)
