"""Security keys and passkeys (WebAuthn). django-otp-webauthn's views run the
registration ceremony and save the credential; what follows (name, audit, first
backup codes, the email) is ``passkey_registration_complete``. Policy field
``passkeys``; refused while staff impersonate the user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext
from django_otp_webauthn.models import WebAuthnCredential

from accounts.access import access_own_passkey
from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.mfa.errors import LastFactor
from accounts.notifications import notify
from accounts.selectors.mfa import is_last_real_factor_passkey
from accounts.services import mfa as mfa_services

FIELD = "passkeys"


def passkey_registration_check(ctx: Actor) -> None:
    """May the actor register a new key now? (Before the ceremony starts.)"""
    gate.check(ctx, field=FIELD, reauth=True, sensitive=True)


@dataclass(frozen=True)
class PasskeyRegistered:
    credential: WebAuthnCredential
    # The first set of backup codes, to show once; None when the user had some.
    backup_codes: list[str] | None


def passkey_registration_complete(*, ctx: Actor, pk: Any) -> PasskeyRegistered:
    """After the library saved the credential ``pk``: a default name, the audit
    event, the first backup codes, the email."""
    passkey_registration_check(ctx)
    credential = access_own_passkey(ctx, pk)
    user = ctx.target
    with transaction.atomic():
        codes = mfa_services.passkey_registered(ctx=ctx, user=user, credential=credential)
        notify(
            ctx=ctx, user=user, event="factor_added", context={"factor": gettext("security key")}
        )
        if codes:
            notify(ctx=ctx, user=user, event="backup_codes_generated")
    return PasskeyRegistered(credential=credential, backup_codes=codes)


def passkey_rename(*, ctx: Actor, pk: Any, name: str) -> WebAuthnCredential:
    """No re-authentication: a key is named right after registering it."""
    gate.check(ctx, field=FIELD, sensitive=True)
    credential = access_own_passkey(ctx, pk)
    return mfa_services.passkey_rename(ctx=ctx, user=ctx.target, credential=credential, name=name)


def passkey_remove(*, ctx: Actor, pk: Any, confirm_last: bool = False) -> str:
    """Removes the key and returns its name. Removing the last real factor needs
    ``confirm_last`` (``LastFactor`` otherwise) and takes the backup codes with it."""
    gate.check(ctx, field=FIELD, reauth=True, sensitive=True)
    credential = access_own_passkey(ctx, pk)
    user = ctx.target
    if is_last_real_factor_passkey(user, credential.pk) and not confirm_last:
        raise LastFactor()
    with transaction.atomic():
        name = mfa_services.passkey_remove(ctx=ctx, user=user, credential=credential)
        notify(ctx=ctx, user=user, event="factor_removed", context={"factor": name})
    return name
