"""Data export and account deletion."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.flows import deletion as deletion_flows
from accounts.flows.export import data_export
from accounts.forms import DeleteAccountForm
from accounts.models import User
from accounts.policy import field_editable, get_policy, section
from accounts.reauth import reauthentication_required
from accounts.web import ctx_for


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


# --- Data export ------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@section("data_export")
def export(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _download(request)
    return render(request, "accounts/export.html", {"active_section": "export"})


@field_editable("data_export")
@reauthentication_required
def _download(request: HttpRequest) -> HttpResponse:
    # The flow counts the download against the "portal_data_export" rate limit.
    result = data_export(ctx=ctx_for(request))
    body = json.dumps(result.data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    response["Cache-Control"] = "no-store"
    return response


# --- Deletion ------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@section("delete_account")
def delete(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = DeleteAccountForm(request.POST or None, user=user, policy=get_policy(request))
    if request.method == "POST":
        return _schedule(request, form)
    return _page(request, form)


def _page(request: HttpRequest, form: DeleteAccountForm, status: int = 200) -> HttpResponse:
    return render(
        request,
        "accounts/delete.html",
        {
            "form": form,
            "grace_days": settings.ACCOUNT_DELETION_GRACE_DAYS,
            "active_section": "delete",
        },
        status=status,
    )


@field_editable("delete_account")
@reauthentication_required
def _schedule(request: HttpRequest, form: DeleteAccountForm) -> HttpResponse:
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        scheduled = deletion_flows.deletion_schedule(ctx=ctx_for(request))
    except deletion_flows.DeletionRefused:
        return redirect("settings_home")
    logout(request)
    messages.info(
        request,
        _("Your account will be deleted on %(date)s. Sign in before then to cancel.")
        % {"date": timezone.localtime(scheduled.deletion_scheduled_for).date().isoformat()},
    )
    return redirect("account_login")


@require_http_methods(["GET", "HEAD"])
@login_required
def deletion_pending(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if user.state != User.State.PENDING_DELETION:
        return redirect("settings_home")
    return render(request, "accounts/deletion_pending.html", {"when": user.deletion_scheduled_for})


@require_POST
@login_required
def deletion_cancel(request: HttpRequest) -> HttpResponse:
    try:
        deletion_flows.deletion_cancel(ctx=ctx_for(request))
    except deletion_flows.DeletionRefused:
        return redirect("settings_home")
    messages.success(request, _("Your account will not be deleted. Welcome back."))
    return redirect("settings_home")
