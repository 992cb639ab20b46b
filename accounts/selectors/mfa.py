"""Reads of a user's second factors: authenticator app (TOTP), security keys and
passkeys (WebAuthn), backup codes. The settings pages, the sign-in step, the
back-office and the export read them here."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from django.db.models import Count, Q, QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import BackupCodeDevice, User
from accounts.prepared import prepared

# Fewer unused backup codes than this and the settings page warns.
BACKUP_CODES_LOW = 2


def passkeys_for(user: User | int) -> QuerySet[WebAuthnCredential]:
    """The user's (or user id's) confirmed security keys and passkeys, oldest first."""
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


def confirmed_totp(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def has_confirmed_totp(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def pending_totp(user: User) -> TOTPDevice | None:
    """The authenticator being set up (not confirmed yet), if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


@dataclass(frozen=True)
class TotpSetup:
    """What an authenticator app needs to be set up: the key in base32 (as typed
    by hand, without padding) and the ``otpauth://`` URI (the QR code's content)."""

    secret: str
    otpauth_uri: str

    @property
    def secret_groups(self) -> str:
        """The key in groups of four characters, easier to type."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


def totp_setup(device: TOTPDevice) -> TotpSetup:
    """The key and URI of an authenticator being set up (``otpauth_uri`` names the
    account with its username and the site with ``OTP_TOTP_ISSUER``)."""
    return TotpSetup(
        secret=base64.b32encode(device.bin_key).decode().rstrip("="),
        otpauth_uri=device.config_url,
    )


def real_factors(user: User) -> int:
    """Authenticator apps and security keys (backup codes are not a factor)."""
    return (
        TOTPDevice.objects.filter(user=user, confirmed=True).count()
        + WebAuthnCredential.objects.filter(user=user, confirmed=True).count()
    )


def has_real_factor(user: User) -> bool:
    """Whether ``real_factors(user) > 0``, in one query."""
    totp = TOTPDevice.objects.filter(user=user, confirmed=True).values("pk")
    keys = WebAuthnCredential.objects.filter(user=user, confirmed=True).values("pk")
    return totp.union(keys).exists()


def has_backup_codes(user: User) -> bool:
    return BackupCodeDevice.objects.filter(user=user).exists()


@prepared
def _backup_codes_unused(user_id: int) -> QuerySet[BackupCodeDevice]:
    unused = Count("codes", filter=Q(codes__used_at__isnull=True))
    devices = BackupCodeDevice.objects.filter(user_id=user_id).order_by("pk")
    return devices.annotate(unused=unused).values_list("unused", flat=True)[:1]


def backup_codes_remaining(user: User) -> int | None:
    """How many unused codes are left; None when the user has none at all. One
    query: the first set of codes with its unused ones counted."""
    return next(iter(_backup_codes_unused(user.pk)), None)


def is_last_real_factor_totp(user: User) -> bool:
    return has_confirmed_totp(user) and real_factors(user) == 1


def is_last_real_factor_passkey(user: User, credential_id: int) -> bool:
    return real_factors(user) == 1 and passkeys_for(user).filter(pk=credential_id).exists()


class SecondFactorMethods(TypedDict):
    totp: bool
    backup: bool
    passkeys: bool


def second_factor_methods(user: User) -> SecondFactorMethods:
    """Which ways the user can give a second factor (sign-in, re-authentication)."""
    return {
        "totp": has_confirmed_totp(user),
        "backup": has_backup_codes(user),
        "passkeys": passkeys_for(user).exists(),
    }


@dataclass(frozen=True)
class PasskeyShown:
    """A security key or passkey as pages and APIs list it."""

    pk: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    discoverable: bool | None


@dataclass(frozen=True)
class TotpShown:
    """An authenticator app as pages and APIs show it."""

    created_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class TwoFactorOverview:
    totp: TotpShown | None
    passkeys: list[PasskeyShown]
    backup_remaining: int | None

    @property
    def backup_low(self) -> bool:
        return self.backup_remaining is not None and self.backup_remaining <= BACKUP_CODES_LOW


@prepared
def _totp_values(user_id: int) -> QuerySet[TOTPDevice]:
    return (
        TOTPDevice.objects.filter(user_id=user_id, confirmed=True)
        .order_by("pk")
        .values_list("created_at", "last_used_at")[:1]
    )


@prepared
def _passkey_values(user_id: int) -> QuerySet[WebAuthnCredential]:
    return passkeys_for(user_id).values_list(
        "pk", "name", "created_at", "last_used_at", "discoverable"
    )


def _totp_shown(user: User) -> TotpShown | None:
    return next((TotpShown(*row) for row in _totp_values(user.pk)), None)


def two_factor_overview(user: User) -> TwoFactorOverview:
    """What the two-step verification page shows, in a fixed number of queries,
    prepared (``accounts.prepared``: the page is read far more than changed)."""
    return TwoFactorOverview(
        # The app confirmed_totp() picks, as plain values.
        totp=_totp_shown(user),
        # Plain values: a user may have a score of keys, and a model instance each
        # costs more than its row. The keys passkeys_for() lists.
        passkeys=[PasskeyShown(*values) for values in _passkey_values(user.pk)],
        backup_remaining=backup_codes_remaining(user),
    )
