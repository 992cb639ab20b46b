"""Impersonation: staff viewing an account as its owner, under guard rails.

Who may start it (``impersonation_check``), and the audit events of its start and
end, whatever ended it: the staff member, the time limit, signing out, or the
staff member losing their access (suspended, deleted, no longer staff).
Switching the session's identity is django-hijack's (``accounts.impersonation``).
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.access import access_user_for_staff
from accounts.actor import Actor
from accounts.flows.errors import AccessDenied
from accounts.models import User
from accounts.services.audit import Action, audit_record

PERMISSION = "accounts.impersonate_user"


def can_impersonate(*, hijacker: User | None, hijacked: User | None) -> bool:
    """The rule: an active staff member with the permission, on an active account
    that is neither theirs, nor staff, nor a superuser's."""
    if hijacked is None or hijacker is None or hijacker.pk == hijacked.pk:
        return False
    return bool(
        hijacker.is_active
        and hijacker.is_staff
        and hijacker.has_perm(PERMISSION)
        and hijacked.is_active
        and getattr(hijacked, "state", "active") == "active"
        and not hijacked.is_staff
        and not hijacked.is_superuser
    )


def impersonation_check(*, ctx: Actor, user_pk: object, second_factor_verified: bool) -> User:
    """The account staff may start impersonating, or a refusal: 403 without the
    permission or a verified second factor, 404 for no such account."""
    target = access_user_for_staff(ctx, user_pk, PERMISSION)
    if not second_factor_verified:
        raise AccessDenied(_("Verify your second factor first."), staff=True)
    if not can_impersonate(hijacker=ctx.user, hijacked=target):
        raise AccessDenied(_("You may not impersonate this account."), staff=True)
    return target


def active_staff(pk: object) -> User | None:
    """The staff member behind an impersonation, if they may still act as staff."""
    try:
        staff_pk = int(pk)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return User.objects.filter(pk=staff_pk, is_active=True, is_staff=True).first()


def impersonation_started(*, ctx: Actor, staff: User, user: User, reason: str) -> None:
    audit_record(
        ctx=ctx,
        action=Action.IMPERSONATION_STARTED,
        subject=user,
        actor=staff,
        data={"reason": reason, "staff": staff.username},
    )


def impersonation_ended(
    *,
    ctx: Actor,
    user: User,
    staff_id: int | None,
    reason: str,
    expired: bool = False,
    signed_out: bool = False,
    staff_gone: bool = False,
) -> None:
    """Records the end. ``staff_gone``: the staff member was deleted or lost their
    access, and the session was signed out."""
    staff = User.objects.filter(pk=staff_id).first() if staff_id is not None else None
    data: dict[str, object] = {
        "staff": staff.username if staff else "",
        "expired": expired,
        "reason": reason,
    }
    if signed_out:
        data["signed_out"] = True
    if staff_gone:
        data["staff_gone"] = True
    with transaction.atomic():
        audit_record(
            ctx=ctx,
            action=Action.IMPERSONATION_ENDED,
            subject=user,
            actor=staff,
            impersonator_id=staff.pk if staff else None,
            data=data,
        )
