"""Readable device descriptions from a User-Agent header."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from django.utils.translation import get_language
from django.utils.translation import gettext as _


@lru_cache(maxsize=512)
def _parse(user_agent: str) -> tuple[str, str]:
    from ua_parser import parse

    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else ""
    system = result.os.family if result.os else ""
    return ("" if browser == "Other" else browser, "" if system == "Other" else system)


def describe_device(user_agent: str) -> str:
    """ "Firefox on Windows", "Safari", or "Unknown device"."""
    return _describe((user_agent or "")[:500], get_language())


def device_describer() -> Callable[[str], str]:
    """``describe_device`` for a list of rows: the language is read once."""
    language = get_language()
    return lambda user_agent: _describe((user_agent or "")[:500], language)


@lru_cache(maxsize=512)
def _describe(user_agent: str, language: str | None) -> str:
    # The language is part of the key: the words are translated.
    browser, system = _parse(user_agent)
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or _("Unknown device")
