"""Impersonation (django-hijack) under the portal's guard rails: who may start it, on
whom, with what reason; what the impersonating staff member may not do; how it ends
and what the audit log says about it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest
from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.impersonation import REASON_KEY, STARTED_KEY
from accounts.models import AuditEvent, BackupCode, PersonalAccessToken, User, VerificationCode
from accounts.services.deletion import account_deletion_schedule
from accounts.services.mfa import backup_codes_generate
from accounts.services.moderation import user_suspend
from accounts.services.tokens import token_create
from tests.conftest import PASSWORD, verify_second_factor

pytestmark = pytest.mark.django_db

REASON = "Ticket 4242: the user cannot find the export"
STAFF_IP = "198.51.100.77"
REFUSED = "not available while impersonating"


# --- Helpers ----------------------------------------------------------------------------


@pytest.fixture
def agent(user_factory: Callable[..., User]) -> User:
    member = user_factory(username="agent", is_staff=True)
    member.groups.add(Group.objects.get(name="Security admins"))
    return member


def staff_browser(member: User, *, verified: bool = True) -> Client:
    client = Client(REMOTE_ADDR=STAFF_IP)
    client.force_login(member, backend="django.contrib.auth.backends.ModelBackend")
    if verified:
        verify_second_factor(client, member)
    else:
        TOTPDevice.objects.get_or_create(user=member, name="Phone", confirmed=True)
    return client


@pytest.fixture
def agent_client(agent: User) -> Client:
    return staff_browser(agent)


def start(client: Client, target: User, reason: str | None = REASON) -> Any:
    data: dict[str, Any] = {"user_pk": target.pk}
    if reason is not None:
        data["reason"] = reason
    return client.post(reverse("admin:accounts_user_impersonate", args=[target.pk]), data)


def signed_in_as(client: Client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


def impersonating(agent_client: Client, user: User) -> Client:
    response = start(agent_client, user)
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == reverse("settings_home")
    assert signed_in_as(agent_client) == user.pk
    return agent_client


def text(response: Any) -> str:
    return unescape(response.content.decode())


def user_page(user: User) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def nothing_started(client: Client, staff: User) -> None:
    assert signed_in_as(client) == staff.pk
    assert "hijack_history" not in client.session
    assert not AuditEvent.objects.filter(action__startswith="impersonation.").exists()


# --- Who may start it ------------------------------------------------------------------------


def test_the_page_asks_for_a_reason(agent_client: Client, user: User) -> None:
    page = agent_client.get(reverse("admin:accounts_user_impersonate", args=[user.pk]))
    assert page.status_code == 200
    assert 'name="reason"' in page.content.decode()
    assert signed_in_as(agent_client) != user.pk


def test_the_page_gives_the_time_limit_from_the_setting(
    agent_client: Client, user: User, settings: Any
) -> None:
    settings.IMPERSONATION_MAX_SECONDS = 600
    page = agent_client.get(reverse("admin:accounts_user_impersonate", args=[user.pk]))
    assert "it ends by itself after 10 minutes" in text(page)


def test_starting(agent_client: Client, agent: User, user: User) -> None:
    client = impersonating(agent_client, user)

    assert client.session["hijack_history"] == [str(agent.pk)]
    assert client.session[REASON_KEY] == REASON
    assert abs(client.session[STARTED_KEY] - time.time()) < 60
    event = AuditEvent.objects.get(action="impersonation.started")
    assert event.actor == agent
    assert event.subject == user
    assert event.impersonator == agent
    assert event.data["reason"] == REASON
    assert event.data["staff"] == "agent"
    assert event.ip_address == STAFF_IP
    home = client.get(reverse("settings_home"))
    assert home.status_code == 200
    assert home.context["user"] == user


@pytest.mark.parametrize("group", ["Support", "Operators", None])
def test_only_with_the_impersonate_permission(
    user_factory: Callable[..., User], user: User, group: str | None
) -> None:
    member = user_factory(username="helper", is_staff=True)
    if group:
        member.groups.add(Group.objects.get(name=group))
    else:
        member.user_permissions.add(Permission.objects.get(codename="view_user"))
    client = staff_browser(member)

    response = start(client, user)

    assert response.status_code == 403
    nothing_started(client, member)


def test_a_direct_permission_is_enough(user_factory: Callable[..., User], user: User) -> None:
    member = user_factory(username="helper", is_staff=True)
    member.user_permissions.add(Permission.objects.get(codename="impersonate_user"))
    client = staff_browser(member)
    assert start(client, user).status_code == 302
    assert signed_in_as(client) == user.pk


def test_only_in_a_session_verified_by_a_second_factor(agent: User, user: User) -> None:
    client = staff_browser(agent, verified=False)

    response = start(client, user)

    # The back-office sends the staff member to verify their second factor first.
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    followed = client.get(response["Location"])
    assert followed["Location"].startswith(reverse("reauthenticate_two_factor"))
    nothing_started(client, agent)


@pytest.mark.parametrize("verified", [False, True])
def test_the_stock_acquire_url_does_not_exist(agent: User, user: User, verified: bool) -> None:
    """Impersonation starts only from the back-office (reason, verified second factor):
    django-hijack's own acquire URL is not routed."""
    with pytest.raises(NoReverseMatch):
        reverse("hijack:acquire")
    client = staff_browser(agent, verified=verified)
    response = client.post("/hijack/acquire/", {"user_pk": user.pk})
    assert response.status_code == 404
    nothing_started(client, agent)
    assert not AuditEvent.objects.filter(action__startswith="impersonation.").exists()


