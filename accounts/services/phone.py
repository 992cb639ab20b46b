"""The phone number: who has a number, writing a verified one, removing it. The
code that proves a new number is ``accounts.flows.phone_change``."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.actor import Actor
from accounts.models import User
from accounts.services.audit import Action, audit_record


def phone_taken(phone: str, *, exclude: User | None = None) -> User | None:
    """The other account with the number ``phone`` (E.164)."""
    qs = User.objects.filter(phone=phone)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs.first()


@transaction.atomic
def phone_apply(*, user: User, target: str) -> str | None:
    """Makes ``target`` the user's verified number. Returns the old number ('' when
    there was none), or None when another account has ``target``."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    old_phone = locked.phone
    try:
        with transaction.atomic():
            locked.phone, locked.phone_verified = target, True
            locked.save(update_fields=["phone", "phone_verified"])
    except IntegrityError:
        return None
    user.phone, user.phone_verified = target, True
    return old_phone


@transaction.atomic
def phone_remove(*, ctx: Actor, user: User) -> str:
    """Removes the number; returns the old one ('' when there was none)."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    old_phone = locked.phone
    if not old_phone:
        return ""
    locked.phone, locked.phone_verified = "", False
    locked.save(update_fields=["phone", "phone_verified"])
    audit_record(ctx=ctx, action=Action.PHONE_REMOVED, subject=locked, data={"before": old_phone})
    user.phone, user.phone_verified = "", False
    return old_phone
