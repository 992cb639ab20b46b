"""The audit log as staff read it: every event, newest first, filtered."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from accounts.access import access_for_staff
from accounts.actor import Actor
from accounts.models import AuditEvent

# Who may read it: the back-office's audit log page (Django's admin lets "view" or
# "change" read a list; nobody may change an event, ``accounts.admin.audit``).
AUDIT_LOG_PERMISSIONS = ("accounts.view_auditevent", "accounts.change_auditevent")


def audit_log(
    *,
    ctx: Actor,
    subject_id: int | None = None,
    action: str | None = None,
    actor_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The events ``ctx.user`` may read (403 without the permission), newest first:
    about ``subject_id``, of ``action``, caused by ``actor_id``, from ``since``
    (included) to ``until`` (excluded)."""
    access_for_staff(ctx, AUDIT_LOG_PERMISSIONS)
    events = AuditEvent.objects.select_related("actor", "impersonator")
    if subject_id is not None:
        events = events.filter(subject_id=subject_id)
    if action:
        events = events.filter(action=action)
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return events.order_by("-created_at", "-id")


def audit_events_after(
    events: QuerySet[AuditEvent], position: tuple[datetime, int]
) -> QuerySet[AuditEvent]:
    """Of ``events`` (newest first), those after the event at ``position`` (time,
    id) in this order: the next page (keyset paging)."""
    at, pk = position
    return events.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
