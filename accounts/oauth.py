"""The portal as an OAuth 2.1 / OpenID Connect provider (``allauth.idp.oidc``).

allauth's provider does the protocol: discovery, JWKS, the authorize step (through
allauth's sign-in, so the second step and the rate limits apply), the token,
revocation, introspection and userinfo endpoints, hashed client secrets and
tokens. This module holds what the portal adds:

- ``PortalOIDCAdapter``: the scopes in plain words, the ``phone`` claims, and no
  token or ID-token subject for an account that may not use the site;
- the scopes an app may ask for and, for machine clients, the back-office
  permissions each Management API scope lets them use (``SCOPE_PERMISSIONS``);
- ``access_token_from_request``: the live access token of a call to the APIs,
  checked by allauth's own resource check (``contrib.ninja.TokenAuth``);
- connected apps (``AppGrant``): recorded when an app gets tokens for a user
  (``grant_record``, audited the first time), their last use, the user taking
  one back (``app_grant_revoke``, audited), and ``app_tokens_revoke`` /
  ``oauth_tokens_revoke_all``.

Access tokens are opaque and looked up on every call: a suspension, a deletion or
a revoked app stops them at once (a self-contained JWT would outlive it).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Literal

from allauth.idp.oidc.adapter import DefaultOIDCAdapter
from allauth.idp.oidc.contrib.ninja.security import TokenAuth as AllauthTokenAuth
from allauth.idp.oidc.models import Client, Token
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.actor import Actor
from accounts.models import AppGrant, OAuthScope, User
from accounts.services.audit import Action, audit_record

# What a user's app may ask for (authorization code), and what a machine client
# may (client credentials). An app never mixes the two.
USER_SCOPES = (
    OAuthScope.OPENID,
    OAuthScope.PROFILE,
    OAuthScope.EMAIL,
    OAuthScope.PHONE,
    OAuthScope.ACCOUNT_READ,
    OAuthScope.ACCOUNT_WRITE,
)
MACHINE_SCOPES = (
    OAuthScope.USERS_READ,
    OAuthScope.USERS_WRITE,
    OAuthScope.USERS_SUSPEND,
    OAuthScope.USERS_DELETE,
    OAuthScope.USERS_IMPERSONATE,
    OAuthScope.AUDIT_READ,
    OAuthScope.POLICY_WRITE,
)

# The back-office permissions (``app.codename``) a machine client's token may use,
# by scope: the service account must hold them too (through its groups). The
# Management API's endpoints check the same permissions as the back-office's
# actions, so a scope opens exactly the endpoints of those actions.
SCOPE_PERMISSIONS: dict[str, frozenset[str]] = {
    OAuthScope.USERS_READ: frozenset(
        {
            "accounts.view_user",
            "accounts.view_personalaccesstoken",
            "socialaccount.view_socialaccount",
        }
    ),
    OAuthScope.USERS_WRITE: frozenset(
        {
            "accounts.add_user",
            "accounts.change_user",
            "accounts.end_user_sessions",
            "accounts.reset_user_mfa",
            "accounts.add_personalaccesstoken",
            "accounts.delete_personalaccesstoken",
            "socialaccount.delete_socialaccount",
        }
    ),
    OAuthScope.USERS_SUSPEND: frozenset({"accounts.suspend_user"}),
    OAuthScope.USERS_DELETE: frozenset({"accounts.schedule_user_deletion", "accounts.purge_user"}),
    OAuthScope.USERS_IMPERSONATE: frozenset({"accounts.impersonate_user"}),
    OAuthScope.AUDIT_READ: frozenset({"accounts.view_auditevent"}),
    OAuthScope.POLICY_WRITE: frozenset(
        {"accounts.view_accountpolicy", "accounts.change_accountpolicy"}
    ),
}

# A client secret's randomness (64 characters once encoded).
CLIENT_SECRET_BYTES = 48

# A grant's last use is written at most this often (one UPDATE a minute per app).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def scope_permissions(scopes: Iterable[str]) -> frozenset[str]:
    """The permissions a machine client's token with ``scopes`` may use."""
    allowed: set[str] = set()
    for scope in scopes:
        allowed |= SCOPE_PERMISSIONS.get(scope, frozenset())
    return frozenset(allowed)


def usable(user: User | None) -> bool:
    """An account that may use the site (not suspended, not waiting for deletion)."""
    return bool(user is not None and user.is_active and user.state == User.State.ACTIVE)


