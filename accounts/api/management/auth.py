"""Who may call the Management API.

- A staff member's personal access token with the ``management`` scope: the call
  is allowed only where the staff member's own back-office permissions allow the
  same action (the flows check them), and only while the member is active, still
  staff and still has a second factor.
- A machine client's OAuth access token (client credentials, ``accounts.oauth``):
  the call acts as the client's service account, whose groups carry its
  permissions, and only with the permissions the token's scopes open
  (``SCOPE_PERMISSIONS``): both must allow the action.

Any other credential is refused: an end user's token, a token without the scope
or an app's token acting for a user is a 403, a signed-in session (end user or
staff) is a 403 too (the Management API takes tokens only), no credential a 401.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from accounts.actor import Actor
from accounts.flows.errors import FlowError
from accounts.models import MachineClient, TokenScope, User
from accounts.oauth import access_token_from_request, scope_permissions
from accounts.selectors.mfa import has_real_factor
from accounts.services.tokens import TOKEN_PREFIX, token_authenticate
from accounts.web import client_ip

MANAGEMENT = TokenScope.MANAGEMENT.value


class NotManagement(FlowError):
    """A valid credential that is not a staff member's management token."""

    code = "forbidden"
    status = 403

    def __init__(self) -> None:
        super().__init__(
            _(
                "The Management API takes a staff member's personal access token with "
                "the management scope, or a machine client's access token."
            )
        )


class ManagementTokenAuth(HttpBearer):
    openapi_description = (
        "A staff member's personal access token with the management scope, or a "
        "machine client's OAuth access token (client credentials at "
        "/identity/o/api/token, scopes users:read, users:write, users:suspend, "
        "users:delete, users:impersonate, audit:read, policy:write)."
    )

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get("Authorization")
        if header is None:
            # A session cookie is not a way in: a signed-in caller gets 403, not 401.
            if request.user.is_authenticated:
                raise NotManagement()
            return None
        if not header.lower().startswith("bearer "):
            raise AuthenticationError()
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        if not token.strip().startswith(TOKEN_PREFIX):
            return self._machine(request)
        found = token_authenticate(token.strip())
        if found is None:
            raise AuthenticationError()
        user = found.user
        if MANAGEMENT not in found.scopes or not user.is_staff or not has_real_factor(user):
            raise NotManagement()
        request.user = user
        request.api_token = found  # type: ignore[attr-defined]
        return user

    def _machine(self, request: HttpRequest) -> Any:
        found = access_token_from_request(request)
        if found is None:
            raise AuthenticationError()
        machine = (
            MachineClient.objects.filter(client_id=found.client_id)
            .select_related("account")
            .first()
        )
        if found.user_id is not None or machine is None:
            raise NotManagement()
        account = machine.account
        if not account.is_active or not account.is_staff:
            raise AuthenticationError()
        scopes = frozenset(found.get_scopes())
        account.credential_permissions = scope_permissions(scopes)
        request.user = account
        request.api_app_token = found  # type: ignore[attr-defined]
        request.api_scopes = scopes  # type: ignore[attr-defined]
        return account


MANAGEMENT_AUTH = [ManagementTokenAuth()]


def staff_ctx(request: HttpRequest, subject: User | None = None) -> Actor:
    """The staff member calling, acting on ``subject`` (surface ``api``)."""
    return Actor(
        user=request.user,  # type: ignore[arg-type]
        subject=subject,
        ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", "")[:300],
        surface="api",
        language=get_language() or "",
    )
