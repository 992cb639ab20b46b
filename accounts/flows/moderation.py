"""What staff do to an account, from the back-office, a command or the Management
API: suspend, restore, end every session, reset the second factors, unlink a linked
account, schedule the deletion, delete at once, and edit the account's fields and
privileges.

Each staff flow takes ``ctx`` acting on ``ctx.subject`` (``Actor.on(user)``), and
checks the permission, that the account exists, and that staff do not act on
themselves and only superusers act on staff, before it writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from allauth.socialaccount.internal.flows.connect import validate_disconnect
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.access import access_user_for_staff, staff_with_permission
from accounts.actor import Actor
from accounts.flows.errors import AccessDenied, FlowError
from accounts.flows.social import UnlinkRefused
from accounts.models import User
from accounts.notifications import (
    notify,
    notify_deletion_scheduled,
    notify_restored,
    notify_suspended,
)
from accounts.selectors.social import own_linked_account
from accounts.services import deletion as deletion_service
from accounts.services import moderation as moderation_service
from accounts.services import social as social_service
from accounts.services.audit import Action, audit_record
from accounts.services.mfa import mfa_reset

CANNOT_ACT = _("You cannot act on your own account, and only superusers act on staff.")
SERVICE_ACCOUNT = _(
    "This is the service account of a machine client: it is managed on the client's page "
    "(OAuth apps), where it can be changed, have its tokens revoked or be deleted."
)


class WrongState(FlowError):
    """The account is not in a state the action applies to."""

    code = "wrong_state"
    status = 409


def staff_target(ctx: Actor, permission: str) -> User:
    """The account ``ctx`` acts on, once the staff member's right to act is checked.
    ``permission``: a codename of the accounts app, or ``app_label.codename``."""
    if ctx.subject is None:
        raise AccessDenied()
    name = permission if "." in permission else f"accounts.{permission}"
    target = access_user_for_staff(ctx, ctx.subject.pk, name)
    check_may_act(ctx, target)
    return target


def check_may_act(ctx: Actor, target: User) -> None:
    """Raises ``AccessDenied`` (403) unless staff may act on ``target``: never their
    own account, other staff and superusers only as a superuser."""
    if ctx.user is None:
        raise AccessDenied(staff=True)
    try:
        moderation_service.check_can_act(actor=ctx.user, target=target)
    except moderation_service.NotAllowed as exc:
        message = SERVICE_ACCOUNT if str(exc) == "service account" else CANNOT_ACT
        raise AccessDenied(message, staff=True) from exc


def may_act_on(ctx: Actor, target: User) -> bool:
    """Whether staff may act on ``target`` at all (their own account and other
    staff are out of reach without being a superuser)."""
    if ctx.user is None:
        return False
    try:
        moderation_service.check_can_act(actor=ctx.user, target=target)
    except moderation_service.NotAllowed:
        return False
    return True


# The messages to the user carry no ``ctx``: they name neither the staff member's
# address nor their device, and are written in the user's language.


def suspend_user(*, ctx: Actor, reason: str, until: datetime | None = None) -> User:
    target = staff_target(ctx, "suspend_user")
    with transaction.atomic():
        try:
            user = moderation_service.user_suspend(ctx=ctx, user=target, reason=reason, until=until)
        except deletion_service.InvalidTransition as exc:
            raise WrongState(_("Only an active account can be suspended.")) from exc
        notify_suspended(user)
    return user


NOT_IN_STATE = {
    User.State.SUSPENDED: _("This account is not suspended."),
    User.State.PENDING_DELETION: _("This account is not scheduled for deletion."),
}


def restore_user(*, ctx: Actor, from_state: str | None = None) -> User:
    """Lifts a suspension, or cancels a pending deletion (the back-office's
    "restore" does either); ``from_state``: only when the account is in that
    state (``suspended`` or ``pending_deletion``)."""
    target = staff_target(ctx, "suspend_user")
    with transaction.atomic():
        try:
            user = moderation_service.user_restore(ctx=ctx, user=target, from_state=from_state)
        except deletion_service.InvalidTransition as exc:
            if from_state is not None:
                raise WrongState(NOT_IN_STATE[User.State(from_state)]) from exc
            raise WrongState(_("This account is already active.")) from exc
        notify_restored(user)
    return user


def end_user_sessions(*, ctx: Actor) -> int:
    target = staff_target(ctx, "end_user_sessions")
    return moderation_service.user_sessions_end(ctx=ctx, user=target)


def reset_user_mfa(*, ctx: Actor, reason: str) -> int:
    target = staff_target(ctx, "reset_user_mfa")
    with transaction.atomic():
        count = mfa_reset(ctx=ctx, user=target, reason=reason)
        notify(ctx=None, user=target, event="mfa_reset")
    return count


# allauth's model permission: no role has it, superusers do.
UNLINK_PERMISSION = "socialaccount.delete_socialaccount"
UNLINK_WOULD_LOCK_OUT = _(
    "This linked account is the user's last way to sign in (the account has no password, "
    "or no verified email address to reset one): it cannot be unlinked. Nothing was changed."
)


def unlink_identity(*, ctx: Actor, provider: str, uid: str) -> dict[str, str]:
    """Staff unlink one of the account's linked accounts (``provider``, ``uid``); an
    unknown one is ``AccessDenied`` (404). As when the user unlinks it, the last way
    to sign in stays: staff cannot lock the user out (``UnlinkRefused``, 409); the
    user sets a password or links another account first. Audited with the staff
    member as actor; the user is told."""
    target = staff_target(ctx, UNLINK_PERMISSION)
    with transaction.atomic():
        # One unlink at a time per account: two at once could each leave the other
        # as the last way in, and both go.
        target = User.objects.select_for_update().get(pk=target.pk)
        account = own_linked_account(user=target, provider=provider, uid=uid)
        if account is None:
            raise AccessDenied()
        try:
            validate_disconnect(None, account)  # allauth's rule (the request is not read)
        except ValidationError as exc:
            raise UnlinkRefused(UNLINK_WOULD_LOCK_OUT) from exc
        info = social_service.social_account_remove(ctx=ctx, user=target, account=account)
        notify(ctx=None, user=target, event="social_unlinked", context=info)
    return info


def schedule_user_deletion(*, ctx: Actor, reason: str) -> User:
    target = staff_target(ctx, "schedule_user_deletion")
    with transaction.atomic():
        try:
            user = deletion_service.account_deletion_schedule(ctx=ctx, user=target, reason=reason)
        except deletion_service.InvalidTransition as exc:
            raise WrongState(_("Only an active account can be scheduled for deletion.")) from exc
        notify_deletion_scheduled(user)
    return user


def purge_user(*, ctx: Actor) -> str:
    """Deletes the account now; returns the pseudonym the audit log keeps."""
    target = staff_target(ctx, "purge_user")
    return deletion_service.account_purge(ctx=ctx, user=target)


# --- Commands (cron) --------------------------------------------------------------------


def lift_expired_suspensions(*, ctx: Actor, now: datetime | None = None) -> list[User]:
    """Ends every timed suspension that is over and tells each user. Idempotent,
    cron-safe (each account is locked and re-checked)."""
    now = now or timezone.now()
    lifted = []
    for pk in moderation_service.expired_suspensions(now=now):
        with transaction.atomic():
            user = moderation_service.expired_suspension_restore(ctx=ctx, pk=pk, now=now)
            if user is not None:
                notify_restored(user)
                lifted.append(user)
    return lifted


def lift_expired_suspension(*, ctx: Actor, user: User) -> User:
    """At sign-in: a timed suspension that is over ends there and then (the user
    is told). Returns the account as it is now."""
    with transaction.atomic():
        lifted = moderation_service.expired_suspension_restore(
            ctx=ctx, pk=user.pk, now=timezone.now()
        )
        if lifted is None:
            return user
        notify_restored(lifted)
    return lifted


def purge_due_accounts(*, ctx: Actor, now: datetime | None = None) -> list[str]:
    """Purges every account whose grace period is over."""
    return deletion_service.purge_due(ctx=ctx, now=now)


# --- Staff edits of the account's fields and privileges ----------------------------------


@dataclass(frozen=True, kw_only=True)
class StaffEdit:
    user: User
    changed: list[str]


# Who may reach the back-office and what they may do there.
PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")
CANNOT_CHANGE_PRIVILEGES = _(
    "Only superusers change staff status, superuser status, groups and permissions, "
    "and nobody changes their own."
)


def may_change_privileges(actor: User | None, target: User | None) -> bool:
    """Only a superuser changes privileges, and never their own (``target`` None:
    an account being created)."""
    if actor is None or not actor.is_active or not actor.is_superuser:
        return False
    return target is None or target.pk != actor.pk


def _model_fields(names: Iterable[str]) -> list[str]:
    concrete = {f.name for f in User._meta.concrete_fields} - {"password"}
    return [name for name in names if name in concrete]


def _permission_names(permissions: Iterable[Permission]) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions)


def _privileges(user: User | None) -> dict[str, Any]:
    """The account's privileges as stored (a new account has none)."""
    if user is None:
        return {"is_staff": False, "is_superuser": False, "groups": [], "user_permissions": []}
    return {
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "user_permissions": _permission_names(user.user_permissions.select_related("content_type")),
    }


