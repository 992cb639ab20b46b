"""A user's ways in, as staff manage them: linked accounts (identities), second
factors, sessions and personal access tokens.

Reads need the back-office's view permission (tokens: ``view_personalaccesstoken``);
each change calls the staff flow the back-office calls, or the staff flow made for
it where the back-office has no page (unlinking an identity, a user's tokens), so
the same permission and guard rails apply: staff never act on their own account
here, and only superusers act on staff and superusers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from django_otp_webauthn.models import WebAuthnCredential
from ninja import Field, Path, Router, Schema, Status

from accounts.access import access_user_for_staff
from accounts.actor import Actor
from accounts.admin.forms import reason_form
from accounts.api.forms import valid
from accounts.api.management.auth import MANAGEMENT_AUTH, staff_ctx
from accounts.api.routers.identities import PRINTABLE
from accounts.api.routers.tokens import Token, token_data
from accounts.api.schemas import COMMON_ERRORS, Done, Error, Input
from accounts.flows import moderation
from accounts.flows import tokens as token_flows
from accounts.models import PersonalAccessToken, User
from accounts.selectors.mfa import PasskeyShown, two_factor_overview
from accounts.selectors.sessions import user_sessions_for_staff
from accounts.selectors.social import linked_accounts_list
from accounts.selectors.tokens import user_tokens

router = Router(tags=["management"], auth=MANAGEMENT_AUTH)

VIEW = "accounts.view_user"
VIEW_TOKENS = "accounts.view_personalaccesstoken"

WRITE_ERRORS: dict[int, Any] = {**COMMON_ERRORS, 409: Error}

# Free text kept in the audit log: no control characters but tabs and line breaks.
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def _target(request: HttpRequest, user_id: int, permission: str) -> User:
    """The account, for a read under ``permission``."""
    return access_user_for_staff(staff_ctx(request), user_id, permission)


def _acting_on(request: HttpRequest, user_id: int, permission: str) -> Actor:
    """The staff member acting on the account, checked in the back-office's order
    before the endpoint judges the values sent: the permission (403), the account
    (404), then whether staff may act on it (403: not themselves, staff only for
    superusers). The flow checks them all again."""
    target = _target(request, user_id, permission)
    ctx = staff_ctx(request, subject=target)
    moderation.check_may_act(ctx, target)
    return ctx


# --- Identities (linked accounts) ---------------------------------------------------------


class ManagedIdentity(Schema):
    """A linked account: ``display_name`` is the account's name at the provider,
    ``email`` the address the provider gave, when it gave one; ``last_login``: the
    last sign-in with it."""

    id: int
    provider: str
    provider_name: str
    uid: str
    display_name: str
    email: str | None
    linked_at: datetime
    last_login: datetime | None


@router.get("/users/{user_id}/identities", response={200: list[ManagedIdentity], **COMMON_ERRORS})
def identities(request: HttpRequest, user_id: int) -> Any:
    """The account's linked accounts, oldest link first (the "view user" permission)."""
    target = _target(request, user_id, VIEW)
    return [
        {
            "id": row.pk,
            "provider": row.provider,
            "provider_name": row.provider_name,
            "uid": row.uid,
            "display_name": row.display,
            "email": row.email,
            "linked_at": row.linked_at,
            "last_login": row.last_login,
        }
        for row in linked_accounts_list(user=target)
    ]


@router.delete(
    "/users/{user_id}/identities/{provider}/{path:uid}", response={200: Done, **WRITE_ERRORS}
)
def identity_unlink(
    request: HttpRequest,
    user_id: int,
    provider: str = Path(..., max_length=200, pattern=PRINTABLE),
    uid: str = Path(..., max_length=191, pattern=PRINTABLE),
) -> Any:
    """Unlinks one of the account's linked accounts (``uid`` may contain ``/``); the
    user is told by email. Needs allauth's ``socialaccount.delete_socialaccount``
    permission (superusers have it; no role does). Staff cannot remove the user's
    last way to sign in: 409 ``social.last_sign_in_method`` when the account would
    be left without a password and another linked account (or without a verified
    email address to reset the password with) — as when the user unlinks it."""
    ctx = _acting_on(request, user_id, moderation.UNLINK_PERMISSION)
    moderation.unlink_identity(ctx=ctx, provider=provider, uid=uid)
    return {"ok": True}


# --- Second factors -------------------------------------------------------------------------


class AuthenticatorApp(Schema):
    added_at: datetime
    last_used_at: datetime | None


class ManagedSecurityKey(Schema):
    """A security key or passkey; ``passkey``: whether the authenticator offers it
    without being told its id (null when the browser did not say)."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    passkey: bool | None


class SecondFactors(Schema):
    """``enabled``: the account has an authenticator app or a security key (backup
    codes alone are not a second factor); ``backup_codes_remaining``: unused backup
    codes, null when the account has none at all."""

    enabled: bool
    authenticator_app: AuthenticatorApp | None
    security_keys: list[ManagedSecurityKey]
    backup_codes_remaining: int | None


def _key(credential: WebAuthnCredential | PasskeyShown) -> dict[str, Any]:
    return {
        "id": credential.pk,
        "name": credential.name,
        "created_at": credential.created_at,
        "last_used_at": credential.last_used_at,
        "passkey": credential.discoverable,
    }


@router.get("/users/{user_id}/second-factors", response={200: SecondFactors, **COMMON_ERRORS})
def second_factors(request: HttpRequest, user_id: int) -> Any:
    """The account's second factors (the "view user" permission); never a secret."""
    target = _target(request, user_id, VIEW)
    factors = two_factor_overview(target)
    app = factors.totp
    return {
        "enabled": app is not None or bool(factors.passkeys),
        "authenticator_app": (
            {"added_at": app.created_at, "last_used_at": app.last_used_at}
            if app is not None
            else None
        ),
        "security_keys": [_key(c) for c in factors.passkeys],
        "backup_codes_remaining": factors.backup_remaining,
    }


