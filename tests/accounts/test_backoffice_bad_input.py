"""Bad input to the back-office's lists: filters the list does not offer, NUL bytes
and ids that are not ids are refused with a 400, never a server error; the filters
the lists offer keep working."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEvent, User
from accounts.services.audit import Action, audit_record
from accounts.services.moderation import user_suspend
from tests.conftest import staff_signed_in

pytestmark = pytest.mark.django_db

USERS = "/admin/accounts/user/"
AUDIT = "/admin/accounts/auditevent/"
EXPORT = "/admin/accounts/auditevent/export.csv"
LISTS = [USERS, AUDIT, EXPORT]


def signed_in(member: User) -> Client:
    return staff_signed_in(member, Client(raise_request_exception=False))


@pytest.fixture
def boss(user_factory: Callable[..., User]) -> User:
    return user_factory(username="boss", is_staff=True, is_superuser=True)


@pytest.fixture
def superuser_client(boss: User) -> Client:
    return signed_in(boss)


@pytest.fixture
def support_client(user_factory: Callable[..., User]) -> Client:
    member = user_factory(username="agent", is_staff=True)
    member.groups.add(Group.objects.get(name="Support"))
    return signed_in(member)


@pytest.fixture
def people(user_factory: Callable[..., User], boss: User) -> dict[str, User]:
    alice = user_factory(username="alice")
    bob = user_factory(username="bob")
    carol = user_factory(username="carol")
    user_suspend(ctx=None, user=bob, reason="Spam")
    TOTPDevice.objects.create(user=carol, name="Phone", confirmed=True)
    User.objects.filter(pk=carol.pk).update(date_joined=timezone.now() - timedelta(days=400))
    audit_record(ctx=None, action=Action.PROFILE_UPDATED, subject=alice, actor=alice)
    return {"alice": alice, "bob": bob, "carol": carol, "boss": boss}


# --- Filters the lists do not offer, and NUL bytes -------------------------------------


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize(
    "query",
    [
        "state=%00",
        "email__contains=%00",
        "username__regex=(",
        "action__regex=(",
        "subject_label__contains=%00",
        "is_superuser=1",
        "password__startswith=argon2",
        "no_such_field=1",
        "_changelist_filters=state__exact%3Dactive",
        "state__exact=%00",
        "action=%00",
        "q=%00",
        "o=%00",
        "p=%00",
        "%00=1",
    ],
)
def test_a_filter_the_list_does_not_offer_or_a_nul_byte_is_a_400(
    people: dict[str, User], superuser_client: Client, url: str, query: str
) -> None:
    response = superuser_client.get(f"{url}?{query}")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"alice", "bob", "carol", "boss"}),
        ({"state__exact": "suspended"}, {"bob"}),
        ({"is_staff__exact": "1"}, {"boss"}),
        ({"second_factor": "yes"}, {"carol", "boss"}),
        ({"second_factor": "no", "state__exact": "active"}, {"alice"}),
        ({"date_joined__gte": str(timezone.now() - timedelta(days=7))}, {"alice", "bob", "boss"}),
        ({"q": "alice"}, {"alice"}),
        ({"q": "bo", "o": "1"}, {"bob", "boss"}),
        ({"p": "1", "all": ""}, {"alice", "bob", "carol", "boss"}),
        ({"e": "1"}, {"alice", "bob", "carol", "boss"}),
    ],
)
def test_the_user_lists_filters_still_work(
    people: dict[str, User], superuser_client: Client, query: dict[str, str], expected: set[str]
) -> None:
    response = superuser_client.get(USERS, query)
    assert response.status_code == 200
    assert {u.username for u in response.context_data["cl"].result_list} == expected


def test_the_audit_lists_filters_still_work(
    people: dict[str, User], superuser_client: Client
) -> None:
    alice = people["alice"]
    year = str(timezone.now().year)
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"action": "account.suspended"}, {"bob"}),
        ({"subject__id__exact": str(alice.pk)}, {"alice"}),
        ({"actor__id__exact": str(alice.pk)}, {"alice"}),
        ({"q": "bob"}, {"bob"}),
        ({"created_at__year": year}, {"alice", "bob"}),
        (
            {
                "created_at__gte": str(timezone.now() - timedelta(days=1)),
                "action": "profile.updated",
            },
            {"alice"},
        ),
    ]
    for query, expected in cases:
        page = superuser_client.get(AUDIT, query)
        assert page.status_code == 200, query
        assert {e.subject_label for e in page.context_data["cl"].result_list} == expected, query
        export = superuser_client.get(EXPORT, query)
        assert export.status_code == 200, query
        rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
        assert {row[2] for row in rows[1:]} == expected, query


@pytest.mark.parametrize(
    "query",
    [
        {"created_at__year": "9" * 30},
        {"created_at__year": "2020", "created_at__month": "13"},
        {"created_at__gte": "garbage"},
    ],
)
def test_a_value_an_offered_filter_cannot_take_gets_the_admins_notice(
    people: dict[str, User], superuser_client: Client, query: dict[str, str]
) -> None:
    response = superuser_client.get(AUDIT, query)
    assert response.status_code == 302
    assert response["Location"] == f"{AUDIT}?e=1"
    assert superuser_client.get(EXPORT, query).status_code == 400


def test_an_id_too_large_for_the_database_finds_nothing(
    people: dict[str, User], superuser_client: Client
) -> None:
    query = {"subject__id__exact": "9" * 30}
    response = superuser_client.get(AUDIT, query)
    assert response.status_code == 200
    assert list(response.context_data["cl"].result_list) == []
    export = superuser_client.get(EXPORT, query)
    assert export.status_code == 200
    assert b"".join(export.streaming_content).decode().splitlines()[1:] == []


# --- Bulk actions with ids that are not ids -----------------------------------------------


@pytest.mark.parametrize("action", ["suspend_selected", "restore_selected"])
@pytest.mark.parametrize(
    "ids", [["abc"], ["%00"], ["\x00"], [""], ["1.5"], ["OK", "1"], ["9" * 30], ["-" + "9" * 30]]
)
def test_a_bulk_action_on_an_id_that_is_not_one_is_a_400(
    people: dict[str, User], support_client: Client, action: str, ids: list[str]
) -> None:
    mail.outbox.clear()
    before = list(User.objects.order_by("pk").values("pk", "state", "state_reason"))
    events = AuditEvent.objects.count()
    data: dict[str, Any] = {"action": action, "_selected_action": ids, "index": "0"}
    if action == "suspend_selected":
        data["reason"] = "Spam"
    response = support_client.post(USERS, data)
    assert response.status_code == 400
    assert list(User.objects.order_by("pk").values("pk", "state", "state_reason")) == before
    assert AuditEvent.objects.count() == events
    assert mail.outbox == []


def test_a_bulk_action_on_real_ids_still_works(
    people: dict[str, User], support_client: Client
) -> None:
    alice = people["alice"]
    response = support_client.post(
        USERS,
        {
            "action": "suspend_selected",
            "_selected_action": [str(alice.pk)],
            "index": "0",
            "reason": "Spam",
        },
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.state == User.State.SUSPENDED


@pytest.mark.parametrize("url", ["/admin/auth/group/", "/admin/sites/site/"])
def test_the_libraries_lists_refuse_bad_ids_and_filters_too(
    superuser_client: Client, url: str
) -> None:
    group = Group.objects.get(name="Support")
    response = superuser_client.post(
        url, {"action": "delete_selected", "_selected_action": ["abc"], "index": "0"}
    )
    assert response.status_code == 400
    assert superuser_client.get(f"{url}?name__regex=(").status_code == 400
    assert superuser_client.get(f"{url}?q=%00").status_code == 400
    assert Group.objects.filter(pk=group.pk).exists()


@pytest.mark.parametrize("group_id", ["abc", "-1", str(10**30)])
def test_a_group_id_the_database_cannot_take_is_a_form_error(
    superuser_client: Client, user_factory: Callable[..., User], group_id: str
) -> None:
    """The user page's many-to-many choices (groups, permissions) check ids before
    the database sees them: 10**30 overflowed SQLite's driver (a 500)."""
    from django.urls import reverse

    alice = user_factory(username="alice")
    url = reverse("admin:accounts_user_change", args=[alice.pk])
    form = superuser_client.get(url).context["adminform"].form
    data: dict[str, Any] = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, list | tuple):
            data[name] = [str(item) for item in value]
        elif value is True:
            data[name] = "on"
        elif value not in (None, False):
            data[name] = value
    data["groups"] = [group_id]
    response = superuser_client.post(url, data)
    assert response.status_code == 200
    assert "groups" in response.context["adminform"].form.errors
    assert not alice.groups.exists()
