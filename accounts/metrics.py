"""The portal's own Prometheus counters, counted where the events happen (flows,
services and the bridges from the libraries), never in views.

Labels take a few fixed values each (an outcome, a channel, a limit's name, a
task's name): never a user, an address or a number.
"""

from __future__ import annotations

from typing import Literal

from django.db import transaction
from prometheus_client import Counter

SignInOutcome = Literal[
    "success",
    "failure",
    "second_step_required",
    "second_step_success",
    "second_step_failure",
]
Channel = Literal["email", "sms"]

SIGN_INS = Counter(
    "portal_sign_ins",
    "Sign-in attempts by outcome: a password refused (failure), a second step asked "
    "for, passed or failed, and a sign-in completed (success, however it was made).",
    ["outcome"],
)
CODES_SENT = Counter(
    "portal_one_time_codes_sent",
    "One-time codes handed over for delivery, by channel (email, sms) and purpose.",
    ["channel", "purpose"],
)
RATE_LIMITED = Counter(
    "portal_rate_limit_refusals",
    "Requests refused by a rate limit, by the limit's name (ACCOUNT_RATE_LIMITS "
    "actions, allauth's login_failed lockout, site-wide caps).",
    ["limit"],
)
TASK_FAILURES = Counter(
    "portal_task_delivery_failures",
    "Failed deliveries in the task worker, by task and outcome (retrying: tried "
    "again later; gave_up: no attempt left).",
    ["task", "outcome"],
)


def sign_in_counted(outcome: SignInOutcome) -> None:
    SIGN_INS.labels(outcome=outcome).inc()


def code_sent_counted(*, channel: Channel, purpose: str) -> None:
    """Counted once the transaction that issued the code commits (when its delivery
    is scheduled); a rolled-back change sends nothing and counts nothing."""
    transaction.on_commit(
        lambda: CODES_SENT.labels(channel=channel, purpose=str(purpose)).inc(), robust=True
    )


def rate_limit_counted(limit: str) -> None:
    RATE_LIMITED.labels(limit=limit).inc()


def task_failure_counted(*, task: str, gave_up: bool) -> None:
    TASK_FAILURES.labels(task=task, outcome="gave_up" if gave_up else "retrying").inc()
