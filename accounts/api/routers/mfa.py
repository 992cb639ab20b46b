"""Two-step verification: the overview, the authenticator app (TOTP), security keys
and passkeys, backup codes. Policy fields ``mfa`` (the app and backup codes) and
``passkeys`` (security keys and passkeys).

Registering a security key stays on the settings page: the WebAuthn ceremony needs
the browser. Removing the last real factor turns two-step verification off and
deletes the backup codes: it needs ``?confirm_last=true``, else 409
``mfa.last_factor``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django_otp_webauthn.models import WebAuthnCredential
from ninja import Field, Router, Schema

from accounts.access import access_own_passkey
from accounts.api.auth import ACCOUNT_AUTH, api_ctx
from accounts.api.forms import door, valid
from accounts.api.schemas import COMMON_ERRORS, Error, Input
from accounts.flows import mfa as flows
from accounts.forms import CodeForm, PasskeyNameForm
from accounts.models import User
from accounts.policy import get_policy, require_readable
from accounts.selectors import mfa as selectors

router = Router(tags=["two-step verification"], auth=ACCOUNT_AUTH)

WRITE_ERRORS: dict[int, Any] = {**COMMON_ERRORS, 409: Error}
# A JSON body that cannot be read is a 400 ``bad_request``.
BODY_ERRORS: dict[int, Any] = {**WRITE_ERRORS, 400: Error}


class SecurityKey(Schema):
    """A security key or passkey. ``passkey`` is true for a passkey (a credential
    the authenticator can offer without being told its id), false for a key that
    needs it, null when the browser did not say."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    passkey: bool | None


class TotpState(Schema):
    enabled: bool
    created_at: datetime | None


class BackupCodesState(Schema):
    """``remaining`` is null when the user has no backup codes at all (they come
    with the first authenticator app or security key); ``low`` warns when few are
    left."""

    remaining: int | None
    low: bool


class MfaOverview(Schema):
    """``enabled``: whether the account has a real second factor (an app or a key;
    backup codes alone are not one). The part of a field whose policy is ``off``
    is left out: ``totp`` and ``backup_codes`` (field ``mfa``), ``security_keys``
    (field ``passkeys``)."""

    enabled: bool
    totp: TotpState | None = None
    security_keys: list[SecurityKey] | None = None
    backup_codes: BackupCodesState | None = None


def _key(credential: WebAuthnCredential | selectors.PasskeyShown) -> dict[str, Any]:
    return {
        "id": credential.pk,
        "name": credential.name,
        "created_at": credential.created_at,
        "last_used_at": credential.last_used_at,
        "passkey": credential.discoverable,
    }


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


@router.get("/mfa", response={200: MfaOverview, **COMMON_ERRORS}, exclude_unset=True)
def mfa_overview(request: HttpRequest) -> Any:
    api_ctx(request)
    policy = get_policy(request)
    require_readable(policy, "mfa", "passkeys")
    show_app, show_keys = policy.visible("mfa"), policy.visible("passkeys")
    factors = selectors.two_factor_overview(_user(request))
    data: dict[str, Any] = {"enabled": factors.totp is not None or bool(factors.passkeys)}
    if show_app:
        data["totp"] = {
            "enabled": factors.totp is not None,
            "created_at": factors.totp.created_at if factors.totp is not None else None,
        }
        data["backup_codes"] = {
            "remaining": factors.backup_remaining,
            "low": factors.backup_low,
        }
    if show_keys:
        data["security_keys"] = [_key(c) for c in factors.passkeys]
    return data


# --- Authenticator app ------------------------------------------------------------------


class TotpSetup(Schema):
    """Type ``secret`` (base32) into the app, or show ``otpauth_uri`` as a QR code;
    then confirm with a code the app shows. The current app, if any, keeps working
    until then."""

    secret: str
    otpauth_uri: str


