"""gunicorn's settings for the portal (``make serve``), read from the environment.

    gunicorn -c portal/gunicorn.conf.py portal.wsgi:application

HOST, PORT             address to listen on (127.0.0.1:8000)
WEB_CONCURRENCY or     worker processes (2 x CPU cores + 1)
  GUNICORN_WORKERS
GUNICORN_THREADS       threads per worker (1: sync workers; more: gthread workers)
GUNICORN_TIMEOUT       seconds a request may take before its worker is replaced (30)
GUNICORN_GRACEFUL_TIMEOUT  seconds workers get to finish on restart or stop (30)
GUNICORN_KEEPALIVE     seconds an idle keep-alive connection stays open (5; gthread only)
GUNICORN_MAX_REQUESTS  requests after which a worker is replaced (2000; 0: never)
GUNICORN_ACCESS_LOG    set (1, or a file path) to write gunicorn's JSON access log
GUNICORN_LOG_LEVEL     level of gunicorn's own log on stderr (info)
GUNICORN_CONTROL_SOCKET  path of gunicorn's control socket (gunicornc); none if unset

A graceful restart (new code, same socket, requests in flight finish) is gunicorn's
own: send HUP to the master process.
"""

from __future__ import annotations

import json
import os
from typing import Any

from gunicorn.glogging import Logger


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def cpu_count() -> int:
    """The cores this process may run on (a container's limit where it sets one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(cores: int) -> int:
    return 2 * cores + 1


bind = f"{os.environ.get('HOST') or '127.0.0.1'}:{_int('PORT', 8000)}"
workers = _int("WEB_CONCURRENCY", _int("GUNICORN_WORKERS", default_workers(cpu_count())))
threads = _int("GUNICORN_THREADS", 1)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Replace each worker now and then (spread so they do not all restart at once): a
# slow leak in any library cannot grow for ever.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10
proc_name = "portal"
# Not preloaded: each worker imports the application itself after the fork, so no
# database pool or Redis connection made while loading is shared between processes,
# and a HUP loads the new code (a preloaded application would keep the old one).
preload_app = False
# gunicorn's control socket (gunicornc) only where asked for: its default path is one
# per user, which a second server on the same machine would take over.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True

# gunicorn's own messages on stderr.
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# The access log is off unless asked for: the application writes its own JSON line
# per request. When on, one JSON object a line. The raw path and query string are
# left out on purpose: password-reset and email-confirmation keys travel in paths.
_access_log = os.environ.get("GUNICORN_ACCESS_LOG", "").strip()
if _access_log.lower() in {"", "0", "false", "no", "off"}:
    accesslog = None
elif _access_log.lower() in {"1", "true", "yes", "on"}:
    accesslog = "-"
else:
    accesslog = _access_log
access_log_format = (
    '{"remote_addr": %(h)s, "method": %(m)s, "status": %(s)s, "bytes": %(B)s, '
    '"duration_ms": %(M)s, "request_id": %({x-request-id}o)s, "user_agent": %(a)s}'
)

# Atoms that are numbers in the JSON line; every other value is a JSON string.
_NUMBERS = frozenset({"s", "B", "D", "M", "T"})


class JsonAtoms(dict[str, Any]):
    """gunicorn's log atoms as JSON values: strings quoted and escaped (a user agent
    may hold quotes, backslashes or line breaks), numbers bare, missing ones null."""

    def __getitem__(self, key: str) -> str:
        value: Any = self.get(key.lower() if key.startswith("{") else key)
        if key in _NUMBERS:
            try:
                return json.dumps(int(value))
            except (TypeError, ValueError):
                return "null"
        return json.dumps(None if value is None else str(value))


class JsonAccessLogger(Logger):
    atoms_wrapper_class = JsonAtoms


logger_class = JsonAccessLogger


# Prometheus in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, see portal.metrics): each
# worker writes its figures to files in that folder. Emptied when the server starts
# (figures of a previous run would be added to this one's); a worker that exits is
# marked dead so its gauges stop counting.
def on_starting(server: Any) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if folder:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