def _notify_privileges_changed(ctx: Actor, user: User, changes: dict[str, list[Any]]) -> None:
    """Tells every other active superuser (on commit)."""
    assert ctx.user is not None
    superusers = User.objects.filter(is_superuser=True, is_active=True).exclude(pk=ctx.user.pk)
    for superuser in superusers:
        notify(
            ctx=ctx,
            user=superuser,
            event="privileges_changed",
            context={
                "subject_id": user.pk,
                "subject_name": user.username,
                "actor_name": ctx.user.username,
                "changes": changes,
            },
        )


def save_user_by_staff(
    *,
    ctx: Actor,
    user: User,
    changed: Iterable[str],
    groups: Iterable[Group] | None = None,
    permissions: Iterable[Permission] | None = None,
    extra: dict[str, Any] | None = None,
) -> StaffEdit:
    """Saves ``user`` as staff edited it (``changed``: the edited field names;
    ``groups``/``permissions``: the new sets, or None when not edited) and records
    what changed, privileges included, as one audit event (with ``extra``: more
    facts for the audit data, such as how a new account's password is chosen).

    Privileges (``PRIVILEGE_FIELDS``) are compared with what is stored, whatever
    ``changed`` says: a change by anyone but a superuser, or by a superuser on
    their own account, is refused (nothing is saved); an allowed one is told to
    the other superusers."""
    creating = user.pk is None
    staff = staff_with_permission(ctx, "accounts.add_user" if creating else "accounts.change_user")
    fields = _model_fields(changed)
    groups = list(groups) if groups is not None else None
    permissions = list(permissions) if permissions is not None else None
    with transaction.atomic():
        stored = None
        if not creating:
            stored = User.objects.select_for_update().filter(pk=user.pk).first()
            if stored is None:
                raise AccessDenied()
            if stored.pk != staff.pk:
                # Other staff and superusers are edited by superusers only; service
                # accounts on their machine client's page only.
                check_may_act(ctx, stored)
        privileges_before = _privileges(stored)
        privileges_asked = {
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
            "groups": sorted(g.name for g in groups)
            if groups is not None
            else privileges_before["groups"],
            "user_permissions": _permission_names(permissions)
            if permissions is not None
            else privileges_before["user_permissions"],
        }
        privilege_changes = {
            name: [privileges_before[name], privileges_asked[name]]
            for name in PRIVILEGE_FIELDS
            if privileges_before[name] != privileges_asked[name]
        }
        if privilege_changes and not may_change_privileges(staff, stored):
            raise AccessDenied(CANNOT_CHANGE_PRIVILEGES, staff=True)
        before: dict[str, Any] = {}
        if stored is not None:
            before = {name: str(getattr(stored, name)) for name in fields}
        user.save()
        if groups is not None:
            user.groups.set(groups)
        if permissions is not None:
            user.user_permissions.set(permissions)
        data: dict[str, Any] = {}
        if fields:
            data["fields"] = fields
            data["before"] = before
            data["after"] = {name: str(getattr(user, name)) for name in fields}
        if "groups" in privilege_changes:
            data["groups_before"], data["groups_after"] = privilege_changes["groups"]
        if "user_permissions" in privilege_changes:
            data["permissions_before"], data["permissions_after"] = privilege_changes[
                "user_permissions"
            ]
        if data:
            data.update(extra or {})
            audit_record(
                ctx=ctx,
                action=Action.CREATED_BY_STAFF if creating else Action.UPDATED_BY_STAFF,
                subject=user,
                data=data,
            )
        if privilege_changes:
            _notify_privileges_changed(ctx, user, privilege_changes)
    return StaffEdit(user=user, changed=fields)
