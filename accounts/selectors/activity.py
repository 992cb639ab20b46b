"""The user's security activity: their own audit events, as they read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.devices import describe_device
from accounts.models import AuditEvent, User
from accounts.prepared import prepared
from accounts.services.audit import Action
from accounts.services.impersonation import SUPPORT_EVENTS

SECURITY_ACTIVITY_DAYS = 90
# The settings page lists this many events a page.
SECURITY_ACTIVITY_PAGE = 25


def user_security_activity(
    *,
    user: User,
    days: int = SECURITY_ACTIVITY_DAYS,
    before: tuple[datetime, int] | None = None,
) -> QuerySet[AuditEvent]:
    """The user's own audit events of the last ``days`` days, newest first;
    with ``before`` (time, id), only those that come after that event in this
    order (keyset paging)."""
    since = timezone.now() - timedelta(days=days)
    events = AuditEvent.objects.filter(subject=user, created_at__gte=since)
    if before is not None:
        at, pk = before
        events = events.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
    return events.order_by("-created_at", "-id").only(
        "created_at", "action", "ip_address", "user_agent", "impersonator_id", "actor_id"
    )


@dataclass(frozen=True)
class ActivityEntry:
    """One event as its subject reads it."""

    id: int
    action: str
    label: Any
    when: datetime
    # Support started or stopped viewing the account as the user.
    support: bool
    device: str
    user_agent: str
    ip_address: str | None
    # Someone else (staff) acted, or staff acted while viewing the account as the user.
    by_someone_else: bool


# The fields ``activity_entry`` reads, in ``EventFields``' order.
EVENT_FIELDS = (
    "id",
    "action",
    "created_at",
    "user_agent",
    "ip_address",
    "impersonator_id",
    "actor_id",
)


class EventFields(Protocol):
    """An audit event as ``activity_entry`` reads it: the model, or the named row of
    ``values_list(*EVENT_FIELDS, named=True)`` (a page of rows costs less than a
    page of model instances)."""

    id: int
    action: str
    created_at: datetime
    user_agent: str
    ip_address: str | None
    impersonator_id: int | None
    actor_id: int | None


def activity_entry(event: AuditEvent | EventFields, *, user: User) -> ActivityEntry:
    # Support's own address and device are not the user's to see.
    support = event.action in SUPPORT_EVENTS
    return ActivityEntry(
        id=event.id,
        action=event.action,
        label=Action.LABELS.get(event.action, event.action),
        when=event.created_at,
        support=support,
        device=describe_device(event.user_agent) if event.user_agent and not support else "",
        user_agent="" if support else event.user_agent,
        ip_address=None if support else (event.ip_address or None),
        by_someone_else=event.impersonator_id is not None or event.actor_id not in (None, user.pk),
    )


@prepared
def _first_page(user_id: int, since: datetime) -> QuerySet[AuditEvent]:
    """The newest events since ``since``."""
    events = AuditEvent.objects.filter(subject_id=user_id, created_at__gte=since)
    return events.order_by("-created_at", "-id").values_list(*EVENT_FIELDS, named=True)[
        :SECURITY_ACTIVITY_PAGE
    ]


@prepared
def _count(user_id: int, since: datetime) -> QuerySet[Any, int]:
    """How many events there are since ``since`` (no row when none): one group, the
    user's. Counted apart: a window count over the page's query makes the
    database read every event, not only the page's."""
    events = AuditEvent.objects.filter(subject_id=user_id, created_at__gte=since)
    return events.values("subject_id").annotate(n=Count("id")).values_list("n", flat=True)


class RecentActivity:
    """The user's events of the last ``SECURITY_ACTIVITY_DAYS`` days as the settings
    page's Paginator reads them (``count()``, slices), named rows of
    ``EVENT_FIELDS``. The count and the first page — what the page shows unless
    asked for another — are prepared queries (``accounts.prepared``); other pages
    come from ``user_security_activity``."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.since = timezone.now() - timedelta(days=SECURITY_ACTIVITY_DAYS)

    def count(self) -> int:
        return next(iter(_count(self.user.pk, self.since)), 0)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, item: slice) -> list[Any]:
        start, stop = item.start or 0, item.stop
        if start == 0 and stop is not None and stop <= SECURITY_ACTIVITY_PAGE:
            return _first_page(self.user.pk, self.since)[:stop]
        events = user_security_activity(user=self.user).filter(created_at__gte=self.since)
        return list(events.values_list(*EVENT_FIELDS, named=True)[item])
