from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from accounts.actor import cli_actor
from accounts.flows.moderation import lift_expired_suspensions


class Command(BaseCommand):
    help = "Ends timed suspensions that are over. Idempotent; safe to run from cron."

    def handle(self, *args: Any, **options: Any) -> None:
        lifted = lift_expired_suspensions(ctx=cli_actor())
        self.stdout.write(f"Lifted {len(lifted)} suspension(s).")
