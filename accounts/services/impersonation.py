"""Impersonation sessions: the sessions a staff member opened as someone else.

``accounts.middleware.SessionActivityMiddleware`` marks each such session row of
allauth's usersessions with ``data={"impersonated_by": <staff pk>}``; the session
itself belongs to the impersonated user, so ending the staff member's own sessions
does not reach it.
"""

from __future__ import annotations

from allauth.usersessions.models import UserSession

from accounts.models import User
from accounts.services.audit import Action

# Events whose address and device are the staff member's: the user sees "Support"
# and the time, never the staff member's IP address or device.
SUPPORT_EVENTS = frozenset({Action.IMPERSONATION_STARTED, Action.IMPERSONATION_ENDED})


def impersonations_end(*, staff: User) -> int:
    """Ends every impersonation session ``staff`` started, at once."""
    ended = 0
    for session in UserSession.objects.filter(data__impersonated_by=staff.pk):
        session.end()
        ended += 1
    return ended
