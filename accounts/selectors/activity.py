"""The user's security activity: their own audit events, as they read them."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import AuditEvent, User

SECURITY_ACTIVITY_DAYS = 90


def user_security_activity(
    *, user: User, days: int = SECURITY_ACTIVITY_DAYS
) -> QuerySet[AuditEvent]:
    """The user's own audit events of the last ``days`` days, newest first."""
    since = timezone.now() - timedelta(days=days)
    return (
        AuditEvent.objects.filter(subject=user, created_at__gte=since)
        .order_by("-created_at", "-id")
        .only("created_at", "action", "ip_address", "user_agent", "impersonator_id", "actor_id")
    )
