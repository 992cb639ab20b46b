"""Who may do what in the back-office: the roles of migration 0008 against every
staff action, and the rule that staff never act on themselves and only superusers
act on other staff."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AccountPolicy, AuditEvent, User
from accounts.policy import FIELDS
from accounts.services.audit import Action, audit_record
from accounts.services.moderation import user_suspend
from tests.conftest import verify_second_factor

pytestmark = pytest.mark.django_db

SUPPORT, SECURITY, OPERATORS, PLAIN, SUPERUSER = (
    "Support",
    "Security admins",
    "Operators",
    "staff without a group",
    "superuser",
)
ROLES = [SUPPORT, SECURITY, OPERATORS, PLAIN, SUPERUSER]

ACTIONS = [
    "view_user_list",
    "view_user_page",
    "suspend",
    "restore",
    "end_sessions",
    "reset_mfa",
    "schedule_deletion",
    "purge",
    "impersonate",
    "view_audit_log",
    "export_audit_csv",
    "edit_policy",
]
_SUPPORT_ACTIONS = {
    "view_user_list",
    "view_user_page",
    "suspend",
    "restore",
    "end_sessions",
    "reset_mfa",
}
ALLOWED: dict[str, set[str]] = {
    SUPPORT: _SUPPORT_ACTIONS,
    SECURITY: _SUPPORT_ACTIONS
    | {"schedule_deletion", "purge", "impersonate", "view_audit_log", "export_audit_csv"},
    OPERATORS: {"edit_policy"},
    PLAIN: set(),
    SUPERUSER: set(ACTIONS),
}


# --- Helpers ----------------------------------------------------------------------------


def signed_in_staff(member: User) -> Client:
    client = Client()
    client.force_login(member, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, member)
    return client


def make_staff(user_factory: Callable[..., User], role: str, username: str = "") -> User:
    username = username or "staff_" + role.split()[0].lower()
    if role == SUPERUSER:
        return user_factory(username=username, is_staff=True, is_superuser=True)
    member = user_factory(username=username, is_staff=True)
    if role != PLAIN:
        member.groups.add(Group.objects.get(name=role))
    return member


def live_client(user: User) -> Client:
    """A browser of ``user`` whose session is known to allauth's session list."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(reverse("settings_home")).status_code == 200
    assert UserSession.objects.filter(session_key=client.session.session_key).exists()
    return client


def is_signed_in(client: Client) -> bool:
    return client.get(reverse("settings_home")).status_code == 200


def policy_post(**changes: str) -> dict[str, str]:
    data = dict.fromkeys(FIELDS, "edit")
    data.update(changes)
    data["enabled"] = "on"
    data["_save"] = "Save"
    return data


def snapshot(target: User) -> dict[str, Any]:
    """Everything a staff action may change, to compare before and after a refusal."""
    policy = AccountPolicy.objects.get(pk=1)
    return {
        "user": list(
            User.objects.filter(pk=target.pk).values(
                "state", "is_active", "state_reason", "suspended_until", "deletion_scheduled_for"
            )
        ),
        "sessions": UserSession.objects.filter(user=target).count(),
        "totp": TOTPDevice.objects.filter(user=target).count(),
        "audit": list(AuditEvent.objects.values_list("pk", flat=True).order_by("pk")),
        "mail": len(mail.outbox),
        "policy": {name: getattr(policy, name) for name in ("enabled", *FIELDS)},
    }


@dataclass
class Scene:
    staff: User
    client: Client
    target: User
    target_client: Client


@pytest.fixture
def scene(user_factory: Callable[..., User], request: Any) -> Callable[[str], Scene]:
    def make(role: str) -> Scene:
        AccountPolicy.objects.get_or_create(pk=1)
        staff = make_staff(user_factory, role)
        target = user_factory(username="target", display_name="Target Person")
        TOTPDevice.objects.create(user=target, name="Phone", confirmed=True)
        target_client = live_client(target)
        audit_record(ctx=None, action=Action.PROFILE_UPDATED, subject=target, actor=target)
        return Scene(staff, signed_in_staff(staff), target, target_client)

    return make


