"""POST /api/management/users/{id}/impersonation: a single-use link, valid 600 s,
that starts the back-office's impersonation in the calling staff member's own
browser, under every guard rail of the back-office's impersonate page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.impersonation import REASON_KEY
from accounts.models import AuditEvent, ImpersonationTicket, User
from accounts.services.audit import Action
from accounts.services.deletion import account_deletion_schedule
from accounts.services.moderation import user_suspend
from tests.api.conftest import ApiClient, assert_error, make_token, management_client
from tests.conftest import staff_signed_in

pytestmark = pytest.mark.django_db

REASON = "Ticket 4242: the user cannot find the export"
API_IP = "203.0.113.9"
BROWSER_IP = "198.51.100.77"


def url(user: User | int) -> str:
    pk = user if isinstance(user, int) else user.pk
    return f"/api/management/users/{pk}/impersonation"


@pytest.fixture
def agent(user_factory: Callable[..., User]) -> User:
    """A security admin: the role that may impersonate."""
    member = user_factory(username="agent", is_staff=True)
    member.groups.add(Group.objects.get(name="Security admins"))
    return member


@pytest.fixture
def api(agent: User) -> ApiClient:
    return management_client(agent)


def browser(member: User, **kwargs: Any) -> Client:
    """``member`` in the back-office, second factor verified."""
    return staff_signed_in(member, Client(REMOTE_ADDR=BROWSER_IP, **kwargs))


def make_link(api: ApiClient, target: User, reason: str = REASON) -> str:
    """The link's path (the URL without scheme and host)."""
    response = api.post(url(target), {"reason": reason}, REMOTE_ADDR=API_IP)
    assert response.status_code == 201, response.content
    return urlsplit(response.json()["url"]).path


def signed_in_as(client: Client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


def started() -> bool:
    return AuditEvent.objects.filter(action=Action.IMPERSONATION_STARTED).exists()


def the_ticket() -> ImpersonationTicket:
    return ImpersonationTicket.objects.get()


# --- Making the link ----------------------------------------------------------------------


def test_a_security_admin_gets_a_link_valid_600_seconds(
    api: ApiClient, agent: User, user: User
) -> None:
    before = timezone.now()
    response = api.post(url(user), {"reason": f"  {REASON} "}, REMOTE_ADDR=API_IP)

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"url", "expires_at"}
    parts = urlsplit(body["url"])
    assert (parts.scheme, parts.netloc) == ("http", "testserver")
    match = re.fullmatch(r"/admin/accounts/user/impersonate/(it_[A-Za-z0-9_-]{43})/", parts.path)
    assert match, body["url"]
    token = match.group(1)
    ticket = the_ticket()
    assert (ticket.staff, ticket.target, ticket.reason, ticket.used_at) == (
        agent,
        user,
        REASON,
        None,
    )
    assert ticket.expires_at - ticket.created_at == timedelta(seconds=600)
    assert before + timedelta(seconds=600) <= ticket.expires_at
    assert body["expires_at"].startswith(ticket.expires_at.isoformat()[:19])
    # Only a keyed digest is stored: the token is nowhere in the row.
    assert len(ticket.digest) == 64
    assert token not in repr(ImpersonationTicket.objects.values().get())
    # Nothing started yet.
    assert not started()


def test_making_a_link_is_audited_with_the_surface_api(
    api: ApiClient, agent: User, user: User
) -> None:
    make_link(api, user)

    event = AuditEvent.objects.get(action=Action.IMPERSONATION_LINK_CREATED)
    assert (event.actor, event.subject, event.impersonator) == (agent, user, None)
    assert event.surface == "api"
    assert event.ip_address == API_IP
    assert event.data["reason"] == REASON
    assert event.data["link"] == the_ticket().pk
    assert "it_" not in str(event.data)
    assert str(Action.LABELS[event.action])
    assert len(mail.outbox) == 0


