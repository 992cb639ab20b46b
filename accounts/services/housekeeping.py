"""Rows that only ever served until they expired: one-time codes, the Account API's
verifications and the Management API's impersonation links. Nothing reads them
once they are over (a code, verification or link that is gone answers as an
unknown one), so ``manage.py clear_expired`` deletes them a day after they expired;
that day keeps the clearer "expired" and "already used" answers for a while. The
audit log, not these rows, is the record of what they were used for."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import ApiVerification, ImpersonationTicket, VerificationCode

KEPT_AFTER_EXPIRY = timedelta(days=1)


def expired_rows_delete() -> dict[str, int]:
    """Deletes the rows that expired more than ``KEPT_AFTER_EXPIRY`` ago; returns how
    many of each kind. Idempotent; each delete is one statement."""
    before = timezone.now() - KEPT_AFTER_EXPIRY
    counts: dict[str, int] = {}
    for label, model in (
        ("one-time codes", VerificationCode),
        ("API verifications", ApiVerification),
        ("impersonation links", ImpersonationTicket),
    ):
        deleted, _per_model = model.objects.filter(expires_at__lt=before).delete()
        counts[label] = deleted
    return counts
