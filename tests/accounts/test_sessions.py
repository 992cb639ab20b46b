from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone

from accounts.actor import Actor
from accounts.flows import sessions as session_flows
from accounts.flows.errors import AccessDenied, ImpersonationRefused, ReauthenticationRequired
from accounts.models import AuditEvent, User
from accounts.policy import PolicyDenied
from tests.conftest import PASSWORD, reauthenticate

pytestmark = pytest.mark.django_db

URL = "/settings/sessions/"
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
    assert SESSION_KEY in client.session
    return client


def row_of(client: Client) -> UserSession:
    return UserSession.objects.get(session_key=client.session.session_key)


def is_signed_in(client: Client) -> bool:
    response = client.get(reverse("settings_home"))
    if response.status_code == 200:
        return True
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    return False


def table(response: Any) -> list[list[str]]:
    html = response.content.decode()
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    assert body is not None
    return [
        [
            " ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split())
            for cell in re.findall(r"<td>(.*?)</td>", tr, re.S)
        ]
        for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    ]


def end(client: Client, session: UserSession) -> Any:
    return client.post(reverse("session_end", args=[session.pk]))


def end_others(client: Client) -> Any:
    return client.post(reverse("sessions_end_others"))


def fake_session(user: User, **fields: Any) -> UserSession:
    return UserSession.objects.create(
        user=user,
        session_key=uuid.uuid4().hex,
        ip=fields.pop("ip", "198.51.100.1"),
        user_agent=fields.pop("user_agent", SAFARI_ON_IPHONE),
        **fields,
    )


# --- The page -------------------------------------------------------------------------------


def test_url() -> None:
    assert reverse("sessions") == URL


def test_lists_both_sign_ins_and_marks_this_device(user: User) -> None:
    first = sign_in(user_agent=FIREFOX_ON_WINDOWS, ip="203.0.113.7")
    second = sign_in(user_agent=SAFARI_ON_IPHONE, ip="198.51.100.23")
    assert UserSession.objects.filter(user=user).count() == 2
    response = first.get(URL)
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert html.count("This device") == 1
    assert html.count("<h1>") == 1
    rows = table(response)
    assert len(rows) == 2
    by_ip = {row[1]: row for row in rows}
    assert set(by_ip) == {"203.0.113.7", "198.51.100.23"}
    assert by_ip["203.0.113.7"][0] == "Firefox on Windows This device"
    assert by_ip["198.51.100.23"][0].startswith("Mobile Safari on iOS")
    assert "This device" not in by_ip["198.51.100.23"][0]
    # Signed in and last seen, in the user's time zone.
    mine = row_of(first)
    for value in (mine.created_at, mine.last_seen_at):
        local = timezone.localtime(value)
        assert f'datetime="{local.isoformat()}"' in html
        assert unescape(formats.date_format(local, "DATETIME_FORMAT")) in by_ip["203.0.113.7"]
    # Only the other session has an End button.
    assert f'action="{reverse("session_end", args=[row_of(second).pk])}"' in html
    assert f'action="{reverse("session_end", args=[mine.pk])}"' not in html
    assert "End every other session" in html


def test_someone_elses_sessions_are_not_listed(
    user: User, user_factory: Callable[..., User]
) -> None:
    user_factory(username="bob")
    first = sign_in()
    sign_in("bob", ip="192.0.2.99")
    rows = table(first.get(URL))
    assert [row[1] for row in rows] == ["203.0.113.7"]


def test_sessions_unused_for_longer_than_the_cookie_lives_are_not_listed(
    user: User, settings: Any
) -> None:
    first = sign_in()
    fake_session(
        user,
        ip="192.0.2.50",
        last_seen_at=timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE + 60),
    )
    assert [row[1] for row in table(first.get(URL))] == ["203.0.113.7"]