class ReasonIn(Input):
    reason: str = Field(
        max_length=500, pattern=TEXT, description="Why, as recorded in the audit log."
    )


class FactorsRemoved(Schema):
    """How many authenticator apps and security keys were removed (the backup codes
    go too)."""

    removed: int


@router.delete("/users/{user_id}/second-factors", response={200: FactorsRemoved, **COMMON_ERRORS})
def second_factors_reset(request: HttpRequest, user_id: int, payload: ReasonIn) -> Any:
    """Removes every second factor of the account and its backup codes (the
    back-office's "Reset second factors": the ``reset_user_mfa`` permission); the
    user is told by email. Signing in then needs only the password."""
    ctx = _acting_on(request, user_id, "accounts.reset_user_mfa")
    reason = valid(reason_form({"reason": payload.reason}))["reason"]
    return {"removed": moderation.reset_user_mfa(ctx=ctx, reason=reason)}


# --- Sessions -----------------------------------------------------------------------------


class ManagedSession(Schema):
    """``device`` describes ``user_agent`` ("Firefox on Windows"); ``impersonation``:
    a session staff opened by impersonating the user."""

    id: int
    ip: str
    user_agent: str
    device: str
    created_at: datetime
    last_seen_at: datetime
    impersonation: bool


@router.get("/users/{user_id}/sessions", response={200: list[ManagedSession], **COMMON_ERRORS})
def sessions(request: HttpRequest, user_id: int) -> Any:
    """The account's sessions as the back-office shows them: the 50 most recently
    active, impersonations included (the "view user" permission)."""
    target = _target(request, user_id, VIEW)
    return [
        {
            "id": row.pk,
            "ip": row.ip,
            "user_agent": row.user_agent,
            "device": row.device,
            "created_at": row.signed_in,
            "last_seen_at": row.last_seen,
            "impersonation": row.impersonation,
        }
        for row in user_sessions_for_staff(user=target)
    ]


class SessionsEnded(Schema):
    ended: int


@router.delete("/users/{user_id}/sessions", response={200: SessionsEnded, **COMMON_ERRORS})
def sessions_end(request: HttpRequest, user_id: int) -> Any:
    """Signs the account out of every session at once (the back-office's "End all
    sessions": the ``end_user_sessions`` permission). Its personal access tokens keep
    working: revoke them under ``personal-access-tokens``."""
    ctx = _acting_on(request, user_id, "accounts.end_user_sessions")
    return {"ended": moderation.end_user_sessions(ctx=ctx)}


# --- Personal access tokens -----------------------------------------------------------------


class ManagedToken(Token):
    created_by: int | None = Field(
        description="The staff member who made the token for the user; null: the user did."
    )


class NewManagedToken(ManagedToken):
    token: str = Field(description="The full token, shown this once: it is not stored.")


def _token(token: PersonalAccessToken) -> dict[str, Any]:
    return {**token_data(token), "created_by": token.created_by_id}


@router.get(
    "/users/{user_id}/personal-access-tokens",
    response={200: list[ManagedToken], **COMMON_ERRORS},
)
def tokens_list(request: HttpRequest, user_id: int) -> Any:
    """The account's live tokens, and those revoked or expired in the last 30 days,
    newest first, as the user sees them (``accounts.view_personalaccesstoken``)."""
    target = _target(request, user_id, VIEW_TOKENS)
    return [_token(token) for token in user_tokens(user=target)]


Scope = Annotated[str, Field(max_length=50)]


class TokenIn(Input):
    name: str = Field(max_length=300)
    scopes: list[Scope] = Field(
        max_length=10, description="`account:read`, `account:write` (never `management`)."
    )
    expires_at: datetime = Field(description="One year from now at most.")


@router.post(
    "/users/{user_id}/personal-access-tokens",
    response={201: NewManagedToken, **WRITE_ERRORS},
)
def token_create(request: HttpRequest, user_id: int, payload: TokenIn) -> Any:
    """Makes a token for the account (``accounts.add_personalaccesstoken``; staff make
    their own tokens through the Account API). Its full text is in `token`, this
    once. The user is told by email. 409 ``wrong_state`` for an account that is not
    active, ``tokens.too_many`` when it has as many live tokens as allowed."""
    ctx = _acting_on(request, user_id, f"accounts.{token_flows.CREATE_FOR_USER_PERMISSION}")
    new = token_flows.token_create_for_user(
        ctx=ctx, name=payload.name, scopes=payload.scopes, expires_at=payload.expires_at
    )
    return Status(201, {**_token(new.token), "token": new.secret})


@router.delete(
    "/users/{user_id}/personal-access-tokens/{token_id}",
    response={200: ManagedToken, **COMMON_ERRORS},
)
def token_revoke(request: HttpRequest, user_id: int, token_id: int) -> Any:
    """Revokes one of the account's tokens: it stops working at once; the user is
    told (``accounts.delete_personalaccesstoken``). A token already revoked or
    expired is returned as it is."""
    ctx = _acting_on(request, user_id, f"accounts.{token_flows.REVOKE_FOR_USER_PERMISSION}")
    return _token(token_flows.token_revoke_for_user(ctx=ctx, pk=token_id))
