from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialToken
from allauth.usersessions.models import UserSession
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import formats, timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from PIL import Image

from accounts.actor import Actor
from accounts.flows import deletion as deletion_flows
from accounts.flows.errors import ImpersonationRefused, ReauthenticationRequired
from accounts.images import process_avatar
from accounts.models import AuditEvent, BackupCode, BackupCodeDevice, User
from accounts.policy import PolicyDenied
from accounts.services.deletion import account_deletion_schedule
from accounts.services.mfa import backup_codes_generate
from accounts.services.profile import avatar_set
from tests.conftest import PASSWORD, reauthenticate

pytestmark = pytest.mark.django_db

URL = "/settings/delete/"
PENDING = "/settings/delete/pending/"
GRACE = timedelta(days=30)


# --- Helpers ----------------------------------------------------------------------------


def sign_in(login: str = "alice", password: str = PASSWORD) -> Client:
    client = Client()
    response = client.post(reverse("account_login"), {"login": login, "password": password})
    assert response.status_code == 302, response.content[:500]
    return client


def is_signed_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def delete(client: Client, confirmation: str = "alice") -> Any:
    return client.post(URL, {"confirmation": confirmation})


def subjects_to(address: str) -> list[str]:
    return [str(m.subject) for m in mail.outbox if address in m.to]


def text(response: Any) -> str:
    return unescape(response.content.decode())


def totp_code(device: TOTPDevice) -> str:
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return str(totp.token()).zfill(device.digits)


def assert_unchanged(user: User) -> None:
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    assert user.is_active
    assert user.deletion_scheduled_for is None
    assert not AuditEvent.objects.filter(action="account.deletion_scheduled").exists()
    assert not subjects_to(user.email)


def schedule(user: User) -> User:
    """Scheduled as the page does it (without a request)."""
    return account_deletion_schedule(ctx=Actor(user=user), user=user)


def shown_date(when: datetime | None) -> str:
    assert when is not None
    return formats.date_format(timezone.localtime(when), "DATE_FORMAT")


def png() -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


# --- The page and scheduling --------------------------------------------------------------


def test_url() -> None:
    assert reverse("delete_account") == URL
    assert reverse("deletion_pending") == PENDING


def test_page(auth_client: Client) -> None:
    response = auth_client.get(URL)
    assert response.status_code == 200
    html = text(response)
    assert html.count("<h1>") == 1
    assert "after 30 days" in html
    assert 'name="confirmation"' in html


def test_the_whole_path(user: User) -> None:
    first = sign_in()
    second = sign_in()
    assert UserSession.objects.filter(user=user).count() == 2
    keys = list(UserSession.objects.filter(user=user).values_list("session_key", flat=True))
    assert first.get(URL).status_code == 200
    reauthenticate(first)
    mail.outbox.clear()

    before = timezone.now()
    response = delete(first, "Alice")  # the username, whatever the case
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    signed_out = text(first.get(reverse("account_login")))

    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION
    assert user.is_active is False
    assert user.deletion_scheduled_for is not None
    assert before + GRACE <= user.deletion_scheduled_for <= timezone.now() + GRACE
    # Every session is over, this one included.
    assert not UserSession.objects.filter(user=user).exists()
    assert not Session.objects.filter(session_key__in=keys).exists()
    assert not is_signed_in(first)
    assert not is_signed_in(second)
    for client in (first, second):
        page = client.get(reverse("settings_home"))
        assert page.status_code == 302
        assert page["Location"].startswith(reverse("account_login"))
    event = AuditEvent.objects.get(action="account.deletion_scheduled")
    assert event.subject == user
    assert event.actor == user
    assert event.data["scheduled_for"] == user.deletion_scheduled_for.isoformat()
    assert subjects_to(user.email) == ["[Account portal] Your account is scheduled for deletion"]
    date = timezone.localtime(user.deletion_scheduled_for).date().isoformat()
    assert f"Your account will be deleted on {date}." in signed_out


