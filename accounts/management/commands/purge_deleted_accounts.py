from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from accounts.actor import cli_actor
from accounts.services.deletion import purge_due


class Command(BaseCommand):
    help = (
        "Purges accounts whose deletion grace period is over. Idempotent; safe to run "
        "from cron, even twice at once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        purged = purge_due(ctx=cli_actor())
        self.stdout.write(f"Purged {len(purged)} account(s).")
        for name in purged:
            self.stdout.write(f"  {name}")
