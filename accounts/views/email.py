"""The email section: change the primary address, proven by a code."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import CodeForm, EmailChangeForm
from accounts.models import User
from accounts.notifications import notify
from accounts.policy import field_editable, get_policy, section
from accounts.ratelimit import consume_or_429, rate_limit
from accounts.reauth import reauthentication_required
from accounts.services.codes import CodeResult, Purpose, code_cancel, code_timeout
from accounts.services.email import (
    ChangeStarted,
    email_change_confirm,
    email_change_pending,
    email_change_start,
)
from accounts.views.codes import code_error


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _send(request: HttpRequest, user: User, started: ChangeStarted) -> None:
    """Finalize a start: the code to a free address, a warning to a taken one's owner."""
    if started.taken_by is not None:
        notify(user=started.taken_by, event="email_in_use", request=request)
        return
    notify(
        user=user,
        event="email_change_code",
        request=request,
        to=started.new_email,
        context={
            "code": started.code,
            "new_email": started.new_email,
            "minutes": int(code_timeout().total_seconds() // 60),
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@section("email")
def email(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    policy = get_policy(request)
    form = EmailChangeForm(user=user, policy=policy)
    if request.method == "POST":
        return _start(request)
    return render(
        request,
        "accounts/email.html",
        {"form": form, "pending": email_change_pending(user=user), "active_section": "email"},
    )


@field_editable("email")
@reauthentication_required
def _start(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = EmailChangeForm(request.POST, user=user, policy=get_policy(request))
    if not form.is_valid():
        return render(
            request,
            "accounts/email.html",
            {"form": form, "pending": email_change_pending(user=user), "active_section": "email"},
            status=400,
        )
    # Counted only when a code is about to go out: a typo does not use up the allowance.
    refused = consume_or_429(request, action="portal_email_change_code", user=user)
    if refused is not None:
        return refused
    started = email_change_start(user=user, new_email=form.cleaned_data["email"], request=request)
    _send(request, user, started)
    messages.info(request, _("We sent a code to %(email)s.") % {"email": started.new_email})
    return redirect("email_confirm")


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@field_editable("email")
@rate_limit(action="portal_check_code")
def email_confirm(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    pending = email_change_pending(user=user)
    if pending is None:
        messages.info(request, _("There is no email change waiting for confirmation."))
        return redirect("email")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = email_change_confirm(user=user, code=form.cleaned_data["code"], request=request)
        if outcome.result is CodeResult.OK:
            notify(
                user=user,
                event="email_changed",
                request=request,
                to=outcome.old_email,
                context={"old_email": outcome.old_email, "new_email": outcome.new_email},
            )
            messages.success(
                request, _("Your email address is now %(email)s.") % {"email": outcome.new_email}
            )
            return redirect("email")
        form.add_error("code", code_error(outcome.result))
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "accounts/email_confirm.html",
        {"form": form, "pending": pending, "active_section": "email"},
        status=status,
    )


@require_POST
@login_required
@field_editable("email")
@rate_limit(action="portal_email_change_code")
def email_resend(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    pending = email_change_pending(user=user)
    if pending is None:
        return redirect("email")
    started = email_change_start(user=user, new_email=pending, request=request)
    _send(request, user, started)
    messages.info(request, _("We sent a new code to %(email)s.") % {"email": started.new_email})
    return redirect("email_confirm")


@require_POST
@login_required
@field_editable("email")
def email_cancel(request: HttpRequest) -> HttpResponse:
    code_cancel(user=_user(request), purpose=Purpose.EMAIL_CHANGE)
    messages.info(request, _("The email change was cancelled."))
    return redirect("email")
