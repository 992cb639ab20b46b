"""One-time codes: issue, check, consume. Shared by email change, phone change and
re-authentication by email.

allauth's own code flows keep their state in the session and are tied to its
pages; these codes live in the database so that an older code dies when a newer
one is requested, attempts are counted across sessions, and a code is consumed
exactly once even when two confirmations race.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User, VerificationCode
from accounts.selectors.verification import code_pending

Purpose = VerificationCode.Purpose


def code_timeout() -> timedelta:
    return timedelta(seconds=int(settings.VERIFICATION_CODE_TIMEOUT))


def code_minutes() -> int:
    """The lifetime of a code in whole minutes, as the pages, emails and SMS say it."""
    return int(code_timeout().total_seconds() // 60)


def max_attempts() -> int:
    return int(settings.VERIFICATION_CODE_MAX_ATTEMPTS)


def _hash(code: str, *, row_salt: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{row_salt}:{code}".encode(), hashlib.sha256).hexdigest()


def _generate() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def normalize_code(value: str) -> str:
    return "".join(ch for ch in (value or "") if ch.isdigit())


class CodeResult(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    MISSING = "missing"


@dataclass(frozen=True)
class Issued:
    row: VerificationCode
    code: str


@transaction.atomic
def code_issue(*, user: User, purpose: str, target: str, deliverable: bool = True) -> Issued:
    """A new code for ``target``; every older live code of this purpose dies."""
    now = timezone.now()
    VerificationCode.objects.filter(user=user, purpose=purpose, used_at__isnull=True).delete()
    code = _generate()
    salt = secrets.token_hex(8)
    row = VerificationCode.objects.create(
        user=user,
        purpose=purpose,
        target=target,
        code_hash=f"{salt}${_hash(code, row_salt=salt)}",
        expires_at=now + code_timeout(),
        deliverable=deliverable,
    )
    return Issued(row=row, code=code)


def code_consume(
    *, user: User, purpose: str, code: str
) -> tuple[CodeResult, VerificationCode | None]:
    """Checks ``code`` against the live code and, when right, marks it used.

    Call inside the transaction that applies the change: the conditional update
    that marks it used is what lets only one of two racing confirmations through.
    Callers return (not raise) on a refusal, so the counted attempt is committed.
    """
    row = code_pending(user=user, purpose=purpose)
    if row is None:
        return CodeResult.MISSING, None
    if row.expires_at <= timezone.now():
        return CodeResult.EXPIRED, row
    allowance = max_attempts()
    if row.attempts >= allowance:
        return CodeResult.EXHAUSTED, row
    salt, _sep, digest = row.code_hash.partition("$")
    candidate = normalize_code(code)
    if not (
        row.deliverable
        and candidate
        and hmac.compare_digest(digest, _hash(candidate, row_salt=salt))
    ):
        # Check and count in one conditional update: of many wrong codes racing
        # each other, at most the allowance is ever recorded.
        counted = VerificationCode.objects.filter(pk=row.pk, attempts__lt=allowance).update(
            attempts=F("attempts") + 1
        )
        if not counted:
            return CodeResult.EXHAUSTED, row
        row.refresh_from_db(fields=["attempts"])
        if row.attempts >= allowance:
            return CodeResult.EXHAUSTED, row
        return CodeResult.WRONG, row
    claimed = VerificationCode.objects.filter(pk=row.pk, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    if not claimed:
        return CodeResult.MISSING, None
    return CodeResult.OK, row


def code_cancel(*, user: User, purpose: str) -> None:
    VerificationCode.objects.filter(user=user, purpose=purpose, used_at__isnull=True).delete()
