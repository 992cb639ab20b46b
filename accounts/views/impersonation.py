"""Starting an impersonation from the back-office, with a reason."""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from hijack.views import AcquireUserView, ReleaseUserView

from accounts.impersonation import REASON_KEY, STARTED_KEY, can_impersonate, max_seconds
from accounts.models import User


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Why you need to see the account as its owner. It is recorded."),
    )

    def clean_reason(self) -> str:
        value = self.cleaned_data["reason"].strip()
        if len(value) < 5:
            raise forms.ValidationError(gettext_lazy("Give a real reason (at least 5 characters)."))
        return value


def _check(request: HttpRequest, target: User) -> None:
    if not request.user.is_verified():  # type: ignore[union-attr]
        raise PermissionDenied(_("Verify your second factor first."))
    if not can_impersonate(hijacker=request.user, hijacked=target):
        raise PermissionDenied(_("You may not impersonate this account."))


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
    target = get_object_or_404(User, pk=pk)
    _check(request, target)
    form = ReasonForm(request.POST or None)
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
            "title": _("Impersonate %(user)s") % {"user": target.username},
        },
        status=400 if request.method == "POST" else 200,
    )


def back_to_user_page(request: HttpRequest, pk: int) -> HttpResponse:
    return redirect("admin:accounts_user_change", pk)


def stop_impersonating(request: HttpRequest) -> HttpResponse:
    """django-hijack's release view; the reason is kept for the "ended" audit event
    (signing in again as the staff member clears the session)."""
    request.portal_impersonation_reason = request.session.get(REASON_KEY, "")  # type: ignore[attr-defined]
    return ReleaseUserView.as_view()(request)