def perform(action: str, s: Scene) -> Any:
    pk = s.target.pk
    c = s.client
    if action == "view_user_list":
        return c.get(reverse("admin:accounts_user_changelist"))
    if action == "view_user_page":
        return c.get(reverse("admin:accounts_user_change", args=[pk]))
    if action == "suspend":
        return c.post(reverse("admin:accounts_user_suspend", args=[pk]), {"reason": "Spam"})
    if action == "restore":
        return c.post(reverse("admin:accounts_user_restore", args=[pk]))
    if action == "end_sessions":
        return c.post(reverse("admin:accounts_user_end_sessions", args=[pk]))
    if action == "reset_mfa":
        return c.post(reverse("admin:accounts_user_reset_mfa", args=[pk]), {"reason": "Lost"})
    if action == "schedule_deletion":
        return c.post(
            reverse("admin:accounts_user_schedule_deletion", args=[pk]), {"reason": "Asked"}
        )
    if action == "purge":
        return c.post(reverse("admin:accounts_user_purge", args=[pk]), {"username": "target"})
    if action == "impersonate":
        return c.post(
            reverse("admin:accounts_user_impersonate", args=[pk]),
            {"user_pk": pk, "reason": "Ticket 4242: cannot find the export"},
        )
    if action == "view_audit_log":
        return c.get(reverse("admin:accounts_auditevent_changelist"))
    if action == "export_audit_csv":
        return c.get(reverse("admin:accounts_auditevent_export"))
    if action == "edit_policy":
        return c.post(
            reverse("admin:accounts_accountpolicy_change", args=[1]),
            policy_post(email="read_only"),
        )
    raise AssertionError(action)


def check_done(action: str, s: Scene, response: Any) -> None:
    """The effect of an allowed action."""
    user_page = reverse("admin:accounts_user_change", args=[s.target.pk])
    target = User.objects.filter(pk=s.target.pk).first()
    if action in {"view_user_list", "view_audit_log"}:
        assert response.status_code == 200
        assert "target" in response.content.decode()
    elif action == "view_user_page":
        assert response.status_code == 200
        assert response.context_data["original"] == s.target
    elif action == "suspend":
        assert (response.status_code, response["Location"]) == (302, user_page)
        assert target is not None
        assert target.state == User.State.SUSPENDED
        assert not target.is_active
        assert not is_signed_in(s.target_client)
        assert AuditEvent.objects.filter(action="account.suspended", actor=s.staff).exists()
    elif action == "restore":
        assert (response.status_code, response["Location"]) == (302, user_page)
        assert target is not None
        assert target.state == User.State.ACTIVE
        assert target.is_active
        assert AuditEvent.objects.filter(action="account.restored", actor=s.staff).exists()
    elif action == "end_sessions":
        assert (response.status_code, response["Location"]) == (302, user_page)
        assert not UserSession.objects.filter(user=s.target).exists()
        assert not is_signed_in(s.target_client)
        assert AuditEvent.objects.filter(
            action="session.all_ended_by_staff", actor=s.staff
        ).exists()
    elif action == "reset_mfa":
        assert (response.status_code, response["Location"]) == (302, user_page)
        assert not TOTPDevice.objects.filter(user=s.target).exists()
        assert AuditEvent.objects.filter(action="mfa.reset", actor=s.staff).exists()
    elif action == "schedule_deletion":
        assert (response.status_code, response["Location"]) == (302, user_page)
        assert target is not None
        assert target.state == User.State.PENDING_DELETION
        assert target.deletion_scheduled_for is not None
    elif action == "purge":
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:accounts_user_changelist")
        assert target is None
        assert AuditEvent.objects.filter(action="account.purged", actor=s.staff).exists()
    elif action == "impersonate":
        assert (response.status_code, response["Location"]) == (302, reverse("settings_home"))
        assert s.client.session[SESSION_KEY] == str(s.target.pk)
        assert AuditEvent.objects.filter(
            action="impersonation.started", actor=s.staff, subject=s.target
        ).exists()
    elif action == "export_audit_csv":
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        body = b"".join(response.streaming_content).decode()
        assert body.startswith("time,action,subject")
        assert "profile.updated" in body
    elif action == "edit_policy":
        assert response.status_code == 302
        assert AccountPolicy.objects.get(pk=1).email == "read_only"
        assert AuditEvent.objects.filter(action="policy.changed", actor=s.staff).exists()
    else:  # pragma: no cover
        raise AssertionError(action)


