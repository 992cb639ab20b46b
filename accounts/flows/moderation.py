"""What staff do to an account, from the back-office, a command or the Management
API: suspend, restore, end every session, reset the second factors, schedule the
deletion, delete at once, and edit the account's fields and privileges.

Each staff flow takes ``ctx`` acting on ``ctx.subject`` (``Actor.on(user)``), and
checks the permission, that the account exists, and that staff do not act on
themselves and only superusers act on staff, before it writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.access import access_user_for_staff
from accounts.actor import Actor
from accounts.flows.errors import AccessDenied, FlowError
from accounts.models import User
from accounts.notifications import (
    notify,
    notify_deletion_scheduled,
    notify_restored,
    notify_suspended,
)
from accounts.services import deletion as deletion_service
from accounts.services import moderation as moderation_service
from accounts.services.audit import Action, audit_record
from accounts.services.mfa import mfa_reset

CANNOT_ACT = _("You cannot act on your own account, and only superusers act on staff.")


class WrongState(FlowError):
    """The account is not in a state the action applies to."""

    code = "wrong_state"
    status = 409


def staff_target(ctx: Actor, permission: str) -> User:
    """The account ``ctx`` acts on, once the staff member's right to act is checked."""
    if ctx.subject is None:
        raise AccessDenied()
    target = access_user_for_staff(ctx, ctx.subject.pk, f"accounts.{permission}")
    assert ctx.user is not None  # access_user_for_staff refuses without one
    try:
        moderation_service.check_can_act(actor=ctx.user, target=target)
    except moderation_service.NotAllowed as exc:
        raise AccessDenied(CANNOT_ACT, staff=True) from exc
    return target


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


def restore_user(*, ctx: Actor) -> User:
    """Lifts a suspension, or cancels a pending deletion."""
    target = staff_target(ctx, "suspend_user")
    with transaction.atomic():
        try:
            user = moderation_service.user_restore(ctx=ctx, user=target)
        except deletion_service.InvalidTransition as exc:
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


def _model_fields(names: Iterable[str]) -> list[str]:
    concrete = {f.name for f in User._meta.concrete_fields} - {"password"}
    return [name for name in names if name in concrete]


def save_user_by_staff(
    *,
    ctx: Actor,
    user: User,
    changed: Iterable[str],
    groups: Iterable[Group] | None = None,
    permissions: Iterable[Permission] | None = None,
) -> StaffEdit:
    """Saves ``user`` as staff edited it (``changed``: the edited field names;
    ``groups``/``permissions``: the new sets, or None when not edited) and records
    what changed, privileges included, as one audit event."""
    creating = user.pk is None
    permission = "accounts.add_user" if creating else "accounts.change_user"
    if ctx.user is None or not ctx.user.is_staff or not ctx.user.has_perm(permission):
        raise AccessDenied(staff=True)
    fields = _model_fields(changed)
    with transaction.atomic():
        before: dict[str, Any] = {}
        groups_before: set[str] = set()
        perms_before: set[int] = set()
        if not creating:
            old = User.objects.filter(pk=user.pk).values(*fields).first() if fields else None
            before = {k: str(v) for k, v in (old or {}).items()}
            groups_before = set(user.groups.values_list("name", flat=True))
            perms_before = set(user.user_permissions.values_list("pk", flat=True))
        user.save()
        if groups is not None:
            user.groups.set(groups)
        if permissions is not None:
            user.user_permissions.set(permissions)
        groups_after = set(user.groups.values_list("name", flat=True))
        data: dict[str, Any] = {}
        if fields:
            data["fields"] = fields
            data["before"] = before
            data["after"] = {name: str(getattr(user, name)) for name in fields}
        if groups_after != groups_before:
            data["groups_before"] = sorted(groups_before)
            data["groups_after"] = sorted(groups_after)
        if permissions is not None and (
            set(user.user_permissions.values_list("pk", flat=True)) != perms_before
        ):
            data["permissions_changed"] = True
        if data:
            audit_record(
                ctx=ctx,
                action=Action.CREATED_BY_STAFF if creating else Action.UPDATED_BY_STAFF,
                subject=user,
                data=data,
            )
    return StaffEdit(user=user, changed=fields)
