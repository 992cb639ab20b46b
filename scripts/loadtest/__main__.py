"""Load and fault test of the portal: N virtual users (locust, headless), each with
its own account, sign in, read settings pages, save their display name and sign out
and in again now and then; then every acknowledged save is looked up in the database.

Local run (starts everything itself, in a temporary folder, removed at the end):

    python scripts/loadtest --scenario baseline            # 5 min, 32 users, PostgreSQL + Redis
    python scripts/loadtest --scenario pg-restart          # PostgreSQL restarted at 30 s
    python scripts/loadtest --scenario redis-restart       # Redis stopped at 30 s, started at 60 s
    python scripts/loadtest --scenario kill-worker         # a gunicorn worker SIGKILLed at 30 s
    python scripts/loadtest --scenario sqlite              # 1 min on SQLite, several workers

The local PostgreSQL cluster and Redis server are the run's own (initdb into the
temporary folder, on free ports): the machine's usual ones are never touched.

Against a deployment (``--host``): see the README, "Load and faults".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import local
import report

HERE = Path(__file__).resolve().parent
SCENARIOS = ["baseline", "pg-restart", "redis-restart", "kill-worker", "sqlite"]
DEFAULT_DURATION = {
    "baseline": 300.0,
    "pg-restart": 120.0,
    "redis-restart": 120.0,
    "kill-worker": 120.0,
    "sqlite": 60.0,
}


def seconds(text: str) -> float:
    """``90``, ``90s``, ``2m``, ``1h``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 2m)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/loadtest", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scenario", choices=SCENARIOS, default="baseline")
    parser.add_argument("--users", type=int, default=32, help="virtual users (default 32)")
    parser.add_argument(
        "--duration", type=seconds, help="default: 5m baseline, 2m faults, 1m sqlite"
    )
    parser.add_argument("--fault-at", type=seconds, default=30.0, help="default 30s")
    parser.add_argument(
        "--outage", type=seconds, default=30.0, help="redis-restart: seconds Redis stays down"
    )
    parser.add_argument("--spawn-rate", type=float, default=8.0, help="users started a second")
    parser.add_argument("--wait", default="0.5-1.5", help="think time between requests (s)")
    parser.add_argument("--relogin", type=float, default=0.1, help="chance a loop signs out")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--workers", type=int, default=4, help="local gunicorn workers")
    parser.add_argument("--prefix", default="loadtest-", help="of the accounts' usernames")
    parser.add_argument("--out", type=Path, help="folder to keep the records, writes and logs in")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    remote = parser.add_argument_group("against a deployment")
    remote.add_argument("--host", help="the deployment's address, e.g. https://portal.example.org")
    remote.add_argument(
        "--seed",
        action="store_true",
        help="make the accounts first with manage.py loadtest_users, here, on DATABASE_URL",
    )
    remote.add_argument(
        "--verify",
        action="store_true",
        help="check the writes at the end with manage.py loadtest_verify, here, on DATABASE_URL",
    )
    remote.add_argument("--pg-restart-cmd", help="shell command restarting PostgreSQL")
    remote.add_argument("--redis-stop-cmd", help="shell command stopping Redis")
    remote.add_argument("--redis-start-cmd", help="shell command starting Redis")
    remote.add_argument("--kill-worker-cmd", help="shell command SIGKILLing one app worker")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = DEFAULT_DURATION[args.scenario]
    if args.users < 1:
        parser.error("--users must be at least 1")
    if args.host:
        needed = {
            "pg-restart": ["pg_restart_cmd"],
            "redis-restart": ["redis_stop_cmd", "redis_start_cmd"],
            "kill-worker": ["kill_worker_cmd"],
        }.get(args.scenario, [])
        missing = [f"--{n.replace('_', '-')}" for n in needed if not getattr(args, n)]
        if missing:
            parser.error(f"--scenario {args.scenario} with --host needs {', '.join(missing)}")
    if args.scenario in {"pg-restart", "kill-worker"} and args.fault_at >= args.duration:
        parser.error("--fault-at must come before the end of the run")
    if args.scenario == "redis-restart" and args.fault_at + args.outage >= args.duration:
        parser.error("--fault-at + --outage must come before the end of the run")
    return args


