"""What staff do to an account: suspend, restore, end sessions, reset second
factors. Each writes its audit event; notifications go out in the views' finalize."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from accounts.services.audit import Action, audit_record
from accounts.services.deletion import InvalidTransition, account_deletion_cancel
from accounts.services.sessions import sessions_end_all


class NotAllowed(Exception):
    """Staff may not act on themselves, and only superusers act on other staff."""


def check_can_act(*, actor: User, target: User) -> None:
    if actor.pk == target.pk:
        raise NotAllowed("self")
    if (target.is_staff or target.is_superuser) and not actor.is_superuser:
        raise NotAllowed("staff")


@transaction.atomic
def user_suspend(
    *,
    user: User,
    actor: User | None,
    reason: str,
    until: datetime | None = None,
    request: HttpRequest | None = None,
) -> User:
    if not reason.strip():
        raise ValueError("a reason is required")
    if actor is not None:
        check_can_act(actor=actor, target=user)
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
        action=Action.SUSPENDED,
        subject=locked,
        actor=actor,
        request=request,
        data={"reason": locked.state_reason, "until": until.isoformat() if until else None},
    )
    sessions_end_all(user=locked)
    return locked


@transaction.atomic
def user_restore(*, user: User, actor: User | None, request: HttpRequest | None = None) -> User:
    """Lifts a suspension, or cancels a pending deletion."""
    if actor is not None:
        check_can_act(actor=actor, target=user)
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.state == User.State.PENDING_DELETION:
        return account_deletion_cancel(user=locked, actor=actor, request=request)
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
    audit_record(action=Action.RESTORED, subject=locked, actor=actor, request=request)
    return locked


def lift_expired_suspensions(*, now: datetime | None = None) -> list[User]:
    """Ends every timed suspension that is over. Idempotent, cron-safe."""
    now = now or timezone.now()
    lifted = []
    due = User.objects.filter(
        state=User.State.SUSPENDED, suspended_until__isnull=False, suspended_until__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            user = (
                User.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, state=User.State.SUSPENDED, suspended_until__lte=now)
                .first()
            )
            if user is not None:
                lifted.append(user_restore(user=user, actor=None))
    return lifted


@transaction.atomic
def user_sessions_end(*, user: User, actor: User, request: HttpRequest | None = None) -> int:
    check_can_act(actor=actor, target=user)
    count = sessions_end_all(user=user)
    audit_record(
        action=Action.SESSIONS_ENDED_BY_STAFF,
        subject=user,
        actor=actor,
        request=request,
        data={"count": count},
    )
    return count
