"""Re-authentication by a code sent to the verified primary email, for accounts
with neither a password nor a second factor (for example social sign-in only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allauth.account.internal.flows import reauthentication as allauth_reauth
from allauth.account.views import ReauthenticateView
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.flows.errors import RateLimited
from accounts.flows.reauth import (
    reauth_code_confirm,
    reauth_code_send,
    reauth_code_sent,
    reauth_password_attempt,
)
from accounts.forms import CodeForm
from accounts.models import User
from accounts.reauth import (
    has_password_or_factor,
    record_email_code_reauthentication,
    safe_next,
)
from accounts.selectors.verification import verified_primary_email
from accounts.services.codes import CodeResult
from accounts.views.codes import code_error
from accounts.web import ctx_for


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def reauthenticate_email(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if has_password_or_factor(user):
        raise Http404
    if request.method == "POST" and request.POST.get("action") == "send":
        return _send(request)
    address = verified_primary_email(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and address and form.is_valid():
        result = reauth_code_confirm(ctx=ctx_for(request), code=form.cleaned_data["code"])
        if result is CodeResult.OK:
            # The one step bound to the request: allauth keeps authentications in the session.
            record_email_code_reauthentication(request)
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
            "sent": reauth_code_sent(user=user),
            "next": safe_next(request),
        },
        status=400 if request.method == "POST" else 200,
    )


def _send(request: HttpRequest) -> HttpResponse:
    address = reauth_code_send(ctx=ctx_for(request))
    if address:
        messages.info(request, _("We sent a code to %(email)s.") % {"email": address})
    nxt = safe_next(request)
    return redirect(
        f"{request.path}?{urlencode({REDIRECT_FIELD_NAME: nxt})}" if nxt else request.path
    )


class PasswordReauthenticateView(ReauthenticateView):
    """allauth's password re-authentication, where only wrong passwords count
    towards the limit (``ACCOUNT_RATE_LIMITS["reauthenticate"]``, per user). Over
    it, the session is signed out and the answer is a 429 with ``Retry-After``:
    a stolen session cannot go on guessing, and the owner signs in again."""

    _take_back: Callable[[], None] | None = None

    def _check_ratelimit(self, request: HttpRequest) -> HttpResponse | None:
        # Replaces allauth's count of every POST (right passwords included).
        if request.method != "POST":
            return None
        try:
            self._take_back = reauth_password_attempt(ctx=ctx_for(request))
        except RateLimited as error:
            logout(request)
            response = render(request, "accounts/reauth_signed_out.html", status=429)
            response["Retry-After"] = str(error.retry_after)
            return response
        return None

    def form_valid(self, form: Any) -> HttpResponse:
        if self._take_back is not None:
            self._take_back()
        return super().form_valid(form)
