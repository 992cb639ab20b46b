"""The back-office user pages: finding users at scale, and what staff do to an
account (suspend, restore, end sessions, reset second factors, delete)."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.admin import CappedCountPaginator
from accounts.models import AuditEvent, BackupCode, BackupCodeDevice, User
from accounts.services.audit import Action, audit_record
from accounts.services.deletion import account_deletion_schedule, pseudonym
from accounts.services.mfa import backup_codes_generate
from accounts.services.moderation import user_suspend
from tests.conftest import PASSWORD, verify_second_factor

pytestmark = pytest.mark.django_db

LIST = "/admin/accounts/user/"


# --- Helpers ----------------------------------------------------------------------------


def staff_in(user_factory: Callable[..., User], group: str, username: str = "agent") -> Client:
    member = user_factory(username=username, is_staff=True)
    member.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(member, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, member)
    return client


@pytest.fixture
def support(user_factory: Callable[..., User]) -> Client:
    return staff_in(user_factory, "Support")


@pytest.fixture
def security(user_factory: Callable[..., User]) -> Client:
    return staff_in(user_factory, "Security admins")


def staff_of(client: Client) -> User:
    return User.objects.get(pk=client.session[SESSION_KEY])


def sign_in(login: str, password: str = PASSWORD) -> Client:
    """A real browser signing in through allauth's page."""
    client = Client()
    response = client.post(reverse("account_login"), {"login": login, "password": password})
    assert response.status_code == 302, response.content[:500]
    assert SESSION_KEY in client.session
    return client


def is_signed_in(client: Client) -> bool:
    response = client.get(reverse("settings_home"))
    if response.status_code == 200:
        return True
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    return False


def usernames(response: Any) -> set[str]:
    assert response.status_code == 200
    return {u.username for u in response.context_data["cl"].result_list}


def subjects_to(address: str) -> list[str]:
    return [m.subject for m in mail.outbox if address in m.to]


def text(response: Any) -> str:
    return unescape(response.content.decode())


def user_page(user: User) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def state_of(user: User) -> dict[str, Any]:
    return User.objects.filter(pk=user.pk).values(
        "state", "is_active", "state_reason", "suspended_until", "deletion_scheduled_for"
    )[0]


def bulk_users(count: int, prefix: str = "bulk") -> None:
    now = timezone.now()
    User.objects.bulk_create(
        User(
            username=f"{prefix}{i}",
            email=f"{prefix}{i}@example.org",
            email_key=f"{prefix}{i}@example.org",
            password="!",
            date_joined=now - timedelta(minutes=i),
        )
        for i in range(count)
    )


# --- Finding users --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["alice", "ALICE", "alice@example", "Alice Martin", "martin", "+33612345678", "612345"]
)
def test_search_finds_the_user(
    support: Client, user_factory: Callable[..., User], query: str
) -> None:
    user_factory(username="alice", display_name="Alice Martin", phone="+33612345678")
    user_factory(username="bob", display_name="Bob Stone", phone="+33699999999")
    assert usernames(support.get(LIST, {"q": query})) == {"alice"}


