"""The load test (``scripts/loadtest``): its accounts, its check of acknowledged
writes, and a very short run through the production server on SQLite (run as a
subprocess: locust's gevent patches must not reach this process). Its figures
are not checked: timings depend on the machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent, User
from accounts.services.audit import Action
from accounts.services.profile import profile_update

ROOT = Path(__file__).resolve().parents[2]


def _seed(monkeypatch: pytest.MonkeyPatch, count: int = 2) -> list[User]:
    monkeypatch.setenv("LOADTEST_PASSWORD", "load-test-password-1")
    call_command("loadtest_users", "--count", str(count), stdout=StringIO())
    return list(User.objects.filter(username__startswith="loadtest-").order_by("username"))


@pytest.mark.django_db
def test_loadtest_users_makes_accounts_that_can_sign_in(monkeypatch: pytest.MonkeyPatch) -> None:
    users = _seed(monkeypatch, 3)
    assert [u.username for u in users] == ["loadtest-001", "loadtest-002", "loadtest-003"]
    for user in users:
        assert user.check_password("load-test-password-1")
        assert user.state == "active"
        address = EmailAddress.objects.get(user=user)
        assert (address.email, address.verified, address.primary) == (
            f"{user.username}@example.org",
            True,
            True,
        )
    # Again: the same accounts, no duplicates.
    assert len(_seed(monkeypatch, 3)) == 3
    assert EmailAddress.objects.filter(user__username__startswith="loadtest-").count() == 3
    call_command("loadtest_users", "--count", "3", "--delete", stdout=StringIO())
    assert not User.objects.filter(username__startswith="loadtest-").exists()


def _verify(tmp_path: Path, users: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    path = tmp_path / "writes.json"
    path.write_text(json.dumps({"run": "t", "users": users}))
    out = StringIO()
    call_command("loadtest_verify", str(path), "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_loadtest_verify_finds_every_lost_write(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second = _seed(monkeypatch)
    for value in ["lt-t-001-1", "lt-t-001-2", "lt-t-001-3"]:
        profile_update(ctx=None, user=first, changes={"display_name": value})
    profile_update(ctx=None, user=second, changes={"display_name": "lt-t-002-1"})
    assert AuditEvent.objects.filter(action=Action.PROFILE_UPDATED).count() == 4

    # All stored; the third was saved though its answer never came: not an error.
    result = _verify(
        tmp_path,
        {
            "loadtest-001": [
                {"value": "lt-t-001-1", "acked": True},
                {"value": "lt-t-001-2", "acked": True},
                {"value": "lt-t-001-3", "acked": False},
            ],
            "loadtest-002": [{"value": "lt-t-002-1", "acked": True}],
        },
    )
    assert (result["acknowledged"], result["lost"], result["committed_unacknowledged"]) == (3, 0, 1)

    # An acknowledged value that is not stored; an account holding an older value
    # than its last acknowledged one.
    result = _verify(
        tmp_path,
        {
            "loadtest-001": [
                {"value": "lt-t-001-1", "acked": True},
                {"value": "lt-t-001-9", "acked": True},
            ],
            "loadtest-002": [
                {"value": "lt-t-002-1", "acked": True},
                {"value": "lt-t-002-0", "acked": False},
            ],
        },
    )
    assert (result["missing"], result["wrong_final"], result["lost"]) == (1, 0, 1)
    profile_update(ctx=None, user=second, changes={"display_name": "lt-t-002-0"})
    result = _verify(
        tmp_path,
        {
            "loadtest-002": [
                {"value": "lt-t-002-0", "acked": False},
                {"value": "lt-t-002-1", "acked": True},
            ]
        },
    )
    assert (result["missing"], result["wrong_final"], result["lost"]) == (0, 1, 1)
    assert result["problems"] == [
        "loadtest-002: holds 'lt-t-002-0', last acknowledged 'lt-t-002-1'"
    ]


def test_loadtest_verify_refuses_a_file_that_is_not_a_writes_file(tmp_path: Path) -> None:
    path = tmp_path / "writes.json"
    path.write_text('{"users": []}')
    with pytest.raises(CommandError, match="not a writes file"):
        call_command("loadtest_verify", str(path), stdout=StringIO())


def test_a_short_load_run_reports_its_figures_and_no_lost_write(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "scripts/loadtest", "--scenario", "sqlite", "--users", "2",
         "--duration", "10s", "--workers", "2", "--wait", "0.1-0.3", "--json", str(report)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    assert data["scenario"] == "sqlite"
    assert data["users"] == 2
    load = data["load"]
    assert set(load) >= {"requests", "errors", "p50_ms", "p95_ms", "p99_ms", "throughput_rps"}
    assert load["errors"] == {}, result.stdout
    assert load["requests"] == load["ok"]
    assert {"sign-in page", "sign in", "save display name"} <= set(load["by_name"])
    assert data["writes"]["acknowledged"] > 0
    assert data["writes"]["lost"] == 0
    assert data["stale_reads"] == 0
    assert data["locked"] == 0
    assert len(data["rss_start"]) == 2
    lines = result.stdout.splitlines()
    assert "lost writes: 0" in lines
    assert any(line.startswith("worker memory (RSS, MB): start [") for line in lines)
