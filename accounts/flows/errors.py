"""What a flow can refuse with. Every surface turns these into its own answer:
the web pages through ``accounts.web.FlowErrorMiddleware`` (and the views that
show a form error), later the APIs into ``{"code", "message", "details"}``.

Policy refusals are ``accounts.policy.PolicyDenied`` (403) and ``FieldOff`` (404).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from accounts.policy import PolicyDenied


class FlowError(Exception):
    """A refusal with a message shown to the person acting, and a stable code."""

    code = "flow_error"
    status = 400

    def __init__(self, message: object = "", *, code: str | None = None) -> None:
        super().__init__(str(message) if message else "")
        self.message = message
        if code is not None:
            self.code = code


class RateLimited(FlowError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: object = "", *, retry_after: int | None = None) -> None:
        super().__init__(message or _("Too many attempts. Please wait a moment and try again."))
        self.retry_after = retry_after


class ReauthenticationRequired(FlowError):
    """The change needs a recent proof of identity (password, second factor or code)."""

    code = "verification.required"
    status = 401

    def __init__(self, message: object = "") -> None:
        super().__init__(message or _("Please confirm it's you first."))


IMPERSONATION_REFUSED = _(
    "You are viewing this account as its owner: this sensitive setting is not "
    "available while impersonating. Nothing was changed."
)


class ImpersonationRefused(PolicyDenied):
    """A sensitive setting while staff view the account as its owner (403)."""

    code = "impersonation.refused"

    def __init__(self, message: object = "") -> None:
        super().__init__(message or IMPERSONATION_REFUSED)


class AccessDenied(FlowError):
    """Someone else's object, or a staff action without the permission: 404 for a
    user's own objects (they never learn another's exist), 403 for staff."""

    code = "not_found"
    status = 404

    def __init__(self, message: object = "", *, staff: bool = False) -> None:
        super().__init__(message)
        if staff:
            self.code = "forbidden"
            self.status = 403


class CodeRefused(FlowError):
    """A one-time code that did not confirm anything (the result says why)."""

    status = 422

    def __init__(self, result: object) -> None:
        from accounts.services.codes import CodeResult

        messages: dict[object, object] = {
            CodeResult.WRONG: _("That code is not right. Check it and try again."),
            CodeResult.EXPIRED: _("This code has expired. Ask for a new one."),
            CodeResult.EXHAUSTED: _("Too many wrong codes. Ask for a new one."),
            CodeResult.MISSING: _("There is no code waiting for confirmation. Start again."),
        }
        super().__init__(messages.get(result, ""), code=f"code.{getattr(result, 'value', result)}")
        self.result = result