# --- The matrix ---------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(scene: Callable[[str], Scene], role: str, action: str) -> None:
    s = scene(role)
    if action == "restore":
        user_suspend(ctx=None, user=s.target, reason="Earlier")
        s.target.refresh_from_db()
    before = snapshot(s.target)

    response = perform(action, s)

    if action in ALLOWED[role]:
        check_done(action, s, response)
        return
    # The admin refuses with a 403 (its own PermissionDenied for a model it may not
    # view or change, and ours for the extra pages); nothing moved.
    assert response.status_code == 403, (role, action, response.status_code)
    assert snapshot(s.target) == before
    assert s.client.session[SESSION_KEY] == str(s.staff.pk)
    if action != "restore":
        assert is_signed_in(s.target_client)


def test_the_roles_hold_exactly_these_permissions() -> None:
    def codenames(name: str) -> set[str]:
        return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))

    support = {"view_user", "suspend_user", "end_user_sessions", "reset_user_mfa"}
    assert codenames(SUPPORT) == support
    assert codenames(SECURITY) == support | {
        "schedule_user_deletion",
        "purge_user",
        "impersonate_user",
        "view_auditevent",
        "view_client",  # the OAuth apps, read-only
    }
    assert codenames(OPERATORS) == {
        "view_accountpolicy",
        "change_accountpolicy",
        # They register OAuth apps (tests/oauth/test_admin_apps.py).
        "add_client",
        "change_client",
        "delete_client",
        "view_client",
    }


@pytest.mark.parametrize("role", ROLES)
def test_the_user_page_offers_only_the_allowed_actions(
    scene: Callable[[str], Scene], role: str
) -> None:
    s = scene(role)
    response = s.client.get(reverse("admin:accounts_user_change", args=[s.target.pk]))
    if "view_user_page" not in ALLOWED[role]:
        assert response.status_code == 403
        return
    html = response.content.decode()
    links = {
        "suspend": reverse("admin:accounts_user_suspend", args=[s.target.pk]),
        "end_sessions": reverse("admin:accounts_user_end_sessions", args=[s.target.pk]),
        "reset_mfa": reverse("admin:accounts_user_reset_mfa", args=[s.target.pk]),
        "schedule_deletion": reverse("admin:accounts_user_schedule_deletion", args=[s.target.pk]),
        "purge": reverse("admin:accounts_user_purge", args=[s.target.pk]),
        "impersonate": reverse("admin:accounts_user_impersonate", args=[s.target.pk]),
    }
    for action, url in links.items():
        assert (f'href="{url}"' in html) == (action in ALLOWED[role]), action


# --- Oneself and other staff -------------------------------------------------------------


SELF_ACTIONS = {
    "suspend": ("admin:accounts_user_suspend", {"reason": "Testing"}),
    "restore": ("admin:accounts_user_restore", {}),
    "end_sessions": ("admin:accounts_user_end_sessions", {}),
    "reset_mfa": ("admin:accounts_user_reset_mfa", {"reason": "Testing"}),
    "schedule_deletion": ("admin:accounts_user_schedule_deletion", {"reason": "Testing"}),
    "purge": ("admin:accounts_user_purge", None),
}


@pytest.mark.parametrize("action", list(SELF_ACTIONS))
@pytest.mark.parametrize("role", [SECURITY, SUPERUSER])
def test_staff_cannot_act_on_themselves(
    user_factory: Callable[..., User], role: str, action: str
) -> None:
    AccountPolicy.objects.get_or_create(pk=1)
    me = make_staff(user_factory, role)
    client = signed_in_staff(me)
    assert client.get(reverse("admin:index")).status_code == 200  # its session is listed
    name, data = SELF_ACTIONS[action]
    before = snapshot(me)

    response = client.post(reverse(name, args=[me.pk]), data or {"username": me.username})

    assert response.status_code == 403
    assert snapshot(me) == before
    me.refresh_from_db()
    assert me.state == User.State.ACTIVE
    assert me.is_active
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.parametrize("action", list(SELF_ACTIONS))
@pytest.mark.parametrize("other_role", [SUPPORT, PLAIN, SUPERUSER])
def test_a_non_superuser_cannot_act_on_other_staff(
    user_factory: Callable[..., User], other_role: str, action: str
) -> None:
    AccountPolicy.objects.get_or_create(pk=1)
    admin_ = make_staff(user_factory, SECURITY)
    other = make_staff(user_factory, other_role, username="colleague")
    TOTPDevice.objects.create(user=other, name="Phone", confirmed=True)
    if action == "restore":
        user_suspend(ctx=None, user=other, reason="Earlier")
    client = signed_in_staff(admin_)
    name, data = SELF_ACTIONS[action]
    before = snapshot(other)

    response = client.post(reverse(name, args=[other.pk]), data or {"username": "colleague"})

    assert response.status_code == 403
    assert snapshot(other) == before


