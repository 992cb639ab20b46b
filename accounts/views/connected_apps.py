"""Connected apps: the OAuth apps the user allowed to act for them, and revoking
one (its tokens die at once). Policy field ``connected_apps``; revoking is one flow
(``accounts.flows.connected_apps``) and needs a recent re-authentication, as
revoking a personal access token does."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from accounts.flows import connected_apps as flows
from accounts.models import User
from accounts.policy import field_editable, section
from accounts.reauth import reauthentication_required
from accounts.selectors.connected_apps import app_name, user_connected_apps
from accounts.web import ctx_for


@require_safe
@login_required
@section(flows.FIELD)
def connected_apps(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    return render(
        request,
        "accounts/connected_apps.html",
        {"apps": user_connected_apps(user=user), "active_section": "connected_apps"},
    )


@require_POST
@login_required
@field_editable(flows.FIELD)
@reauthentication_required
def app_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    # Someone else's grant, or an unknown id, is a 404 (accounts.web).
    grant = flows.app_revoke(ctx=ctx_for(request), pk=pk)
    messages.success(
        request,
        _("“%(name)s” can no longer use your account.") % {"name": app_name(grant.client)},
    )
    return redirect("connected_apps")
