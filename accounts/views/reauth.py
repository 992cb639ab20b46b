"""Re-authentication by a code sent to the verified primary email, for accounts
with neither a password nor a second factor (for example social sign-in only)."""

from __future__ import annotations

from allauth.account.internal.flows import reauthentication as allauth_reauth
from allauth.account.models import EmailAddress
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.forms import CodeForm
from accounts.models import User
from accounts.notifications import notify
from accounts.ratelimit import rate_limit
from accounts.reauth import (
    has_password_or_factor,
    record_email_code_reauthentication,
    safe_next,
)
from accounts.services.audit import Action, audit_record
from accounts.services.codes import (
    CodeResult,
    Purpose,
    code_consume,
    code_issue,
    code_pending,
    code_timeout,
)
from accounts.views.codes import code_error


def _primary_email(user: User) -> str | None:
    row = EmailAddress.objects.filter(user=user, primary=True, verified=True).first()
    return row.email if row is not None else None


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@rate_limit(action="portal_check_code")
def reauthenticate_email(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if has_password_or_factor(user):
        raise Http404
    address = _primary_email(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and request.POST.get("action") == "send":
        return _send(request, user, address)
    if request.method == "POST" and address and form.is_valid():
        result, _row = code_consume(
            user=user, purpose=Purpose.REAUTHENTICATE, code=form.cleaned_data["code"]
        )
        if result is CodeResult.OK:
            record_email_code_reauthentication(request)
            audit_record(
                action=Action.REAUTHENTICATED,
                subject=user,
                request=request,
                data={"method": "email_code"},
            )
            resumed = allauth_reauth.resume_request(request)
            if resumed is not None:
                return resumed
            return redirect(safe_next(request) or "settings_home")
        form.add_error("code", code_error(result))
    return render(
        request,
        "accounts/reauth_email.html",
        {
            "form": form,
            "address": address,
            "sent": code_pending(user=user, purpose=Purpose.REAUTHENTICATE) is not None,
            "next": safe_next(request),
        },
        status=400 if request.method == "POST" else 200,
    )


@rate_limit(action="portal_reauthentication_code")
def _send(request: HttpRequest, user: User, address: str | None) -> HttpResponse:
    if address:
        issued = code_issue(user=user, purpose=Purpose.REAUTHENTICATE, target=address)
        notify(
            user=user,
            event="reauth_code",
            request=request,
            to=address,
            context={"code": issued.code, "minutes": int(code_timeout().total_seconds() // 60)},
        )
        messages.info(request, _("We sent a code to %(email)s.") % {"email": address})
    nxt = safe_next(request)
    return redirect(
        f"{request.path}?{urlencode({REDIRECT_FIELD_NAME: nxt})}" if nxt else request.path
    )
