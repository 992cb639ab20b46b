"""The user deletes their account: scheduling starts the grace period (every
session ends, the user is told), and signing in before it is over lets them cancel.
Staff schedule, restore and purge through ``accounts.flows.moderation``."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.errors import FlowError
from accounts.models import User
from accounts.notifications import notify, notify_deletion_scheduled
from accounts.services import deletion as deletion_service


class DeletionRefused(FlowError):
    """The account is not in a state that allows it (already pending, or the grace
    period is over)."""

    code = "deletion.wrong_state"
    status = 409

    def __init__(self) -> None:
        super().__init__(_("Your account's current state does not allow this."))


def deletion_schedule(*, ctx: Actor) -> User:
    """Returns the account, now pending deletion (``deletion_scheduled_for`` set)."""
    gate.check(ctx, field="delete_account", reauth=True, sensitive=True)
    with transaction.atomic():
        try:
            user = deletion_service.account_deletion_schedule(ctx=ctx, user=ctx.target)
        except deletion_service.InvalidTransition as exc:
            raise DeletionRefused() from exc
        notify_deletion_scheduled(user, ctx)
    return user


def deletion_cancel(*, ctx: Actor) -> User:
    """The user, signed in during the grace period, keeps the account."""
    gate.check(ctx, sensitive=True)
    with transaction.atomic():
        try:
            user = deletion_service.account_deletion_cancel(ctx=ctx, user=ctx.target)
        except deletion_service.InvalidTransition as exc:
            raise DeletionRefused() from exc
        notify(ctx=ctx, user=user, event="deletion_cancelled")
    return user
