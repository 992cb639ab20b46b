"""The account's data and life: security activity (cursor paging), the data
export, and scheduling or cancelling the account's deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Field, Query, Router, Schema

from accounts.api.auth import (
    ACCOUNT_AUTH,
    api_ctx,
    app_token_auth,
    pending_deletion_session_auth,
    token_auth,
)
from accounts.api.forms import door, valid
from accounts.api.schemas import COMMON_ERRORS, Done, Error, Input
from accounts.flows import deletion as deletion_flows
from accounts.flows.export import data_export
from accounts.forms import DeleteAccountForm
from accounts.models import AuditEvent, User
from accounts.policy import get_policy, require_readable
from accounts.selectors.activity import activity_entry, user_security_activity

router = Router(tags=["my-account"], auth=ACCOUNT_AUTH)


# --- Security activity ----------------------------------------------------------------

CURSOR_SALT = "accounts.api.security-activity"
DEFAULT_PAGE_SIZE = 20
BAD_CURSOR = _("This cursor is not valid. Start again from the first page.")


class ActivityItem(Schema):
    id: int
    action: str
    label: str
    time: datetime
    ip_address: str | None
    user_agent: str
    device: str
    by_staff: bool = Field(
        description="Staff made the change, or made it while viewing the account as the user."
    )


class ActivityPage(Schema):
    items: list[ActivityItem]
    next_cursor: str | None = Field(
        description="Send it as `cursor` for the next (older) page; null on the last page."
    )


def _cursor(user: User, event: AuditEvent) -> str:
    return signing.dumps([user.pk, event.created_at.isoformat(), event.pk], salt=CURSOR_SALT)


def _position(user: User, cursor: str) -> tuple[datetime, int]:
    """The (time, id) a cursor of this user's points at; ``ValidationError`` otherwise."""
    try:
        owner, at, pk = signing.loads(cursor, salt=CURSOR_SALT)
        if owner != user.pk or not isinstance(pk, int):
            raise ValueError(cursor)
        return datetime.fromisoformat(at), pk
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise ValidationError({"cursor": [BAD_CURSOR]}) from exc


@router.get("/security-activity", response={200: ActivityPage, **COMMON_ERRORS})
def security_activity(
    request: HttpRequest,
    cursor: str | None = Query(None, max_length=500),
    page_size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=settings.API_PAGE_SIZE_MAX),
) -> Any:
    """The account's security events of the last 90 days, newest first. Follow
    `next_cursor` for older ones."""
    api_ctx(request)
    require_readable(get_policy(request))
    user: User = request.user  # type: ignore[assignment]
    before = _position(user, cursor) if cursor else None
    events = list(user_security_activity(user=user, before=before)[: page_size + 1])
    more = len(events) > page_size
    events = events[:page_size]
    items = []
    for event in events:
        entry = activity_entry(event, user=user)
        items.append(
            {
                "id": entry.id,
                "action": entry.action,
                "label": str(entry.label),
                "time": entry.when,
                "ip_address": entry.ip_address,
                "user_agent": entry.user_agent,
                "device": entry.device,
                "by_staff": entry.by_someone_else,
            }
        )
    return {"items": items, "next_cursor": _cursor(user, events[-1]) if more else None}


# --- Data export ----------------------------------------------------------------------


@router.get("/export", response={200: dict[str, Any], **COMMON_ERRORS})
def export(request: HttpRequest, response: HttpResponse) -> Any:
    """Everything the portal holds about the account, as the settings page's
    download (no secrets). Needs a verification; counted against the page's limit."""
    ctx = api_ctx(request)
    door(request, ctx, field="data_export", reauth=True, sensitive=True)
    result = data_export(ctx=ctx)
    response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    return result.data


# --- Deletion -------------------------------------------------------------------------


class DeletionIn(Input):
    confirmation: str = Field(max_length=150, description="The account's username.")


class DeletionScheduled(Schema):
    deletion_scheduled_for: datetime


@router.post("/deletion", response={200: DeletionScheduled, 409: Error, **COMMON_ERRORS})
def deletion_schedule(request: HttpRequest, payload: DeletionIn) -> Any:
    """Schedules the account's deletion after the grace period. Every session
    ends and every token is revoked at once (this one too); signing in to the
    settings pages before the date lets the user cancel it. Needs a verification."""
    ctx = api_ctx(request)
    door(request, ctx, field="delete_account", reauth=True, sensitive=True)
    user: User = request.user  # type: ignore[assignment]
    valid(DeleteAccountForm(payload.model_dump(), user=user, policy=get_policy(request)))
    scheduled = deletion_flows.deletion_schedule(ctx=ctx)
    if getattr(request, "api_scopes", None) is None:
        # The session acting was ended with the others: forget it in this answer too.
        logout(request)
    return {"deletion_scheduled_for": scheduled.deletion_scheduled_for}


@router.delete(
    "/deletion",
    response={200: Done, 409: Error, **COMMON_ERRORS},
    auth=[token_auth, app_token_auth, pending_deletion_session_auth],
)
def deletion_cancel(request: HttpRequest) -> Any:
    """Cancels a scheduled deletion during the grace period. A pending account's
    tokens are revoked: this is called with the session of the account signed in
    again (the one operation that session may make)."""
    ctx = api_ctx(request)
    deletion_flows.deletion_cancel(ctx=ctx)
    return {"ok": True}
