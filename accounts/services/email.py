"""The primary email address: who has an address, and writing a new one (the
user's column and allauth's ``EmailAddress`` rows). The code that proves the new
address is ``accounts.flows.email_change``."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.db import IntegrityError, transaction

from accounts.emails import email_key
from accounts.models import User


def email_taken(address: str, *, exclude: User | None = None) -> User | None:
    """The other account whose address is ``address`` or a look-alike of it."""
    qs = User.objects.filter(email_key=email_key(address))
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs.first()


@transaction.atomic
def email_apply(*, user: User, target: str) -> str | None:
    """Makes ``target`` the user's only, verified, primary address. Returns the
    old address, or None when another account took ``target`` meanwhile."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    old_email = locked.email
    if email_taken(target, exclude=locked) is not None:
        return None
    try:
        with transaction.atomic():
            locked.email = target
            locked.save(update_fields=["email"])
    except IntegrityError:
        return None
    EmailAddress.objects.filter(user=locked).delete()
    EmailAddress.objects.create(user=locked, email=target, verified=True, primary=True)
    user.email = locked.email
    return old_email
