"""Reads about one-time codes: the change waiting for its code, the address a
re-authentication code goes to."""

from __future__ import annotations

from allauth.account.models import EmailAddress

from accounts.models import User, VerificationCode


def code_pending(*, user: User, purpose: str) -> VerificationCode | None:
    """The user's live (unused) code for ``purpose``, if any."""
    return (
        VerificationCode.objects.filter(user=user, purpose=purpose, used_at__isnull=True)
        .order_by("-created_at", "-pk")
        .first()
    )


def code_pending_target(*, user: User, purpose: str) -> str | None:
    """What the live code for ``purpose`` would confirm (an address, a number)."""
    row = code_pending(user=user, purpose=purpose)
    return row.target if row is not None else None


def verified_primary_email(user: User) -> str | None:
    row = EmailAddress.objects.filter(user=user, primary=True, verified=True).first()
    return row.email if row is not None else None