class PortalOIDCAdapter(DefaultOIDCAdapter):
    def generate_client_secret(self) -> str:
        # Letters, digits, "-" and "_" only (allauth's has "%", "&", "@"...): the same
        # whether or not a client URL-encodes it in HTTP Basic, as RFC 6749 (2.3.1)
        # asks and allauth's token endpoint does not undo.
        return secrets.token_urlsafe(CLIENT_SECRET_BYTES)

    @property
    def scope_display(self) -> dict[str, Any]:
        return {scope.value: scope.label for scope in OAuthScope}

    def get_user_by_sub(self, client: Client, sub: str) -> Any:
        # allauth checks ``is_active``; the portal's state says the same (a check
        # constraint ties them), checked here in words.
        user = super().get_user_by_sub(client, sub)
        return user if usable(user) else None

    def get_claims(
        self,
        purpose: Literal["id_token", "userinfo"],
        user: Any,
        client: Client,
        scopes: Iterable[str],
        email: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        scopes = list(scopes)
        claims = super().get_claims(purpose, user, client, scopes, email=email, **kwargs)
        if "profile" in scopes:
            if user.display_name:
                claims["name"] = user.display_name
            if user.language:
                claims["locale"] = user.language
            claims["zoneinfo"] = user.time_zone
        if "phone" in scopes and user.phone:
            claims["phone_number"] = user.phone
            claims["phone_number_verified"] = bool(user.phone_verified)
        return claims

    def populate_server_metadata(self, data: dict[str, Any]) -> None:
        # What this provider really offers (allauth lists every type it knows).
        data["scopes_supported"] = [scope.value for scope in OAuthScope]
        data["grant_types_supported"] = [
            Client.GrantType.AUTHORIZATION_CODE.value,
            Client.GrantType.REFRESH_TOKEN.value,
            Client.GrantType.CLIENT_CREDENTIALS.value,
        ]
        data["response_types_supported"] = [Client.ResponseType.CODE.value]
        data["code_challenge_methods_supported"] = ["S256"]
        data["claims_supported"] = [
            "sub",
            "name",
            "given_name",
            "family_name",
            "preferred_username",
            "locale",
            "zoneinfo",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
        ]
        data.pop("device_authorization_endpoint", None)

    def is_introspection_allowed(self, token: Token, *, caller_client: Client) -> bool:
        return token.user_id is None or usable(token.user)


class AppAccessToken(AllauthTokenAuth):
    """allauth's resource check of an OAuth access token (live, not expired, an
    active owner, never from the query string), published as what it is: an HTTP
    bearer scheme (allauth's class declares an ``apiKey`` without a name)."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __init__(self) -> None:
        super().__init__(scope=[])


_app_access_token = AppAccessToken()


def access_token_from_request(request: HttpRequest) -> Token | None:
    """The live OAuth access token the request carries, or None. Its owner, when
    it has one, must be able to use the site; its use is recorded on the grant."""
    token: Token | None = _app_access_token(request)
    if token is None or token.client_id is None:
        return None
    if token.user_id is not None:
        if not usable(token.user):
            return None
        _record_use(token)
    return token


def _record_use(token: Token) -> None:
    now = timezone.now()
    AppGrant.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION),
        user_id=token.user_id,
        client_id=token.client_id,
    ).update(last_used_at=now)


def grant_record(
    *, ctx: Actor | None, user: User, client: Client, scopes: Iterable[str]
) -> tuple[AppGrant, bool]:
    """The user's grant to ``client`` after it got tokens: made the first time
    (audited: the user connected the app), its scopes and last use brought up to
    date afterwards. Returns the grant and whether it was made now."""
    now = timezone.now()
    with transaction.atomic():
        grant, created = AppGrant.objects.get_or_create(
            user=user, client=client, defaults={"scopes": sorted(set(scopes))}
        )
        if created:
            # First and last use are the same moment.
            grant.last_used_at = grant.created_at
            grant.save(update_fields=["last_used_at"])
            audit_record(
                ctx=ctx,
                action=Action.APP_CONNECTED,
                subject=user,
                data={"app": client.name, "client_id": client.pk, "scopes": grant.scopes},
            )
        else:
            grant.scopes = sorted(set(scopes))
            grant.last_used_at = now
            grant.save(update_fields=["scopes", "last_used_at"])
    return grant, created


def app_grant_revoke(*, ctx: Actor | None, grant: AppGrant) -> bool:
    """The user takes back their grant: the app's tokens for them die at once.
    Audited. Whether the grant was still there (a second revocation changes
    nothing)."""
    client = grant.client
    with transaction.atomic():
        gone, _ = AppGrant.objects.filter(pk=grant.pk).delete()
        if not gone:
            return False
        tokens = app_tokens_revoke(user=grant.user, client=client)
        audit_record(
            ctx=ctx,
            action=Action.APP_REVOKED,
            subject=grant.user,
            data={"app": client.name, "client_id": client.pk, "tokens": tokens},
        )
    return True


def app_tokens_revoke(*, user: User, client: Client | str) -> int:
    """Every token ``client`` holds for ``user`` dies, and the grant with them.
    Returns how many tokens there were."""
    client_id = client.pk if isinstance(client, Client) else client
    with transaction.atomic():
        deleted, _ = Token.objects.filter(user=user, client_id=client_id).delete()
        AppGrant.objects.filter(user=user, client_id=client_id).delete()
    return deleted


def oauth_tokens_revoke_all(*, user: User) -> int:
    """Every OAuth token of ``user`` dies and every app loses its grant
    (suspension, deletion, password change)."""
    deleted, _ = Token.objects.filter(user=user).delete()
    AppGrant.objects.filter(user=user).delete()
    return deleted


def client_tokens_revoke(*, client: Client) -> int:
    """Every token of ``client`` dies (its users' and its own machine tokens)."""
    deleted, _ = Token.objects.filter(client=client).delete()
    return deleted
