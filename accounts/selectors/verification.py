"""Reads about one-time codes: the change waiting for its code, the address a
re-authentication code goes to."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.db.models import QuerySet

from accounts.models import User, VerificationCode
from accounts.prepared import prepared


def _pending(user: User | int, purpose: str) -> QuerySet[VerificationCode]:
    return VerificationCode.objects.filter(
        user=user, purpose=purpose, used_at__isnull=True
    ).order_by("-created_at", "-pk")


def code_pending(*, user: User, purpose: str) -> VerificationCode | None:
    """The user's live (unused) code for ``purpose``, if any."""
    return _pending(user, purpose).first()


@prepared
def _pending_target(user_id: int, purpose: str) -> QuerySet[VerificationCode, str]:
    return _pending(user_id, purpose).values_list("target", flat=True)[:1]


def code_pending_target(*, user: User, purpose: str) -> str | None:
    """What the live code for ``purpose`` would confirm (an address, a number):
    prepared (``accounts.prepared``), the email and phone pages read it."""
    return next(iter(_pending_target(user.pk, purpose)), None)


def verified_primary_email(user: User) -> str | None:
    row = EmailAddress.objects.filter(user=user, primary=True, verified=True).first()
    return row.email if row is not None else None
