"""Dates in the settings pages' ``<time datetime="…">`` attributes.

``{{ value|isoformat }}`` writes what ``{{ value|date:'c' }}`` writes (the ISO 8601
form of the value in the current time zone) without Django's general date
formatter, which parses its format string on every call: the pages that list
sessions, keys, tokens or events write it a hundred times each."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import template

register = template.Library()


@register.filter(expects_localtime=True)
def isoformat(value: Any) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return ""