# --- The faults ----------------------------------------------------------------------------


class Faults:
    """Runs the scenario's fault actions at their times in a thread, noting when
    each began and ended (epoch seconds)."""

    def __init__(self) -> None:
        self.plan: list[tuple[float, str, Callable[[], str]]] = []
        self.done: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, at: float, label: str, action: Callable[[], str]) -> None:
        self.plan.append((at, label, action))

    def start(self, t0: float) -> None:
        def run() -> None:
            for at, label, action in sorted(self.plan, key=lambda p: p[0]):
                if self._stop.wait(max(0.0, t0 + at - time.time())):
                    return
                began = time.time()
                try:
                    note = action()
                except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                    note = f"FAILED: {exc}"
                self.done.append(
                    {"label": label, "began": began, "ended": time.time(), "note": note}
                )
                print(f"[{began - t0:6.1f} s] {label}: {note}", flush=True)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)


def shell(command: str) -> Callable[[], str]:
    def action() -> str:
        result = subprocess.run(  # noqa: S602 - the operator's own command
            command, shell=True, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command!r} exited {result.returncode}: {result.stderr.strip()}")
        return f"ran {command!r}"

    return action


# --- One run -----------------------------------------------------------------------------


def run_locust(args: argparse.Namespace, host: str, password: str, out: Path, tag: str,
               faults: Faults) -> dict[str, Any]:  # fmt: skip
    records_file = out / "records.json"
    env = {
        **os.environ,
        "LOADTEST_OUT": str(records_file),
        "LOADTEST_PASSWORD": password,
        "LOADTEST_PREFIX": args.prefix,
        "LOADTEST_RUN": tag,
        "LOADTEST_WAIT": args.wait,
        "LOADTEST_RELOGIN": str(args.relogin),
        "LOADTEST_TIMEOUT": str(args.timeout),
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
        "--host", host, "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
        "--run-time", f"{int(args.duration)}s", "--stop-timeout", "0", "--only-summary",
        "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    log_path = out / "locust.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)  # noqa: S603
        faults.start(time.time())
        try:
            code = process.wait(timeout=args.duration + 120)
        finally:
            faults.stop()
            if process.poll() is None:
                process.kill()
    if code != 0 or not records_file.exists():
        raise local.SetupError(
            f"locust exited {code}; see {log_path}:\n{log_path.read_text()[-3000:]}"
        )
    data: dict[str, Any] = json.loads(records_file.read_text())
    return data


def fault_plan(args: argparse.Namespace, faults: Faults, stack: dict[str, Any]) -> None:
    """The scenario's faults: the operator's commands, or the local stack's own."""

    def pg_restart() -> str:
        stack["pg"].restart()
        return "pg_ctl restart -m fast"

    def redis_stop() -> str:
        stack["redis"].stop()
        return "redis-server stopped"

    def redis_start() -> str:
        stack["redis"].start()
        return "redis-server started"

    def kill_worker() -> str:
        pid, busy = stack["server"].kill_one_worker()
        return f"SIGKILL to pid {pid} ({'serving a request' if busy else 'idle'})"

    at = args.fault_at
    if args.scenario == "pg-restart":
        faults.add(
            at,
            "restart PostgreSQL",
            shell(args.pg_restart_cmd) if args.pg_restart_cmd else pg_restart,
        )
    elif args.scenario == "redis-restart":
        remote = bool(args.redis_stop_cmd)
        faults.add(at, "stop Redis", shell(args.redis_stop_cmd) if remote else redis_stop)
        faults.add(
            at + args.outage,
            "start Redis",
            shell(args.redis_start_cmd) if remote else redis_start,
        )
    elif args.scenario == "kill-worker":
        faults.add(
            at,
            "kill a worker",
            shell(args.kill_worker_cmd) if args.kill_worker_cmd else kill_worker,
        )


