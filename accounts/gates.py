"""The gate table: what each URL of the portal and of its libraries needs at the door.

One mapping, keyed by URL name, read by one middleware (``GateMiddleware``):

- ``field``: the policy field the page changes. Checked here for the libraries'
  pages (allauth, django-otp-webauthn) and for the portal's pages that were
  always checked at the door; the portal's other pages declare their policy with
  their view decorators (``accounts.policy.section`` / ``field_editable``).
- ``needs_reauth``: a write needs a recent re-authentication.
- ``sensitive_while_impersonating``: staff impersonating the user may not write
  (and, with ``secret_on_read``, may not even read: the page reveals secrets).
- ``allowed_while_pending_deletion``: an account scheduled for deletion may still
  reach the page; every other page sends it to the cancel page.

The checks run in this order: the impersonation refusal, the policy, the
re-authentication, the pending deletion. A request that allauth parked for
re-authentication is replayed by the re-authentication page without going
through any middleware, so the gate of the parked request is checked again when
the re-authentication page is about to replay it. The flows check the same rules
once more (``accounts.flows.gate.check``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, SimpleNamespace
from typing import Any

from allauth.account.internal.flows.reauthentication import STATE_SESSION_KEY
from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils.deprecation import MiddlewareMixin

from accounts.impersonation import REFUSED, is_impersonating
from accounts.policy import (
    PolicyDenied,
    get_policy,
    require_editable,
    require_visible,
    settings_off_response,
)
from accounts.reauth import reauthentication_response, recently_reauthenticated

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Gate:
    field: str | None
    needs_reauth: bool = False
    sensitive_while_impersonating: bool = False
    secret_on_read: bool = False
    allowed_while_pending_deletion: bool = False


OPEN = Gate(None)
SENSITIVE = Gate(None, sensitive_while_impersonating=True)
SECRET = Gate(None, sensitive_while_impersonating=True, secret_on_read=True)
PENDING_OK = Gate(None, allowed_while_pending_deletion=True)

# A social provider's login with ``process=connect`` links an account to the
# signed-in user: the providers' URL names are many, so this is a rule, not rows.
SOCIAL_CONNECT = Gate("social", needs_reauth=True, sensitive_while_impersonating=True)

GATES: Mapping[str, Gate] = MappingProxyType(
    {
        # --- The portal's settings pages (accounts.urls) ---
        "settings_home": OPEN,
        "profile": OPEN,
        "profile_name_edit": OPEN,
        "profile_details_edit": OPEN,
        "profile_username_edit": SENSITIVE,
        "profile_avatar": OPEN,
        "profile_avatar_remove": OPEN,
        "profile_card": OPEN,
        "email": Gate("email", sensitive_while_impersonating=True),
        "email_confirm": SENSITIVE,
        "email_resend": SENSITIVE,
        "email_cancel": SENSITIVE,
        "phone": Gate("phone", sensitive_while_impersonating=True),
        "phone_confirm": SENSITIVE,
        "phone_resend": SENSITIVE,
        "phone_cancel": SENSITIVE,
        "phone_remove": SENSITIVE,
        "security_activity": OPEN,
        "sessions": Gate("sessions", sensitive_while_impersonating=True),
        "session_end": SENSITIVE,
        "sessions_end_others": SENSITIVE,
        "tokens": Gate("tokens"),
        "token_create": Gate("tokens", needs_reauth=True, sensitive_while_impersonating=True),
        "tokens_new": Gate("tokens", sensitive_while_impersonating=True, secret_on_read=True),
        "token_revoke": Gate("tokens", needs_reauth=True, sensitive_while_impersonating=True),
        "connected_apps": Gate("connected_apps"),
        "connected_app_revoke": Gate(
            "connected_apps", needs_reauth=True, sensitive_while_impersonating=True
        ),
        "export": SECRET,
        "delete_account": SENSITIVE,
        "deletion_pending": PENDING_OK,
        "deletion_cancel": Gate(
            None, sensitive_while_impersonating=True, allowed_while_pending_deletion=True
        ),
        "reauthenticate_email": SENSITIVE,
        "reauthenticate_two_factor": SENSITIVE,
        "reauthenticate_webauthn_begin": OPEN,
        "reauthenticate_webauthn_complete": OPEN,
        "two_factor": OPEN,
        "totp_start": SENSITIVE,
        "totp_confirm": SENSITIVE,
        "totp_remove": SENSITIVE,
        "passkey_add": SENSITIVE,
        "passkey_register_begin": SENSITIVE,
        "passkey_register_complete": SENSITIVE,
        "passkey_rename": SENSITIVE,
        "passkey_remove": SENSITIVE,
        "backup_codes_regenerate": SENSITIVE,
        "backup_codes_new": SECRET,
        "backup_codes_download": SECRET,
        # --- Django ---
        "set_language": PENDING_OK,
        # --- allauth ---
        "account_logout": PENDING_OK,
        "account_reauthenticate": SENSITIVE,
        "account_email": Gate("email", needs_reauth=True, sensitive_while_impersonating=True),
        "account_change_password": Gate("password", sensitive_while_impersonating=True),
        "account_set_password": Gate(
            "password", needs_reauth=True, sensitive_while_impersonating=True
        ),
        "account_change_phone": Gate("phone"),
        "socialaccount_connections": Gate(
            "social", needs_reauth=True, sensitive_while_impersonating=True
        ),
        "usersessions_list": Gate(
            "sessions", needs_reauth=True, sensitive_while_impersonating=True
        ),
        # --- django-otp-webauthn (inert while its URLs are not mounted) ---
        "otp_webauthn:credential-registration-begin": Gate("passkeys", needs_reauth=True),
        "otp_webauthn:credential-registration-complete": Gate("passkeys", needs_reauth=True),
    }
)


def _is_social_connect(match: ResolverMatch, params: Any) -> bool:
    module = getattr(match.func, "__module__", "") or ""
    return module.startswith("allauth.socialaccount.providers") and (
        params.POST.get("process") == "connect" or params.GET.get("process") == "connect"
    )


def gate_for(match: ResolverMatch | None, params: Any) -> Gate:
    """The gate of a resolved URL: its row, the social connect rule, or none.
    ``params`` has the request's ``GET`` and ``POST`` (the body is read only for
    a provider's login)."""
    if match is None:
        return OPEN
    gate = GATES.get(match.view_name)
    if gate is not None:
        return gate
    if _is_social_connect(match, params):
        return SOCIAL_CONNECT
    return OPEN


