from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.devices import describe_device
from accounts.policy import get_policy, settings_off_response
from accounts.selectors.activity import SECURITY_ACTIVITY_DAYS, user_security_activity
from accounts.services.audit import Action
from accounts.services.impersonation import SUPPORT_EVENTS

PAGE_SIZE = 25


@require_safe
@login_required
def security_activity(request: HttpRequest) -> HttpResponse:
    if not get_policy(request).enabled:
        return settings_off_response(request)
    events = user_security_activity(user=request.user)  # type: ignore[arg-type]
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = []
    for event in page.object_list:
        # Support's own address and device are not the user's to see.
        support = event.action in SUPPORT_EVENTS
        rows.append(
            {
                "when": event.created_at,
                "label": Action.LABELS.get(event.action, event.action),
                "support": support,
                "device": describe_device(event.user_agent)
                if event.user_agent and not support
                else "",
                "ip_address": "" if support else event.ip_address or "",
                "by_someone_else": event.impersonator_id is not None
                or event.actor_id not in (None, request.user.pk),
            }
        )
    return render(
        request,
        "accounts/security.html",
        {"page": page, "rows": rows, "days": SECURITY_ACTIVITY_DAYS, "active_section": "security"},
    )
