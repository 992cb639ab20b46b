"""What staff do to an account: suspend, restore, end sessions. Each writes its
audit event; the flows (``accounts.flows.moderation``) check access and tell the user."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.actor import Actor
from accounts.models import User
from accounts.services.audit import Action, audit_record
from accounts.services.deletion import InvalidTransition, account_deletion_cancel
from accounts.services.impersonation import impersonations_end
from accounts.services.sessions import sessions_end_all
from accounts.services.tokens import tokens_revoke_all


class NotAllowed(Exception):
    """Staff may not act on themselves, and only superusers act on other staff."""


def check_can_act(*, actor: User, target: User) -> None:
    if actor.pk == target.pk:
        raise NotAllowed("self")
    if (target.is_staff or target.is_superuser) and not actor.is_superuser:
        raise NotAllowed("staff")
    if target.is_staff and target.is_service_account:
        # A machine client's account (always staff): its app's page manages it.
        raise NotAllowed("service account")


@transaction.atomic
def user_suspend(
    *, ctx: Actor | None, user: User, reason: str, until: datetime | None = None
) -> User:
    """Suspends and signs the account out everywhere, including the impersonation
    sessions it started if it is a staff member's."""
    if not reason.strip():
        raise ValueError("a reason is required")
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.state != User.State.ACTIVE:
        raise InvalidTransition(locked.state)
    locked.state = User.State.SUSPENDED
    locked.is_active = False
    locked.state_changed_at = timezone.now()
    locked.state_reason = reason.strip()
    locked.suspended_until = until
    locked.save(
        update_fields=["state", "is_active", "state_changed_at", "state_reason", "suspended_until"]
    )
    audit_record(
        ctx=ctx,
        action=Action.SUSPENDED,
        subject=locked,
        data={"reason": locked.state_reason, "until": until.isoformat() if until else None},
    )
    sessions_end_all(user=locked)
    tokens_revoke_all(user=locked)
    impersonations_end(staff=locked)
    return locked


@transaction.atomic
def user_restore(*, ctx: Actor | None, user: User, from_state: str | None = None) -> User:
    """Lifts a suspension, or cancels a pending deletion (``from_state``: only the
    one or the other)."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    if from_state is not None and locked.state != from_state:
        raise InvalidTransition(locked.state)
    if locked.state == User.State.PENDING_DELETION:
        return account_deletion_cancel(ctx=ctx, user=locked)
    if locked.state != User.State.SUSPENDED:
        raise InvalidTransition(locked.state)
    locked.state = User.State.ACTIVE
    locked.is_active = True
    locked.state_changed_at = timezone.now()
    locked.state_reason = ""
    locked.suspended_until = None
    locked.save(
        update_fields=["state", "is_active", "state_changed_at", "state_reason", "suspended_until"]
    )
    audit_record(ctx=ctx, action=Action.RESTORED, subject=locked)
    return locked


def expired_suspensions(*, now: datetime) -> list[int]:
    """The accounts whose timed suspension is over."""
    return list(
        User.objects.filter(
            state=User.State.SUSPENDED, suspended_until__isnull=False, suspended_until__lte=now
        ).values_list("pk", flat=True)
    )


def expired_suspension_restore(*, ctx: Actor | None, pk: int, now: datetime) -> User | None:
    """Restores one account if its timed suspension is still over (call inside a
    transaction: the row is locked, and skipped if another worker holds it)."""
    user = (
        User.objects.select_for_update(skip_locked=True)
        .filter(pk=pk, state=User.State.SUSPENDED, suspended_until__lte=now)
        .first()
    )
    return user_restore(ctx=ctx, user=user) if user is not None else None


@transaction.atomic
def user_sessions_end(*, ctx: Actor | None, user: User) -> int:
    count = sessions_end_all(user=user)
    audit_record(
        ctx=ctx, action=Action.SESSIONS_ENDED_BY_STAFF, subject=user, data={"count": count}
    )
    return count
