"""Two-step verification: the authenticator app, security keys and passkeys,
backup codes, and giving a second factor (sign-in, re-authentication)."""

from accounts.flows.mfa.backup import backup_codes_regenerate
from accounts.flows.mfa.errors import (
    CodeThrottled,
    LastFactor,
    NoPendingSetup,
    NoRealFactor,
    WrongCode,
)
from accounts.flows.mfa.keys import (
    PasskeyRegistered,
    passkey_registration_check,
    passkey_registration_complete,
    passkey_remove,
    passkey_rename,
)
from accounts.flows.mfa.totp import TotpConfirmed, totp_confirm, totp_remove, totp_start
from accounts.flows.mfa.verify import (
    Verified,
    reauthenticate_with_code,
    reauthenticate_with_key,
    sign_in_with_code,
    sign_in_with_key,
)

__all__ = [
    "CodeThrottled",
    "LastFactor",
    "NoPendingSetup",
    "NoRealFactor",
    "PasskeyRegistered",
    "TotpConfirmed",
    "Verified",
    "WrongCode",
    "backup_codes_regenerate",
    "passkey_registration_check",
    "passkey_registration_complete",
    "passkey_remove",
    "passkey_rename",
    "reauthenticate_with_code",
    "reauthenticate_with_key",
    "sign_in_with_code",
    "sign_in_with_key",
    "totp_confirm",
    "totp_remove",
    "totp_start",
]
