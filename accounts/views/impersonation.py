"""Starting an impersonation from the back-office, with a reason; and ending it."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from hijack.views import AcquireUserView, ReleaseUserView

from accounts.admin.forms import impersonation_form
from accounts.flows.errors import AccessDenied
from accounts.flows.impersonation import active_staff, can_impersonate, impersonation_check
from accounts.impersonation import (
    REASON_KEY,
    STARTED_KEY,
    impersonator_pk,
    is_impersonating,
    max_seconds,
    sign_out_orphan,
)
from accounts.models import User
from accounts.web import actor_from_request


class _Acquire(AcquireUserView):
    """django-hijack's acquire view, on our target and our permission rule."""

    target: User | None = None

    def test_func(self) -> bool:
        return can_impersonate(hijacker=self.request.user, hijacked=self.target)

    def get_object(self, queryset: Any = None) -> User:
        assert self.target is not None
        return self.target

    def get_success_url(self) -> str:
        return reverse("settings_home")


@staff_member_required
def impersonate(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        target = impersonation_check(
            ctx=actor_from_request(request, surface="admin"),
            user_pk=pk,
            second_factor_verified=request.user.is_verified(),  # type: ignore[union-attr]
        )
    except AccessDenied as error:
        if error.status == 404:
            raise Http404 from error
        raise PermissionDenied(error.message) from error
    form = impersonation_form(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        response = _Acquire.as_view(target=target)(request)
        if response.status_code in (301, 302):
            request.session[STARTED_KEY] = time.time()
            request.session[REASON_KEY] = form.cleaned_data["reason"]
            messages.warning(
                request,
                _(
                    "You are now viewing the account of %(user)s. "
                    "It ends by itself after %(minutes)d minutes."
                )
                % {"user": target.username, "minutes": max_seconds() // 60},
            )
        return response
    return render(
        request,
        "admin/accounts/user/impersonate.html",
        {
            "form": form,
            "target": target,
            "minutes": max_seconds() // 60,
            "title": _("Impersonate %(user)s") % {"user": target.username},
        },
        status=400 if request.method == "POST" else 200,
    )


def stop_impersonating(request: HttpRequest) -> HttpResponse:
    """django-hijack's release view; the reason is kept for the "ended" audit event
    (signing in again as the staff member clears the session). A staff member who
    is gone or lost their access cannot be returned to: the session is signed out."""
    if (
        request.method == "POST"
        and is_impersonating(request)
        and active_staff(impersonator_pk(request)) is None
    ):
        return sign_out_orphan(request)
    request.portal_impersonation_reason = request.session.get(REASON_KEY, "")  # type: ignore[attr-defined]
    return ReleaseUserView.as_view()(request)