def test_requires_sign_in(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_query_budget_does_not_grow_with_sessions(
    user: User, django_assert_max_num_queries: Any
) -> None:
    first = sign_in()
    fake_session(user)
    first.get(URL)  # warm the policy cache and the session's activity mark
    with CaptureQueriesContext(connection) as few:
        assert len(table(first.get(URL))) == 2
    for i in range(40):
        fake_session(user, ip=f"198.51.100.{i + 2}", user_agent=f"{FIREFOX_ON_WINDOWS} {i}")
    with django_assert_max_num_queries(len(few)):
        assert len(table(first.get(URL))) == 42
    assert len(few) <= 6, [q["sql"] for q in few.captured_queries]


# --- Ending one session ---------------------------------------------------------------------


def test_ending_another_session_signs_it_out(user: User) -> None:
    first = sign_in()
    second = sign_in(user_agent=SAFARI_ON_IPHONE, ip="198.51.100.23")
    target = row_of(second)
    key = target.session_key
    reauthenticate(first)

    response = end(first, target)
    assert response.status_code == 302
    assert response["Location"] == URL
    assert "The session was ended." in unescape(first.get(URL).content.decode())

    assert not UserSession.objects.filter(pk=target.pk).exists()
    assert not Session.objects.filter(session_key=key).exists()
    assert not is_signed_in(second)
    assert is_signed_in(first)
    event = AuditEvent.objects.get(action="session.ended")
    assert event.subject == user
    assert event.actor == user
    assert event.data == {"ip": "198.51.100.23", "user_agent": SAFARI_ON_IPHONE}


def test_ending_needs_a_recent_reauthentication(user: User) -> None:
    first = sign_in()
    second = sign_in(ip="198.51.100.23")
    response = end(first, row_of(second))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert is_signed_in(second)
    assert UserSession.objects.filter(user=user).count() == 2
    assert not AuditEvent.objects.filter(action__startswith="session.").exists()
    response = end_others(first)
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert is_signed_in(second)


def test_the_current_session_is_not_ended_here(user: User) -> None:
    first = sign_in()
    reauthenticate(first)
    response = end(first, row_of(first))
    assert response.status_code == 302
    assert "To end this session, sign out." in unescape(first.get(URL).content.decode())
    assert is_signed_in(first)
    assert UserSession.objects.filter(user=user).count() == 1
    assert not AuditEvent.objects.filter(action="session.ended").exists()


def test_someone_elses_session_is_a_404(user: User, user_factory: Callable[..., User]) -> None:
    user_factory(username="bob")
    first = sign_in()
    bobs = sign_in("bob", ip="192.0.2.99")
    reauthenticate(first)
    assert end(first, row_of(bobs)).status_code == 404
    assert is_signed_in(bobs)
    assert UserSession.objects.filter(user__username="bob").count() == 1
    assert not AuditEvent.objects.filter(action="session.ended").exists()


def test_an_unknown_session_is_a_404(user: User) -> None:
    first = sign_in()
    reauthenticate(first)
    assert first.post(reverse("session_end", args=[987654])).status_code == 404


def test_ending_is_post_only(user: User) -> None:
    first = sign_in()
    second = sign_in(ip="198.51.100.23")
    reauthenticate(first)
    assert first.get(reverse("session_end", args=[row_of(second).pk])).status_code == 405
    assert first.get(reverse("sessions_end_others")).status_code == 405
    assert is_signed_in(second)


# --- Ending every other session -------------------------------------------------------------


def test_end_every_other_session(user: User) -> None:
    first = sign_in()
    others = [sign_in(ip=f"198.51.100.{i}") for i in (1, 2, 3)]
    reauthenticate(first)

    response = end_others(first)
    assert response.status_code == 302
    assert response["Location"] == URL
    assert "Every other session was ended." in unescape(first.get(URL).content.decode())

    assert all(not is_signed_in(other) for other in others)
    assert is_signed_in(first)
    assert list(UserSession.objects.filter(user=user).values_list("session_key", flat=True)) == [
        first.session.session_key
    ]
    event = AuditEvent.objects.get(action="session.others_ended")
    assert event.subject == user
    assert event.data == {"count": 3}


def test_end_every_other_session_with_none_left(user: User) -> None:
    first = sign_in()
    reauthenticate(first)
    assert end_others(first).status_code == 302
    assert is_signed_in(first)
    assert not AuditEvent.objects.filter(action="session.others_ended").exists()


def test_end_every_other_session_leaves_other_users_alone(
    user: User, user_factory: Callable[..., User]
) -> None:
    user_factory(username="bob")
    first = sign_in()
    bobs = sign_in("bob", ip="192.0.2.99")
    reauthenticate(first)
    end_others(first)
    assert is_signed_in(bobs)


# --- Impersonation ----------------------------------------------------------------------------


def test_sessions_started_by_impersonation_are_hidden_and_cannot_be_ended(
    user: User, staff_user: User
) -> None:
    first = sign_in()
    impersonated = sign_in(ip="10.0.0.5")
    row = row_of(impersonated)
    row.data = {"impersonated_by": staff_user.pk}
    row.save(update_fields=["data"])
    reauthenticate(first)

    page = first.get(URL)
    assert [r[1] for r in table(page)] == ["203.0.113.7"]
    assert "10.0.0.5" not in page.content.decode()
    assert "End every other session" not in page.content.decode()

    assert end(first, row).status_code == 404
    assert UserSession.objects.filter(pk=row.pk).exists()
    assert is_signed_in(impersonated)
    assert not AuditEvent.objects.filter(action="session.ended").exists()


# --- Security ---------------------------------------------------------------------------------


def test_csrf_is_enforced(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session["account_authentication_methods_user"] = str(user.pk)
    session["account_authentication_methods"] = [
        {"method": "password", "at": time.time(), "reauthenticated": True}
    ]
    session.save()
    second = sign_in(ip="198.51.100.23")
    assert end(client, row_of(second)).status_code == 403
    assert end_others(client).status_code == 403
    assert is_signed_in(second)
    assert not AuditEvent.objects.filter(action__startswith="session.").exists()


@pytest.mark.parametrize(("mode", "status"), [("off", 404), ("read_only", 403)])
def test_policy_refuses_ending(user: User, policy: Any, mode: str, status: int) -> None:
    first = sign_in()
    second = sign_in(ip="198.51.100.23")
    reauthenticate(first)
    policy(sessions=mode)
    assert end(first, row_of(second)).status_code == status
    assert end_others(first).status_code == status
    assert is_signed_in(second)
    assert UserSession.objects.filter(user=user).count() == 2
    assert not AuditEvent.objects.filter(action__startswith="session.").exists()


def test_policy_off_hides_the_page(user: User, policy: Any) -> None:
    first = sign_in()
    policy(sessions="off")
    assert first.get(URL).status_code == 404
    assert first.get("/accounts/sessions/").status_code == 404


def test_policy_read_only_shows_the_page_without_end_buttons(user: User, policy: Any) -> None:
    first = sign_in()
    sign_in(ip="198.51.100.23")
    policy(sessions="read_only")
    response = first.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert len(table(response)) == 2
    assert 'method="post"' not in html.split("<table", 1)[1].split("</table>", 1)[0]
    assert "End every other session" not in html
    assert reverse("sessions_end_others") not in html


def test_allauths_sessions_page_redirects_to_the_portals(user: User) -> None:
    first = sign_in()
    response = first.get("/accounts/sessions/")
    assert response.status_code == 302
    assert response["Location"] == URL


def test_allauths_sessions_page_ends_nothing(user: User) -> None:
    first = sign_in()
    second = sign_in(ip="198.51.100.23")
    reauthenticate(first)
    first.post("/accounts/sessions/", {"action": "logout"})
    assert is_signed_in(second)
    assert UserSession.objects.filter(user=user).count() == 2


# --- The flows, called as the Account API would call them ------------------------


def api(user: User, session_key: str = "", **extra: Any) -> Actor:
    return Actor(
        user=user, surface="api", reauthenticated_at=time.time(), session_key=session_key, **extra
    )


def test_ending_someone_elses_session_is_refused_as_unknown(
    user: User, user_factory: Callable[..., User]
) -> None:
    user_factory(username="bob")
    bobs = sign_in("bob", ip="192.0.2.99")
    with pytest.raises(AccessDenied) as refused:
        session_flows.session_end(ctx=api(user), pk=row_of(bobs).pk)
    assert refused.value.status == 404
    with pytest.raises(AccessDenied):
        session_flows.session_end(ctx=api(user), pk=987654)
    assert is_signed_in(bobs)
    assert not AuditEvent.objects.filter(action="session.ended").exists()


def test_the_end_flow_ends_one_session_but_not_the_acting_one(user: User) -> None:
    first, second = sign_in(), sign_in(user_agent=SAFARI_ON_IPHONE)
    ctx = api(user, session_key=first.session.session_key)
    with pytest.raises(session_flows.CurrentSession):
        session_flows.session_end(ctx=ctx, pk=row_of(first).pk)
    session_flows.session_end(ctx=ctx, pk=row_of(second).pk)
    assert is_signed_in(first)
    assert not is_signed_in(second)
    assert AuditEvent.objects.get(action="session.ended").data["user_agent"] == SAFARI_ON_IPHONE


def test_end_others_keeps_the_session_of_the_context(user: User) -> None:
    first, second, third = sign_in(), sign_in(), sign_in(user_agent=SAFARI_ON_IPHONE)
    kept = row_of(second)
    assert session_flows.sessions_end_others(ctx=api(user, session_key=kept.session_key)) == 2
    assert is_signed_in(second)
    assert not is_signed_in(first)
    assert not is_signed_in(third)
    assert list(UserSession.objects.filter(user=user)) == [kept]
    assert AuditEvent.objects.get(action="session.others_ended").data == {"count": 2}


def test_the_session_flows_need_a_recent_reauthentication(user: User) -> None:
    first, second = sign_in(), sign_in()
    ctx = Actor(user=user, surface="api", session_key=first.session.session_key)
    with pytest.raises(ReauthenticationRequired):
        session_flows.session_end(ctx=ctx, pk=row_of(second).pk)
    with pytest.raises(ReauthenticationRequired):
        session_flows.sessions_end_others(ctx=ctx)
    assert is_signed_in(second)


def test_the_session_flows_follow_the_policy(user: User, policy: Callable[..., Any]) -> None:
    first, second = sign_in(), sign_in()
    policy(sessions="read_only")
    ctx = api(user, session_key=first.session.session_key)
    with pytest.raises(PolicyDenied):
        session_flows.session_end(ctx=ctx, pk=row_of(second).pk)
    with pytest.raises(PolicyDenied):
        session_flows.sessions_end_others(ctx=ctx)
    assert is_signed_in(second)


def test_the_session_flows_are_refused_while_impersonating(user: User, staff_user: User) -> None:
    first, second = sign_in(), sign_in()
    ctx = api(user, session_key=first.session.session_key, impersonator_id=staff_user.pk)
    with pytest.raises(ImpersonationRefused):
        session_flows.sessions_end_others(ctx=ctx)
    assert is_signed_in(second)
