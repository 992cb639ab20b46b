"""Username rules, shared by sign-up (the allauth adapter) and the username change."""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

MIN_LENGTH = 3
MAX_LENGTH = 30
# ASCII letters, digits, and . _ - inside: no look-alike letters from other
# scripts, no invisible characters, nothing that reads as something else.
_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
_REPEATED_PUNCTUATION = re.compile(r"[._-]{2,}")

RESERVED = frozenset(
    {
        "abuse", "account", "accounts", "admin", "administrator", "api", "auth", "billing",
        "help", "hostmaster", "info", "login", "logout", "mail", "moderator", "noreply",
        "no-reply", "null", "operator", "operators", "owner", "postmaster", "privacy", "root",
        "security", "settings", "signin", "signup", "staff", "support", "sysadmin", "system",
        "undefined", "webmaster", "www",
    }
)  # fmt: skip


def normalize_username(value: str) -> str:
    """NFKC (full-width and other compatibility forms fold to plain ones), trimmed, lower case."""
    return unicodedata.normalize("NFKC", value or "").strip().lower()


def validate_username(value: str) -> None:
    """Checks a normalised username; raises ValidationError with a clear message."""
    if len(value) < MIN_LENGTH or len(value) > MAX_LENGTH:
        raise ValidationError(
            _("A username has between %(min)d and %(max)d characters."),
            code="length",
            params={"min": MIN_LENGTH, "max": MAX_LENGTH},
        )
    if not _PATTERN.match(value) or _REPEATED_PUNCTUATION.search(value):
        raise ValidationError(
            _(
                "Use only letters a–z, digits, and single dots, hyphens or underscores "
                "between them."
            ),
            code="characters",
        )
    if value in RESERVED or value.replace(".", "").replace("-", "").replace("_", "") in RESERVED:
        raise ValidationError(
            _("This username is reserved. Please choose another."), code="reserved"
        )