@pytest.mark.parametrize("group", ["Support", "Operators", None])
def test_staff_without_the_permission_are_refused_as_in_the_back_office(
    user_factory: Callable[..., User], user: User, group: str | None
) -> None:
    member = user_factory(username="helper", is_staff=True)
    if group:
        member.groups.add(Group.objects.get(name=group))

    assert_error(management_client(member).post(url(user), {"reason": REASON}), 403, "forbidden")

    assert not ImpersonationTicket.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="impersonation.").exists()
    # The back-office's page says the same.
    page = browser(member).get(reverse("admin:accounts_user_impersonate", args=[user.pk]))
    assert page.status_code == 403


def test_the_back_office_allows_the_same_role(agent: User, user: User) -> None:
    page = browser(agent).get(reverse("admin:accounts_user_impersonate", args=[user.pk]))
    assert page.status_code == 200


def test_an_end_users_token_is_refused(user: User, user_factory: Callable[..., User]) -> None:
    other = user_factory(username="bob")
    client = ApiClient(make_token(user))
    assert_error(client.post(url(other), {"reason": REASON}), 403, "forbidden")
    assert not ImpersonationTicket.objects.exists()


@pytest.mark.parametrize(
    "kind", ["yourself", "staff", "superuser", "suspended", "pending_deletion"]
)
@pytest.mark.parametrize("caller", ["Security admins", "superuser"])
def test_forbidden_targets_are_refused_as_in_the_back_office(
    user_factory: Callable[..., User], agent: User, kind: str, caller: str
) -> None:
    member = (
        agent
        if caller != "superuser"
        else user_factory(username="boss", is_staff=True, is_superuser=True)
    )
    if kind == "yourself":
        target = member
    elif kind == "staff":
        target = user_factory(username="colleague", is_staff=True)
    elif kind == "superuser":
        target = user_factory(username="root", is_superuser=True)
    elif kind == "suspended":
        target = user_factory(username="target")
        user_suspend(ctx=None, user=target, reason="Spam")
    else:
        target = user_factory(username="target")
        account_deletion_schedule(ctx=None, user=target)

    assert_error(management_client(member).post(url(target), {"reason": REASON}), 403, "forbidden")

    assert not ImpersonationTicket.objects.exists()
    page = browser(member).get(reverse("admin:accounts_user_impersonate", args=[target.pk]))
    assert page.status_code == 403


def test_unknown_and_huge_ids_are_404(api: ApiClient) -> None:
    assert_error(api.post(url(999999), {"reason": REASON}), 404, "not_found")
    assert_error(api.post(url(2**70), {"reason": REASON}), 404, "not_found")
    assert not ImpersonationTicket.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "    "},
        {"reason": "abc"},
        {"reason": "x" * 501},
        {"reason": "Ticket\x00 4242"},
        {"reason": 42},
        {"reason": REASON, "user_pk": 1},
    ],
    ids=["missing", "empty", "blank", "too-short", "too-long", "nul", "number", "extra-field"],
)
def test_bad_input_is_422(api: ApiClient, user: User, body: dict[str, Any]) -> None:
    details = assert_error(api.post(url(user), body), 422, "validation_error")["details"]
    assert set(details) <= {"reason", "user_pk"}
    assert not ImpersonationTicket.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="impersonation.").exists()


def test_the_query_budget(api: ApiClient, user: User, django_assert_max_num_queries: Any) -> None:
    api.get(f"/api/management/users/{user.pk}")  # the token's last use is written once
    with django_assert_max_num_queries(11):
        response = api.post(url(user), {"reason": REASON})
    assert response.status_code == 201


# --- Using the link -------------------------------------------------------------------


def test_opening_the_link_shows_a_confirmation_and_changes_nothing(
    api: ApiClient, agent: User, user: User
) -> None:
    path = make_link(api, user)
    client = browser(agent)

    page = client.get(path)

    assert page.status_code == 200
    html = page.content.decode()
    assert "alice" in html
    assert REASON in html
    assert 'method="post"' in html
    assert "csrfmiddlewaretoken" in html
    assert "<script" not in html.split("</head>")[-1]
    assert " style=" not in html
    assert signed_in_as(client) == agent.pk
    assert the_ticket().used_at is None
    assert not started()