def analyse(args: argparse.Namespace, data: dict[str, Any], faults: Faults) -> dict[str, Any]:
    result: dict[str, Any] = {"scenario": args.scenario, "users": args.users}
    result["load"] = report.summarize(data["records"])
    result["stale_reads"] = len(data.get("stale_reads", []))
    result["faults"] = [
        {k: (round(v, 3) if isinstance(v, float) else v) for k, v in f.items()} for f in faults.done
    ]
    if faults.done:
        fault_at = faults.done[0]["began"]
        back_at = faults.done[-1]["ended"]
        if args.scenario == "kill-worker":
            # The action first looks for a busy worker; the fault is the kill.
            fault_at = back_at
        recovery = report.recovery(data["records"], fault_at, back_at)
        if recovery["errors_after_fault"] and recovery["recovered_after_s"] is not None:
            recovery["recovered_after_fault_s"] = round(
                recovery["recovered_after_s"] + back_at - fault_at, 1
            )
        result["recovery"] = recovery
    return result


def health_timings(host: str, count: int = 200) -> dict[str, dict[str, float]]:
    """Answer times of /health/live and /health/ready, one request after the other
    on a new connection each (as a load balancer probes), before the load starts."""
    import urllib.error
    import urllib.request

    timings: dict[str, dict[str, float]] = {}
    for path in ("/health/live", "/health/ready"):
        values: list[float] = []
        statuses: set[int] = set()
        for _ in range(count):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(f"{host}{path}", timeout=10) as answer:  # noqa: S310
                    answer.read()
                    statuses.add(answer.status)
            except urllib.error.HTTPError as error:
                statuses.add(error.code)
            values.append((time.perf_counter() - started) * 1000)
        timings[path] = {
            "p50_ms": round(report.percentile(values, 0.50), 1),
            "p99_ms": round(report.percentile(values, 0.99), 1),
            "max_ms": round(max(values), 1),
            "statuses": sorted(statuses),  # type: ignore[dict-item]
        }
    return timings


