"""The audit log, read-only: every event, newest first, with cursor paging."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Field, Query, Router, Schema

from accounts.api.management.auth import MANAGEMENT_AUTH, staff_ctx
from accounts.api.schemas import COMMON_ERRORS
from accounts.models import AuditEvent
from accounts.selectors.audit import audit_events_after, audit_log
from accounts.services.audit import Action

router = Router(tags=["management"], auth=MANAGEMENT_AUTH)

CURSOR_SALT = "accounts.api.management.audit-events"
DEFAULT_PAGE_SIZE = 50
MAX_ID = 2**63 - 1
BAD_CURSOR = _("This cursor is not valid. Start again from the first page.")
# Query parameters of a type ruff does not know as immutable, made once.
SINCE = Query(None, description="From this time (included); without a zone, UTC.")
UNTIL = Query(None, description="Up to this time (excluded); without a zone, UTC.")
BAD_TIME = _("Enter a date and time such as 2026-12-31T23:59:00Z.")


class Person(Schema):
    id: int
    username: str


class Subject(Schema):
    id: int | None = Field(description="Null once the account is deleted.")
    label: str = Field(description="Its username then; a pseudonym once deleted.")


class AuditEventOut(Schema):
    id: int
    time: datetime
    action: str
    label: str
    actor: Person | None = Field(description="Null for the system (a scheduled command).")
    subject: Subject | None = Field(description="Null for a change of no account (the policy).")
    impersonator: Person | None = Field(
        description="The staff member who acted while viewing the account as its owner."
    )
    ip: str | None
    user_agent: str
    surface: str = Field(description='web, admin, api, token, cli ("" for older events).')
    data: dict[str, Any]


class AuditPage(Schema):
    items: list[AuditEventOut]
    next_cursor: str | None = Field(
        description="Send it as `cursor` for the next (older) page; null on the last page."
    )


def _cursor(event: AuditEvent) -> str:
    return signing.dumps([event.created_at.isoformat(), event.pk], salt=CURSOR_SALT)


def _position(cursor: str) -> tuple[datetime, int]:
    """The (time, id) a cursor points at; ``ValidationError`` otherwise."""
    try:
        at, pk = signing.loads(cursor, salt=CURSOR_SALT)
        if not isinstance(pk, int) or not isinstance(at, str):
            raise ValueError(cursor)
        return datetime.fromisoformat(at), pk
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise ValidationError({"cursor": [BAD_CURSOR]}) from exc


def _utc(value: datetime | None, name: str) -> datetime | None:
    """In UTC; a time without a zone is UTC already."""
    if value is None:
        return None
    if timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # the year 10000 in UTC
        raise ValidationError({name: [BAD_TIME]}) from exc


def _person(user: Any) -> dict[str, Any] | None:
    return {"id": user.pk, "username": user.username} if user is not None else None


def _event(event: AuditEvent) -> dict[str, Any]:
    has_subject = event.subject_id is not None or event.subject_label
    return {
        "id": event.pk,
        "time": event.created_at,
        "action": event.action,
        "label": str(Action.LABELS.get(event.action, event.action)),
        "actor": _person(event.actor),
        "subject": {"id": event.subject_id, "label": event.subject_label} if has_subject else None,
        "impersonator": _person(event.impersonator),
        "ip": event.ip_address or None,
        "user_agent": event.user_agent,
        "surface": event.surface,
        "data": event.data if isinstance(event.data, dict) else {"value": event.data},
    }


@router.get("/audit-events", response={200: AuditPage, **COMMON_ERRORS})
def audit_events(
    request: HttpRequest,
    user: int | None = Query(None, ge=1, le=MAX_ID, description="The account it is about."),
    action: str | None = Query(
        None, max_length=64, pattern=r"^[a-z0-9_.]+$", description="e.g. `account.suspended`."
    ),
    actor: int | None = Query(None, ge=1, le=MAX_ID, description="Who acted."),
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
    cursor: str | None = Query(None, max_length=500),
    page_size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=settings.API_PAGE_SIZE_MAX),
) -> Any:
    """The audit log, newest first, as the back-office's audit log shows it (needs
    its permission, "view audit event"). Follow `next_cursor` for older events."""
    found = audit_log(
        ctx=staff_ctx(request),
        subject_id=user,
        action=action,
        actor_id=actor,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
    )
    if cursor:
        found = audit_events_after(found, _position(cursor))
    events = list(found[: page_size + 1])
    more = len(events) > page_size
    events = events[:page_size]
    return {
        "items": [_event(event) for event in events],
        "next_cursor": _cursor(events[-1]) if more else None,
    }
