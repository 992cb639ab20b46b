from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone

from accounts.actor import Actor
from accounts.models import AuditEvent, User
from accounts.services.audit import audit_record

pytestmark = pytest.mark.django_db

FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)


def record(
    subject: User,
    action: str,
    *,
    ago: timedelta = timedelta(0),
    actor: User | None = None,
    user_agent: str = "",
    ip: str = "",
    impersonator: User | None = None,
) -> AuditEvent:
    """An audit event written through the service, then moved back in time."""
    ctx = None
    if user_agent or ip or impersonator:
        ctx = Actor(
            user=actor or subject,
            impersonator_id=impersonator.pk if impersonator else None,
            ip=ip or "127.0.0.1",
            user_agent=user_agent,
        )
    event = audit_record(ctx=ctx, action=action, subject=subject, actor=actor or subject)
    when = (timezone.now() - ago).replace(microsecond=0)
    AuditEvent.objects.filter(pk=event.pk).update(created_at=when)
    event.created_at = when
    return event


def table(response: Any) -> list[list[str]]:
    """The activity table's rows, as the text of their cells."""
    html = response.content.decode()
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    if body is None:
        return []
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td>(.*?)</td>", tr, re.S)
        ]
        for tr in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def times(response: Any) -> list[str]:
    return re.findall(r'<time datetime="([^"]+)"', response.content.decode())


URL = "/settings/security/"


def test_url() -> None:
    assert reverse("security_activity") == URL


def test_lists_only_the_users_recent_events_newest_first(
    auth_client: Client, user: User, user_factory: Callable[..., User]
) -> None:
    bob = user_factory(username="bob")
    record(user, "password.changed", ago=timedelta(days=2))
    record(user, "phone.added", ago=timedelta(hours=1))
    record(user, "username.changed", ago=timedelta(days=91))
    record(user, "signed_in", ago=timedelta(days=89))
    record(bob, "email.changed", ago=timedelta(minutes=10))
    record(bob, "avatar.removed", actor=user, ago=timedelta(minutes=5))
    response = auth_client.get(URL)
    assert response.status_code == 200
    labels = [row[1] for row in table(response)]
    assert labels == ["Phone number added", "Password changed", "Signed in"]
    html = response.content.decode()
    assert "Username changed" not in html
    assert "Email address changed" not in html
    assert "Avatar removed" not in html
    assert html.count("<h1>") == 1


def test_no_events_says_so(auth_client: Client) -> None:
    response = auth_client.get(URL)
    assert table(response) == []
    assert "No activity yet." in response.content.decode()


def test_paginated_by_25(auth_client: Client, user: User) -> None:
    events = [record(user, "signed_in", ago=timedelta(minutes=i)) for i in range(30)]
    expected = [e.created_at.isoformat() for e in events]  # newest first
    first = auth_client.get(URL)
    assert len(table(first)) == 25
    assert 'href="?page=2"' in first.content.decode()
    second = auth_client.get(URL, {"page": 2})
    assert len(table(second)) == 5
    assert "Page 2 of 2" in second.content.decode()
    assert times(first) + times(second) == expected
    # Out-of-range and junk page numbers fall back to a real page.
    assert times(auth_client.get(URL, {"page": 99})) == times(second)
    assert times(auth_client.get(URL, {"page": "abc"})) == times(first)


def test_times_are_in_the_users_time_zone(auth_client: Client, user: User) -> None:
    user.time_zone = "Asia/Tokyo"
    user.save(update_fields=["time_zone"])
    event = record(user, "password.changed", ago=timedelta(days=3, hours=5))
    local = event.created_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    html = auth_client.get(URL).content.decode()
    assert f'datetime="{local.isoformat()}"' in html
    assert local.isoformat().endswith("+09:00")
    assert unescape(formats.date_format(local, "DATETIME_FORMAT")) in unescape(html)
    assert "Asia/Tokyo" in html


def test_device_and_ip_are_shown(auth_client: Client, user: User) -> None:
    record(user, "signed_in", user_agent=FIREFOX_ON_WINDOWS, ip="203.0.113.7")
    record(user, "profile.updated", ago=timedelta(minutes=1))
    rows = table(auth_client.get(URL))
    assert rows[0] == [rows[0][0], "Signed in", "Firefox on Windows", "203.0.113.7"]
    assert rows[1][2:] == ["—", "—"]


def test_staff_changes_are_marked(auth_client: Client, user: User, staff_user: User) -> None:
    record(user, "profile.updated", actor=staff_user, ago=timedelta(minutes=1))
    record(user, "username.changed", ago=timedelta(minutes=2))
    rows = table(auth_client.get(URL))
    assert rows[0][1] == "Profile updated by staff"
    assert rows[1][1] == "Username changed"


def test_changes_made_while_impersonated_are_marked(
    auth_client: Client, user: User, staff_user: User
) -> None:
    event = record(user, "phone.removed", impersonator=staff_user, ip="198.51.100.4")
    assert event.impersonator == staff_user
    assert event.actor == user
    rows = table(auth_client.get(URL))
    assert rows[0][1] == "Phone number removed by staff"


def test_query_budget_does_not_grow_with_events(
    auth_client: Client,
    user: User,
    django_assert_max_num_queries: Any,
) -> None:
    for i in range(3):
        record(user, "signed_in", ago=timedelta(minutes=i), user_agent=FIREFOX_ON_WINDOWS)
    auth_client.get(URL)  # warm the policy cache and the session's activity mark
    with CaptureQueriesContext(connection) as few:
        assert len(table(auth_client.get(URL))) == 3
    staff = User.objects.create(username="staffer", is_staff=True)
    for i in range(3, 60):
        record(
            user,
            "profile.updated",
            ago=timedelta(minutes=i),
            actor=staff if i % 2 else None,
            user_agent=f"Mozilla/5.0 (X11; Linux x86_64; rv:{i}.0) Gecko/20100101 Firefox/{i}.0",
            ip="203.0.113.9",
        )
    with django_assert_max_num_queries(len(few)):
        assert len(table(auth_client.get(URL))) == 25
    with django_assert_max_num_queries(len(few)):
        assert len(table(auth_client.get(URL, {"page": 3}))) == 10
    assert len(few) <= 4, [q["sql"] for q in few.captured_queries]


def test_requires_sign_in(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "next=" in response["Location"]


def test_read_only_page(auth_client: Client) -> None:
    assert auth_client.post(URL).status_code == 405


def test_master_switch_off_shows_the_single_notice(
    auth_client: Client, user: User, policy: Any
) -> None:
    record(user, "password.changed")
    policy(enabled=False)
    response = auth_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("Account settings are turned off") == 1
    assert table(response) == []
    assert "Password changed" not in html