def print_report(result: dict[str, Any], out: Path) -> None:
    load = result["load"]
    print()
    print(f"scenario {result['scenario']}, {result['users']} users, {load['seconds']} s of traffic")
    if result.get("server"):
        print(f"server: {result['server']}")
    print(
        f"requests: {load['requests']}  ok: {load['ok']}  errors: {load['errors_total']}  "
        f"5xx: {load['server_errors']}  429: {load['rate_limited']}"
    )
    for kind, n in load["errors"].items():
        print(f"  {kind}: {n}")
    print(
        f"latency p50 {load['p50_ms']} ms  p95 {load['p95_ms']} ms  p99 {load['p99_ms']} ms  "
        f"throughput {load['throughput_rps']} req/s"
    )
    print(f"{'request':28} {'count':>7} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, row in load["by_name"].items():
        print(
            f"{name[:28]:28} {row['requests']:7d} {row['errors']:7d} {row['p50_ms']:8.1f} "
            f"{row['p95_ms']:8.1f} {row['p99_ms']:8.1f}"
        )
    if "recovery" in result:
        rec = result["recovery"]
        errors = ", ".join(f"{k}: {v}" for k, v in rec["errors_after_fault"].items()) or "none"
        print(f"errors from the fault on: {errors}")
        if not rec["errors_after_fault"]:
            print("recovered: nothing failed after the fault")
        elif rec["recovered"]:
            print(
                f"recovered: {rec['recovered_after_s']} s after the cause was removed "
                f"({rec.get('recovered_after_fault_s')} s after the fault began; steady = "
                f"{report.STEADY_SECONDS:.0f} s without an error)"
            )
        else:
            print("recovered: NO (no steady run of successes after the fault)")
    if "locked" in result:
        print(f"'database is locked' in the server's error output: {result['locked']}")
    if "server_error_log" in result:
        print(f"server error output: {result['server_error_log']}")
    for path, row in result.get("health", {}).items():
        print(
            f"{path}: status {row['statuses']}, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
            f"max {row['max_ms']} ms (200 probes before the load)"
        )
    if "rss_start" in result:
        print(f"worker memory (RSS, MB): start {result['rss_start']}, end {result['rss_end']}")
    print(f"stale reads (the profile page did not show a saved name): {result['stale_reads']}")
    writes = result.get("writes")
    if writes is None:
        print(f"lost writes: not checked (run manage.py loadtest_verify {out / 'writes.json'})")
    else:
        print(
            f"acknowledged writes: {writes['acknowledged']}, committed without an answer: "
            f"{writes['committed_unacknowledged']}"
        )
        for problem in writes["problems"]:
            print(f"  {problem}")
        print(f"lost writes: {writes['lost']}")
    print(f"records, writes and logs: {out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    password = os.environ.get("LOADTEST_PASSWORD") or ""
    tag = secrets.token_hex(3)
    keep = args.out
    with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
        folder = Path(tmp)
        if os.geteuid() == 0:
            folder.chmod(0o711)  # the postgres user reaches its data folder inside
        out = keep or folder / "out"
        out.mkdir(parents=True, exist_ok=True)
        stack: dict[str, Any] = {}
        try:
            result = _run(args, folder, out, password, tag, stack)
        finally:
            for name in ("server", "redis", "pg"):
                if name in stack:
                    stack[name].stop()
        print_report(result, out)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        if keep is None:
            print("(the temporary folder is removed; keep it with --out)")
    return 0


def _run(args: argparse.Namespace, folder: Path, out: Path, password: str, tag: str,
         stack: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    server: local.Gunicorn | None = None
    if args.host:
        host = args.host.rstrip("/")
        if not password:
            raise SystemExit(
                "Set LOADTEST_PASSWORD to the accounts' password (manage.py loadtest_users)."
            )
        manage_env = dict(os.environ)
        if args.seed:
            _manage(
                manage_env, "loadtest_users", "--count", str(args.users), "--prefix", args.prefix
            )
        server_note = f"{host} (a deployment)"
    else:
        password = password or secrets.token_urlsafe(18)
        if args.scenario == "sqlite":
            database_url = f"sqlite:///{folder / 'portal.sqlite3'}"
            redis_url = ""
            server_note = f"gunicorn, {args.workers} sync workers, SQLite (WAL), local-memory cache"
        else:
            pg = local.Postgres(folder)
            stack["pg"] = pg
            pg.start("portal_loadtest")
            database_url = pg.url("portal_loadtest")
            redis = local.Redis(folder)
            stack["redis"] = redis
            redis.start()
            redis_url = redis.url
            server_note = (
                f"gunicorn, {args.workers} sync workers, own PostgreSQL (port {pg.port}) "
                f"and Redis (port {redis.port})"
            )
        server = local.Gunicorn(folder, database_url, redis_url, args.workers)
        print(f"setting up: {server_note}", flush=True)
        server.manage("migrate", "--no-input", "-v", "0")
        # Debug off: pages link the hashed static names (make serve's own step).
        server.manage("collectstatic", "--no-input", "-v", "0")
        server.manage(
            "loadtest_users", "--count", str(args.users), "--prefix", args.prefix,
            extra_env={"LOADTEST_PASSWORD": password},
        )  # fmt: skip
        server.start()
        stack["server"] = server
        host = server.url
        manage_env = server.env
    server_note += f"; load generator on the same machine ({os.cpu_count()} CPUs)"
    faults = Faults()
    fault_plan(args, faults, stack)
    rss_start = server.worker_rss_mb() if server else None
    health = health_timings(host)
    print(
        f"running {args.scenario}: {args.users} users for {args.duration:.0f} s against {host}",
        flush=True,
    )
    data = run_locust(args, host, password, out, tag, faults)
    result = analyse(args, data, faults)
    result["server"] = server_note
    result["health"] = health
    if server is not None:
        result["rss_start"] = rss_start
        result["rss_end"] = server.worker_rss_mb()
        log = server.errors.read_text(errors="replace")
        result["locked"] = log.count("database is locked")
        result["server_error_log"] = {
            "lines": log.count("\n"),
            "tracebacks": log.count("Traceback (most recent call last)"),
        }
        (out / "server-errors.log").write_text(log)
    writes_file = out / "writes.json"
    writes_file.write_text(json.dumps({"run": tag, "users": data["writes"]}))
    if server is not None or args.verify:
        output = _manage(manage_env, "loadtest_verify", str(writes_file), "--json")
        result["writes"] = json.loads(output)
    return result


def _manage(env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=local.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise local.SetupError(f"manage.py {' '.join(args)} failed:\n{completed.stderr}")
    return completed.stdout


if __name__ == "__main__":
    sys.exit(main())