@pytest.mark.parametrize(
    "kind", ["staff", "superuser", "suspended", "pending_deletion", "yourself"]
)
def test_forbidden_targets(
    agent_client: Client, agent: User, user_factory: Callable[..., User], kind: str
) -> None:
    if kind == "staff":
        target = user_factory(username="colleague", is_staff=True)
    elif kind == "superuser":
        target = user_factory(username="boss", is_superuser=True)
    elif kind == "suspended":
        target = user_factory(username="target")
        user_suspend(ctx=None, user=target, reason="Spam")
    elif kind == "pending_deletion":
        target = user_factory(username="target")
        account_deletion_schedule(ctx=None, user=target)
    else:
        target = agent

    response = start(agent_client, target)

    assert response.status_code == 403
    nothing_started(agent_client, agent)
    assert agent_client.get(reverse("admin:index")).status_code == 200


def test_a_superuser_with_is_staff_may_impersonate(
    user_factory: Callable[..., User], user: User
) -> None:
    boss = user_factory(username="boss", is_staff=True, is_superuser=True)
    client = staff_browser(boss)
    assert start(client, user).status_code == 302
    assert signed_in_as(client) == user.pk


@pytest.mark.parametrize("reason", [None, "", "    ", "abc", " ab c "])
def test_a_real_reason_is_required(
    agent_client: Client, agent: User, user: User, reason: str | None
) -> None:
    response = start(agent_client, user, reason)
    assert response.status_code == 400
    assert 'name="reason"' in response.content.decode()
    nothing_started(agent_client, agent)


def test_csrf_is_enforced(agent: User, user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, agent)
    response = start(client, user)
    assert response.status_code == 403
    nothing_started(client, agent)


# --- While it lasts ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["settings_home", "profile", "email", "two_factor"])
def test_the_banner_is_on_settings_pages(agent_client: Client, user: User, name: str) -> None:
    client = impersonating(agent_client, user)
    page = client.get(reverse(name))
    assert page.status_code == 200
    html = text(page)
    assert "impersonation-banner" in html
    assert "you are seeing the account of alice" in html
    assert "Stop impersonating" in html
    assert f'action="{reverse("hijack:release")}"' in html
    assert f'value="{user_page(user)}"' in html


def test_the_user_alone_sees_no_banner(auth_client: Client) -> None:
    page = auth_client.get(reverse("settings_home"))
    assert "Stop impersonating" not in text(page)