@pytest.mark.parametrize("action", list(SELF_ACTIONS))
@pytest.mark.parametrize("other_role", [SUPPORT, SUPERUSER])
def test_a_superuser_can_act_on_other_staff(
    user_factory: Callable[..., User], other_role: str, action: str
) -> None:
    AccountPolicy.objects.get_or_create(pk=1)
    boss = make_staff(user_factory, SUPERUSER, username="boss")
    other = make_staff(user_factory, other_role, username="colleague")
    TOTPDevice.objects.create(user=other, name="Phone", confirmed=True)
    other_client = live_client(other)
    if action == "restore":
        user_suspend(ctx=None, user=other, reason="Earlier")
    client = signed_in_staff(boss)
    name, data = SELF_ACTIONS[action]

    response = client.post(reverse(name, args=[other.pk]), data or {"username": "colleague"})

    assert response.status_code == 302
    found = User.objects.filter(pk=other.pk).first()
    if action == "suspend":
        assert found is not None
        assert found.state == User.State.SUSPENDED
    elif action == "restore":
        assert found is not None
        assert found.state == User.State.ACTIVE
    elif action == "end_sessions":
        assert not is_signed_in(other_client)
    elif action == "reset_mfa":
        assert not TOTPDevice.objects.filter(user=other).exists()
    elif action == "schedule_deletion":
        assert found is not None
        assert found.state == User.State.PENDING_DELETION
    else:
        assert found is None


def test_impersonating_staff_is_refused_even_to_a_superuser(
    user_factory: Callable[..., User],
) -> None:
    boss = make_staff(user_factory, SUPERUSER, username="boss")
    other = make_staff(user_factory, SUPPORT, username="colleague")
    client = signed_in_staff(boss)

    response = client.post(
        reverse("admin:accounts_user_impersonate", args=[other.pk]),
        {"user_pk": other.pk, "reason": "Checking their view"},
    )

    assert response.status_code == 403
    assert client.session[SESSION_KEY] == str(boss.pk)
    assert not AuditEvent.objects.filter(action="impersonation.started").exists()


def test_the_bulk_suspension_skips_oneself_and_other_staff(
    user_factory: Callable[..., User],
) -> None:
    support = make_staff(user_factory, SUPPORT)
    colleague = make_staff(user_factory, PLAIN, username="colleague")
    regular = user_factory(username="regular")
    client = signed_in_staff(support)

    response = client.post(
        reverse("admin:accounts_user_changelist"),
        {
            "action": "suspend_selected",
            "_selected_action": [support.pk, colleague.pk, regular.pk],
            "reason": "Spam wave",
        },
    )

    assert response.status_code == 302
    states = dict(User.objects.values_list("username", "state"))
    assert states[support.username] == "active"
    assert states["colleague"] == "active"
    assert states["regular"] == "suspended"
    assert list(
        AuditEvent.objects.filter(action="account.suspended").values_list(
            "subject__username", flat=True
        )
    ) == ["regular"]


@pytest.mark.parametrize("role", [OPERATORS, PLAIN])
def test_the_bulk_actions_need_the_suspend_permission(
    user_factory: Callable[..., User], role: str
) -> None:
    # Without view_user the list itself is refused, and so is any action posted to it.
    member = make_staff(user_factory, role)
    regular = user_factory(username="regular")
    client = signed_in_staff(member)

    response = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "suspend_selected", "_selected_action": [regular.pk], "reason": "Spam"},
    )

    assert response.status_code == 403
    regular.refresh_from_db()
    assert regular.state == User.State.ACTIVE
    assert not AuditEvent.objects.filter(action="account.suspended").exists()


def test_a_viewer_without_the_suspend_permission_gets_no_bulk_action(
    user_factory: Callable[..., User],
) -> None:
    viewer = make_staff(user_factory, PLAIN, username="viewer")
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    regular = user_factory(username="regular")
    client = signed_in_staff(viewer)

    page = client.get(reverse("admin:accounts_user_changelist"))
    assert page.status_code == 200
    assert "suspend_selected" not in page.content.decode()

    client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "suspend_selected", "_selected_action": [regular.pk], "reason": "Spam"},
    )
    regular.refresh_from_db()
    assert regular.state == User.State.ACTIVE
    assert not AuditEvent.objects.filter(action="account.suspended").exists()