@router.post("/mfa/totp", response={200: TotpSetup, **WRITE_ERRORS})
def totp_start(request: HttpRequest) -> Any:
    """Starts setting up (or replacing) the authenticator app. Needs a verification."""
    ctx = api_ctx(request)
    door(request, ctx, field="mfa", reauth=True, sensitive=True)
    setup = selectors.totp_setup(flows.totp_start(ctx=ctx))
    return {"secret": setup.secret, "otpauth_uri": setup.otpauth_uri}


class CodeIn(Input):
    code: str = Field(min_length=1, max_length=20)


class TotpConfirmed(Schema):
    """``backup_codes``: the first set of backup codes, shown only this once (null
    when the account already had some)."""

    replaced: bool
    backup_codes: list[str] | None


@router.post("/mfa/totp/confirm", response={200: TotpConfirmed, **BODY_ERRORS})
def totp_confirm(request: HttpRequest, payload: CodeIn) -> Any:
    """Turns the app on with a code it shows (404 ``mfa.no_pending_setup`` when no
    setup was started; wrong codes slow down the next tries: 429 ``mfa.throttled``).
    Needs a verification."""
    ctx = api_ctx(request)
    door(request, ctx, field="mfa", reauth=True, sensitive=True)
    code = valid(CodeForm({"code": payload.code}))["code"]
    confirmed = flows.totp_confirm(ctx=ctx, code=code)
    return {"replaced": confirmed.replaced, "backup_codes": confirmed.backup_codes}


class Removed(Schema):
    removed: bool


@router.delete("/mfa/totp", response={200: Removed, **WRITE_ERRORS})
def totp_remove(request: HttpRequest, confirm_last: bool = False) -> Any:
    """Removes the authenticator app (``removed`` is false when there was none).
    Needs a verification."""
    ctx = api_ctx(request)
    door(request, ctx, field="mfa", reauth=True, sensitive=True)
    return {"removed": flows.totp_remove(ctx=ctx, confirm_last=confirm_last)}


# --- Security keys and passkeys ----------------------------------------------------------


@router.get("/mfa/security-keys", response={200: list[SecurityKey], **COMMON_ERRORS})
def security_keys(request: HttpRequest) -> Any:
    """The account's security keys and passkeys, oldest first."""
    api_ctx(request)
    require_readable(get_policy(request), "passkeys")
    return [_key(c) for c in selectors.passkeys_for(_user(request))]


class KeyNameIn(Input):
    name: str = Field(min_length=1, max_length=200)


@router.patch("/mfa/security-keys/{key_id}", response={200: SecurityKey, **BODY_ERRORS})
def security_key_rename(request: HttpRequest, key_id: int, payload: KeyNameIn) -> Any:
    ctx = api_ctx(request)
    door(request, ctx, field="passkeys", sensitive=True)
    credential = access_own_passkey(ctx, key_id)
    name = valid(PasskeyNameForm({"name": payload.name}, policy=get_policy(request)))["name"]
    return _key(flows.passkey_rename(ctx=ctx, pk=credential.pk, name=name))


class KeyRemoved(Schema):
    name: str


@router.delete("/mfa/security-keys/{key_id}", response={200: KeyRemoved, **WRITE_ERRORS})
def security_key_remove(request: HttpRequest, key_id: int, confirm_last: bool = False) -> Any:
    """Removes a security key or passkey; returns its name. Needs a verification."""
    ctx = api_ctx(request)
    door(request, ctx, field="passkeys", reauth=True, sensitive=True)
    return {"name": flows.passkey_remove(ctx=ctx, pk=key_id, confirm_last=confirm_last)}


# --- Backup codes -------------------------------------------------------------------------


class BackupCodes(Schema):
    """The new set, shown only this once; the old set stopped working."""

    codes: list[str]


@router.post("/mfa/backup-codes", response={200: BackupCodes, **WRITE_ERRORS})
def backup_codes_regenerate(request: HttpRequest) -> Any:
    """A new set of backup codes (409 ``mfa.no_factor`` without an app or a key).
    Needs a verification."""
    ctx = api_ctx(request)
    door(request, ctx, field="mfa", reauth=True, sensitive=True)
    return {"codes": flows.backup_codes_regenerate(ctx=ctx)}