def _refuse_impersonation(gate: Gate, *, write: bool) -> None:
    if gate.sensitive_while_impersonating and (write or gate.secret_on_read):
        raise PolicyDenied(REFUSED)


def _recheck_parked_request(request: HttpRequest) -> None:
    """A POST that allauth parked for re-authentication is replayed by the page
    that completes it (``resume_request``: the view is called directly, no
    middleware runs). When this request is about to replay it, the parked
    request's gate is checked now: a policy that changed meanwhile refuses it,
    and the parked request is dropped so it is never replayed."""
    session = getattr(request, "session", None)
    state = session.get(STATE_SESSION_KEY) if session is not None else None
    if not state or "request" not in state:
        return
    parked = json.loads(state["request"])
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
    if not target or parked.get("path") != target or request.path == target:
        return
    try:
        match = resolve(parked["path_info"])
    except Resolver404:
        return
    params = SimpleNamespace(
        GET=QueryDict(parked.get("GET", "")), POST=QueryDict(parked.get("POST", ""))
    )
    gate = gate_for(match, params)
    try:
        if is_impersonating(request):
            _refuse_impersonation(gate, write=True)
        if gate.field is not None:
            require_editable(get_policy(request), gate.field)
    except (PolicyDenied, Http404):
        session.pop(STATE_SESSION_KEY, None)  # type: ignore[union-attr]
        raise


class GateMiddleware(MiddlewareMixin):
    """The door of every page, from ``GATES``: the impersonation refusal (403), the
    policy (404 when off, the settings-off page on a read, 403 on a write), a
    recent re-authentication (redirect, the POST kept and replayed), and the
    pending deletion (redirect to the page that cancels it)."""

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if request.path_info.startswith("/api/"):
            # The APIs have their own door (accounts.api): JSON refusals, no redirects.
            return None
        gate = gate_for(request.resolver_match, request)
        write = request.method not in SAFE_METHODS
        if is_impersonating(request):
            _refuse_impersonation(gate, write=write)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if gate.field is not None:
            policy = get_policy(request)
            if write:
                require_editable(policy, gate.field)
            else:
                require_visible(policy, gate.field)
                if not policy.enabled:
                    return settings_off_response(request)
        if gate.needs_reauth and write and not recently_reauthenticated(request):
            return reauthentication_response(request)
        if (
            getattr(user, "state", "active") == "pending_deletion"
            and not gate.allowed_while_pending_deletion
            and not request.path.startswith(settings.STATIC_URL)
        ):
            return redirect("deletion_pending")
        if write:
            _recheck_parked_request(request)
        return None