def test_a_non_sensitive_page_works(agent_client: Client, user: User) -> None:
    client = impersonating(agent_client, user)
    page = client.get(reverse("profile"))
    assert page.status_code == 200
    assert "Alice Martin" in text(page)


def test_changes_made_while_impersonating_name_the_impersonator(
    agent_client: Client, agent: User, user: User
) -> None:
    client = impersonating(agent_client, user)
    response = client.post(reverse("profile_name_edit"), {"display_name": "Alice M."})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.display_name == "Alice M."
    event = AuditEvent.objects.get(action="profile.updated")
    assert event.subject == user
    assert event.impersonator == agent


def _state(user: User) -> dict[str, Any]:
    user.refresh_from_db()
    return {
        "password": user.password,
        "email": user.email,
        "phone": user.phone,
        "state": user.state,
        "emails": list(EmailAddress.objects.filter(user=user).values_list("email", flat=True)),
        "totp": list(TOTPDevice.objects.filter(user=user).values_list("pk", "confirmed")),
        "codes": list(BackupCode.objects.filter(device__user=user).values_list("code_hash")),
        "verification_codes": VerificationCode.objects.filter(user=user).count(),
        "sessions": list(UserSession.objects.filter(user=user).values_list("pk", flat=True)),
        "tokens": list(
            PersonalAccessToken.objects.filter(user=user).values_list("pk", "revoked_at")
        ),
        "audit": list(AuditEvent.objects.values_list("pk", flat=True)),
        "mail": len(mail.outbox),
    }


def _sensitive_requests(user: User, own_session: UserSession) -> dict[str, tuple[str, str, dict]]:
    return {
        "password change": (
            "post",
            reverse("account_change_password"),
            {
                "oldpassword": PASSWORD,
                "password1": "N3w-pass-phrase!",
                "password2": "N3w-pass-phrase!",
            },
        ),
        "email change start": ("post", reverse("email"), {"email": "evil@example.net"}),
        "phone": ("post", reverse("phone"), {"phone": "+33612345678"}),
        "totp_start": ("post", reverse("totp_start"), {}),
        "backup_codes_regenerate": ("post", reverse("backup_codes_regenerate"), {}),
        "backup_codes_new GET": ("get", reverse("backup_codes_new"), {}),
        "backup_codes_download GET": ("get", reverse("backup_codes_download"), {}),
        "socialaccount_connections POST": (
            "post",
            reverse("socialaccount_connections"),
            {"account": "1"},
        ),
        "session end": ("post", reverse("session_end", args=[own_session.pk]), {}),
        "sessions end others": ("post", reverse("sessions_end_others"), {}),
        "export POST": ("post", reverse("export"), {}),
        "export GET": ("get", reverse("export"), {}),
        "delete_account POST": ("post", reverse("delete_account"), {"confirmation": "alice"}),
        "reauthenticate with the password": (
            "post",
            reverse("account_reauthenticate"),
            {"password": PASSWORD},
        ),
        "username": ("post", reverse("profile_username_edit"), {"username": "mallory"}),
        "token create": (
            "post",
            reverse("token_create"),
            {"name": "Agent", "scopes": ["account:write"], "expires_at": "2099-01-01"},
        ),
        "token revoke": (
            "post",
            reverse("token_revoke", args=[PersonalAccessToken.objects.get(user=user).pk]),
            {},
        ),
        "new token GET": ("get", reverse("tokens_new"), {}),
    }


SENSITIVE = [
    "password change",
    "email change start",
    "phone",
    "totp_start",
    "backup_codes_regenerate",
    "backup_codes_new GET",
    "backup_codes_download GET",
    "socialaccount_connections POST",
    "session end",
    "sessions end others",
    "export POST",
    "export GET",
    "delete_account POST",
    "reauthenticate with the password",
    "username",
    "token create",
    "token revoke",
    "new token GET",
]


