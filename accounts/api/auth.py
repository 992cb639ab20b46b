"""Who calls the Account API, and the ``Actor`` of the call.

Three ways in, tried in this order:

- ``Authorization: Bearer pat_…``: a personal access token. Every use checks the
  token (live, not expired) and its owner (active); a token that does not pass is a
  401, never a fall-back to the session.
- ``Authorization: Bearer <access token>``: an OAuth app acting for the user
  (``accounts.oauth``), while the policy shows connected apps; a machine client's
  token is a 403 here (it has no account; it calls the Management API).
- The portal's session cookie, with CSRF on writes (same-origin front-ends).

With a token, the operation's scope is checked too: reads need ``account:read``,
writes ``account:write``.

A sensitive change needs a verification: the ``X-Verification-Id`` header (see
``accounts.flows.verifications``) or, for a session, its own recent
re-authentication.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from ninja.errors import AuthenticationError
from ninja.security import APIKeyCookie, HttpBearer

from accounts.actor import Actor
from accounts.flows.errors import FlowError
from accounts.flows.verifications import VerificationExpired, VerificationInvalid, verified_at
from accounts.models import TokenScope, User
from accounts.oauth import access_token_from_request
from accounts.policy import get_policy
from accounts.services.tokens import TOKEN_PREFIX, token_authenticate
from accounts.web import actor_from_request, client_ip

VERIFICATION_HEADER = "X-Verification-Id"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class InsufficientScope(FlowError):
    code = "token.insufficient_scope"
    status = 403


def _usable(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.state == User.State.ACTIVE)


class TokenAuth(HttpBearer):
    """A personal access token of an active account, while the policy shows tokens."""

    openapi_description = "A personal access token (pat_...) made in the account settings."

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get("Authorization")
        if header is not None and not header.lower().startswith("bearer "):
            # Another scheme (Basic...) is not ours: no fall-back to the session.
            raise AuthenticationError()
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        token = token.strip()
        if not token.startswith(TOKEN_PREFIX):
            return None  # an OAuth access token (OAuthAppToken)
        found = token_authenticate(token)
        if found is None or not get_policy(request).visible("tokens"):
            # A token the user can no longer see or revoke must not work either.
            raise AuthenticationError()
        request.user = found.user
        request.api_token = found  # type: ignore[attr-defined]
        request.api_scopes = frozenset(found.scopes)  # type: ignore[attr-defined]
        return found.user


class MachineTokenRefused(FlowError):
    code = "forbidden"
    status = 403

    def __init__(self) -> None:
        super().__init__(_("A machine client's token has no account: it calls the Management API."))


class CredentialsNotForApps(FlowError):
    code = "forbidden"
    status = 403

    def __init__(self) -> None:
        super().__init__(
            _(
                "An app cannot see or manage the account's access tokens or connected "
                "apps: the user does, in the settings or with a personal access token."
            )
        )


def refuse_apps(request: HttpRequest) -> None:
    """The account's own credentials (personal access tokens, connected apps) are not
    an app's to see or change: an app could otherwise make itself a token that
    outlives its revocation, or revoke other apps."""
    if getattr(request, "api_app_token", None) is not None:
        raise CredentialsNotForApps()


class OAuthAppToken(HttpBearer):
    """An access token an OAuth app holds for the user (``accounts.oauth``)."""

    openapi_description = (
        "An OAuth access token an app got for the user (authorization code with PKCE "
        "at /identity/o/authorize, scopes account:read and account:write)."
    )

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = access_token_from_request(request)
        if found is None or (
            found.user is not None and not get_policy(request).visible("connected_apps")
        ):
            # An app the user can no longer see or revoke must not work either.
            raise AuthenticationError()
        if found.user is None:
            raise MachineTokenRefused()
        request.user = found.user
        request.api_app_token = found  # type: ignore[attr-defined]
        request.api_scopes = frozenset(found.get_scopes())  # type: ignore[attr-defined]
        return found.user


class SessionAuth(APIKeyCookie):
    """The portal's own session (CSRF checked on writes by ``APIKeyCookie``).

    ``allow_pending``: an account waiting for its deletion may use it too (only to
    cancel the deletion). One class for both, so the OpenAPI document names one
    cookie scheme."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, *, allow_pending: bool = False) -> None:
        super().__init__()
        self.allow_pending = allow_pending

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if _usable(user):
            return user
        if (
            self.allow_pending
            and user.is_authenticated
            and user.state == User.State.PENDING_DELETION
        ):
            return user
        return None


token_auth = TokenAuth()
app_token_auth = OAuthAppToken()
session_auth = SessionAuth()
pending_deletion_session_auth = SessionAuth(allow_pending=True)
ACCOUNT_AUTH = [token_auth, app_token_auth, session_auth]
# OpenAPI names of the two ways in, for the document's ``security``.
ACCOUNT_READ, ACCOUNT_WRITE = TokenScope.ACCOUNT_READ.value, TokenScope.ACCOUNT_WRITE.value


def require_scope(request: HttpRequest) -> None:
    """A token may read with ``account:read`` and write with ``account:write``."""
    scopes: frozenset[str] | None = getattr(request, "api_scopes", None)
    if scopes is None:
        return
    needed = ACCOUNT_READ if request.method in SAFE_METHODS else ACCOUNT_WRITE
    if needed not in scopes:
        raise InsufficientScope(
            _("This token does not have the %(scope)s scope.") % {"scope": needed}
        )


def api_ctx(request: HttpRequest) -> Actor:
    """The actor of an Account API call (after authentication)."""
    require_scope(request)
    user: User = request.user  # type: ignore[assignment]
    if getattr(request, "api_scopes", None) is not None:
        ctx = Actor(
            user=user,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:300],
            surface="app" if getattr(request, "api_app_token", None) is not None else "token",
            language=get_language() or "",
        )
    else:
        ctx = replace(actor_from_request(request, surface="api"), language=get_language() or "")
    header = request.headers.get(VERIFICATION_HEADER)
    if header:
        try:
            at = verified_at(user=user, verification_id=header.strip())
        except (VerificationInvalid, VerificationExpired) as exc:
            # Told only if the operation needs a verification.
            request.api_verification_problem = exc  # type: ignore[attr-defined]
        else:
            ctx = replace(ctx, reauthenticated_at=max(at, ctx.reauthenticated_at or 0))
    return ctx
