"""What the code pages tell the user about a code they entered."""

from __future__ import annotations

from accounts.flows.errors import CodeRefused
from accounts.services.codes import CodeResult


def code_error(result: CodeResult) -> str:
    return str(CodeRefused(result).message)
