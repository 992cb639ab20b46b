"""GET /api/management/audit-events: the back-office's audit log, read-only, newest
first, with keyset cursor paging, under the audit log page's permission."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.actor import Actor
from accounts.models import AuditEvent, User
from accounts.services.audit import Action, audit_record
from accounts.services.deletion import account_purge
from accounts.services.policy import policy_update
from tests.api.conftest import ApiClient, assert_error, make_token, management_client
from tests.conftest import staff_signed_in

pytestmark = pytest.mark.django_db

URL = "/api/management/audit-events"
EVENT_FIELDS = {
    "id",
    "time",
    "action",
    "label",
    "actor",
    "subject",
    "impersonator",
    "ip",
    "user_agent",
    "surface",
    "data",
}


def staff(user_factory: Callable[..., User], role: str | None, username: str = "") -> User:
    if role == "superuser":
        return user_factory(username=username or "boss", is_staff=True, is_superuser=True)
    member = user_factory(
        username=username or f"staff_{(role or 'plain').split()[0]}", is_staff=True
    )
    if role:
        member.groups.add(Group.objects.get(name=role))
    return member


@pytest.fixture
def auditor(user_factory: Callable[..., User]) -> User:
    return staff(user_factory, "Security admins", "auditor")


@pytest.fixture
def api(auditor: User) -> ApiClient:
    return management_client(auditor)


def events_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return response.json()["items"]


def ours(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Without the events of making the callers' tokens."""
    return [i for i in items if i["action"] != Action.TOKEN_CREATED]


# --- Reading -------------------------------------------------------------------------------


def test_a_security_admin_reads_the_log_newest_first(
    api: ApiClient, auditor: User, user: User, user_factory: Callable[..., User]
) -> None:
    agent = user_factory(username="agent", is_staff=True)
    audit_record(ctx=None, action=Action.PROFILE_UPDATED, subject=user, actor=user)
    audit_record(
        ctx=Actor(
            user=agent, subject=user, ip="198.51.100.7", user_agent="Firefox", surface="admin"
        ),
        action=Action.SUSPENDED,
        subject=user,
        data={"reason": "Spam"},
    )
    audit_record(
        ctx=Actor(user=user, impersonator_id=agent.pk, surface="web"),
        action=Action.AVATAR_REMOVED,
        subject=user,
    )

    items = ours(events_of(api.get(URL)))

    assert [i["action"] for i in items] == [
        Action.AVATAR_REMOVED,
        Action.SUSPENDED,
        Action.PROFILE_UPDATED,
    ]
    assert all(set(i) == EVENT_FIELDS for i in items)
    suspended = items[1]
    assert suspended["label"] == "Account suspended"
    assert suspended["actor"] == {"id": agent.pk, "username": "agent"}
    assert suspended["subject"] == {"id": user.pk, "label": "alice"}
    assert suspended["impersonator"] is None
    assert (suspended["ip"], suspended["user_agent"], suspended["surface"]) == (
        "198.51.100.7",
        "Firefox",
        "admin",
    )
    assert suspended["data"] == {"reason": "Spam"}
    assert items[0]["impersonator"] == {"id": agent.pk, "username": "agent"}
    assert items[2]["ip"] is None


def test_reading_changes_nothing(api: ApiClient, user: User) -> None:
    audit_record(ctx=None, action=Action.PROFILE_UPDATED, subject=user, actor=user)
    before = AuditEvent.objects.count()
    api.get(URL)
    assert AuditEvent.objects.count() == before


def test_a_change_of_no_account_and_a_deleted_account(
    api: ApiClient, user: User, user_factory: Callable[..., User]
) -> None:
    policy_update(ctx=None, values={"email": "read_only"})
    gone = user_factory(username="gone")
    audit_record(ctx=None, action=Action.PROFILE_UPDATED, subject=gone, actor=gone)
    account_purge(ctx=None, user=gone)

    items = ours(events_of(api.get(URL)))
    policy = next(i for i in items if i["action"] == Action.POLICY_CHANGED)
    assert policy["subject"] is None
    assert policy["data"]["changed"] == {"email": {"before": "edit", "after": "read_only"}}
    updated = next(i for i in items if i["action"] == Action.PROFILE_UPDATED)
    assert updated["subject"]["id"] is None
    assert updated["subject"]["label"].startswith("deleted-user-")
    assert updated["actor"] is None


