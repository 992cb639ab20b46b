"""Email address normalisation shared by sign-up, email change and lookups."""

from __future__ import annotations

import unicodedata


def normalize_email(value: str) -> str:
    """What we store: NFKC, trimmed, lower case."""
    return unicodedata.normalize("NFKC", (value or "").strip()).lower()


def email_key(value: str) -> str:
    """What we compare: look-alikes fold together.

    NFKC folds full-width and compatibility forms; upper-then-lower case folds a
    dotless ı and a dotted İ onto i, ß onto ss, and the like.
    """
    value = normalize_email(value)
    if not value:
        return ""
    return unicodedata.normalize("NFKC", value.upper().lower())
