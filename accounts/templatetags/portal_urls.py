"""Row links of the settings pages' tables.

``{% row_url 'session_end' row.pk %}`` writes what ``{% url 'session_end' row.pk %}``
writes, for a URL whose only argument is an integer: the pattern is reversed once
(per URLconf and script prefix) and each row's number put in its place. A page
listing fifty sessions or twenty security keys would otherwise reverse a URL two
or three times per row, the most expensive thing in its rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import template
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

register = template.Library()

# A number no row has, reversed in place of the row's: the URL splits around it.
_MARK = 987_654_321_123
_parts: dict[tuple[str, object, str], tuple[str, str] | None] = {}


def row_urls(view_name: str) -> Callable[[Any], str]:
    """``row_url`` for the rows of one table: the URLconf and script prefix are read
    once, not once per row."""
    key = (view_name, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    if key not in _parts:
        pieces = reverse(view_name, args=[_MARK]).split(str(_MARK))
        _parts[key] = (pieces[0], pieces[1]) if len(pieces) == 2 else None
    parts = _parts[key]
    if parts is None:
        return lambda pk: reverse(view_name, args=[pk])
    start, end = parts

    def url(pk: Any) -> str:
        if not isinstance(pk, int):
            return reverse(view_name, args=[pk])
        return f"{start}{pk}{end}"

    return url


@register.simple_tag
def row_url(view_name: str, pk: int) -> str:
    return row_urls(view_name)(pk)
