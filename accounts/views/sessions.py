"""Sessions and devices: every signed-in session of the user; end one, or all others."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from accounts.flows import sessions as flows
from accounts.models import User
from accounts.policy import field_editable, section
from accounts.reauth import reauthentication_required
from accounts.selectors.sessions import user_sessions_list
from accounts.web import ctx_for


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


@require_safe
@login_required
@section("sessions")
def sessions(request: HttpRequest) -> HttpResponse:
    rows = user_sessions_list(user=_user(request), current_key=request.session.session_key)
    return render(request, "accounts/sessions.html", {"rows": rows, "active_section": "sessions"})


@require_POST
@login_required
@field_editable("sessions")
@reauthentication_required
def session_delete(request: HttpRequest, pk: int) -> HttpResponse:
    # Someone else's session (or one opened by staff) is a 404 (accounts.web).
    try:
        flows.session_end(ctx=ctx_for(request), pk=pk)
    except flows.CurrentSession as exc:
        messages.info(request, str(exc.message))
        return redirect("sessions")
    messages.success(request, _("The session was ended."))
    return redirect("sessions")


@require_POST
@login_required
@field_editable("sessions")
@reauthentication_required
def sessions_delete_others(request: HttpRequest) -> HttpResponse:
    count = flows.sessions_end_others(ctx=ctx_for(request))
    messages.success(
        request, _("Every other session was ended.") if count else _("There was no other session.")
    )
    return redirect("sessions")
