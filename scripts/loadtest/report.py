"""The figures of a run, from the records the locustfile wrote (no locust import:
this runs in the driving process)."""

from __future__ import annotations

from collections import Counter
from typing import Any

# A fault counts as recovered from the first success after which requests keep
# succeeding for this many seconds (and the run goes on at least that long).
STEADY_SECONDS = 5.0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def is_server_error(kind: str) -> bool:
    return kind.startswith("http 5")


def summarize(records: list[list[Any]]) -> dict[str, Any]:
    """Requests, errors by kind, latency percentiles (ms) and throughput."""
    records = sorted(records, key=lambda r: r[0])
    kinds = Counter(r[3] for r in records)
    errors = {kind: n for kind, n in sorted(kinds.items()) if kind != "ok"}
    latencies = [float(r[1]) for r in records]
    span = (records[-1][0] - records[0][0]) if len(records) > 1 else 0.0
    by_name: dict[str, dict[str, Any]] = {}
    for name in sorted({r[2] for r in records}):
        rows = [r for r in records if r[2] == name]
        times = [float(r[1]) for r in rows]
        by_name[name] = {
            "requests": len(rows),
            "errors": sum(1 for r in rows if r[3] != "ok"),
            "p50_ms": round(percentile(times, 0.50), 1),
            "p95_ms": round(percentile(times, 0.95), 1),
            "p99_ms": round(percentile(times, 0.99), 1),
        }
    return {
        "requests": len(records),
        "ok": kinds.get("ok", 0),
        "errors": errors,
        "errors_total": sum(errors.values()),
        "server_errors": sum(n for kind, n in errors.items() if is_server_error(kind)),
        "rate_limited": errors.get("http 429", 0),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "seconds": round(span, 1),
        "throughput_rps": round(len(records) / span, 1) if span > 0 else 0.0,
        "by_name": by_name,
    }


def recovery(
    records: list[list[Any]], fault_at: float, back_at: float, steady: float = STEADY_SECONDS
) -> dict[str, Any]:
    """Errors from the fault on, and when requests succeeded steadily again, by the
    time each answer came (or the request failed).

    ``fault_at`` is when the fault began (epoch seconds), ``back_at`` when its cause
    was removed (the same moment for a restart or a killed worker; the restart of
    Redis for an outage). ``recovered_after_s`` counts from ``back_at`` to the start
    of the first run of successes lasting ``steady`` seconds with no error, after
    the first error, not before ``back_at``; 0 when nothing failed."""
    # By the time each answer came: a request sent just before the fault can fail by it.
    ended = [[r[0] + float(r[1]) / 1000, *r[1:]] for r in records]
    after = sorted((r for r in ended if r[0] >= fault_at), key=lambda r: r[0])
    errors = Counter(r[3] for r in after if r[3] != "ok")
    result: dict[str, Any] = {
        "errors_after_fault": dict(sorted(errors.items())),
        "first_error_after_s": None,
        "last_error_after_s": None,
        "recovered_after_s": None,
        "recovered": False,
    }
    failed = [r for r in after if r[3] != "ok"]
    if failed:
        result["first_error_after_s"] = round(failed[0][0] - fault_at, 1)
        result["last_error_after_s"] = round(failed[-1][0] - fault_at, 1)
    if not failed:
        result["recovered"] = True
        result["recovered_after_s"] = 0.0
        return result
    # Successes before the first error or while the cause lasts do not count.
    scan_from = max(back_at, failed[0][0])
    streak_start: float | None = None
    for started, _latency, _name, kind in after:
        if started < scan_from:
            continue
        if kind != "ok":
            streak_start = None
            continue
        if streak_start is None:
            streak_start = started
        if started - streak_start >= steady:
            result["recovered"] = True
            result["recovered_after_s"] = round(max(0.0, streak_start - back_at), 1)
            break
    return result