def test_the_button_starts_the_impersonation_as_the_back_office_does(
    api: ApiClient, agent: User, user: User
) -> None:
    path = make_link(api, user)
    client = browser(agent, enforce_csrf_checks=True)
    page = client.get(path)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert csrf

    response = client.post(path, {"csrfmiddlewaretoken": csrf.group(1)})

    assert (response.status_code, response["Location"]) == (302, reverse("settings_home"))
    assert signed_in_as(client) == user.pk
    assert client.session["hijack_history"] == [str(agent.pk)]
    assert client.session[REASON_KEY] == REASON
    assert the_ticket().used_at is not None
    event = AuditEvent.objects.get(action=Action.IMPERSONATION_STARTED)
    assert (event.actor, event.subject, event.impersonator) == (agent, user, agent)
    assert event.data["reason"] == REASON
    assert event.data["staff"] == "agent"
    assert event.data["link"] == the_ticket().pk
    assert event.surface == "admin"
    assert event.ip_address == BROWSER_IP
    home = client.get(reverse("settings_home"))
    assert home.status_code == 200
    assert home.context["user"] == user
    assert "impersonation-banner" in home.content.decode()

    # It ends as any impersonation does, with the link's reason.
    client.post(
        reverse("hijack:release"), {"csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )
    ended = AuditEvent.objects.get(action=Action.IMPERSONATION_ENDED)
    assert ended.data["reason"] == REASON
    assert signed_in_as(client) == agent.pk


def test_the_button_needs_the_csrf_token(api: ApiClient, agent: User, user: User) -> None:
    path = make_link(api, user)
    client = browser(agent, enforce_csrf_checks=True)

    assert client.post(path).status_code == 403

    assert signed_in_as(client) == agent.pk
    assert the_ticket().used_at is None
    assert not started()


def test_the_link_works_once(api: ApiClient, agent: User, user: User) -> None:
    path = make_link(api, user)
    first = browser(agent)
    assert first.post(path).status_code == 302
    assert signed_in_as(first) == user.pk

    second = browser(agent)
    for response in (second.get(path), second.post(path)):
        assert response.status_code == 410
        assert "used already or has expired" in response.content.decode()
    assert signed_in_as(second) == agent.pk
    assert AuditEvent.objects.filter(action=Action.IMPERSONATION_STARTED).count() == 1


def test_of_two_uses_racing_one_wins(api: ApiClient, user: User) -> None:
    """The use is an update conditional on ``used_at`` being empty: a request that
    read the link before the other used it still loses."""
    from accounts.services.impersonation import ticket_use

    make_link(api, user)
    first, stale = the_ticket(), the_ticket()
    assert ticket_use(first) is True
    assert stale.used_at is None
    assert ticket_use(stale) is False


def test_the_link_expires_after_600_seconds(
    api: ApiClient, agent: User, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_link(api, user)
    client = browser(agent)
    real_now = timezone.now

    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=590))
    assert client.get(path).status_code == 200

    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=601))
    assert client.get(path).status_code == 410
    assert client.post(path).status_code == 410
    assert signed_in_as(client) == agent.pk
    assert the_ticket().used_at is None
    assert not started()


def test_another_staff_members_browser_gets_404(
    api: ApiClient, agent: User, user: User, user_factory: Callable[..., User]
) -> None:
    """404, not 403: the link belongs to the staff member who asked for it; to
    anyone else it is as unknown as a made-up one, so the page tells them nothing
    (not the account, not the reason, not even that the link exists), and their
    attempt does not use it up."""
    path = make_link(api, user)
    colleague = user_factory(username="colleague", is_staff=True, is_superuser=True)
    other = browser(colleague)

    for response in (other.get(path), other.post(path)):
        assert response.status_code == 404
        assert REASON not in response.content.decode()
    assert signed_in_as(other) == colleague.pk
    assert the_ticket().used_at is None
    assert not started()
    # Its owner still can.
    assert browser(agent).post(path).status_code == 302


