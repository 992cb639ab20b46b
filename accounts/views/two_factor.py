"""The second step of sign-in, and re-authentication with a second factor.

Both accept a code from the authenticator app, a backup code, or a security key /
passkey. The WebAuthn views subclass django-otp-webauthn's so that success ends the
login stage (sign-in) or records a re-authentication, instead of logging in
directly as the stock views do.
"""

from __future__ import annotations

from typing import Any

from allauth.account.internal.flows import reauthentication as allauth_reauth
from allauth.account.internal.flows.login import record_authentication
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware import csrf
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp_webauthn import exceptions as webauthn_exceptions
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    CompleteCredentialAuthenticationView,
)

from accounts.flows import mfa as mfa_flows
from accounts.flows.errors import AccessDenied, FlowError
from accounts.forms import CodeForm
from accounts.models import User
from accounts.reauth import safe_next
from accounts.selectors.mfa import second_factor_methods
from accounts.web import actor_from_request


def _stage(request: HttpRequest) -> Any:
    from allauth.account.stages import LoginStageController

    from accounts.stages import SecondFactorStage

    return LoginStageController.enter(request, SecondFactorStage.key)


def _session_verified(
    request: HttpRequest, user: User, verified: mfa_flows.Verified, *, signing_in: bool
) -> None:
    """The session side of a second factor given: allauth's authentication record,
    and django-otp's verified device (set by the stage at sign-in, so that logging
    in rotates the session with it)."""
    record_authentication(
        request, user, method="mfa", type=verified.kind, reauthenticated=not signing_in
    )
    if signing_in:
        request.session[DEVICE_ID_SESSION_KEY] = verified.device.persistent_id
    else:
        otp_login(request, verified.device)


def _code_form_error(form: CodeForm, error: FlowError) -> None:
    form.add_error("code", str(error.message))


def _webauthn_config(request: HttpRequest, begin: str, complete: str) -> dict[str, Any]:
    return {
        "autocompleteLoginFieldSelector": None,
        "nextFieldSelector": "input[name='next']",
        "csrfToken": csrf.get_token(request),
        "beginAuthenticationUrl": reverse(begin),
        "completeAuthenticationUrl": reverse(complete),
        "beginRegistrationUrl": reverse("passkey_register_begin"),
        "completeRegistrationUrl": reverse("passkey_register_complete"),
    }


# --- Sign-in ------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    stage = _stage(request)
    if stage is None:
        return redirect("account_login")
    user: User = stage.login.user
    methods = second_factor_methods(user)
    form = CodeForm(request.POST or None)
    method = request.POST.get("method", "totp" if methods["totp"] else "backup")
    if request.method == "POST" and form.is_valid():
        try:
            verified = mfa_flows.sign_in_with_code(
                ctx=actor_from_request(request),
                user=user,
                method=method,
                code=form.cleaned_data["code"],
            )
        except (mfa_flows.WrongCode, mfa_flows.CodeThrottled) as error:
            _code_form_error(form, error)
        else:
            _session_verified(request, user, verified, signing_in=True)
            return stage.exit()
    return render(
        request,
        "accounts/two_factor_verify.html",
        {
            "form": form,
            "method": method,
            "methods": methods,
            "webauthn_config": _webauthn_config(
                request, "two_factor_webauthn_begin", "two_factor_webauthn_complete"
            ),
            "cancel_url": reverse("account_login"),
        },
        status=400 if request.method == "POST" else 200,
    )


class JsonBodyOr400:
    """A JSON body that does not decode is a 400 on every WebAuthn endpoint.

    django-otp-webauthn (0.10.3) turns only ``json.JSONDecodeError`` into its
    "malformed request" answer; ``json.loads`` also raises ``UnicodeDecodeError`` for
    bytes that are not UTF-8, ``ValueError`` for a number past Python's 4 300-digit
    limit and ``RecursionError`` for deep nesting, which became 500s. The library
    has no hook for this but its private ``_parse_request_data``.
    """

    def _parse_request_data(self, request: HttpRequest) -> Any:
        try:
            return super()._parse_request_data(request)  # type: ignore[misc]
        except (ValueError, RecursionError) as exc:
            raise webauthn_exceptions.MalformedRequest() from exc


