"""Shapes shared by several endpoints."""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import ConfigDict


class Error(Schema):
    """Every error: a stable ``code``, a ``message`` in the request's language, and
    ``details`` (for ``validation_error``: the messages of each field)."""

    code: str
    message: str
    details: dict[str, Any]


class Input(Schema):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Done(Schema):
    """A change that returns nothing else."""

    ok: bool = True


# The error answers every authenticated endpoint may give (400: a body or request
# that cannot be read, such as malformed JSON).
COMMON_ERRORS: dict[int, Any] = {
    400: Error,
    401: Error,
    403: Error,
    404: Error,
    422: Error,
    429: Error,
}