def test_a_made_up_link_is_404(agent: User) -> None:
    client = browser(agent)
    for token in ["it_" + "A" * 43, "nope", "it_" + "x" * 200]:
        path = reverse("admin:accounts_user_impersonate_link", args=[token])
        assert client.get(path).status_code == 404
        assert client.post(path).status_code == 404


def test_signed_out_the_staff_member_signs_in_first_and_comes_back(
    api: ApiClient, agent: User, user: User
) -> None:
    path = make_link(api, user)
    client = Client()

    response = client.get(path)

    assert response.status_code == 302
    login = response["Location"]
    assert login.startswith(reverse("admin:login"))
    followed = client.get(login)
    assert followed["Location"].startswith(reverse("account_login"))
    assert "impersonate" in followed["Location"]
    assert client.post(path).status_code == 302  # to the sign-in again, nothing used
    assert the_ticket().used_at is None
    # Signed in with the second factor, within the 600 s: the link still works.
    staff_signed_in(agent, client)
    assert client.get(path).status_code == 200
    assert client.post(path).status_code == 302
    assert signed_in_as(client) == user.pk


def test_a_session_without_a_verified_second_factor_verifies_it_first(
    api: ApiClient, agent: User, user: User
) -> None:
    path = make_link(api, user)
    client = Client()
    client.force_login(agent, backend="django.contrib.auth.backends.ModelBackend")

    response = client.post(path)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert client.get(response["Location"])["Location"].startswith(
        reverse("reauthenticate_two_factor")
    )
    assert signed_in_as(client) == agent.pk
    assert the_ticket().used_at is None


@pytest.mark.parametrize(
    "change", ["target suspended", "target made staff", "permission lost", "target deleting"]
)
def test_every_guard_rail_is_checked_again_at_use(
    api: ApiClient, agent: User, user: User, change: str
) -> None:
    path = make_link(api, user)
    client = browser(agent)
    if change == "target suspended":
        user_suspend(ctx=None, user=user, reason="Spam")
    elif change == "target made staff":
        User.objects.filter(pk=user.pk).update(is_staff=True)
    elif change == "permission lost":
        agent.groups.clear()
        agent.groups.add(Group.objects.get(name="Support"))
    else:
        account_deletion_schedule(ctx=None, user=user)

    assert client.get(path).status_code == 403
    assert client.post(path).status_code == 403

    assert signed_in_as(client) == agent.pk
    assert the_ticket().used_at is None
    assert not started()


def test_the_end_user_never_sees_the_link(
    api: ApiClient, agent: User, user: User, auth_client: Client
) -> None:
    response = api.post(url(user), {"reason": REASON}, REMOTE_ADDR=API_IP)
    link = response.json()["url"]
    token = link.rstrip("/").rsplit("/", 1)[-1]
    client = browser(agent)
    client.post(urlsplit(link).path)
    client.post(reverse("hijack:release"))

    seen = [
        auth_client.get(reverse("security_activity")).content.decode(),
        ApiClient(make_token(user)).get("/api/my-account/security-activity").content.decode(),
        *(m.body for m in mail.outbox),
        *(str(e.data) for e in AuditEvent.objects.all()),
    ]
    for text in seen:
        assert token not in text
        assert "/impersonate/" not in text
    # The user reads that support asked, not from where.
    activity = ApiClient(make_token(user)).get("/api/my-account/security-activity").json()
    asked = [i for i in activity["items"] if i["action"] == Action.IMPERSONATION_LINK_CREATED]
    assert len(asked) == 1
    assert (asked[0]["ip_address"], asked[0]["user_agent"]) == (None, "")


def test_the_query_budget_of_the_page_and_the_button(
    api: ApiClient, agent: User, user: User, django_assert_max_num_queries: Any
) -> None:
    path = make_link(api, user)
    client = browser(agent)
    client.get(reverse("admin:index"))
    with django_assert_max_num_queries(7):
        assert client.get(path).status_code == 200
    with django_assert_max_num_queries(22):
        assert client.post(path).status_code == 302
