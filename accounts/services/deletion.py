"""Account deletion: scheduling (user or staff), cancelling or restoring, purging.

States: ``active`` -> ``pending_deletion`` (grace period) -> purged; a pending
account can be restored. ``is_active`` follows the state (a database constraint
holds them together), so Django turns every live session of a pending account
anonymous; the sessions are also ended at once.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.actor import Actor
from accounts.models import AuditEvent, User
from accounts.services.audit import Action, audit_record
from accounts.services.impersonation import impersonations_end
from accounts.services.sessions import sessions_end_all
from accounts.services.tokens import tokens_revoke_all

logger = logging.getLogger(__name__)


def grace_period() -> timedelta:
    return timedelta(days=settings.ACCOUNT_DELETION_GRACE_DAYS)


class InvalidTransition(Exception):
    pass


@transaction.atomic
def account_deletion_schedule(*, ctx: Actor | None, user: User, reason: str = "") -> User:
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.state != User.State.ACTIVE:
        raise InvalidTransition(locked.state)
    now = timezone.now()
    locked.state = User.State.PENDING_DELETION
    locked.is_active = False
    locked.state_changed_at = now
    locked.state_reason = reason
    locked.deletion_scheduled_for = now + grace_period()
    locked.save(
        update_fields=[
            "state", "is_active", "state_changed_at", "state_reason", "deletion_scheduled_for"
        ]
    )  # fmt: skip
    audit_record(
        ctx=ctx,
        action=Action.DELETION_SCHEDULED,
        subject=locked,
        data={"scheduled_for": locked.deletion_scheduled_for.isoformat(), "reason": reason},
    )
    sessions_end_all(user=locked)
    tokens_revoke_all(user=locked)
    impersonations_end(staff=locked)
    return locked


@transaction.atomic
def account_deletion_cancel(*, ctx: Actor | None, user: User) -> User:
    """Back to ``active`` (the user during the grace period, or staff restoring)."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.state != User.State.PENDING_DELETION:
        raise InvalidTransition(locked.state)
    owner = ctx is not None and ctx.user is not None and ctx.user.pk == locked.pk
    if owner and locked.deletion_scheduled_for and locked.deletion_scheduled_for <= timezone.now():
        # The grace period is over: only the purge is left (staff may still restore).
        raise InvalidTransition("grace_period_over")
    locked.state = User.State.ACTIVE
    locked.is_active = True
    locked.state_changed_at = timezone.now()
    locked.state_reason = ""
    locked.deletion_scheduled_for = None
    locked.save(
        update_fields=[
            "state", "is_active", "state_changed_at", "state_reason", "deletion_scheduled_for"
        ]
    )  # fmt: skip
    audit_record(ctx=ctx, action=Action.DELETION_CANCELLED, subject=locked)
    return locked


def pseudonym(user_id: int) -> str:
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:deleted-user:{user_id}".encode()).hexdigest()
    return f"deleted-user-{digest[:12]}"


@transaction.atomic
def account_purge(*, ctx: Actor | None, user: User) -> str:
    """Removes the user and their personal data; audit events stay, pseudonymised.

    Deleting the row cascades to email addresses, linked accounts and their tokens,
    second factors and session records; the sessions themselves and the avatar file
    are removed here."""
    name = pseudonym(user.pk)
    avatar = user.avatar.name
    sessions_end_all(user=user)
    impersonations_end(staff=user)
    # The events stay, but nothing in them may still name the person: their data
    # (old usernames, addresses, numbers, linked accounts) goes too.
    AuditEvent.objects.filter(subject=user).update(
        subject_label=name, subject=None, data={"redacted": True}
    )
    AuditEvent.objects.filter(actor=user).update(actor=None)
    AuditEvent.objects.filter(impersonator=user).update(impersonator=None)
    user.delete()
    audit_record(ctx=ctx, action=Action.ACCOUNT_PURGED, subject=None, subject_label=name)
    if avatar:
        storage = User._meta.get_field("avatar").storage
        transaction.on_commit(lambda: storage.delete(avatar))
    return name


def purge_due(*, ctx: Actor | None, now: datetime | None = None) -> list[str]:
    """Purges every account whose grace period is over. Safe to run again and from
    several places at once: each account is locked and re-checked."""
    now = now or timezone.now()
    purged: list[str] = []
    due = User.objects.filter(
        state=User.State.PENDING_DELETION, deletion_scheduled_for__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            user = (
                User.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, state=User.State.PENDING_DELETION, deletion_scheduled_for__lte=now)
                .first()
            )
            if user is None:
                continue
            purged.append(account_purge(ctx=ctx, user=user))
    return purged
