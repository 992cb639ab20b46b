"""Dates in the settings pages' tables.

``{{ value|isoformat }}`` writes what ``{{ value|date:'c' }}`` writes (the ISO 8601
form of the value in the current time zone) without Django's general date
formatter, which parses its format string on every call: the pages that list
sessions, keys, tokens or events write it a hundred times each.

``{{ value|datetext:"DATETIME_FORMAT" }}`` writes what ``{{ value|date:"DATETIME_FORMAT" }}``
writes, remembered per value, time zone, language and format: a table shows the
same dates on every visit, and formatting one (names of months, "a.m.", the
language's format) costs more than the rest of its row.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils import timezone
from django.utils.translation import get_language

register = template.Library()


@register.filter(expects_localtime=True)
def isoformat(value: Any) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return ""


# (value, its zone and offset, format, language) -> text; a few thousand entries.
_texts: dict[tuple[Any, ...], str] = {}
_TEXTS = 4096


def date_text(value: Any, arg: str | None = None) -> str:
    """``date_filter(value, arg)`` of a value already in local time, remembered."""
    if not isinstance(value, date):
        return date_filter(value, arg)
    if isinstance(value, datetime):
        key: tuple[Any, ...] = (value, value.tzinfo, value.utcoffset(), arg, get_language())
    else:
        key = (value, None, None, arg, get_language())
    text = _texts.get(key)
    if text is None:
        if len(_texts) >= _TEXTS:
            _texts.clear()
        text = _texts[key] = date_filter(value, arg)
    return text


@register.filter(expects_localtime=True)
def datetext(value: Any, arg: str | None = None) -> str:
    return date_text(value, arg)


def local(value: Any) -> Any:
    """The value in the current time zone, as a template shows it."""
    return timezone.template_localtime(value)  # type: ignore[attr-defined]