def test_a_wrong_confirmation_changes_nothing(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    for wrong in ("", "bob", "alice2"):
        response = delete(auth_client, wrong)
        assert response.status_code == 400
    assert "This is not your username" in text(delete(auth_client, "bob"))
    assert_unchanged(user)
    assert is_signed_in(auth_client)


def test_scheduling_needs_a_recent_reauthentication(auth_client: Client, user: User) -> None:
    response = delete(auth_client)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert_unchanged(user)
    assert is_signed_in(auth_client)


def test_csrf_is_enforced(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session["account_authentication_methods_user"] = str(user.pk)
    session["account_authentication_methods"] = [
        {"method": "password", "at": time.time(), "reauthenticated": True}
    ]
    session.save()
    assert delete(client).status_code == 403
    assert_unchanged(user)


def test_csrf_is_enforced_on_cancel(user: User) -> None:
    schedule(user)
    client = Client(enforce_csrf_checks=True)
    client.post(reverse("account_login"), {"login": "alice", "password": PASSWORD})
    assert client.post(reverse("deletion_cancel")).status_code == 403
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION


@pytest.mark.parametrize(("mode", "status"), [("off", 404), ("read_only", 403)])
def test_policy_refuses(
    auth_client: Client, user: User, policy: Any, mode: str, status: int
) -> None:
    reauthenticate(auth_client)
    policy(delete_account=mode)
    assert delete(auth_client).status_code == status
    assert_unchanged(user)
    assert is_signed_in(auth_client)


def test_policy_off_hides_the_page(auth_client: Client, policy: Any) -> None:
    policy(delete_account="off")
    assert auth_client.get(URL).status_code == 404


def test_policy_read_only_shows_the_page_without_the_form(auth_client: Client, policy: Any) -> None:
    policy(delete_account="read_only")
    response = auth_client.get(URL)
    assert response.status_code == 200
    assert 'name="confirmation"' not in response.content.decode()
    assert "Delete my account" not in text(response)


# --- The grace period ---------------------------------------------------------------------


def test_signing_in_during_the_grace_period_shows_only_the_pending_page(user: User) -> None:
    scheduled = schedule(user)
    client = sign_in()
    assert is_signed_in(client)
    landing = client.get(reverse("settings_home"))
    assert landing.status_code == 302
    assert landing["Location"] == PENDING
    page = client.get(PENDING)
    assert page.status_code == 200
    assert shown_date(scheduled.deletion_scheduled_for) in text(page)
    assert "Cancel the deletion" in text(page)
    for name in (
        "profile",
        "email",
        "phone",
        "sessions",
        "export",
        "delete_account",
        "two_factor",
        "security_activity",
        "tokens",
        "connected_apps",
        "socialaccount_connections",
        "account_change_password",
    ):
        response = client.get(reverse(name))
        assert response.status_code == 302, name
        assert response["Location"] == PENDING, name
    # Writes too: nothing is exported, nothing scheduled again.
    reauthenticate(client)
    assert client.post(reverse("export"))["Location"] == PENDING
    assert not AuditEvent.objects.filter(action="account.data_exported").exists()


def test_signing_out_from_the_pending_page(user: User) -> None:
    schedule(user)
    client = sign_in()
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert not is_signed_in(client)
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION


def test_the_second_step_is_asked_first(user: User) -> None:
    device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    scheduled = schedule(user)
    client = Client()
    response = client.post(reverse("account_login"), {"login": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("two_factor_verify")
    # Not half signed in: nothing of the account, not even the pending page.
    assert not is_signed_in(client)
    for url in (reverse("settings_home"), PENDING):
        refused = client.get(url)
        assert refused.status_code == 302
        assert refused["Location"].startswith(reverse("account_login"))
    assert client.post(reverse("deletion_cancel")).status_code == 302
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION

    done = client.post(reverse("two_factor_verify"), {"method": "totp", "code": totp_code(device)})
    assert done.status_code == 302
    assert is_signed_in(client)
    assert client.get(reverse("settings_home"))["Location"] == PENDING
    assert shown_date(scheduled.deletion_scheduled_for) in text(client.get(PENDING))


def test_cancelling(user: User) -> None:
    schedule(user)
    client = sign_in()
    mail.outbox.clear()
    response = client.post(reverse("deletion_cancel"))
    assert response.status_code == 302
    assert response["Location"] == reverse("settings_home")
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    assert user.is_active
    assert user.deletion_scheduled_for is None
    event = AuditEvent.objects.get(action="account.deletion_cancelled")
    assert event.subject == user
    assert event.actor == user
    assert subjects_to(user.email) == ["[Account portal] Your account will not be deleted"]
    home = client.get(reverse("settings_home"))
    assert home.status_code == 200
    assert "Your account will not be deleted" in text(home)
    assert client.get(reverse("profile")).status_code == 200
    # The pending page now sends home; cancelling again does nothing.
    assert client.get(PENDING)["Location"] == reverse("settings_home")
    assert client.post(reverse("deletion_cancel")).status_code == 302
    assert AuditEvent.objects.filter(action="account.deletion_cancelled").count() == 1


def test_cancel_is_post_only(user: User) -> None:
    schedule(user)
    client = sign_in()
    assert client.get(reverse("deletion_cancel")).status_code == 405
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION


def test_a_wrong_password_during_the_grace_period_is_refused(user: User) -> None:
    schedule(user)
    client = Client()
    response = client.post(reverse("account_login"), {"login": "alice", "password": "wrong-pw-x"})
    assert response.status_code == 200
    assert not is_signed_in(client)


def test_a_suspended_user_does_not_get_in(user_factory: Callable[..., User]) -> None:
    suspended = user_factory(username="sue", state="suspended", is_active=False)
    client = Client()
    response = client.post(reverse("account_login"), {"login": "sue", "password": PASSWORD})
    assert not is_signed_in(client)
    # The right password is told the account can't be used; a wrong one is not.
    assert response.status_code == 302
    assert response["Location"] == reverse("account_inactive")
    wrong = client.post(reverse("account_login"), {"login": "sue", "password": "not-the-password"})
    assert wrong.status_code == 200
    assert "are not correct" in text(wrong)
    assert not is_signed_in(client)
    home = client.get(reverse("settings_home"))
    assert home.status_code == 302
    assert home["Location"].startswith(reverse("account_login"))
    assert client.get(PENDING)["Location"].startswith(reverse("account_login"))
    assert not UserSession.objects.filter(user=suspended).exists()
    assert not AuditEvent.objects.filter(action="signed_in").exists()


def test_a_suspended_users_live_session_turns_anonymous(user: User) -> None:
    client = sign_in()
    User.objects.filter(pk=user.pk).update(state="suspended", is_active=False)
    home = client.get(reverse("settings_home"))
    assert home.status_code == 302
    assert home["Location"].startswith(reverse("account_login"))
    assert client.get(PENDING)["Location"].startswith(reverse("account_login"))


# --- Purge ------------------------------------------------------------------------------------


@pytest.fixture
def doomed(user: User) -> dict[str, Any]:
    """A user with everything, scheduled for deletion and past the grace period."""
    avatar_set(ctx=None, user=user, image=process_avatar(png()))
    user.refresh_from_db()
    avatar_path = Path(user.avatar.path)
    assert avatar_path.exists()
    User.objects.filter(pk=user.pk).update(phone="+33612345678", phone_verified=True)
    account = SocialAccount.objects.create(
        user=user, provider="dummy", uid="4242", extra_data={"id": 4242}
    )
    token = SocialToken.objects.create(account=account, token="tok-secret")
    device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    backup_codes_generate(user=user, ctx=None)
    backup = BackupCodeDevice.objects.get(user=user)
    scheduled = schedule(user)
    store = SessionStore()
    store.create()
    UserSession.objects.create(
        user=user, session_key=store.session_key, ip="203.0.113.7", user_agent="Firefox"
    )
    User.objects.filter(pk=user.pk).update(
        deletion_scheduled_for=timezone.now() - timedelta(minutes=1)
    )
    return {
        "pk": user.pk,
        "avatar": avatar_path,
        "account": account.pk,
        "token": token.pk,
        "device": device.pk,
        "backup": backup.pk,
        "session_key": store.session_key,
        "events": list(AuditEvent.objects.filter(subject=scheduled).values_list("pk", flat=True)),
    }


def purge(capture: Any) -> str:
    out = io.StringIO()
    with capture(execute=True):
        call_command("purge_deleted_accounts", stdout=out)
    return out.getvalue()


def test_purge_after_the_grace_period(
    doomed: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    pk = doomed["pk"]
    assert len(doomed["events"]) >= 3
    output = purge(django_capture_on_commit_callbacks)
    assert "Purged 1 account(s)." in output

    assert not User.objects.filter(pk=pk).exists()
    assert not EmailAddress.objects.filter(user_id=pk).exists()
    assert not EmailAddress.objects.filter(email="alice@example.org").exists()
    assert not SocialAccount.objects.filter(pk=doomed["account"]).exists()
    assert not SocialToken.objects.filter(pk=doomed["token"]).exists()
    assert not TOTPDevice.objects.filter(pk=doomed["device"]).exists()
    assert not BackupCodeDevice.objects.filter(pk=doomed["backup"]).exists()
    assert not BackupCode.objects.filter(device_id=doomed["backup"]).exists()
    assert not UserSession.objects.filter(user_id=pk).exists()
    assert not Session.objects.filter(session_key=doomed["session_key"]).exists()
    assert not doomed["avatar"].exists()

    kept = AuditEvent.objects.filter(pk__in=doomed["events"])
    assert kept.count() == len(doomed["events"])
    labels = set(kept.values_list("subject_label", flat=True))
    assert len(labels) == 1
    [label] = labels
    assert label.startswith("deleted-user-")
    assert "alice" not in label
    assert not kept.filter(subject__isnull=False).exists()
    assert not kept.filter(actor__isnull=False).exists()
    purged = AuditEvent.objects.get(action="account.purged")
    assert purged.subject is None
    assert purged.subject_label == label
    assert not AuditEvent.objects.filter(subject_label="alice").exists()


def test_purge_is_idempotent(
    doomed: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    assert "Purged 1 account(s)." in purge(django_capture_on_commit_callbacks)
    again = purge(django_capture_on_commit_callbacks)
    assert "Purged 0 account(s)." in again
    assert AuditEvent.objects.filter(action="account.purged").count() == 1


def test_purge_leaves_accounts_in_their_grace_period_and_active_ones(
    user_factory: Callable[..., User], django_capture_on_commit_callbacks: Any
) -> None:
    waiting = schedule(user_factory(username="waiting"))
    User.objects.filter(pk=waiting.pk).update(
        deletion_scheduled_for=timezone.now() + timedelta(minutes=5)
    )
    active = user_factory(username="active")
    # Even an active account that still carries an old date is never purged.
    odd = user_factory(username="restored")
    User.objects.filter(pk=odd.pk).update(deletion_scheduled_for=timezone.now() - timedelta(days=1))
    suspended = user_factory(username="suspended", state="suspended", is_active=False)
    User.objects.filter(pk=suspended.pk).update(
        deletion_scheduled_for=timezone.now() - timedelta(days=1)
    )
    output = purge(django_capture_on_commit_callbacks)
    assert "Purged 0 account(s)." in output
    assert User.objects.filter(pk__in=[waiting.pk, active.pk, odd.pk, suspended.pk]).count() == 4
    assert not AuditEvent.objects.filter(action="account.purged").exists()


def test_cancelled_in_time_is_not_purged(
    user: User, django_capture_on_commit_callbacks: Any
) -> None:
    schedule(user)
    client = sign_in()
    assert client.post(reverse("deletion_cancel")).status_code == 302
    purge(django_capture_on_commit_callbacks)
    assert User.objects.filter(pk=user.pk, state="active").exists()


def test_purge_leaves_no_identifier_in_the_audit_events(
    user: User, django_capture_on_commit_callbacks: Any
) -> None:
    from accounts.services.audit import Action, audit_record
    from accounts.services.profile import username_change

    username_change(ctx=None, user=user, username="alice-renamed")
    # What an email change request records (the address asked for).
    audit_record(
        ctx=None,
        action=Action.EMAIL_CHANGE_REQUESTED,
        subject=user,
        data={"new_email": "alice.next@example.org"},
    )
    schedule(user)
    User.objects.filter(pk=user.pk).update(deletion_scheduled_for=timezone.now())
    purge(django_capture_on_commit_callbacks)
    dump = json.dumps(
        list(AuditEvent.objects.values("subject_label", "data")), cls=_Encoder
    ).lower()
    for identifier in ("alice-renamed", "alice.next@example.org", "alice@example.org", '"alice"'):
        assert identifier not in dump, identifier


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        return str(o)


# --- The flows, called as the Account API would call them ------------------------


def api(user: User, **extra: Any) -> Actor:
    return Actor(**{"user": user, "surface": "api", "reauthenticated_at": time.time(), **extra})


SCHEDULED = "[Account portal] Your account is scheduled for deletion"


def test_the_schedule_flow_tells_the_user_once_committed(user: User) -> None:
    mail.outbox.clear()
    with transaction.atomic():
        scheduled = deletion_flows.deletion_schedule(ctx=api(user))
        # Inside the transaction nothing has left yet.
        assert not mail.outbox
    assert subjects_to(user.email) == [SCHEDULED]
    assert scheduled.state == User.State.PENDING_DELETION
    assert not scheduled.is_active
    event = AuditEvent.objects.get(action="account.deletion_scheduled")
    assert (event.subject, event.actor) == (user, user)


def test_a_rolled_back_schedule_tells_no_one(user: User) -> None:
    mail.outbox.clear()

    def schedule_then_fail() -> None:
        with transaction.atomic():
            deletion_flows.deletion_schedule(ctx=api(user))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        schedule_then_fail()
    assert_unchanged(user)


@pytest.mark.parametrize(
    ("ctx_extra", "error"),
    [
        ({"reauthenticated_at": None}, ReauthenticationRequired),
        ({"impersonator_id": 999}, ImpersonationRefused),
    ],
    ids=["not-reauthenticated", "impersonating"],
)
def test_the_schedule_flow_refuses(
    user: User, ctx_extra: dict[str, Any], error: type[Exception]
) -> None:
    mail.outbox.clear()
    with pytest.raises(error):
        deletion_flows.deletion_schedule(ctx=api(user, **ctx_extra))
    assert_unchanged(user)


def test_the_schedule_flow_follows_the_policy(user: User, policy: Any) -> None:
    policy(delete_account="read_only")
    mail.outbox.clear()
    with pytest.raises(PolicyDenied):
        deletion_flows.deletion_schedule(ctx=api(user))
    assert_unchanged(user)


def test_the_flows_refuse_the_wrong_state(user: User) -> None:
    with pytest.raises(deletion_flows.DeletionRefused):
        deletion_flows.deletion_cancel(ctx=api(user))
    deletion_flows.deletion_schedule(ctx=api(user))
    with pytest.raises(deletion_flows.DeletionRefused):
        deletion_flows.deletion_schedule(ctx=api(user))
    User.objects.filter(pk=user.pk).update(deletion_scheduled_for=timezone.now())
    with pytest.raises(deletion_flows.DeletionRefused):
        deletion_flows.deletion_cancel(ctx=api(user))
    assert User.objects.get(pk=user.pk).state == User.State.PENDING_DELETION


def test_the_cancel_flow_restores_and_tells_the_user(user: User) -> None:
    schedule(user)
    mail.outbox.clear()
    restored = deletion_flows.deletion_cancel(ctx=api(user))
    assert restored.state == User.State.ACTIVE
    assert restored.is_active
    assert subjects_to(user.email) == ["[Account portal] Your account will not be deleted"]
    assert AuditEvent.objects.get(action="account.deletion_cancelled").actor == user
