"""Security emails: one call per event, rendered in the recipient's language.

Adding a notification means adding ``templates/accounts/email/<event>_subject.txt``,
``<event>_message.txt`` and ``<event>_message.html``, and one ``notify(...)`` call in
a flow. ``notify`` only schedules: the message is handed to the task worker once
the change is committed (``accounts.tasks``), so a rolled-back change tells no one
and a slow or failing mail server never slows or breaks the page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils.functional import Promise

from accounts.actor import Actor
from accounts.models import User
from portal.logs import current_request_id


def _jsonable(value: Any) -> Any:
    """Task arguments are JSON: datetimes travel tagged, lazy strings as text."""
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, Promise):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def notify(
    *,
    ctx: Actor | None,
    user: User,
    event: str,
    to: str | None = None,
    context: dict[str, Any] | None = None,
) -> None:
    """Sends the ``event`` email to ``to`` (default: the user's address) once the
    current transaction commits."""
    recipient = to if to is not None else user.email
    if not recipient:
        return
    kwargs = {
        "user_id": user.pk,
        "event": event,
        "to": recipient,
        "context": _jsonable(context or {}),
        "ip": (ctx.ip if ctx else None) or "",
        "user_agent": ctx.user_agent if ctx else "",
        "language": ctx.language if ctx else "",
        # The worker's log lines for this delivery carry the request's id.
        "request_id": current_request_id(),
    }

    def enqueue() -> None:
        from accounts.tasks import deliver_email

        deliver_email.enqueue(**kwargs)

    transaction.on_commit(enqueue, robust=True)


def sms_schedule(*, to: str, body: str) -> None:
    """Sends a text message once the current transaction commits."""
    request_id = current_request_id()

    def enqueue() -> None:
        from accounts.tasks import deliver_sms

        deliver_sms.enqueue(to=to, body=str(body), request_id=request_id)

    transaction.on_commit(enqueue, robust=True)


# The state changes are told from several places (the user's pages, the back-office,
# cron commands): one call each, so the message always carries the same facts.


def notify_suspended(user: User, ctx: Actor | None = None) -> None:
    notify(
        ctx=ctx,
        user=user,
        event="suspended",
        context={"reason": user.state_reason, "until": user.suspended_until},
    )


def notify_restored(user: User, ctx: Actor | None = None) -> None:
    notify(ctx=ctx, user=user, event="restored")


def notify_deletion_scheduled(user: User, ctx: Actor | None = None) -> None:
    notify(
        ctx=ctx,
        user=user,
        event="deletion_scheduled",
        context={"when_deleted": user.deletion_scheduled_for},
    )
