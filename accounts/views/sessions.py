"""Sessions and devices: every signed-in session of the user; end one, or all others."""

from __future__ import annotations

from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from accounts.models import User
from accounts.policy import field_editable, section
from accounts.reauth import reauthentication_required
from accounts.selectors import user_sessions_list
from accounts.services.sessions import session_end, sessions_end_others_by_user


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
    try:
        target = UserSession.objects.get(pk=pk, user=_user(request))
    except UserSession.DoesNotExist as exc:
        raise Http404 from exc
    if (target.data or {}).get("impersonated_by"):
        raise Http404
    if target.session_key == request.session.session_key:
        messages.info(request, _("To end this session, sign out."))
        return redirect("sessions")
    session_end(user=_user(request), session=target, request=request)
    messages.success(request, _("The session was ended."))
    return redirect("sessions")


@require_POST
@login_required
@field_editable("sessions")
@reauthentication_required
def sessions_delete_others(request: HttpRequest) -> HttpResponse:
    count = sessions_end_others_by_user(user=_user(request), request=request)
    messages.success(
        request, _("Every other session was ended.") if count else _("There was no other session.")
    )
    return redirect("sessions")
