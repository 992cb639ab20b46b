"""What the two-step verification flows refuse with, beside the gate's refusals."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from accounts.flows.errors import FlowError


class WrongCode(FlowError):
    """The code is not right (or was already used)."""

    code = "mfa.wrong_code"
    status = 422

    def __init__(self, message: object = "") -> None:
        super().__init__(message or _("That code is not right. Check it and try again."))


class CodeThrottled(FlowError):
    """Too many wrong codes for now: django-otp refuses to check for a while."""

    code = "mfa.throttled"
    status = 429

    def __init__(self, message: object = "", *, retry_after: int | None = None) -> None:
        super().__init__(message or _("Too many wrong codes. Wait a little before trying again."))
        self.retry_after = retry_after


class NoPendingSetup(FlowError):
    """Confirming an authenticator app that was not started (or already confirmed)."""

    code = "mfa.no_pending_setup"
    status = 404

    def __init__(self, message: object = "") -> None:
        super().__init__(message or _("Start setting up an authenticator app first."))


class NoRealFactor(FlowError):
    """Backup codes are never the only second factor."""

    code = "mfa.no_factor"
    status = 409

    def __init__(self, message: object = "") -> None:
        super().__init__(message or _("Set up an authenticator app or a security key first."))


class LastFactor(FlowError):
    """Removing the last real factor turns two-step verification off: the person
    acting must confirm it (``confirm_last=True``)."""

    code = "mfa.last_factor"
    status = 409

    def __init__(self, message: object = "") -> None:
        super().__init__(
            message
            or _(
                "This is your last second factor: removing it turns off two-step "
                "verification and deletes your backup codes. Confirm to go on."
            )
        )
