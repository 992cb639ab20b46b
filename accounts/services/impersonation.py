"""Impersonation sessions and links.

Sessions: the sessions a staff member opened as someone else.
``accounts.middleware.SessionActivityMiddleware`` marks each such session row of
allauth's usersessions with ``data={"impersonated_by": <staff pk>}``; the session
itself belongs to the impersonated user, so ending the staff member's own sessions
does not reach it.

Links (``ImpersonationTicket``): ``it_`` followed by 43 characters of URL-safe
base64 (32 random bytes, 256 bits); only a keyed SHA-256 of the whole text is
stored, and the row is found by it. A link is used once: ``ticket_use`` sets
``used_at`` with an update conditional on it being empty and the link unexpired.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from allauth.usersessions.models import UserSession
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import ImpersonationTicket, User
from accounts.services.audit import Action

# Events whose address and device are the staff member's: the user sees "Support"
# and the time, never the staff member's IP address or device.
SUPPORT_EVENTS = frozenset(
    {
        Action.IMPERSONATION_STARTED,
        Action.IMPERSONATION_ENDED,
        Action.IMPERSONATION_LINK_CREATED,
    }
)

TICKET_PREFIX = "it_"
TICKET_BYTES = 32
TICKET_LIFETIME = timedelta(seconds=600)
# The longest link token accepted: anything longer is not one of ours.
MAX_TICKET_LENGTH = 80


def impersonations_end(*, staff: User) -> int:
    """Ends every impersonation session ``staff`` started, at once."""
    ended = 0
    for session in UserSession.objects.filter(data__impersonated_by=staff.pk):
        session.end()
        ended += 1
    return ended


def ticket_digest(token: str) -> str:
    return salted_hmac("accounts.impersonation_ticket", token, algorithm="sha256").hexdigest()


@dataclass(frozen=True)
class NewTicket:
    ticket: ImpersonationTicket
    # The link's token, given once to the staff member who asked for it.
    token: str


def ticket_create(*, staff: User, target: User, reason: str) -> NewTicket:
    token = TICKET_PREFIX + secrets.token_urlsafe(TICKET_BYTES)
    now = timezone.now()
    ticket = ImpersonationTicket.objects.create(
        staff=staff,
        target=target,
        reason=reason,
        digest=ticket_digest(token),
        created_at=now,
        expires_at=now + TICKET_LIFETIME,
    )
    return NewTicket(ticket=ticket, token=token)


def ticket_find(token: str) -> ImpersonationTicket | None:
    """The link named by ``token`` (used or expired ones included), or None."""
    if not token.startswith(TICKET_PREFIX) or len(token) > MAX_TICKET_LENGTH:
        return None
    return ImpersonationTicket.objects.filter(digest=ticket_digest(token)).first()


def ticket_live(ticket: ImpersonationTicket) -> bool:
    return ticket.used_at is None and ticket.expires_at > timezone.now()


def ticket_use(ticket: ImpersonationTicket) -> bool:
    """Marks the link used; False when it was used already or has expired (of two
    requests racing for it, one wins)."""
    now = timezone.now()
    used = ImpersonationTicket.objects.filter(
        pk=ticket.pk, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if used:
        ticket.used_at = now
    return bool(used)
