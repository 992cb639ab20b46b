from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from accounts.services.housekeeping import expired_rows_delete


class Command(BaseCommand):
    help = (
        "Deletes one-time codes, API verifications and impersonation links that expired "
        "more than a day ago. Idempotent; safe to run from cron."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for label, deleted in expired_rows_delete().items():
            self.stdout.write(f"Deleted {deleted} {label}.")