# --- Filters ------------------------------------------------------------------------------


@pytest.fixture
def scene(user: User, user_factory: Callable[..., User]) -> dict[str, Any]:
    bob = user_factory(username="bob")
    agent = user_factory(username="agent", is_staff=True)
    now = timezone.now()
    rows = [
        (Action.PROFILE_UPDATED, user, user, now - timedelta(days=3)),
        (Action.SUSPENDED, user, agent, now - timedelta(days=2)),
        (Action.PROFILE_UPDATED, bob, bob, now - timedelta(days=1)),
        (Action.RESTORED, user, agent, now - timedelta(hours=1)),
    ]
    made = {}
    for action, subject, actor, at in rows:
        event = audit_record(ctx=None, action=action, subject=subject, actor=actor)
        AuditEvent.objects.filter(pk=event.pk).update(created_at=at)
        made[(action, subject.username)] = event.pk
    return {"bob": bob, "agent": agent, "now": now, "ids": made}


def ids(response: Any) -> list[int]:
    return [i["id"] for i in ours(events_of(response))]


def test_filters(api: ApiClient, user: User, scene: dict[str, Any]) -> None:
    made = scene["ids"]
    agent, bob, now = scene["agent"], scene["bob"], scene["now"]

    assert ids(api.get(URL, {"user": user.pk})) == [
        made[(Action.RESTORED, "alice")],
        made[(Action.SUSPENDED, "alice")],
        made[(Action.PROFILE_UPDATED, "alice")],
    ]
    assert ids(api.get(URL, {"action": Action.PROFILE_UPDATED})) == [
        made[(Action.PROFILE_UPDATED, "bob")],
        made[(Action.PROFILE_UPDATED, "alice")],
    ]
    assert ids(api.get(URL, {"actor": agent.pk})) == [
        made[(Action.RESTORED, "alice")],
        made[(Action.SUSPENDED, "alice")],
    ]
    window = {
        "since": (now - timedelta(days=2, hours=1)).isoformat(),
        "until": (now - timedelta(hours=2)).isoformat(),
    }
    assert ids(api.get(URL, window)) == [
        made[(Action.PROFILE_UPDATED, "bob")],
        made[(Action.SUSPENDED, "alice")],
    ]
    assert ids(api.get(URL, {**window, "user": bob.pk})) == [made[(Action.PROFILE_UPDATED, "bob")]]
    assert ids(api.get(URL, {"user": 999999})) == []
    assert ids(api.get(URL, {"action": "nothing.like_this"})) == []


def test_a_time_without_a_zone_is_utc(api: ApiClient, scene: dict[str, Any]) -> None:
    naive = (scene["now"] - timedelta(hours=2)).replace(tzinfo=None).isoformat()
    assert ids(api.get(URL, {"since": naive})) == [scene["ids"][(Action.RESTORED, "alice")]]


# --- Paging ---------------------------------------------------------------------------


def test_cursor_paging_walks_every_event_once(api: ApiClient, user: User) -> None:
    at = timezone.now()
    for n in range(7):
        event = audit_record(ctx=None, action=Action.PROFILE_UPDATED, subject=user, actor=user)
        # Ties on the time: the id decides.
        AuditEvent.objects.filter(pk=event.pk).update(created_at=at - timedelta(seconds=n // 3))
    expected = list(
        AuditEvent.objects.filter(subject=user)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )

    seen: list[int] = []
    cursor = None
    for _page in range(10):
        params: dict[str, Any] = {"user": user.pk, "page_size": 3}
        if cursor:
            params["cursor"] = cursor
        body = api.get(URL, params).json()
        assert len(body["items"]) <= 3
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


def test_the_last_page_has_no_cursor(api: ApiClient, user: User) -> None:
    audit_record(ctx=None, action=Action.PROFILE_UPDATED, subject=user, actor=user)
    assert api.get(URL, {"user": user.pk}).json()["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "nope",
        "\x00",
        signing.dumps(["2026-01-01T00:00:00+00:00", 1], salt="accounts.api.security-activity"),
        signing.dumps(["not a time", 1], salt="accounts.api.management.audit-events"),
        signing.dumps(
            ["2026-01-01T00:00:00+00:00", "1"], salt="accounts.api.management.audit-events"
        ),
        signing.dumps([1, 2, 3], salt="accounts.api.management.audit-events"),
        "x" * 501,
    ],
    ids=["garbage", "nul", "other-salt", "bad-time", "bad-id", "bad-shape", "too-long"],
)
def test_a_bad_cursor_is_422(api: ApiClient, cursor: str) -> None:
    body = assert_error(api.get(URL, {"cursor": cursor}), 422, "validation_error")
    assert list(body["details"]) == ["cursor"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"user": "abc"}, "user"),
        ({"user": 0}, "user"),
        ({"user": 2**70}, "user"),
        ({"actor": -1}, "actor"),
        ({"action": "Account Suspended"}, "action"),
        ({"action": "a\x00b"}, "action"),
        ({"action": "a" * 65}, "action"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
        ({"until": "9999-12-31T23:59:59-05:00"}, "until"),
    ],
)
def test_bad_parameters_are_422(api: ApiClient, params: dict[str, Any], field: str) -> None:
    body = assert_error(api.get(URL, params), 422, "validation_error")
    assert list(body["details"]) == [field]


