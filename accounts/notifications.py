"""Security emails: one call per event, rendered in the recipient's language.

Adding a notification means adding ``templates/accounts/email/<event>_subject.txt``,
``<event>_message.txt`` and ``<event>_message.html``, and one ``notify(...)`` call.
Messages are sent after the change is committed (the caller's finalize step).
"""

from __future__ import annotations

import logging
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.devices import describe_device
from accounts.models import User
from accounts.services.audit import client_ip

logger = logging.getLogger(__name__)


def _language(user: User, request: HttpRequest | None) -> str:
    languages = {code for code, _name in settings.LANGUAGES}
    if user.language in languages:
        return user.language
    if request is not None and getattr(request, "LANGUAGE_CODE", None) in languages:
        return request.LANGUAGE_CODE  # type: ignore[attr-defined,no-any-return]
    return settings.LANGUAGE_CODE


def _zone(user: User) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(user.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def notify(
    *,
    user: User,
    event: str,
    request: HttpRequest | None = None,
    to: str | None = None,
    context: dict[str, Any] | None = None,
) -> bool:
    """Sends the ``event`` email to ``to`` (default: the user's address).

    Returns whether a message was sent. A failing mail server is logged, never
    raised: the change it reports has already happened.
    """
    recipient = to if to is not None else user.email
    if not recipient:
        return False
    ctx = {
        "user": user,
        "portal_name": settings.PORTAL_NAME,
        "site_url": settings.SITE_URL,
        "when": timezone.now(),
        "ip_address": client_ip(request) or "",
        "device": describe_device(request.headers.get("User-Agent", "")) if request else "",
        "activity_url": f"{settings.SITE_URL}/settings/security/",
        "reset_url": f"{settings.SITE_URL}/accounts/password/reset/",
        **(context or {}),
    }
    with translation.override(_language(user, request)), timezone.override(_zone(user)):
        base = f"accounts/email/{event}"
        subject = " ".join(render_to_string(f"{base}_subject.txt", ctx).split())
        text = render_to_string(f"{base}_message.txt", ctx)
        html = render_to_string(f"{base}_message.html", ctx)
    message = EmailMultiAlternatives(
        subject=f"[{settings.PORTAL_NAME}] {subject}", body=text, to=[recipient]
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception:  # noqa: BLE001 - see docstring
        logger.exception("could not send the %s notification to user %s", event, user.pk)
        return False
    return True


# The state changes are told from several places (the user's pages, the back-office,
# cron commands): one call each, so the message always carries the same facts.


def notify_suspended(user: User) -> None:
    notify(
        user=user,
        event="suspended",
        context={"reason": user.state_reason, "until": user.suspended_until},
    )


def notify_restored(user: User) -> None:
    notify(user=user, event="restored")


def notify_deletion_scheduled(user: User, request: HttpRequest | None = None) -> None:
    notify(
        user=user,
        event="deletion_scheduled",
        request=request,
        context={"when_deleted": user.deletion_scheduled_for},
    )