@pytest.mark.parametrize("what", SENSITIVE)
def test_sensitive_settings_refuse(agent_client: Client, user: User, what: str) -> None:
    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    backup_codes_generate(user=user)
    token_create(
        ctx=None,
        user=user,
        name="CI",
        scopes=["account:read"],
        expires_at=timezone.now() + timedelta(days=30),
    )
    own = Client()
    own.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert own.get(reverse("settings_home")).status_code == 200
    own_session = UserSession.objects.get(session_key=own.session.session_key)
    client = impersonating(agent_client, user)
    client.get(reverse("settings_home"))  # the impersonation's own session is recorded
    # Even a fresh re-authentication would not open these pages.
    session = client.session
    session["account_authentication_methods_user"] = str(user.pk)
    session["account_authentication_methods"] = [
        {"method": "password", "at": time.time(), "reauthenticated": True}
    ]
    session.save()
    before = _state(user)

    method, url, data = _sensitive_requests(user, own_session)[what]
    response = getattr(client, method)(url, data)

    assert response.status_code == 403, (what, response.status_code)
    assert REFUSED in text(response)
    assert _state(user) == before
    assert own.get(reverse("settings_home")).status_code == 200
    assert signed_in_as(client) == user.pk


def test_the_sessions_page_can_be_read(agent_client: Client, user: User) -> None:
    client = impersonating(agent_client, user)
    assert client.get(reverse("sessions")).status_code == 200


def test_the_impersonation_session_is_not_among_the_users_own(
    agent_client: Client, agent: User, user: User
) -> None:
    own = Client(REMOTE_ADDR="203.0.113.7")
    own.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert own.get(reverse("settings_home")).status_code == 200
    client = impersonating(agent_client, user)

    assert client.get(reverse("settings_home")).status_code == 200

    row = UserSession.objects.get(session_key=client.session.session_key)
    assert row.user == user
    assert row.data["impersonated_by"] == agent.pk
    assert row.ip == STAFF_IP
    page = own.get(reverse("sessions"))
    assert page.status_code == 200
    assert "203.0.113.7" in text(page)
    assert STAFF_IP not in text(page)
    # On the staff side, the user's page shows it as an impersonation.
    overview = UserSession.objects.filter(user=user, data__impersonated_by=agent.pk)
    assert overview.count() == 1


# --- How it ends --------------------------------------------------------------------------------


def test_stopping(agent_client: Client, agent: User, user: User) -> None:
    client = impersonating(agent_client, user)
    assert client.get(reverse("profile")).status_code == 200

    response = client.post(reverse("hijack:release"), {"next": user_page(user)})

    assert response.status_code == 302
    assert response["Location"] == user_page(user)
    assert signed_in_as(client) == agent.pk
    assert not client.session.get("hijack_history")
    event = AuditEvent.objects.get(action="impersonation.ended")
    assert event.actor == agent
    assert event.subject == user
    assert event.impersonator == agent
    assert event.data["expired"] is False
    assert event.data["staff"] == "agent"
    # The back-office needs the second factor again.
    page = client.get(user_page(user))
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("admin:login"))
    again = client.get(page["Location"])
    assert again["Location"] == (
        f"{reverse('reauthenticate_two_factor')}?next={quote(user_page(user), safe='')}"
    )
    verify_second_factor(client, agent)
    assert client.get(user_page(user)).status_code == 200


def test_the_start_and_end_events_show_on_the_users_page(
    agent_client: Client, agent: User, user: User
) -> None:
    client = impersonating(agent_client, user)
    client.post(reverse("hijack:release"), {"next": user_page(user)})
    verify_second_factor(client, agent)
    page = text(client.get(user_page(user)))
    assert "Support started viewing the account as you" in page
    assert "Support stopped viewing the account as you" in page
    assert "(impersonation)" in page or "impersonated by agent" in page


def test_the_end_event_carries_the_reason(agent_client: Client, user: User) -> None:
    client = impersonating(agent_client, user)
    client.post(reverse("hijack:release"), {"next": user_page(user)})
    assert AuditEvent.objects.get(action="impersonation.ended").data.get("reason") == REASON


