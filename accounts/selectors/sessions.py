"""The user's own sessions (allauth's usersessions), as the sessions page lists them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.devices import describe_device, device_describer
from accounts.models import User
from accounts.prepared import prepared


@dataclass(frozen=True)
class SessionRow:
    pk: int
    device: str
    user_agent: str
    ip: str
    signed_in: datetime
    last_seen: datetime
    current: bool


@prepared
def _sessions(user_id: int, alive_since: datetime) -> QuerySet[UserSession]:
    sessions = UserSession.objects.filter(user_id=user_id, last_seen_at__gte=alive_since)
    # Plain values, not model instances: a page lists dozens of rows.
    fields = ("pk", "user_agent", "ip", "created_at", "last_seen_at", "session_key", "data")
    return sessions.order_by("-last_seen_at", "-pk").values_list(*fields)


def user_sessions_list(*, user: User, current_key: str | None) -> list[SessionRow]:
    """The user's own sessions, newest activity first. Sessions opened by staff
    impersonating the user are not the user's devices: they are left out. Prepared
    (``accounts.prepared``): the page is read far more than it changes."""
    # A session unused for longer than the cookie lives has expired.
    alive_since = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    rows = []
    describe = device_describer()
    for pk, user_agent, ip, created_at, last_seen_at, session_key, data in _sessions(
        user.pk, alive_since
    ):
        if (data or {}).get("impersonated_by"):
            continue
        rows.append(
            SessionRow(
                pk=pk,
                device=describe(user_agent),
                user_agent=user_agent,
                ip=ip,
                signed_in=created_at,
                last_seen=last_seen_at,
                current=session_key == current_key,
            )
        )
    return rows


# The back-office's page and the Management API show this many, most recent first.
STAFF_SESSIONS_SHOWN = 50


@dataclass(frozen=True)
class StaffSessionRow:
    pk: int
    device: str
    user_agent: str
    ip: str
    signed_in: datetime
    last_seen: datetime
    # Opened by staff impersonating the user (not one of the user's devices).
    impersonation: bool


def user_sessions_for_staff(*, user: User) -> list[StaffSessionRow]:
    """The account's sessions as staff see them: every one, impersonations included
    (marked), the ``STAFF_SESSIONS_SHOWN`` most recently active first."""
    sessions = UserSession.objects.filter(user=user).order_by("-last_seen_at", "-pk")
    return [
        StaffSessionRow(
            pk=s.pk,
            device=describe_device(s.user_agent),
            user_agent=s.user_agent,
            ip=s.ip,
            signed_in=s.created_at,
            last_seen=s.last_seen_at,
            impersonation=bool((s.data or {}).get("impersonated_by")),
        )
        for s in sessions[:STAFF_SESSIONS_SHOWN]
    ]
