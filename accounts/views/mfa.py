"""The two-step verification section: authenticator app, security keys and passkeys,
backup codes. Policy fields: ``mfa`` (app and backup codes), ``passkeys``."""

from __future__ import annotations

import base64
import time
from typing import Any

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn import exceptions as webauthn_exceptions
from django_otp_webauthn.views import (
    BeginCredentialRegistrationView,
    CompleteCredentialRegistrationView,
)

from accounts.forms import CodeForm, PasskeyNameForm
from accounts.models import User
from accounts.notifications import notify
from accounts.policy import field_editable, get_policy, section
from accounts.reauth import reauthentication_required, recently_reauthenticated
from accounts.services import mfa as mfa_services
from accounts.views.two_factor import _webauthn_config

CODES_SESSION_KEY = "portal_new_backup_codes"
CODES_SHOWN_FOR = 10 * 60  # seconds the new codes stay viewable and downloadable


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _stash_codes(request: HttpRequest, codes: list[str]) -> HttpResponse:
    request.session[CODES_SESSION_KEY] = {"codes": codes, "at": time.time()}
    return redirect("backup_codes_new")


def _stashed_codes(request: HttpRequest) -> list[str] | None:
    stash = request.session.get(CODES_SESSION_KEY)
    if not stash or time.time() - float(stash.get("at", 0)) > CODES_SHOWN_FOR:
        request.session.pop(CODES_SESSION_KEY, None)
        return None
    return list(stash["codes"])


@require_safe
@login_required
@section("mfa", "passkeys")
def overview(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    remaining = mfa_services.backup_codes_remaining(user)
    return render(
        request,
        "accounts/two_factor.html",
        {
            "active_section": "two_factor",
            "totp": TOTPDevice.objects.filter(user=user, confirmed=True).first(),
            "passkeys": list(mfa_services.passkeys_for(user)),
            "backup_remaining": remaining,
            "backup_low": remaining is not None and remaining <= 2,
        },
    )


# --- Authenticator app ----------------------------------------------------------------


@require_POST
@login_required
@field_editable("mfa")
@reauthentication_required
def totp_start(request: HttpRequest) -> HttpResponse:
    mfa_services.totp_begin(user=_user(request))
    return redirect("totp_confirm")


def _key_groups(device: TOTPDevice) -> str:
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _qr_svg(device: TOTPDevice) -> str:
    svg = segno.make(device.config_url, error="m").svg_inline(
        scale=5, dark="#000", light="#fff", border=2
    )
    return mark_safe(svg)  # noqa: S308 - markup made by segno from our own URL


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@field_editable("mfa")
@reauthentication_required
def totp_confirm(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    device = mfa_services.totp_pending(user=user)
    if device is None:
        return redirect("two_factor")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        enrolled = mfa_services.totp_confirm(
            user=user, device=device, code=form.cleaned_data["code"], request=request
        )
        if enrolled.ok:
            otp_login(request, device)
            notify(
                user=user,
                event="factor_added",
                request=request,
                context={"factor": _("authenticator app")},
            )
            if enrolled.backup_codes:
                notify(user=user, event="backup_codes_generated", request=request)
                messages.success(
                    request, _("Your authenticator app is set up. Save your backup codes now.")
                )
                return _stash_codes(request, enrolled.backup_codes)
            messages.success(request, _("Your authenticator app is set up."))
            return redirect("two_factor")
        if enrolled.throttled:
            form.add_error("code", _("Too many wrong codes. Wait a little before trying again."))
        else:
            form.add_error(
                "code", _("That code is not right. Check the time on your phone and try again.")
            )
    return render(
        request,
        "accounts/totp_setup.html",
        {
            "active_section": "two_factor",
            "form": form,
            "qr_svg": _qr_svg(device),
            "key_groups": _key_groups(device),
            "replacing": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        },
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@login_required
@field_editable("mfa")
@reauthentication_required
def totp_delete(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if mfa_services.is_last_real_factor_totp(user) and request.POST.get("confirm") != "yes":
        return render(
            request,
            "accounts/two_factor_remove_last.html",
            {
                "active_section": "two_factor",
                "what": _("your authenticator app"),
                "action": request.path,
            },
        )
    if mfa_services.totp_remove(user=user, request=request):
        notify(
            user=user,
            event="factor_removed",
            request=request,
            context={"factor": _("authenticator app")},
        )
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
    """Policy and re-authentication for the JSON registration endpoints."""

    request: HttpRequest

    def check_can_register(self) -> None:
        if not get_policy(self.request).editable("passkeys"):
            raise PolicyRefused(detail=_("Security keys can't be changed here."))
        if not recently_reauthenticated(self.request):
            raise ReauthenticationNeeded(detail=_("Please confirm it's you again, then retry."))


class RegisterBegin(_RegistrationGate, BeginCredentialRegistrationView):
    pass


class RegisterComplete(_RegistrationGate, CompleteCredentialRegistrationView):
    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(*args, **kwargs)
        if response.status_code != 200:
            return response
        import json

        user = _user(self.request)
        credential = mfa_services.passkeys_for(user).get(pk=json.loads(response.content)["id"])
        codes = mfa_services.passkey_registered(
            user=user, credential=credential, request=self.request
        )
        notify(
            user=user,
            event="factor_added",
            request=self.request,
            context={"factor": _("security key")},
        )
        next_url = f"/settings/two-factor/passkeys/{credential.pk}/?new=1"
        if codes:
            notify(user=user, event="backup_codes_generated", request=self.request)
            self.request.session[CODES_SESSION_KEY] = {"codes": codes, "at": time.time()}
        return JsonResponse({"id": credential.pk, "next": next_url})


def _owned_passkey(request: HttpRequest, pk: int) -> Any:
    try:
        return mfa_services.passkeys_for(_user(request)).get(pk=pk)
    except Exception as exc:  # noqa: BLE001 - any miss is "not yours": 404
        raise Http404 from exc


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@field_editable("passkeys")
def passkey_rename(request: HttpRequest, pk: int) -> HttpResponse:
    credential = _owned_passkey(request, pk)
    form = PasskeyNameForm(
        request.POST or None, initial={"name": credential.name}, policy=get_policy(request)
    )
    if request.method == "POST" and form.is_valid():
        mfa_services.passkey_rename(
            user=_user(request),
            credential_id=credential.pk,
            name=form.cleaned_data["name"],
            request=request,
        )
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
    user = _user(request)
    credential = _owned_passkey(request, pk)
    if (
        mfa_services.is_last_real_factor_passkey(user, credential.pk)
        and request.POST.get("confirm") != "yes"
    ):
        return render(
            request,
            "accounts/two_factor_remove_last.html",
            {"active_section": "two_factor", "what": credential.name, "action": request.path},
        )
    name = mfa_services.passkey_remove(user=user, credential_id=credential.pk, request=request)
    notify(user=user, event="factor_removed", request=request, context={"factor": name})
    messages.success(request, _("“%(name)s” was removed.") % {"name": name})
    return redirect("two_factor")


# --- Backup codes ----------------------------------------------------------------------


@require_POST
@login_required
@field_editable("mfa")
@reauthentication_required
def backup_codes_regenerate(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if mfa_services.real_factors(user) == 0:
        messages.error(request, _("Set up an authenticator app or a security key first."))
        return redirect("two_factor")
    codes = mfa_services.backup_codes_generate(user=user, request=request)
    notify(user=user, event="backup_codes_generated", request=request)
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
    from django.conf import settings

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