def test_filters(support: Client, user_factory: Callable[..., User]) -> None:
    old = user_factory(username="old")
    User.objects.filter(pk=old.pk).update(date_joined=timezone.now() - timedelta(days=400))
    suspended = user_factory(username="suspended")
    user_suspend(ctx=None, user=suspended, reason="Spam")
    protected = user_factory(username="protected")
    TOTPDevice.objects.create(user=protected, name="Phone", confirmed=True)
    keyed = user_factory(username="keyed")
    WebAuthnCredential.objects.create(
        user=keyed,
        name="Key",
        confirmed=True,
        credential_id=b"credential-keyed",
        public_key=b"public-key",
        sign_count=0,
        aaguid="00000000-0000-0000-0000-000000000000",
    )
    unconfirmed = user_factory(username="unconfirmed")
    TOTPDevice.objects.create(user=unconfirmed, name="Phone", confirmed=False)
    everyone = {"agent", "old", "suspended", "protected", "keyed", "unconfirmed"}

    assert usernames(support.get(LIST)) == everyone
    assert usernames(support.get(LIST, {"state__exact": "suspended"})) == {"suspended"}
    assert usernames(support.get(LIST, {"state__exact": "active"})) == everyone - {"suspended"}
    assert usernames(support.get(LIST, {"is_staff__exact": "1"})) == {"agent"}
    assert "agent" not in usernames(support.get(LIST, {"is_staff__exact": "0"}))
    # The staff member's own authenticator counts too.
    assert usernames(support.get(LIST, {"second_factor": "yes"})) == {
        "agent",
        "protected",
        "keyed",
    }
    assert usernames(support.get(LIST, {"second_factor": "no"})) == {
        "old",
        "suspended",
        "unconfirmed",
    }
    # The links the date filter itself makes (midnight, in the active time zone).
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    past_7_days = {
        "date_joined__gte": str(midnight - timedelta(days=7)),
        "date_joined__lt": str(midnight + timedelta(days=1)),
    }
    assert usernames(support.get(LIST, past_7_days)) == everyone - {"old"}
    a_year_ago = support.get(
        LIST,
        {
            "date_joined__gte": str(midnight - timedelta(days=500)),
            "date_joined__lt": str(midnight - timedelta(days=300)),
        },
    )
    assert usernames(a_year_ago) == {"old"}


def test_the_list_shows_whether_a_second_factor_is_set(
    support: Client, user_factory: Callable[..., User]
) -> None:
    protected = user_factory(username="protected")
    TOTPDevice.objects.create(user=protected, name="Phone", confirmed=True)
    user_factory(username="plain")
    html = support.get(LIST).content.decode()
    rows = {
        name: row
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)
        for name in re.findall(r'<th class="field-username"><a [^>]*>([^<]+)</a>', row)
    }
    assert "icon-yes" in rows["protected"]
    assert "icon-no" not in rows["protected"]
    assert "icon-no" in rows["plain"]
    assert "icon-yes" not in rows["plain"]


