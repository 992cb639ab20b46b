"""The phone section: add, change or remove the number, proven by a code by SMS."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import CodeForm, PhoneForm
from accounts.models import User
from accounts.notifications import notify
from accounts.phones import format_phone
from accounts.policy import field_editable, get_policy, section
from accounts.ratelimit import consume_or_429, rate_limit
from accounts.reauth import reauthentication_required
from accounts.services.codes import CodeResult, Purpose, code_cancel, code_timeout
from accounts.services.phone import (
    PhoneStarted,
    phone_change_confirm,
    phone_change_pending,
    phone_change_start,
    phone_remove,
)
from accounts.sms import SmsError, send_sms
from accounts.views.codes import code_error

logger = logging.getLogger(__name__)


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _page(request: HttpRequest, form: PhoneForm, status: int = 200) -> HttpResponse:
    user = _user(request)
    return render(
        request,
        "accounts/phone.html",
        {
            "form": form,
            "phone_display": format_phone(user.phone),
            "pending": format_phone(phone_change_pending(user=user) or ""),
            "active_section": "phone",
        },
        status=status,
    )


def _send(request: HttpRequest, started: PhoneStarted) -> None:
    if started.taken:
        return  # never send a code to a number that belongs to someone else
    minutes = int(code_timeout().total_seconds() // 60)
    body = _("%(code)s is your %(site)s code. It expires in %(minutes)d minutes.") % {
        "code": started.code,
        "site": request.get_host(),
        "minutes": minutes,
    }
    try:
        send_sms(started.phone, body)
    except SmsError:
        logger.exception("could not send a verification SMS")


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@section("phone")
def phone(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _start(request)
    return _page(request, PhoneForm(user=_user(request), policy=get_policy(request)))


@field_editable("phone")
@reauthentication_required
def _start(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = PhoneForm(request.POST, user=user, policy=get_policy(request))
    if not form.is_valid():
        return _page(request, form, status=400)
    # Counted only when a code is about to go out: a typo does not use up the allowance.
    refused = consume_or_429(request, action="portal_phone_change_code", user=user)
    if refused is not None:
        return refused
    started = phone_change_start(user=user, phone=form.cleaned_data["phone"], request=request)
    _send(request, started)
    messages.info(
        request, _("We sent a code by SMS to %(phone)s.") % {"phone": format_phone(started.phone)}
    )
    return redirect("phone_confirm")


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@field_editable("phone")
@rate_limit(action="portal_check_code")
def phone_confirm(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    pending = phone_change_pending(user=user)
    if pending is None:
        messages.info(request, _("There is no phone number waiting for confirmation."))
        return redirect("phone")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = phone_change_confirm(user=user, code=form.cleaned_data["code"], request=request)
        if outcome.result is CodeResult.OK:
            event = "phone_changed" if outcome.old_phone else "phone_added"
            notify(
                user=user,
                event=event,
                request=request,
                context={
                    "phone": format_phone(outcome.phone),
                    "old_phone": format_phone(outcome.old_phone),
                },
            )
            messages.success(
                request,
                _("Your phone number is now %(phone)s.") % {"phone": format_phone(outcome.phone)},
            )
            return redirect("phone")
        form.add_error("code", code_error(outcome.result))
    return render(
        request,
        "accounts/phone_confirm.html",
        {"form": form, "pending": format_phone(pending), "active_section": "phone"},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@login_required
@field_editable("phone")
@rate_limit(action="portal_phone_change_code")
def phone_resend(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    pending = phone_change_pending(user=user)
    if pending is None:
        return redirect("phone")
    started = phone_change_start(user=user, phone=pending, request=request)
    _send(request, started)
    messages.info(
        request, _("We sent a new code by SMS to %(phone)s.") % {"phone": format_phone(pending)}
    )
    return redirect("phone_confirm")


@require_POST
@login_required
@field_editable("phone")
def phone_cancel(request: HttpRequest) -> HttpResponse:
    code_cancel(user=_user(request), purpose=Purpose.PHONE_CHANGE)
    messages.info(request, _("The phone number change was cancelled."))
    return redirect("phone")


@require_POST
@login_required
@field_editable("phone")
@reauthentication_required
def phone_delete(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    old = phone_remove(user=user, request=request)
    if old:
        notify(
            user=user,
            event="phone_removed",
            request=request,
            context={"old_phone": format_phone(old)},
        )
        messages.success(request, _("Your phone number was removed."))
    return redirect("phone")