def test_release_needs_post(agent_client: Client, user: User) -> None:
    client = impersonating(agent_client, user)
    assert client.get(reverse("hijack:release")).status_code == 405
    assert signed_in_as(client) == user.pk


def _expired_by_time(client: Client, settings: Any) -> None:
    session = client.session
    session[STARTED_KEY] = time.time() - 31 * 60
    session.save()


def _expired_by_setting(client: Client, settings: Any) -> None:
    settings.IMPERSONATION_MAX_SECONDS = 1
    session = client.session
    session[STARTED_KEY] = time.time() - 2
    session.save()


@pytest.mark.parametrize("expire", [_expired_by_time, _expired_by_setting])
def test_it_ends_by_itself(
    agent_client: Client, agent: User, user: User, settings: Any, expire: Any
) -> None:
    client = impersonating(agent_client, user)
    assert client.get(reverse("profile")).status_code == 200
    expire(client, settings)

    response = client.get(reverse("profile"))

    assert response.status_code == 302
    assert response["Location"] == user_page(user)
    assert signed_in_as(client) == agent.pk
    assert not client.session.get("hijack_history")
    event = AuditEvent.objects.get(action="impersonation.ended")
    assert event.actor == agent
    assert event.subject == user
    assert event.impersonator == agent
    assert event.data["expired"] is True
    page = client.get(user_page(user))
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("admin:login"))


