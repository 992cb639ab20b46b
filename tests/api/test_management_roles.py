"""The role matrix of the Management API: every endpoint by every role gives the
answer the back-office gives for the same action.

The back-office's own matrix (``tests/accounts/test_backoffice_roles.py``:
``ALLOWED``, checked there against the admin pages) is the truth for the actions
both surfaces have; the endpoints without a back-office page follow the same
permission the flow checks. An end user's token is refused everywhere.

Machine clients (OAuth client credentials) get the same answers for the
permissions their token's scopes open (``accounts.oauth.SCOPE_PERMISSIONS``): a
client whose service account's group holds every permission of every scope, with
one scope only and with every scope but one. The one exception: an impersonation
link works only in the asking staff member's own back-office browser, so a machine
client is refused one whatever its scopes (403, with the reason).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AccountPolicy, AuditEvent, User
from accounts.oauth import MACHINE_SCOPES, SCOPE_PERMISSIONS, scope_permissions
from accounts.policy import FIELDS
from accounts.services.moderation import user_suspend
from tests.accounts.test_backoffice_roles import ALLOWED, ROLES, make_staff
from tests.api.conftest import ApiClient, assert_error, make_token, management_client
from tests.oauth.conftest import machine_token, register_machine

pytestmark = pytest.mark.django_db

END_USER = "end user"


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # "{pk}" is the target's id
    body: dict[str, Any] | None
    success: int
    # The back-office action it is, or the permission it needs when the back-office
    # has no such page.
    action: str = ""
    permission: str = ""
    before: Callable[[User], None] | None = None


def _suspended(target: User) -> None:
    user_suspend(ctx=None, user=target, reason="Earlier")


def _policy() -> dict[str, Any]:
    return {"enabled": True, **dict.fromkeys(FIELDS, "edit"), "email": "read_only"}


CALLS: dict[str, Call] = {
    "list users": Call("GET", "/api/management/users", None, 200, action="view_user_list"),
    "read a user": Call("GET", "/api/management/users/{pk}", None, 200, action="view_user_page"),
    "suspend": Call(
        "POST", "/api/management/users/{pk}/suspension", {"reason": "Spam"}, 200, "suspend"
    ),
    "restore": Call(
        "DELETE", "/api/management/users/{pk}/suspension", None, 200, "restore", before=_suspended
    ),
    "end sessions": Call(
        "DELETE", "/api/management/users/{pk}/sessions", None, 200, action="end_sessions"
    ),
    "reset second factors": Call(
        "DELETE",
        "/api/management/users/{pk}/second-factors",
        {"reason": "Lost phone"},
        200,
        action="reset_mfa",
    ),
    "schedule deletion": Call(
        "POST",
        "/api/management/users/{pk}/deletion",
        {"reason": "Asked by mail"},
        200,
        action="schedule_deletion",
    ),
    "purge": Call("DELETE", "/api/management/users/{pk}", None, 200, action="purge"),
    "impersonation link": Call(
        "POST",
        "/api/management/users/{pk}/impersonation",
        {"reason": "Ticket 4242: cannot find the export"},
        201,
        action="impersonate",
    ),
    "read the audit log": Call(
        "GET", "/api/management/audit-events", None, 200, action="view_audit_log"
    ),
    "edit the policy": Call(
        "PUT", "/api/management/account-policy", _policy(), 200, action="edit_policy"
    ),
    "create a user": Call(
        "POST",
        "/api/management/users",
        {"username": "newcomer", "email": "newcomer@example.org", "send_invitation": True},
        201,
        permission="accounts.add_user",
    ),
    "change a user": Call(
        "PATCH",
        "/api/management/users/{pk}",
        {"display_name": "Renamed"},
        200,
        permission="accounts.change_user",
    ),
    "read linked accounts": Call(
        "GET",
        "/api/management/users/{pk}/identities",
        None,
        200,
        permission="accounts.view_user",
    ),
    "read second factors": Call(
        "GET",
        "/api/management/users/{pk}/second-factors",
        None,
        200,
        permission="accounts.view_user",
    ),
    "read sessions": Call(
        "GET", "/api/management/users/{pk}/sessions", None, 200, permission="accounts.view_user"
    ),
    "unlink an account": Call(
        "DELETE",
        "/api/management/users/{pk}/identities/dummy/4242",
        None,
        200,
        permission="socialaccount.delete_socialaccount",
    ),
    "list a user's tokens": Call(
        "GET",
        "/api/management/users/{pk}/personal-access-tokens",
        None,
        200,
        permission="accounts.view_personalaccesstoken",
    ),
    "make a token for a user": Call(
        "POST",
        "/api/management/users/{pk}/personal-access-tokens",
        {"name": "Sync", "scopes": ["account:read"], "expires_at": "2099-01-01T00:00:00Z"},
        201,
        permission="accounts.add_personalaccesstoken",
    ),
}


# The permissions the back-office checks for each of its actions above, any one
# of which lets it act (Django's admin lets "change" read a list too); checked
# against ``ALLOWED`` by ``test_the_actions_permissions_agree_with_the_back_office``.
ACTION_PERMISSIONS = {
    "view_user_list": ("accounts.view_user", "accounts.change_user"),
    "view_user_page": ("accounts.view_user",),
    "suspend": ("accounts.suspend_user",),
    "restore": ("accounts.suspend_user",),
    "end_sessions": ("accounts.end_user_sessions",),
    "reset_mfa": ("accounts.reset_user_mfa",),
    "schedule_deletion": ("accounts.schedule_user_deletion",),
    "purge": ("accounts.purge_user",),
    "impersonate": ("accounts.impersonate_user",),
    "view_audit_log": ("accounts.view_auditevent",),
    "edit_policy": ("accounts.change_accountpolicy",),
}
MACHINE_REFUSED = {"impersonation link"}


def _needs(call: Call) -> tuple[str, ...]:
    return ACTION_PERMISSIONS[call.action] if call.action else (call.permission,)


def _allowed(role: str, call: Call, staff: User | None) -> bool:
    if role == END_USER or staff is None:
        return False
    if call.action:
        return call.action in ALLOWED[role]
    return staff.has_perm(call.permission)


def _send(client: ApiClient, call: Call, target: User) -> Any:
    path = call.path.format(pk=target.pk)
    if call.body is None:
        return client.generic(call.method, path)
    return client.generic(call.method, path, data=json.dumps(call.body))


def _scene(name: str, user_factory: Callable[..., User]) -> tuple[Call, User]:
    """The call (a token's expiry a month from now) and its target account."""
    call = CALLS[name]
    if name == "make a token for a user":
        # A year at most from today.
        from datetime import timedelta

        from django.utils import timezone

        call = Call(
            call.method,
            call.path,
            {**call.body, "expires_at": (timezone.now() + timedelta(days=30)).isoformat()},  # type: ignore[dict-item]
            call.success,
            permission=call.permission,
        )
    AccountPolicy.objects.get_or_create(pk=1)
    target = user_factory(username="target", display_name="Target Person")
    TOTPDevice.objects.create(user=target, name="Phone", confirmed=True)
    SocialAccount.objects.create(user=target, provider="dummy", uid="4242")
    if call.before is not None:
        call.before(target)
    return call, target


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("role", [*ROLES, END_USER])
def test_role_matrix(role: str, name: str, user_factory: Callable[..., User]) -> None:
    call, target = _scene(name, user_factory)
    if role == END_USER:
        staff = None
        client = ApiClient(make_token(user_factory(username="plainuser")))
    else:
        staff = make_staff(user_factory, role)
        client = management_client(staff)
    events_before = AuditEvent.objects.count()

    response = _send(client, call, target)

    if _allowed(role, call, staff):
        assert response.status_code == call.success, (role, name, response.content)
        if call.method != "GET":
            event = AuditEvent.objects.order_by("-id").first()
            assert event is not None
            assert AuditEvent.objects.count() > events_before
            assert (event.actor_id, event.surface) == (staff.pk, "api"), (role, name)  # type: ignore[union-attr]
    else:
        assert_error(response, 403, "forbidden")
        assert AuditEvent.objects.count() == events_before
        assert User.objects.filter(pk=target.pk).exists()


@pytest.mark.parametrize("role", ROLES)
def test_the_actions_permissions_agree_with_the_back_office(
    role: str, user_factory: Callable[..., User]
) -> None:
    """The permission named for each back-office action above is the one that
    decides it there: a role holds it exactly when ``ALLOWED`` lets it act."""
    staff = make_staff(user_factory, role)
    for call in CALLS.values():
        if call.action:
            held = any(staff.has_perm(p) for p in _needs(call))
            assert held == (call.action in ALLOWED[role]), (
                role,
                call.action,
            )


EVERY_SCOPE_PERMISSION = sorted(set().union(*SCOPE_PERMISSIONS.values()))


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("scope", [s.value for s in MACHINE_SCOPES])
@pytest.mark.parametrize("holds", [True, False], ids=["only it", "all but it"])
def test_machine_client_matrix(
    holds: bool, scope: str, name: str, user_factory: Callable[..., User]
) -> None:
    call, target = _scene(name, user_factory)
    scopes = [scope] if holds else [s.value for s in MACHINE_SCOPES if s.value != scope]
    machine = register_machine(scopes=scopes, permissions=EVERY_SCOPE_PERMISSION)
    reply = machine_token(machine, " ".join(scopes))
    assert reply.status_code == 200, reply.content
    client = ApiClient(reply.json()["access_token"])
    events_before = AuditEvent.objects.count()

    response = _send(client, call, target)

    opened = scope_permissions(scopes)
    if any(p in opened for p in _needs(call)) and name not in MACHINE_REFUSED:
        assert response.status_code == call.success, (scopes, name, response.content)
        if call.method != "GET":
            event = AuditEvent.objects.order_by("-id").first()
            assert event is not None
            assert AuditEvent.objects.count() > events_before
            assert (event.actor, event.surface) == (machine.app.machine.account, "api")
    else:
        body = assert_error(response, 403, "forbidden")
        if name in MACHINE_REFUSED:
            assert "machine client cannot ask for an impersonation link" in body["message"]
        assert AuditEvent.objects.count() == events_before
        assert User.objects.filter(pk=target.pk).exists()
