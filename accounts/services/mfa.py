"""Second factors: authenticator app (TOTP), security keys and passkeys (WebAuthn),
and backup codes. Every change writes its audit event in the same transaction.

The checks, notifications and the order they come in are the flows'
(``accounts.flows.mfa``); reads are in ``accounts.selectors.mfa``.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.actor import Actor
from accounts.models import BackupCode, BackupCodeDevice, User, backup_code_hash
from accounts.selectors.mfa import has_backup_codes, real_factors
from accounts.services.audit import Action, audit_record

_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i

FactorKind = Literal["totp", "backup", "webauthn"]


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


# --- Backup codes ---------------------------------------------------------------------


@transaction.atomic
def backup_codes_generate(*, user: User, ctx: Actor | None = None) -> list[str]:
    """A fresh set of codes; the old set stops working. Shown once, stored hashed."""
    if real_factors(user) == 0:
        raise ValueError("backup codes are never the only second factor")
    BackupCodeDevice.objects.filter(user=user).delete()
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    codes = [_new_code() for _ in range(int(settings.BACKUP_CODE_COUNT))]
    BackupCode.objects.bulk_create(
        BackupCode(device=device, code_hash=backup_code_hash(c)) for c in codes
    )
    audit_record(
        ctx=ctx, action=Action.BACKUP_CODES_GENERATED, subject=user, data={"count": len(codes)}
    )
    return codes


def _first_codes(*, ctx: Actor, user: User) -> list[str] | None:
    """The first real factor brings the backup codes."""
    if has_backup_codes(user):
        return None
    return backup_codes_generate(user=user, ctx=ctx)


def _drop_backup_codes_if_alone(*, ctx: Actor, user: User) -> None:
    if real_factors(user) == 0 and has_backup_codes(user):
        BackupCodeDevice.objects.filter(user=user).delete()
        audit_record(ctx=ctx, action=Action.BACKUP_CODES_REMOVED, subject=user)


# --- Checking a code ------------------------------------------------------------------


@dataclass(frozen=True)
class CodeCheck:
    """The device a code was right for (None when wrong), and whether a device
    refused to check because of earlier wrong codes."""

    device: Any = None
    throttled: bool = False
    # Seconds until a throttled device checks codes again (django-otp's lock).
    retry_after: int | None = None


def _digits(code: str) -> str:
    # Apps show the code as "123 456": only the digits count.
    return "".join(ch for ch in code if ch.isdigit())


def code_check(*, devices: list[Any], code: str) -> CodeCheck:
    """Tries ``code`` on each device. django-otp records wrong codes (throttling)
    and refuses replays; those writes stand whatever the caller does next."""
    throttled = False
    waits: list[int] = []
    for device in devices:
        allowed, details = device.verify_is_allowed()
        if not allowed:
            throttled = True
            locked_until = (details or {}).get("locked_until")
            if locked_until is not None:
                waits.append(max(1, math.ceil((locked_until - timezone.now()).total_seconds())))
            continue
        token = _digits(code) if isinstance(device, TOTPDevice) else code
        if device.verify_token(token):
            return CodeCheck(device=device)
    return CodeCheck(throttled=throttled, retry_after=min(waits) if waits else None)


def second_factor_check(*, user: User, method: str, code: str) -> CodeCheck:
    """A code from the authenticator app (``method="totp"``) or a backup code."""
    if method == "backup":
        devices: list[Any] = list(BackupCodeDevice.objects.filter(user=user))
    else:
        devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    return code_check(devices=devices, code=code)


def factor_kind(device: Any) -> FactorKind:
    if isinstance(device, BackupCodeDevice):
        return "backup"
    if isinstance(device, TOTPDevice):
        return "totp"
    return "webauthn"


# --- Authenticator app ------------------------------------------------------------------


@transaction.atomic
def totp_begin(*, user: User) -> TOTPDevice:
    """A new, unconfirmed authenticator with a key made on the server. It replaces
    any earlier unconfirmed one; the confirmed one (if any) stays until this one is
    confirmed."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


@dataclass(frozen=True)
class Enrolled:
    replaced: bool
    backup_codes: list[str] | None = None


@transaction.atomic
def totp_activate(*, ctx: Actor, user: User, device: TOTPDevice) -> Enrolled:
    """Makes ``device`` (whose code was checked) the user's authenticator app; the
    one it replaces goes."""
    old = TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk)
    replaced = old.exists()
    old.delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    audit_record(
        ctx=ctx, action=Action.TOTP_REPLACED if replaced else Action.TOTP_ADDED, subject=user
    )
    return Enrolled(replaced=replaced, backup_codes=_first_codes(ctx=ctx, user=user))


@transaction.atomic
def totp_remove(*, ctx: Actor, user: User) -> bool:
    deleted, _ = TOTPDevice.objects.filter(user=user).delete()
    if not deleted:
        return False
    audit_record(ctx=ctx, action=Action.TOTP_REMOVED, subject=user)
    _drop_backup_codes_if_alone(ctx=ctx, user=user)
    return True


# --- Security keys and passkeys ---------------------------------------------------------


def _default_passkey_name() -> str:
    return gettext("Security key")


@transaction.atomic
def passkey_registered(
    *, ctx: Actor, user: User, credential: WebAuthnCredential
) -> list[str] | None:
    """After django-otp-webauthn saved a new credential: name, audit, first codes."""
    if not credential.name or credential.name == credential._meta.get_field("name").default:
        credential.name = _default_passkey_name()
        credential.save(update_fields=["name"])
    audit_record(ctx=ctx, action=Action.PASSKEY_ADDED, subject=user, data={"name": credential.name})
    return _first_codes(ctx=ctx, user=user)


@transaction.atomic
def passkey_rename(
    *, ctx: Actor, user: User, credential: WebAuthnCredential, name: str
) -> WebAuthnCredential:
    credential = WebAuthnCredential.objects.select_for_update().get(pk=credential.pk, user=user)
    old = credential.name
    credential.name = name
    credential.save(update_fields=["name"])
    audit_record(
        ctx=ctx,
        action=Action.PASSKEY_RENAMED,
        subject=user,
        data={"before": old, "after": name},
    )
    return credential


@transaction.atomic
def passkey_remove(*, ctx: Actor, user: User, credential: WebAuthnCredential) -> str:
    credential = WebAuthnCredential.objects.select_for_update().get(pk=credential.pk, user=user)
    name = credential.name
    credential.delete()
    audit_record(ctx=ctx, action=Action.PASSKEY_REMOVED, subject=user, data={"name": name})
    _drop_backup_codes_if_alone(ctx=ctx, user=user)
    return name


# --- Support ----------------------------------------------------------------------------


@transaction.atomic
def mfa_reset(*, ctx: Actor, user: User, reason: str) -> int:
    """Removes every second factor of ``user`` (support, after checking identity).
    The staff member is ``ctx.user``."""
    count = (
        TOTPDevice.objects.filter(user=user).delete()[0]
        + WebAuthnCredential.objects.filter(user=user).delete()[0]
    )
    BackupCodeDevice.objects.filter(user=user).delete()
    audit_record(ctx=ctx, action=Action.MFA_RESET, subject=user, data={"reason": reason})
    return count
