"""What the code pages tell the user about a code they entered."""

from __future__ import annotations

from django.utils.translation import gettext as _

from accounts.services.codes import CodeResult


def code_error(result: CodeResult) -> str:
    return {
        CodeResult.WRONG: _("That code is not right. Check it and try again."),
        CodeResult.EXPIRED: _("This code has expired. Ask for a new one."),
        CodeResult.EXHAUSTED: _("Too many wrong codes. Ask for a new one."),
        CodeResult.MISSING: _("There is no code waiting for confirmation. Start again."),
    }.get(result, "")
