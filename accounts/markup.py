"""Escaping for markup written in Python on every request (the form renderer, the
tables' rows)."""

from __future__ import annotations

import html
from typing import Any


def esc(value: Any) -> str:
    """What ``django.utils.html.conditional_escape(value)`` returns, without its
    wrapper for lazy arguments (which costs as much as the escaping, a few hundred
    times per page): markup (``__html__``) as it is, anything else as escaped text."""
    if hasattr(value, "__html__"):
        return str(value.__html__())
    return html.escape(str(value))