def test_the_page_size_limit_is_the_setting(api: ApiClient, user: User, settings: Any) -> None:
    assert settings.API_PAGE_SIZE_MAX == 100
    for _n in range(3):
        audit_record(ctx=None, action=Action.PROFILE_UPDATED, subject=user, actor=user)
    assert len(events_of(api.get(URL, {"page_size": 100}))) >= 3


# --- Who may read it ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("Security admins", True),
        ("superuser", True),
        ("Support", False),
        ("Operators", False),
        (None, False),
    ],
)
def test_the_roles_are_the_back_offices(
    user_factory: Callable[..., User], user: User, role: str | None, allowed: bool
) -> None:
    audit_record(ctx=None, action=Action.PROFILE_UPDATED, subject=user, actor=user)
    member = staff(user_factory, role)

    response = management_client(member).get(URL)
    page = staff_signed_in(member).get(reverse("admin:accounts_auditevent_changelist"))

    if allowed:
        assert response.status_code == 200
        assert page.status_code == 200
    else:
        assert_error(response, 403, "forbidden")
        assert page.status_code == 403


def test_the_view_permission_alone_is_enough(user_factory: Callable[..., User], user: User) -> None:
    member = staff(user_factory, None, "reader")
    member.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    assert management_client(member).get(URL).status_code == 200
    page = staff_signed_in(member).get(reverse("admin:accounts_auditevent_changelist"))
    assert page.status_code == 200


def test_an_end_users_token_and_a_session_are_refused(user: User, auth_client: Client) -> None:
    assert_error(ApiClient(make_token(user)).get(URL), 403, "forbidden")
    assert_error(auth_client.get(URL), 403, "forbidden")
    assert_error(Client().get(URL), 401, "unauthenticated")


def test_only_get(api: ApiClient) -> None:
    assert api.post(URL, {}).status_code == 405
    assert api.delete(URL).status_code == 405


# --- Query budget ---------------------------------------------------------------------


def _events(n: int, users: list[User], agent: User) -> None:
    AuditEvent.objects.bulk_create(
        AuditEvent(
            action=Action.SUSPENDED if i % 2 else Action.PROFILE_UPDATED,
            subject=users[i % len(users)],
            subject_label=users[i % len(users)].username,
            actor=agent if i % 2 else users[i % len(users)],
            impersonator=agent if i % 5 == 0 else None,
            surface="admin",
            data={"n": i},
        )
        for i in range(n)
    )


def test_the_query_count_does_not_grow_with_the_events(
    api: ApiClient,
    user_factory: Callable[..., User],
    django_assert_max_num_queries: Any,
) -> None:
    users = [user_factory(username=f"u{n}") for n in range(10)]
    agent = user_factory(username="agent", is_staff=True)
    api.get(URL)  # the token's last use is written once
    _events(5, users, agent)
    with django_assert_max_num_queries(5):
        assert len(events_of(api.get(URL, {"page_size": 100}))) >= 5
    _events(500, users, agent)
    with django_assert_max_num_queries(5):
        body = api.get(URL, {"page_size": 100}).json()
    assert len(body["items"]) == 100
    with django_assert_max_num_queries(5):
        assert (
            len(events_of(api.get(URL, {"page_size": 100, "cursor": body["next_cursor"]}))) == 100
        )