class _StageUserMixin:
    request: HttpRequest

    def get_user(self) -> Any:
        stage = _stage(self.request)
        return stage.login.user if stage is not None else None

    def check_can_authenticate(self) -> None:
        if self.get_user() is None:
            raise webauthn_exceptions.NotAuthenticated()


class StageBeginAuthentication(JsonBodyOr400, _StageUserMixin, BeginCredentialAuthenticationView):
    pass


class StageCompleteAuthentication(
    JsonBodyOr400, _StageUserMixin, CompleteCredentialAuthenticationView
):
    def check_device_usable(self, device: Any) -> None:
        """The library refuses users who are not ``is_active``; an account scheduled
        for deletion may still finish signing in (to cancel the deletion)."""
        stage_user = self.get_user()
        if not device.confirmed:
            raise webauthn_exceptions.CredentialDisabled()
        if stage_user is None or device.user_id != stage_user.pk:
            raise webauthn_exceptions.NotAuthenticated()
        if getattr(device.user, "state", "active") not in {"active", "pending_deletion"}:
            raise webauthn_exceptions.UserDisabled()

    def complete_auth(self, device: Any) -> None:
        stage = _stage(self.request)
        if stage is None or device.user_id != stage.login.user.pk:
            raise webauthn_exceptions.NotAuthenticated()
        user = stage.login.user
        try:
            verified = mfa_flows.sign_in_with_key(
                ctx=actor_from_request(self.request), user=user, device=device
            )
        except AccessDenied as exc:
            raise webauthn_exceptions.NotAuthenticated() from exc
        _session_verified(self.request, user, verified, signing_in=True)
        response = stage.exit()
        self._after = response.get("Location") or reverse("settings_home")

    def get_success_url(self) -> str:
        return getattr(self, "_after", reverse("settings_home"))


# --- Re-authentication --------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def reauthenticate(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    methods = second_factor_methods(user)
    if not any(methods.values()):
        return redirect(f"{reverse('account_reauthenticate')}?{request.GET.urlencode()}")
    form = CodeForm(request.POST or None)
    method = request.POST.get("method", "totp" if methods["totp"] else "backup")
    if request.method == "POST" and form.is_valid():
        try:
            # Not the memoised actor: the request resumed below must see the new proof.
            verified = mfa_flows.reauthenticate_with_code(
                ctx=actor_from_request(request), method=method, code=form.cleaned_data["code"]
            )
        except (mfa_flows.WrongCode, mfa_flows.CodeThrottled) as error:
            _code_form_error(form, error)
        else:
            _session_verified(request, user, verified, signing_in=False)
            resumed = allauth_reauth.resume_request(request)
            if resumed is not None:
                return resumed
            messages.success(request, _("Thank you. You can go on."))
            return redirect(safe_next(request) or "settings_home")
    return render(
        request,
        "accounts/two_factor_reauthenticate.html",
        {
            "form": form,
            "method": method,
            "methods": methods,
            "next": safe_next(request),
            "webauthn_config": _webauthn_config(
                request, "reauthenticate_webauthn_begin", "reauthenticate_webauthn_complete"
            ),
            # The back-office needs the second factor itself: no password alternative.
            "for_back_office": safe_next(request).startswith(reverse("admin:index")),
        },
        status=400 if request.method == "POST" else 200,
    )


class ReauthBeginAuthentication(JsonBodyOr400, BeginCredentialAuthenticationView):
    def check_can_authenticate(self) -> None:
        if not self.request.user.is_authenticated:
            raise webauthn_exceptions.NotAuthenticated()


class ReauthCompleteAuthentication(JsonBodyOr400, CompleteCredentialAuthenticationView):
    def check_can_authenticate(self) -> None:
        if not self.request.user.is_authenticated:
            raise webauthn_exceptions.NotAuthenticated()

    def complete_auth(self, device: Any) -> None:
        user: User = self.request.user
        try:
            verified = mfa_flows.reauthenticate_with_key(
                ctx=actor_from_request(self.request), device=device
            )
        except AccessDenied as exc:
            raise webauthn_exceptions.NotAuthenticated() from exc
        _session_verified(self.request, user, verified, signing_in=False)

    def get_redirect_url(self) -> str:
        return super().get_redirect_url() or reverse("settings_home")