def count_queries(client: Client, url: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


LIST_BUDGET = 8


def test_the_list_costs_the_same_with_3_and_60_users(
    support: Client, django_assert_max_num_queries: Any
) -> None:
    bulk_users(2)
    support.get(LIST)  # session bookkeeping settles
    with django_assert_max_num_queries(LIST_BUDGET):
        few, _ = count_queries(support, LIST)
    bulk_users(57, prefix="more")
    assert User.objects.count() == 60
    with django_assert_max_num_queries(LIST_BUDGET):
        many, _ = count_queries(support, LIST)
    assert few == many
    with django_assert_max_num_queries(LIST_BUDGET):
        count_queries(support, f"{LIST}?q=more&state__exact=active&second_factor=no")


def test_the_list_never_counts_the_whole_table(support: Client) -> None:
    bulk_users(5)
    support.get(LIST)
    for url in (LIST, f"{LIST}?state__exact=active", f"{LIST}?q=bulk"):
        _, queries = count_queries(support, url)
        # A search counts the ids it reads (CappedIdsPaginator), a list its rows.
        limit = f"LIMIT {CappedCountPaginator.CAP + 1}"
        counts = [q for q in queries if "COUNT(" in q.upper() or limit in q.upper()]
        assert counts, url
        for sql in counts:
            assert "LIMIT" in sql.upper(), sql
            assert str(CappedCountPaginator.CAP + 1) in sql, sql


def test_the_capped_count_says_at_most_cap_plus_one(monkeypatch: pytest.MonkeyPatch) -> None:
    bulk_users(7)
    monkeypatch.setattr(CappedCountPaginator, "CAP", 4)
    assert CappedCountPaginator(User.objects.order_by("pk"), 2).count == 5


PAGE_BUDGET = 18


@pytest.mark.parametrize("kind", ["sessions", "events"])
def test_a_users_page_costs_the_same_whatever_its_history(
    security: Client,
    user_factory: Callable[..., User],
    django_assert_max_num_queries: Any,
    kind: str,
) -> None:
    target = user_factory(username="target")
    TOTPDevice.objects.create(user=target, name="Phone", confirmed=True)
    backup_codes_generate(user=target)
    staff = staff_of(security)

    def add(n: int) -> None:
        if kind == "sessions":
            UserSession.objects.bulk_create(
                UserSession(
                    user=target,
                    session_key=uuid.uuid4().hex,
                    ip="192.0.2.1",
                    user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0",
                )
                for _ in range(n)
            )
        else:
            AuditEvent.objects.bulk_create(
                AuditEvent(
                    action=Action.PROFILE_UPDATED,
                    subject=target,
                    subject_label="target",
                    actor=staff if i % 2 else target,
                    impersonator=staff if i % 3 == 0 else None,
                )
                for i in range(n)
            )

    url = user_page(target)
    add(2)
    security.get(url)
    with django_assert_max_num_queries(PAGE_BUDGET):
        few, _ = count_queries(security, url)
    add(38 if kind == "sessions" else 58)
    with django_assert_max_num_queries(PAGE_BUDGET):
        many, _ = count_queries(security, url)
    assert few == many


# --- Suspending -------------------------------------------------------------------------


def test_suspending_a_user(support: Client, user: User) -> None:
    browser = sign_in("alice")
    other_browser = sign_in("alice@example.org")
    page = support.get(reverse("admin:accounts_user_suspend", args=[user.pk]))
    assert page.status_code == 200
    assert 'name="reason"' in page.content.decode()

    response = support.post(
        reverse("admin:accounts_user_suspend", args=[user.pk]), {"reason": "  Spam reports  "}
    )

    assert response.status_code == 302
    assert response["Location"] == user_page(user)
    user.refresh_from_db()
    assert user.state == User.State.SUSPENDED
    assert not user.is_active
    assert user.state_reason == "Spam reports"
    assert user.suspended_until is None
    assert user.state_changed_at is not None
    assert not is_signed_in(browser)
    assert not is_signed_in(other_browser)
    assert not UserSession.objects.filter(user=user).exists()
    event = AuditEvent.objects.get(action="account.suspended")
    assert event.subject == user
    assert event.actor == staff_of(support)
    assert event.data == {"reason": "Spam reports", "until": None}
    assert subjects_to("alice@example.org") == ["[Account portal] Your account was suspended"]


def test_suspending_until_a_time(support: Client, user: User) -> None:
    until = timezone.now() + timedelta(days=3)
    response = support.post(
        reverse("admin:accounts_user_suspend", args=[user.pk]),
        {"reason": "Cooling off", "until": until.strftime("%Y-%m-%dT%H:%M")},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.state == User.State.SUSPENDED
    assert user.suspended_until is not None
    assert abs(user.suspended_until - until) < timedelta(minutes=1)
    event = AuditEvent.objects.get(action="account.suspended")
    assert event.data["until"] == user.suspended_until.isoformat()


@pytest.mark.parametrize(
    "data",
    [
        {"reason": ""},
        {"reason": "   "},
        {},
        {"reason": "Spam", "until": "2001-01-01T10:00"},
        {"reason": "Spam", "until": "not a date"},
    ],
)
def test_a_suspension_needs_a_reason_and_a_future_end(
    support: Client, user: User, data: dict[str, str]
) -> None:
    browser = sign_in("alice")
    before = state_of(user)
    response = support.post(reverse("admin:accounts_user_suspend", args=[user.pk]), data)
    assert response.status_code == 400
    assert state_of(user) == before
    assert is_signed_in(browser)
    assert not AuditEvent.objects.filter(action="account.suspended").exists()
    assert mail.outbox == []


def test_suspending_a_suspended_user_changes_nothing(support: Client, user: User) -> None:
    user_suspend(ctx=None, user=user, reason="First")
    response = support.post(
        reverse("admin:accounts_user_suspend", args=[user.pk]), {"reason": "Second"}
    )
    assert response.status_code == 302
    assert state_of(user)["state_reason"] == "First"
    assert AuditEvent.objects.filter(action="account.suspended").count() == 1
    assert mail.outbox == []


def test_the_suspend_page_is_get_or_post_and_csrf_protected(
    user_factory: Callable[..., User], user: User
) -> None:
    member = user_factory(username="agent", is_staff=True)
    member.groups.add(Group.objects.get(name="Support"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(member, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, member)
    response = client.post(reverse("admin:accounts_user_suspend", args=[user.pk]), {"reason": "x"})
    assert response.status_code == 403
    assert state_of(user)["state"] == "active"


def bulk(client: Client, pks: list[int], **data: str) -> Any:
    return client.post(
        LIST, {"action": "suspend_selected", "_selected_action": pks, "index": "0", **data}
    )


def test_suspending_in_bulk(support: Client, user_factory: Callable[..., User]) -> None:
    alice = user_factory(username="alice")
    bob = user_factory(username="bob")
    carol = user_factory(username="carol")
    alices = sign_in("alice")
    bobs = sign_in("bob")
    carols = sign_in("carol")

    # First the action asks for the reason (and the optional end) ...
    asked = bulk(support, [alice.pk, bob.pk])
    assert asked.status_code == 200
    assert 'name="reason"' in asked.content.decode()
    assert {state_of(u)["state"] for u in (alice, bob)} == {"active"}

    # ... then suspends.
    until = timezone.now() + timedelta(days=1)
    done = bulk(support, [alice.pk, bob.pk], reason="Spam wave", until=until.isoformat())

    assert done.status_code == 302
    for u in (alice, bob):
        row = state_of(u)
        assert row["state"] == "suspended"
        assert not row["is_active"]
        assert row["state_reason"] == "Spam wave"
        assert abs(row["suspended_until"] - until) < timedelta(seconds=1)
    assert not is_signed_in(alices)
    assert not is_signed_in(bobs)
    assert is_signed_in(carols)
    assert state_of(carol)["state"] == "active"
    events = AuditEvent.objects.filter(action="account.suspended")
    assert {e.subject_id for e in events} == {alice.pk, bob.pk}
    assert {e.data["reason"] for e in events} == {"Spam wave"}
    assert {e.actor_id for e in events} == {staff_of(support).pk}
    assert subjects_to("alice@example.org") == ["[Account portal] Your account was suspended"]
    assert subjects_to("bob@example.org") == ["[Account portal] Your account was suspended"]
    assert subjects_to("carol@example.org") == []


@pytest.mark.parametrize("data", [{"reason": ""}, {"reason": "Spam", "until": "2001-01-01T10:00"}])
def test_bulk_suspension_refuses_no_reason_or_a_past_end(
    support: Client, user: User, data: dict[str, str]
) -> None:
    response = bulk(support, [user.pk], **data)
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert state_of(user)["state"] == "active"
    assert not AuditEvent.objects.filter(action="account.suspended").exists()
    assert mail.outbox == []


def test_bulk_suspension_answers_400_on_an_invalid_form(support: Client, user: User) -> None:
    assert bulk(support, [user.pk], reason="").status_code == 400


# --- Signing in while suspended --------------------------------------------------------------


def test_a_suspended_user_with_the_right_password_is_told(user: User) -> None:
    user_suspend(ctx=None, user=user, reason="Spam")
    client = Client()
    response = client.post(
        reverse("account_login"), {"login": "alice", "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert "Your account is suspended" in text(response)
    assert SESSION_KEY not in client.session
    assert not is_signed_in(client)
    assert not AuditEvent.objects.filter(action="signed_in").exists()


def test_a_suspended_user_with_a_wrong_password_gets_the_ordinary_error(user: User) -> None:
    user_suspend(ctx=None, user=user, reason="Spam")
    client = Client()
    response = client.post(
        reverse("account_login"), {"login": "alice", "password": "wrong-password-1"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors
    assert "not correct" in text(response)
    assert "suspend" not in text(response).lower()
    assert SESSION_KEY not in client.session


def test_an_ended_suspension_is_lifted_at_sign_in(user: User) -> None:
    user_suspend(
        ctx=None, user=user, reason="Cooling off", until=timezone.now() + timedelta(hours=1)
    )
    User.objects.filter(pk=user.pk).update(suspended_until=timezone.now() - timedelta(minutes=1))

    client = sign_in("alice")

    assert is_signed_in(client)
    row = state_of(user)
    assert row["state"] == "active"
    assert row["is_active"]
    assert row["suspended_until"] is None
    assert AuditEvent.objects.filter(action="account.restored", subject=user).count() == 1


def test_a_running_timed_suspension_still_refuses_sign_in(user: User) -> None:
    user_suspend(
        ctx=None, user=user, reason="Cooling off", until=timezone.now() + timedelta(hours=1)
    )
    client = Client()
    response = client.post(
        reverse("account_login"), {"login": "alice", "password": PASSWORD}, follow=True
    )
    assert "Your account is suspended" in text(response)
    assert SESSION_KEY not in client.session
    assert state_of(user)["state"] == "suspended"


def test_the_command_lifts_ended_suspensions(user_factory: Callable[..., User]) -> None:
    over = user_factory(username="over")
    running = user_factory(username="running")
    forever = user_factory(username="forever")
    for u in (over, running):
        user_suspend(ctx=None, user=u, reason="Timed", until=timezone.now() + timedelta(hours=1))
    user_suspend(ctx=None, user=forever, reason="Until restored")
    User.objects.filter(pk=over.pk).update(suspended_until=timezone.now() - timedelta(seconds=1))
    mail.outbox.clear()

    call_command("lift_expired_suspensions", stdout=io.StringIO())

    assert state_of(over)["state"] == "active"
    assert state_of(over)["is_active"]
    assert state_of(running)["state"] == "suspended"
    assert state_of(forever)["state"] == "suspended"
    restored = AuditEvent.objects.get(action="account.restored")
    assert restored.subject == over
    assert restored.actor is None
    assert subjects_to("over@example.org") == ["[Account portal] Your account was restored"]
    assert len(mail.outbox) == 1

    call_command("lift_expired_suspensions", stdout=io.StringIO())

    assert AuditEvent.objects.filter(action="account.restored").count() == 1
    assert len(mail.outbox) == 1
    assert sign_in("over")


# --- Restoring ------------------------------------------------------------------------------


def test_restoring_lifts_a_suspension(support: Client, user: User) -> None:
    user_suspend(ctx=None, user=user, reason="Spam", until=timezone.now() + timedelta(days=1))
    assert support.get(reverse("admin:accounts_user_restore", args=[user.pk])).status_code == 200
    assert state_of(user)["state"] == "suspended"

    response = support.post(reverse("admin:accounts_user_restore", args=[user.pk]))

    assert response.status_code == 302
    assert response["Location"] == user_page(user)
    row = state_of(user)
    assert row["state"] == "active"
    assert row["is_active"]
    assert row["state_reason"] == ""
    assert row["suspended_until"] is None
    event = AuditEvent.objects.get(action="account.restored")
    assert event.subject == user
    assert event.actor == staff_of(support)
    assert subjects_to("alice@example.org") == ["[Account portal] Your account was restored"]
    assert sign_in("alice")


def test_restoring_cancels_a_pending_deletion(support: Client, user: User) -> None:
    account_deletion_schedule(ctx=None, user=user)
    response = support.post(reverse("admin:accounts_user_restore", args=[user.pk]))
    assert response.status_code == 302
    row = state_of(user)
    assert row["state"] == "active"
    assert row["is_active"]
    assert row["deletion_scheduled_for"] is None
    event = AuditEvent.objects.get(action="account.deletion_cancelled")
    assert event.actor == staff_of(support)


def test_restoring_an_active_account_changes_nothing(support: Client, user: User) -> None:
    response = support.post(reverse("admin:accounts_user_restore", args=[user.pk]))
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="account.restored").exists()
    assert mail.outbox == []


# --- Sessions and second factors ------------------------------------------------------------


def test_ending_every_session(support: Client, user: User) -> None:
    first = sign_in("alice")
    second = sign_in("alice")
    assert UserSession.objects.filter(user=user).count() == 2
    assert support.get(reverse("admin:accounts_user_end_sessions", args=[user.pk])).status_code == (
        200
    )
    assert is_signed_in(first)

    response = support.post(reverse("admin:accounts_user_end_sessions", args=[user.pk]))

    assert response.status_code == 302
    assert response["Location"] == user_page(user)
    assert not is_signed_in(first)
    assert not is_signed_in(second)
    assert not UserSession.objects.filter(user=user).exists()
    event = AuditEvent.objects.get(action="session.all_ended_by_staff")
    assert event.subject == user
    assert event.actor == staff_of(support)
    assert event.data == {"count": 2}
    assert state_of(user)["state"] == "active"
    assert sign_in("alice")


def give_every_factor(user: User) -> None:
    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    WebAuthnCredential.objects.create(
        user=user,
        name="Blue key",
        confirmed=True,
        credential_id=f"credential-{user.pk}".encode(),
        public_key=b"public-key",
        sign_count=0,
        aaguid="00000000-0000-0000-0000-000000000000",
    )
    backup_codes_generate(user=user)


def test_resetting_the_second_factors(support: Client, user: User) -> None:
    give_every_factor(user)
    assert support.get(reverse("admin:accounts_user_reset_mfa", args=[user.pk])).status_code == 200

    response = support.post(
        reverse("admin:accounts_user_reset_mfa", args=[user.pk]),
        {"reason": "Lost phone, identity checked on a call"},
    )

    assert response.status_code == 302
    assert response["Location"] == user_page(user)
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not WebAuthnCredential.objects.filter(user=user).exists()
    assert not BackupCodeDevice.objects.filter(user=user).exists()
    assert not BackupCode.objects.filter(device__user=user).exists()
    event = AuditEvent.objects.get(action="mfa.reset")
    assert event.subject == user
    assert event.actor == staff_of(support)
    assert event.data == {"reason": "Lost phone, identity checked on a call"}
    assert subjects_to("alice@example.org") == [
        "[Account portal] Your two-step verification was reset"
    ]


@pytest.mark.parametrize("reason", ["", "   "])
def test_resetting_the_second_factors_needs_a_reason(
    support: Client, user: User, reason: str
) -> None:
    give_every_factor(user)
    response = support.post(
        reverse("admin:accounts_user_reset_mfa", args=[user.pk]), {"reason": reason}
    )
    assert response.status_code == 400
    assert TOTPDevice.objects.filter(user=user).count() == 1
    assert WebAuthnCredential.objects.filter(user=user).count() == 1
    assert BackupCode.objects.filter(device__user=user).count() == 10
    assert not AuditEvent.objects.filter(action="mfa.reset").exists()
    assert mail.outbox == []


# --- Deleting -------------------------------------------------------------------------------


def test_scheduling_a_deletion(security: Client, user: User, settings: Any) -> None:
    settings.ACCOUNT_DELETION_GRACE_DAYS = 14
    browser = sign_in("alice")
    response = security.post(
        reverse("admin:accounts_user_schedule_deletion", args=[user.pk]),
        {"reason": "Asked by email"},
    )
    assert response.status_code == 302
    assert response["Location"] == user_page(user)
    row = state_of(user)
    assert row["state"] == "pending_deletion"
    assert not row["is_active"]
    assert row["deletion_scheduled_for"] - timezone.now() > timedelta(days=13, hours=23)
    assert row["deletion_scheduled_for"] - timezone.now() <= timedelta(days=14)
    assert not is_signed_in(browser)
    event = AuditEvent.objects.get(action="account.deletion_scheduled")
    assert event.actor == staff_of(security)
    assert event.data["reason"] == "Asked by email"
    assert len(subjects_to("alice@example.org")) == 1


def test_scheduling_a_deletion_needs_a_reason(security: Client, user: User) -> None:
    response = security.post(
        reverse("admin:accounts_user_schedule_deletion", args=[user.pk]), {"reason": " "}
    )
    assert response.status_code == 400
    assert state_of(user)["state"] == "active"
    assert not AuditEvent.objects.filter(action="account.deletion_scheduled").exists()


@pytest.mark.parametrize("typed", ["", "Alice", "alice2", "bob"])
def test_purging_needs_the_exact_username(security: Client, user: User, typed: str) -> None:
    response = security.post(
        reverse("admin:accounts_user_purge", args=[user.pk]), {"username": typed}
    )
    assert response.status_code == 400
    assert User.objects.filter(pk=user.pk).exists()
    assert EmailAddress.objects.filter(user=user).exists()
    assert not AuditEvent.objects.filter(action="account.purged").exists()


def test_purging_at_once(security: Client, user: User) -> None:
    pk = user.pk
    browser = sign_in("alice")
    give_every_factor(user)
    audit_record(ctx=None, action=Action.PROFILE_UPDATED, subject=user, actor=user)
    assert security.get(reverse("admin:accounts_user_purge", args=[pk])).status_code == 200

    response = security.post(reverse("admin:accounts_user_purge", args=[pk]), {"username": "alice"})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_changelist")
    assert not User.objects.filter(pk=pk).exists()
    assert not EmailAddress.objects.filter(email="alice@example.org").exists()
    assert not TOTPDevice.objects.filter(user_id=pk).exists()
    assert not UserSession.objects.filter(user_id=pk).exists()
    assert not is_signed_in(browser)
    name = pseudonym(pk)
    kept = AuditEvent.objects.filter(subject_label=name)
    assert kept.filter(action="profile.updated", subject__isnull=True, actor__isnull=True).exists()
    purged = AuditEvent.objects.get(action="account.purged")
    assert purged.subject_label == name
    assert purged.actor == staff_of(security)
    assert not AuditEvent.objects.filter(subject_label="alice").exists()
    assert name in text(security.get(reverse("admin:accounts_user_changelist")))


def test_the_admins_own_delete_is_not_available(security: Client, user: User) -> None:
    superuser_client = Client()
    boss = User.objects.create_user(
        username="boss",
        email="boss@example.org",
        password=PASSWORD,
        is_staff=True,
        is_superuser=True,
    )
    superuser_client.force_login(boss, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(superuser_client, boss)
    for client in (security, superuser_client):
        delete_url = reverse("admin:accounts_user_delete", args=[user.pk])
        assert client.get(delete_url).status_code == 403
        assert client.post(delete_url, {"post": "yes"}).status_code == 403
        listing = client.get(LIST)
        choices = [c[0] for c in listing.context_data["action_form"].fields["action"].choices]
        assert "delete_selected" not in choices
        assert "suspend_selected" in choices
        page = client.get(user_page(user))
        assert page.context_data["has_delete_permission"] is False
        assert 'class="deletelink"' not in page.content.decode()
        client.post(
            LIST, {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"}
        )
    assert User.objects.filter(pk=user.pk).exists()


# --- The stock change form ------------------------------------------------------------------


def change_form_data(client: Client, user: User, **changes: Any) -> dict[str, Any]:
    """What the admin's change form of ``user`` posts back unchanged, plus ``changes``."""
    form = client.get(user_page(user)).context_data["adminform"].form
    data: dict[str, Any] = {}
    for name in form.fields:
        value = form.initial.get(name)
        if value is None or name == "password":
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [getattr(v, "pk", v) for v in value]
        else:
            data[name] = value
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = value
    data["_save"] = "Save"
    return data


@pytest.mark.parametrize("group", ["Support", "Security admins"])
def test_viewers_cannot_edit_a_user(
    user_factory: Callable[..., User], user: User, group: str
) -> None:
    client = staff_in(user_factory, group)
    response = client.post(
        user_page(user),
        {"username": "alice", "email": "mallory@example.net", "is_staff": "on", "_save": "Save"},
    )
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.email == "alice@example.org"
    assert not user.is_staff


@pytest.fixture
def superuser_client(user_factory: Callable[..., User]) -> Client:
    boss = user_factory(username="boss", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(boss, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, boss)
    return client


def test_a_superuser_granting_privileges_is_audited(superuser_client: Client, user: User) -> None:
    response = superuser_client.post(
        user_page(user), change_form_data(superuser_client, user, is_staff="on", is_superuser="on")
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.is_staff
    assert user.is_superuser
    event = AuditEvent.objects.get(subject=user, action="account.updated_by_staff")
    assert set(event.data["fields"]) == {"is_staff", "is_superuser"}
    assert event.data["before"] == {"is_staff": "False", "is_superuser": "False"}


def test_group_changes_in_the_admin_are_audited(superuser_client: Client, user: User) -> None:
    support_group = Group.objects.get(name="Support")
    data = change_form_data(superuser_client, user, is_staff="on")
    data["groups"] = [str(support_group.pk)]
    assert superuser_client.post(user_page(user), data).status_code == 302
    event = AuditEvent.objects.get(subject=user, action="account.updated_by_staff")
    assert event.data["groups_before"] == []
    assert event.data["groups_after"] == ["Support"]


@pytest.mark.parametrize(
    "changes", [{"email": "new@example.org"}, {"phone": "+33612345678"}], ids=["email", "phone"]
)
def test_identity_cannot_be_changed_in_the_admin(
    superuser_client: Client, user: User, changes: dict[str, str]
) -> None:
    """Email and phone change only through the owner's proven flows."""
    superuser_client.post(user_page(user), change_form_data(superuser_client, user, **changes))
    user.refresh_from_db()
    assert user.email == "alice@example.org"
    assert user.phone == ""
    assert EmailAddress.objects.get(user=user, primary=True).email == "alice@example.org"


def test_the_admin_has_no_password_page(superuser_client: Client, user: User) -> None:
    browser = sign_in("alice")
    response = superuser_client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {
            "password1": "An0ther-long-pass!",
            "password2": "An0ther-long-pass!",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert is_signed_in(browser)
    page = superuser_client.get(user_page(user)).content.decode()
    assert "/password/" not in page


def test_restoring_in_bulk(support: Client, user_factory: Callable[..., User]) -> None:
    alice = user_factory(username="alice")
    bob = user_factory(username="bob")
    carol = user_factory(username="carol")
    user_suspend(ctx=None, user=alice, reason="Spam")
    account_deletion_schedule(ctx=None, user=bob)
    mail.outbox.clear()

    response = support.post(
        LIST,
        {
            "action": "restore_selected",
            "_selected_action": [alice.pk, bob.pk, carol.pk],
            "index": "0",
        },
    )

    assert response.status_code == 302
    assert {state_of(u)["state"] for u in (alice, bob, carol)} == {"active"}
    assert AuditEvent.objects.get(action="account.restored").subject == alice
    assert AuditEvent.objects.get(action="account.deletion_cancelled").subject == bob
    assert not AuditEvent.objects.filter(subject=carol).exists()
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.org", "bob@example.org"]
