"""Second factors: authenticator app (TOTP), security keys and passkeys (WebAuthn),
and backup codes. Every change writes its audit event in the same transaction."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.actor import Actor
from accounts.models import BackupCode, BackupCodeDevice, User
from accounts.services.audit import Action, audit_record

_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i


def _code_hash(code: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"backup:{code}".encode(), hashlib.sha256
    ).hexdigest()


def normalize_backup_code(value: str) -> str:
    return "".join(ch for ch in (value or "").lower() if ch.isalnum())


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def real_factors(user: User) -> int:
    """Authenticator apps and security keys (backup codes are not a factor)."""
    return (
        TOTPDevice.objects.filter(user=user, confirmed=True).count()
        + WebAuthnCredential.objects.filter(user=user, confirmed=True).count()
    )


def backup_codes_remaining(user: User) -> int | None:
    """How many unused codes are left; None when the user has none at all."""
    device = BackupCodeDevice.objects.filter(user=user).first()
    if device is None:
        return None
    return device.codes.filter(used_at__isnull=True).count()


@transaction.atomic
def backup_codes_generate(*, user: User, request: HttpRequest | None) -> list[str]:
    """A fresh set of codes; the old set stops working. Shown once, stored hashed."""
    if real_factors(user) == 0:
        raise ValueError("backup codes are never the only second factor")
    BackupCodeDevice.objects.filter(user=user).delete()
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    codes = [_new_code() for _ in range(int(getattr(settings, "BACKUP_CODE_COUNT", 10)))]
    BackupCode.objects.bulk_create(
        BackupCode(device=device, code_hash=_code_hash(normalize_backup_code(c))) for c in codes
    )
    audit_record(
        action=Action.BACKUP_CODES_GENERATED,
        subject=user,
        request=request,
        data={"count": len(codes)},
    )
    return codes


def backup_code_use(*, device: BackupCodeDevice, code: str) -> bool:
    """Consumes one code. Two concurrent uses of the same code: one succeeds."""
    allowed, _details = device.verify_is_allowed()
    if not allowed:
        return False
    digest = _code_hash(normalize_backup_code(code))
    with transaction.atomic():
        row = device.codes.filter(used_at__isnull=True, code_hash=digest).first()
        used = (
            row is not None
            and BackupCode.objects.filter(pk=row.pk, used_at__isnull=True).update(
                used_at=timezone.now()
            )
            == 1
        )
    if used:
        device.throttle_reset()
    else:
        device.throttle_increment()
    return used


# --- Authenticator app ------------------------------------------------------------


@transaction.atomic
def totp_begin(*, user: User) -> TOTPDevice:
    """A new, unconfirmed authenticator with a key made on the server. It replaces
    any earlier unconfirmed one; the confirmed one (if any) stays until this one is
    confirmed."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def totp_pending(*, user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


@dataclass(frozen=True)
class Enrolled:
    ok: bool
    backup_codes: list[str] | None = None
    replaced: bool = False
    throttled: bool = False


def totp_confirm(
    *, user: User, device: TOTPDevice, code: str, request: HttpRequest | None
) -> Enrolled:
    """Activates ``device`` when ``code`` is right (django-otp checks the time step,
    refuses replays and throttles wrong codes)."""
    if device.user_id != user.pk or device.confirmed:
        return Enrolled(ok=False)
    allowed, _details = device.verify_is_allowed()
    if not allowed:
        return Enrolled(ok=False, throttled=True)
    if not device.verify_token("".join(ch for ch in code if ch.isdigit())):
        return Enrolled(ok=False)
    with transaction.atomic():
        old = TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk)
        replaced = old.exists()
        old.delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit_record(
            action=Action.TOTP_REPLACED if replaced else Action.TOTP_ADDED,
            subject=user,
            request=request,
        )
        codes = None
        if not BackupCodeDevice.objects.filter(user=user).exists():
            codes = backup_codes_generate(user=user, request=request)
    return Enrolled(ok=True, backup_codes=codes, replaced=replaced)


@transaction.atomic
def totp_remove(*, user: User, request: HttpRequest | None) -> bool:
    deleted, _ = TOTPDevice.objects.filter(user=user).delete()
    if not deleted:
        return False
    audit_record(action=Action.TOTP_REMOVED, subject=user, request=request)
    _drop_backup_codes_if_alone(user=user, request=request)
    return True


# --- Security keys and passkeys ----------------------------------------------------


def passkeys_for(user: User):  # type: ignore[no-untyped-def]
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


@transaction.atomic
def passkey_registered(
    *, user: User, credential: WebAuthnCredential, request: HttpRequest | None
) -> list[str] | None:
    """After django-otp-webauthn saved a new credential: name, audit, first codes."""
    if not credential.name or credential.name == credential._meta.get_field("name").default:
        credential.name = str(_default_passkey_name())
        credential.save(update_fields=["name"])
    audit_record(
        action=Action.PASSKEY_ADDED, subject=user, request=request, data={"name": credential.name}
    )
    if not BackupCodeDevice.objects.filter(user=user).exists():
        return backup_codes_generate(user=user, request=request)
    return None


def _default_passkey_name() -> str:
    from django.utils.translation import gettext

    return gettext("Security key")


@transaction.atomic
def passkey_rename(
    *, user: User, credential_id: int, name: str, request: HttpRequest | None
) -> WebAuthnCredential:
    credential = passkeys_for(user).select_for_update().get(pk=credential_id)
    old = credential.name
    credential.name = name
    credential.save(update_fields=["name"])
    audit_record(
        action=Action.PASSKEY_RENAMED,
        subject=user,
        request=request,
        data={"before": old, "after": name},
    )
    return credential


@transaction.atomic
def passkey_remove(*, user: User, credential_id: int, request: HttpRequest | None) -> str:
    credential = passkeys_for(user).select_for_update().get(pk=credential_id)
    name = credential.name
    credential.delete()
    audit_record(action=Action.PASSKEY_REMOVED, subject=user, request=request, data={"name": name})
    _drop_backup_codes_if_alone(user=user, request=request)
    return name


def _drop_backup_codes_if_alone(*, user: User, request: HttpRequest | None) -> None:
    if real_factors(user) == 0 and BackupCodeDevice.objects.filter(user=user).exists():
        BackupCodeDevice.objects.filter(user=user).delete()
        audit_record(action=Action.BACKUP_CODES_REMOVED, subject=user, request=request)


def is_last_real_factor_totp(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists() and real_factors(user) == 1


def is_last_real_factor_passkey(user: User, credential_id: int) -> bool:
    return real_factors(user) == 1 and passkeys_for(user).filter(pk=credential_id).exists()


@transaction.atomic
def mfa_reset(*, ctx: Actor | None, user: User, reason: str) -> int:
    """Removes every second factor of ``user`` (support, after checking identity)."""
    count = (
        TOTPDevice.objects.filter(user=user).delete()[0]
        + WebAuthnCredential.objects.filter(user=user).delete()[0]
    )
    BackupCodeDevice.objects.filter(user=user).delete()
    audit_record(ctx=ctx, action=Action.MFA_RESET, subject=user, data={"reason": reason})
    return count
