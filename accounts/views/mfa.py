"""The two-step verification section: authenticator app, security keys and passkeys,
backup codes. Policy fields: ``mfa`` (app and backup codes), ``passkeys``.

Each write is one flow (``accounts.flows.mfa``); the views keep the session side:
the new backup codes shown once, and django-otp's verified device."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_otp import login as otp_login
from django_otp_webauthn import exceptions as webauthn_exceptions
from django_otp_webauthn.views import (
    BeginCredentialRegistrationView,
    CompleteCredentialRegistrationView,
)

from accounts.access import access_own_passkey
from accounts.flows import mfa as mfa_flows
from accounts.flows.errors import ReauthenticationRequired
from accounts.forms import CodeForm, PasskeyNameForm
from accounts.models import User
from accounts.policy import PolicyDenied, field_editable, get_policy, section
from accounts.reauth import reauthentication_required
from accounts.selectors import mfa as mfa_selectors
from accounts.views.two_factor import JsonBodyOr400, _webauthn_config
from accounts.web import ctx_for

CODES_SESSION_KEY = "portal_new_backup_codes"
CODES_SHOWN_FOR = 10 * 60  # seconds the new codes stay viewable and downloadable


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _stash(request: HttpRequest, codes: list[str]) -> None:
    request.session[CODES_SESSION_KEY] = {"codes": codes, "at": time.time()}


def _stash_codes(request: HttpRequest, codes: list[str]) -> HttpResponse:
    _stash(request, codes)
    return redirect("backup_codes_new")


def _stashed_codes(request: HttpRequest) -> list[str] | None:
    stash = request.session.get(CODES_SESSION_KEY)
    if not stash or time.time() - float(stash.get("at", 0)) > CODES_SHOWN_FOR:
        request.session.pop(CODES_SESSION_KEY, None)
        return None
    return list(stash["codes"])


def _confirm_last(request: HttpRequest, what: str) -> HttpResponse:
    """Removing the last real factor: ask first (the form posts ``confirm=yes``)."""
    return render(
        request,
        "accounts/two_factor_remove_last.html",
        {"active_section": "two_factor", "what": what, "action": request.path},
    )


def _confirmed(request: HttpRequest) -> bool:
    return request.POST.get("confirm") == "yes"


@require_safe
@login_required
@section("mfa", "passkeys")
def overview(request: HttpRequest) -> HttpResponse:
    factors = mfa_selectors.two_factor_overview(_user(request))
    return render(
        request,
        "accounts/two_factor.html",
        {
            "active_section": "two_factor",
            "totp": factors.totp,
            "passkeys": factors.passkeys,
            "backup_remaining": factors.backup_remaining,
            "backup_low": factors.backup_low,
        },
    )


# --- Authenticator app ----------------------------------------------------------------


@require_POST
@login_required
@field_editable("mfa")
@reauthentication_required
def totp_start(request: HttpRequest) -> HttpResponse:
    mfa_flows.totp_start(ctx=ctx_for(request))
    return redirect("totp_confirm")


def _qr_svg(setup: mfa_selectors.TotpSetup) -> str:
    svg = segno.make(setup.otpauth_uri, error="m").svg_inline(
        scale=5, dark="#000", light="#fff", border=2
    )
    return mark_safe(svg)  # noqa: S308 - markup made by segno from our own URL


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@field_editable("mfa")
@reauthentication_required
def totp_confirm(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    device = mfa_selectors.pending_totp(user)
    if device is None:
        return redirect("two_factor")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            confirmed = mfa_flows.totp_confirm(ctx=ctx_for(request), code=form.cleaned_data["code"])
        except mfa_flows.NoPendingSetup:
            return redirect("two_factor")
        except (mfa_flows.WrongCode, mfa_flows.CodeThrottled) as error:
            form.add_error("code", str(error.message))
        else:
            otp_login(request, confirmed.device)
            if confirmed.backup_codes:
                messages.success(
                    request, _("Your authenticator app is set up. Save your backup codes now.")
                )
                return _stash_codes(request, confirmed.backup_codes)
            messages.success(request, _("Your authenticator app is set up."))
            return redirect("two_factor")
    setup = mfa_selectors.totp_setup(device)
    return render(
        request,
        "accounts/totp_setup.html",
        {
            "active_section": "two_factor",
            "form": form,
            "qr_svg": _qr_svg(setup),
            "key_groups": setup.secret_groups,
            "replacing": mfa_selectors.has_confirmed_totp(user),
        },
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@login_required
@field_editable("mfa")
@reauthentication_required
def totp_delete(request: HttpRequest) -> HttpResponse:
    try:
        removed = mfa_flows.totp_remove(ctx=ctx_for(request), confirm_last=_confirmed(request))
    except mfa_flows.LastFactor:
        return _confirm_last(request, _("your authenticator app"))
    if removed:
        messages.success(request, _("The authenticator app was removed."))
    return redirect("two_factor")


# --- Security keys and passkeys ------------------------------------------------------------


@require_safe
@login_required
@field_editable("passkeys")
@reauthentication_required
def passkey_add(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/passkey_add.html",
        {
            "active_section": "two_factor",
            "webauthn_config": _webauthn_config(
                request, "reauthenticate_webauthn_begin", "reauthenticate_webauthn_complete"
            ),
        },
    )


class PolicyRefused(webauthn_exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_code = "policy"


class ReauthenticationNeeded(webauthn_exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_code = "reauthentication_required"


class _RegistrationGate:
    """The flow's refusals as the library's JSON errors."""

    request: HttpRequest

    def _gated[T](self, call: Callable[[], T]) -> T:
        try:
            return call()
        except ReauthenticationRequired as exc:
            raise ReauthenticationNeeded(
                detail=_("Please confirm it's you again, then retry.")
            ) from exc
        except (PolicyDenied, Http404) as exc:
            raise PolicyRefused(detail=_("Security keys can't be changed here.")) from exc

    def check_can_register(self) -> None:
        self._gated(lambda: mfa_flows.passkey_registration_check(ctx_for(self.request)))


class RegisterBegin(JsonBodyOr400, _RegistrationGate, BeginCredentialRegistrationView):
    pass


class RegisterComplete(JsonBodyOr400, _RegistrationGate, CompleteCredentialRegistrationView):
    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        # A refusal after the library saved the credential takes the credential back.
        with transaction.atomic():
            response = super().post(*args, **kwargs)
            if response.status_code != 200:
                return response
            pk = json.loads(response.content)["id"]
            registered = self._gated(
                lambda: mfa_flows.passkey_registration_complete(ctx=ctx_for(self.request), pk=pk)
            )
        if registered.backup_codes:
            _stash(self.request, registered.backup_codes)
        pk = registered.credential.pk
        return JsonResponse({"id": pk, "next": reverse("passkey_rename", args=[pk]) + "?new=1"})


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@field_editable("passkeys")
def passkey_rename(request: HttpRequest, pk: int) -> HttpResponse:
    ctx = ctx_for(request)
    credential = access_own_passkey(ctx, pk)
    form = PasskeyNameForm(
        request.POST or None, initial={"name": credential.name}, policy=get_policy(request)
    )
    if request.method == "POST" and form.is_valid():
        mfa_flows.passkey_rename(ctx=ctx, pk=credential.pk, name=form.cleaned_data["name"])
        messages.success(request, _("The security key was renamed."))
        if _stashed_codes(request):
            return redirect("backup_codes_new")
        return redirect("two_factor")
    return render(
        request,
        "accounts/passkey_rename.html",
        {
            "active_section": "two_factor",
            "form": form,
            "credential": credential,
            "new": request.GET.get("new"),
        },
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@login_required
@field_editable("passkeys")
@reauthentication_required
def passkey_delete(request: HttpRequest, pk: int) -> HttpResponse:
    ctx = ctx_for(request)
    credential = access_own_passkey(ctx, pk)
    try:
        name = mfa_flows.passkey_remove(ctx=ctx, pk=credential.pk, confirm_last=_confirmed(request))
    except mfa_flows.LastFactor:
        return _confirm_last(request, credential.name)
    messages.success(request, _("“%(name)s” was removed.") % {"name": name})
    return redirect("two_factor")


# --- Backup codes ----------------------------------------------------------------------


@require_POST
@login_required
@field_editable("mfa")
@reauthentication_required
def backup_codes_regenerate(request: HttpRequest) -> HttpResponse:
    try:
        codes = mfa_flows.backup_codes_regenerate(ctx=ctx_for(request))
    except mfa_flows.NoRealFactor as error:
        messages.error(request, str(error.message))
        return redirect("two_factor")
    return _stash_codes(request, codes)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@section("mfa", "passkeys")
def backup_codes_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        request.session.pop(CODES_SESSION_KEY, None)
        return redirect("two_factor")
    codes = _stashed_codes(request)
    if codes is None:
        messages.info(
            request, _("Backup codes are shown only once. Generate a new set if you lost them.")
        )
        return redirect("two_factor")
    return render(
        request,
        "accounts/backup_codes.html",
        {"active_section": "two_factor", "codes": codes, "codes_text": "\n".join(codes)},
    )


@require_safe
@login_required
@section("mfa", "passkeys")
def backup_codes_download(request: HttpRequest) -> HttpResponse:
    codes = _stashed_codes(request)
    if codes is None:
        raise Http404
    lines = [
        _("Backup codes for %(user)s at %(site)s")
        % {"user": _user(request).username, "site": settings.PORTAL_NAME},
        _("Each code works once."),
        "",
        *codes,
        "",
    ]
    response = HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="backup-codes.txt"'
    response["Cache-Control"] = "no-store"
    return response