def test_an_expired_impersonation_refuses_a_write_too(
    agent_client: Client, agent: User, user: User
) -> None:
    client = impersonating(agent_client, user)
    session = client.session
    session[STARTED_KEY] = time.time() - 3600
    session.save()
    response = client.post(reverse("profile_name_edit"), {"display_name": "Changed"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.display_name == "Alice Martin"
    assert signed_in_as(client) == agent.pk


def test_within_the_time_it_goes_on(agent_client: Client, user: User, settings: Any) -> None:
    settings.IMPERSONATION_MAX_SECONDS = 3600
    client = impersonating(agent_client, user)
    session = client.session
    session[STARTED_KEY] = time.time() - 1800
    session.save()
    assert client.get(reverse("profile")).status_code == 200
    assert signed_in_as(client) == user.pk


def test_signing_out_while_impersonating_names_the_staff_member(
    agent_client: Client, agent: User, user: User
) -> None:
    client = impersonating(agent_client, user)
    client.get(reverse("settings_home"))
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert signed_in_as(client) is None
    signed_out = AuditEvent.objects.get(action="signed_out")
    assert signed_out.subject == user
    assert signed_out.impersonator == agent


def test_signing_out_while_impersonating_records_the_end(
    agent_client: Client, agent: User, user: User
) -> None:
    client = impersonating(agent_client, user)
    client.get(reverse("settings_home"))
    client.post(reverse("account_logout"))
    event = AuditEvent.objects.get(action="impersonation.ended")
    assert event.actor == agent
    assert event.subject == user


# --- When the staff member loses their access ---------------------------------------------


def _boss(user_factory: Callable[..., User]) -> Any:
    from accounts.actor import Actor

    boss = user_factory(username="boss", is_staff=True, is_superuser=True)
    return lambda subject: Actor(user=boss, subject=subject, surface="admin", ip="192.0.2.1")


def _ended(client: Client) -> bool:
    response = client.get(reverse("settings_home"))
    return response.status_code == 302 and signed_in_as(client) is None


@pytest.mark.parametrize("how", ["suspend", "schedule_deletion", "purge"])
def test_the_impersonations_end_with_the_staff_member(
    agent_client: Client, agent: User, user: User, user_factory: Callable[..., User], how: str
) -> None:
    from accounts.flows import moderation

    on = _boss(user_factory)
    client = impersonating(agent_client, user)
    assert client.get(reverse("settings_home")).status_code == 200
    assert UserSession.objects.filter(data__impersonated_by=agent.pk).exists()

    if how == "suspend":
        moderation.suspend_user(ctx=on(agent), reason="Left the company")
    elif how == "schedule_deletion":
        moderation.schedule_user_deletion(ctx=on(agent), reason="Left the company")
    else:
        moderation.purge_user(ctx=on(agent))

    assert not UserSession.objects.filter(user=user).exists()
    assert _ended(client)
    # The user's own sessions are not touched.


def test_suspending_a_staff_member_keeps_the_users_own_sessions(
    agent_client: Client, agent: User, user: User, user_factory: Callable[..., User]
) -> None:
    from accounts.flows import moderation

    own = Client()
    own.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert own.get(reverse("settings_home")).status_code == 200
    client = impersonating(agent_client, user)
    client.get(reverse("settings_home"))

    moderation.suspend_user(ctx=_boss(user_factory)(agent), reason="Left the company")

    assert own.get(reverse("settings_home")).status_code == 200
    assert _ended(client)


def _lose_access(agent: User, how: str) -> None:
    if how == "no longer staff":
        User.objects.filter(pk=agent.pk).update(is_staff=False)
    else:
        User.objects.filter(pk=agent.pk).delete()


@pytest.mark.parametrize("how", ["no longer staff", "deleted"])
def test_a_request_of_an_orphaned_impersonation_is_signed_out(
    agent_client: Client, agent: User, user: User, how: str
) -> None:
    client = impersonating(agent_client, user)
    _lose_access(agent, how)

    response = client.get(reverse("profile"))

    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    assert signed_in_as(client) is None
    event = AuditEvent.objects.get(action="impersonation.ended")
    assert event.subject == user
    assert event.data["staff_gone"] is True
    assert event.actor_id == (agent.pk if how == "no longer staff" else None)


@pytest.mark.parametrize("how", ["no longer staff", "deleted"])
def test_release_of_an_orphaned_impersonation_redirects(
    agent_client: Client, agent: User, user: User, how: str
) -> None:
    client = impersonating(agent_client, user)
    _lose_access(agent, how)

    response = client.post(reverse("hijack:release"), {"next": user_page(user)})

    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    assert signed_in_as(client) is None


def test_release_view_itself_signs_an_orphan_out(agent: User, user: User, rf: Any) -> None:
    """Even without the middleware in front, the release answers a redirect."""
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.views.impersonation import stop_impersonating

    request = rf.post(reverse("hijack:release"))
    request.session = SessionStore()
    request.session["hijack_history"] = [str(agent.pk)]
    request.user = user
    User.objects.filter(pk=agent.pk).update(is_staff=False)

    response = stop_impersonating(request)

    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")


# --- What the user sees of it --------------------------------------------------------------


def test_the_user_sees_support_not_the_staff_members_address(
    agent_client: Client, agent: User, user: User
) -> None:
    client = impersonating(agent_client, user)
    client.post(reverse("hijack:release"), {"next": user_page(user)})
    own = Client()
    own.force_login(user, backend="django.contrib.auth.backends.ModelBackend")

    page = text(own.get(reverse("security_activity")))

    assert "Support started viewing the account as you" in page
    assert "Support stopped viewing the account as you" in page
    assert STAFF_IP not in page
    rows = [row for row in page.split("<tr>") if "Support started viewing" in row]
    assert rows
    assert "<td>Support</td>" in rows[0]


def test_the_export_shows_support_not_the_staff_members_address(
    agent_client: Client, agent: User, user: User
) -> None:
    from accounts.selectors.export import user_data

    client = impersonating(agent_client, user)
    client.post(reverse("hijack:release"), {"next": user_page(user)})

    activity = user_data(user=user)["security_activity"]

    shown = [e for e in activity if e["action"].startswith("impersonation.")]
    assert len(shown) == 2
    for entry in shown:
        assert entry["ip_address"] is None
        assert entry["device"] == "Support"
        assert entry["time"]
    assert STAFF_IP not in str(activity)
