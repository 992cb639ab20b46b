"""Checks that every write the load test saw acknowledged is in the database.

    manage.py loadtest_verify writes.json [--json]

``writes.json`` is written by ``scripts/loadtest``: for each account, the display
names it tried to save, in order, and whether the server acknowledged each one
(redirected to the profile page with "saved"). Each save writes an audit event
with the new value in the same transaction, so:

- an acknowledged value with no audit event is a **lost write** (acknowledged,
  never committed, or rolled back after the answer);
- the account's current display name must be its last acknowledged value, or a
  value tried after it whose answer never came (a timeout or a dropped
  connection can still have been committed); anything else is a lost write too
  (a later acknowledged value was overwritten by an older one, or vanished).

Run it where ``DATABASE_URL`` points at the deployment's database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import AuditEvent, User
from accounts.services.audit import Action


def check_writes(users: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The check, on ``{username: [{"value": str, "acked": bool}, …]}``."""
    stored = dict(User.objects.filter(username__in=users).values_list("username", "display_name"))
    audited: dict[str, set[str]] = {name: set() for name in users}
    events = AuditEvent.objects.filter(
        action=Action.PROFILE_UPDATED, subject__username__in=users
    ).values_list("subject__username", "data")
    for name, data in events:
        value = ((data or {}).get("after") or {}).get("display_name")
        if isinstance(value, str):
            audited[name].add(value)
    acked = missing = wrong_final = committed_unacked = 0
    problems: list[str] = []
    for name, writes in users.items():
        if name not in stored:
            problems.append(f"{name}: no such account")
            missing += sum(1 for w in writes if w["acked"])
            continue
        last = max((i for i, w in enumerate(writes) if w["acked"]), default=None)
        for write in writes:
            if write["acked"]:
                acked += 1
                if write["value"] not in audited[name]:
                    missing += 1
                    problems.append(f"{name}: acknowledged {write['value']!r} is not stored")
            elif write["value"] in audited[name]:
                committed_unacked += 1
        if last is None:
            continue
        allowed = {w["value"] for w in writes[last:]}
        # A last acknowledged value that was never stored is already counted above.
        if stored[name] not in allowed and writes[last]["value"] in audited[name]:
            wrong_final += 1
            problems.append(
                f"{name}: holds {stored[name]!r}, last acknowledged {writes[last]['value']!r}"
            )
    return {
        "accounts": len(users),
        "acknowledged": acked,
        "missing": missing,
        "wrong_final": wrong_final,
        "lost": missing + wrong_final,
        "committed_unacknowledged": committed_unacked,
        "problems": problems[:50],
    }


class Command(BaseCommand):
    help = "Checks the load test's acknowledged writes against the database."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("writes", type=Path, help="the writes file of scripts/loadtest")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, writes: Path, json: bool, **options: Any) -> None:
        try:
            users = _read(writes)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{writes}: not a writes file ({exc}).") from exc
        result = check_writes(users)
        if json:
            self.stdout.write(_dumps(result))
            return
        self.stdout.write(
            f"accounts: {result['accounts']}, acknowledged writes: {result['acknowledged']}"
        )
        for problem in result["problems"]:
            self.stdout.write(f"  {problem}")
        self.stdout.write(
            f"committed without an answer: {result['committed_unacknowledged']} (not an error)"
        )
        self.stdout.write(f"lost writes: {result['lost']}")


def _read(path: Path) -> dict[str, list[dict[str, Any]]]:
    raw = json.loads(path.read_text())
    users = raw["users"]
    if not isinstance(users, dict):
        raise TypeError("'users' is not an object")
    return {
        str(name): [{"value": str(w["value"]), "acked": bool(w["acked"])} for w in writes]
        for name, writes in users.items()
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
