from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.models import User
from accounts.policy import get_policy, settings_off_response
from accounts.selectors.activity import (
    SECURITY_ACTIVITY_DAYS,
    SECURITY_ACTIVITY_PAGE,
    RecentActivity,
    activity_entry,
)


@require_safe
@login_required
def security_activity(request: HttpRequest) -> HttpResponse:
    if not get_policy(request).enabled:
        return settings_off_response(request)
    user: User = request.user  # type: ignore[assignment]
    events = RecentActivity(user)
    # Paginator reads count() and slices, all RecentActivity has.
    paginator: Paginator[Any] = Paginator(events, SECURITY_ACTIVITY_PAGE)  # type: ignore[arg-type]
    page = paginator.get_page(request.GET.get("page"))
    rows = [activity_entry(event, user=user) for event in page.object_list]
    return render(
        request,
        "accounts/security.html",
        {"page": page, "rows": rows, "days": SECURITY_ACTIVITY_DAYS, "active_section": "security"},
    )
