"""Starting an impersonation from the back-office, with a reason, or from a
single-use link the staff member asked for through the Management API; and
ending it. Both starts go through ``start_impersonation``."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from hijack.views import AcquireUserView, ReleaseUserView

from accounts.admin.forms import impersonation_form
from accounts.flows.errors import AccessDenied
from accounts.flows.impersonation import (
    LinkGone,
    active_staff,
    can_impersonate,
    impersonation_check,
    impersonation_link_check,
    impersonation_link_use,
)
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

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # The target is ours, not a posted ``user_pk`` (a link's form has none).
        return super(AcquireUserView, self).dispatch(request, *args, **kwargs)


def start_impersonation(
    request: HttpRequest, target: User, *, reason: str, link: int | None = None
) -> HttpResponse:
    """Switches this browser to ``target`` (checked by the caller with
    ``impersonation_check``; django-hijack checks ``can_impersonate`` again), starts
    the time limit and keeps the reason for the audit events of the start and the
    end (``accounts.signals``). ``link``: the id of the link it starts from."""
    request.portal_impersonation_reason = reason  # type: ignore[attr-defined]
    request.portal_impersonation_link = link  # type: ignore[attr-defined]
    response = _Acquire.as_view(target=target)(request)
    if response.status_code in (301, 302):
        request.session[STARTED_KEY] = time.time()
        request.session[REASON_KEY] = reason
        messages.warning(
            request,
            _(
                "You are now viewing the account of %(user)s. "
                "It ends by itself after %(minutes)d minutes."
            )
            % {"user": target.username, "minutes": max_seconds() // 60},
        )
    return response


def _refusal(error: AccessDenied) -> Exception:
    if error.status == 404:
        return Http404()
    return PermissionDenied(error.message)


@staff_member_required
def impersonate(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        target = impersonation_check(
            ctx=actor_from_request(request, surface="admin"),
            user_pk=pk,
            second_factor_verified=request.user.is_verified(),  # type: ignore[union-attr]
        )
    except AccessDenied as error:
        raise _refusal(error) from error
    form = impersonation_form(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        return start_impersonation(request, target, reason=form.cleaned_data["reason"])
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


@require_http_methods(["GET", "POST"])
def impersonate_by_link(request: HttpRequest, token: str) -> HttpResponse:
    """A link from the Management API, opened in the browser of the staff member who
    asked for it (the back-office's door: signed in, second factor verified; else
    they sign in and come back). GET shows what it will do; the button (POST) uses
    the link up and starts the impersonation, every rule checked again then."""
    ctx = actor_from_request(request, surface="admin")
    verified = request.user.is_verified()  # type: ignore[union-attr]
    try:
        if request.method != "POST":
            ticket, target = impersonation_link_check(
                ctx=ctx, token=token, second_factor_verified=verified
            )
        else:
            with transaction.atomic():
                ticket, target = impersonation_link_use(
                    ctx=ctx, token=token, second_factor_verified=verified
                )
                return start_impersonation(request, target, reason=ticket.reason, link=ticket.pk)
    except LinkGone as error:
        return render(
            request,
            "admin/accounts/user/impersonation_link_gone.html",
            {"title": _("Impersonation link no longer valid"), "message": error.message},
            status=error.status,
        )
    except AccessDenied as error:
        raise _refusal(error) from error
    return render(
        request,
        "admin/accounts/user/impersonation_link.html",
        {
            "target": target,
            "reason": ticket.reason,
            "expires_at": ticket.expires_at,
            "minutes": max_seconds() // 60,
            "title": _("Impersonate %(user)s") % {"user": target.username},
        },
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
