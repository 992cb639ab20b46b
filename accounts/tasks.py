"""Work done off the request by the task worker (``manage.py db_worker``): security
emails and text messages. Scheduled by ``accounts.notifications`` on commit.

A delivery that fails is logged and tried again later (``DELIVERY_RETRY_DELAYS``),
never shown to the user: the change it reports has already happened.

Each task takes the ``request_id`` of the request that scheduled it: the worker's
log lines for the task carry it (``portal.logs.task_started_bind``), and so do the
later attempts.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.tasks import default_task_backend, task
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.devices import describe_device
from accounts.metrics import task_failure_counted
from accounts.models import User
from accounts.sms import SmsError, send_sms

logger = logging.getLogger(__name__)


def _revive(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return dt.datetime.fromisoformat(value["$datetime"])
        return {k: _revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revive(v) for v in value]
    return value


def _language(user: User, fallback: str) -> str:
    languages = {code for code, _name in settings.LANGUAGES}
    for candidate in (user.language, fallback):
        if candidate in languages:
            return candidate
    return settings.LANGUAGE_CODE


def _zone(user: User) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(user.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _retry(the_task: Any, attempt: int, **kwargs: Any) -> None:
    """Enqueues another attempt after the configured delay, when the backend can wait."""
    delays = settings.DELIVERY_RETRY_DELAYS
    if attempt >= len(delays) or not default_task_backend.supports_defer:
        task_failure_counted(task=the_task.name, gave_up=True)
        logger.error("giving up delivering %s after %d attempts", the_task.name, attempt + 1)
        return
    task_failure_counted(task=the_task.name, gave_up=False)
    run_after = timezone.now() + dt.timedelta(seconds=delays[attempt])
    the_task.using(run_after=run_after).enqueue(attempt=attempt + 1, **kwargs)


@task
def deliver_email(
    *,
    user_id: int,
    event: str,
    to: str,
    context: dict[str, Any],
    ip: str = "",
    user_agent: str = "",
    language: str = "",
    attempt: int = 0,
    request_id: str = "",
) -> bool:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        logger.info("not sending %s: user %s no longer exists", event, user_id)
        return False
    with translation.override(_language(user, language)), timezone.override(_zone(user)):
        ctx = {
            "user": user,
            "portal_name": settings.PORTAL_NAME,
            "site_url": settings.SITE_URL,
            "when": timezone.now(),
            "ip_address": ip,
            "device": describe_device(user_agent) if user_agent else "",
            "activity_url": f"{settings.SITE_URL}/settings/security/",
            "reset_url": f"{settings.SITE_URL}/accounts/password/reset/",
            **_revive(context),
        }
        base = f"accounts/email/{event}"
        subject = " ".join(render_to_string(f"{base}_subject.txt", ctx).split())
        text = render_to_string(f"{base}_message.txt", ctx)
        html = render_to_string(f"{base}_message.html", ctx)
    message = EmailMultiAlternatives(
        subject=f"[{settings.PORTAL_NAME}] {subject}", body=text, to=[to]
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception:  # noqa: BLE001 - any mail failure is retried, never raised
        logger.warning("could not send the %s notification to user %s", event, user_id)
        _retry(
            deliver_email,
            attempt,
            user_id=user_id,
            event=event,
            to=to,
            context=context,
            ip=ip,
            user_agent=user_agent,
            language=language,
            request_id=request_id,
        )
        return False
    return True


@task
def deliver_sms(*, to: str, body: str, attempt: int = 0, request_id: str = "") -> bool:
    try:
        send_sms(to, body)
    except SmsError:
        logger.warning("could not send a text message (attempt %d)", attempt + 1)
        _retry(deliver_sms, attempt, to=to, body=body, request_id=request_id)
        return False
    return True
