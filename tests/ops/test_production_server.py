"""The production server as ``make serve`` runs it: the settings check, gunicorn's
configuration file, the static files pipeline (collectstatic with hashed names,
WhiteNoise) and gunicorn itself answering on a free port with debug off."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from django.test import Client

from portal import preflight
from portal.processes import ServerDidNotStart, free_port, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "portal" / "gunicorn.conf.py"
HOST = "127.0.0.1"
SECRET = "made-up-production-secret-key-for-the-tests-0123456789"


def load_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    for name in (
        "HOST",
        "PORT",
        "WEB_CONCURRENCY",
        "GUNICORN_WORKERS",
        "GUNICORN_THREADS",
        "GUNICORN_ACCESS_LOG",
        "GUNICORN_CONTROL_SOCKET",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", CONFIG)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- The settings check ------------------------------------------------------------------


def test_preflight_lists_every_missing_setting() -> None:
    found = preflight.problems({"DJANGO_SECRET_KEY": "django-insecure-" + "x" * 40})
    assert [line.split(":")[0] for line in found] == [
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "SITE_URL",
        "OAUTH_PRIVATE_KEY_FILE (or OAUTH_PRIVATE_KEY)",
    ]


def test_preflight_accepts_a_complete_environment() -> None:
    assert (
        preflight.problems(
            {
                "DJANGO_SECRET_KEY": SECRET,
                "DJANGO_ALLOWED_HOSTS": "accounts.example.org",
                "SITE_URL": "https://accounts.example.org",
                "OAUTH_PRIVATE_KEY_FILE": "/etc/portal/oauth-key.pem",
            }
        )
        == []
    )


def test_preflight_prints_a_message_not_a_traceback() -> None:
    env = {"PATH": os.environ.get("PATH", ""), "DJANGO_DEBUG": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "portal.preflight"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "The production server (DJANGO_DEBUG=0) needs these environment variables:"
    assert [line.split(":")[0] for line in lines[1:5]] == [
        "  - DJANGO_SECRET_KEY",
        "  - DJANGO_ALLOWED_HOSTS",
        "  - SITE_URL",
        "  - OAUTH_PRIVATE_KEY_FILE (or OAUTH_PRIVATE_KEY)",
    ]


# --- gunicorn's configuration file ----------------------------------------------------------


def test_config_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(monkeypatch)
    assert config.bind == "127.0.0.1:8000"
    assert config.workers == 2 * len(os.sched_getaffinity(0)) + 1
    assert config.default_workers(4) == 9
    assert config.preload_app is False
    assert config.accesslog is None
    assert config.errorlog == "-"
    assert config.control_socket_disable is True


def test_config_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(
        monkeypatch, HOST="0.0.0.0", PORT="9000", GUNICORN_WORKERS="3", GUNICORN_ACCESS_LOG="1"
    )
    assert config.bind == "0.0.0.0:9000"
    assert config.workers == 3
    assert config.accesslog == "-"
    config = load_config(monkeypatch, GUNICORN_CONTROL_SOCKET="/run/portal/gunicorn.ctl")
    assert config.control_socket == "/run/portal/gunicorn.ctl"
    assert not hasattr(config, "control_socket_disable")
    config = load_config(monkeypatch, WEB_CONCURRENCY="6", GUNICORN_WORKERS="3")
    assert config.workers == 6


def test_every_setting_is_one_gunicorn_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    from gunicorn.config import Config

    config = load_config(monkeypatch, GUNICORN_ACCESS_LOG="1")
    cfg = Config()
    names = [name for name in vars(config) if name in cfg.settings]
    assert {"bind", "workers", "timeout", "graceful_timeout", "keepalive"} <= set(names)
    for name in names:
        cfg.set(name, getattr(config, name))  # validates each value
    assert cfg.logger_class is config.JsonAccessLogger


def test_access_log_line_is_json_without_path_or_query(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gunicorn.config import Config

    log_file = tmp_path / "access.log"
    config = load_config(monkeypatch, GUNICORN_ACCESS_LOG=str(log_file))
    for atom in ("%(r)s", "%(U)s", "%(q)s", "%({raw_uri}e)s"):
        assert atom not in config.access_log_format
    cfg = Config()
    for name in ("accesslog", "access_log_format", "logger_class"):
        cfg.set(name, getattr(config, name))
    logger = cfg.logger_class(cfg)
    agent = 'Probe "1.0" \\ with\nnew line'
    environ = {
        "REMOTE_ADDR": "192.0.2.7",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/accounts/password/reset/key/secret-key/?token=secret",
        "PATH_INFO": "/accounts/password/reset/key/secret-key/",
        "QUERY_STRING": "token=secret",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_USER_AGENT": agent,
    }
    response = SimpleNamespace(status="200 OK", sent=1234, headers=[("X-Request-ID", "abc123")])
    request = SimpleNamespace(headers=[("USER-AGENT", agent)])
    logger.access(response, request, environ, timedelta(milliseconds=42))
    line = log_file.read_text()
    assert "secret" not in line
    assert json.loads(line) == {
        "remote_addr": "192.0.2.7",
        "method": "GET",
        "status": 200,
        "bytes": 1234,
        "duration_ms": 42,
        "request_id": "abc123",
        "user_agent": agent,
    }
    # Without the header (a response the application did not make), null.
    log_file.write_text("")
    response.headers = []
    logger.access(response, request, environ, timedelta(milliseconds=1))
    assert json.loads(log_file.read_text())["request_id"] is None


# --- The production pipeline: collectstatic, migrate, gunicorn ---------------------------------


def production_env(folder: Path) -> dict[str, str]:
    from accounts.oauth_keys import development_key

    key_file = folder / "oauth-key.pem"
    development_key(key_file)
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "OAUTH_PRIVATE_KEY"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=SECRET,
        DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
        SITE_URL="https://localhost",
        OAUTH_PRIVATE_KEY_FILE=str(key_file),
        PORTAL_VAR_DIR=str(folder),
        DATABASE_URL=f"sqlite:///{folder / 'portal.sqlite3'}",
        DJANGO_BEHIND_PROXY="1",
        DJANGO_LOG_LEVEL="ERROR",
    )
    return env


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """collectstatic and migrate as ``make serve`` runs them, debug off, in a folder of
    their own (STATIC_ROOT is its static/, the SQLite database is in it)."""
    folder = tmp_path_factory.mktemp("production")
    env = production_env(folder)
    for command in (
        ["migrate", "--no-input", "-v", "0"],
        ["collectstatic", "--no-input", "-v", "0"],
    ):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=600,
        )
    static_root = folder / "static"
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    return SimpleNamespace(folder=folder, env=env, static_root=static_root, manifest=manifest)


@pytest.mark.django_db
def test_a_page_with_debug_off_links_the_hashed_static_files(
    production: SimpleNamespace, settings: Any, client: Client
) -> None:
    settings.STATIC_ROOT = production.static_root
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "portal.storage.StaticFilesStorage"},
    }
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    hashed = production.manifest["css/portal.css"]
    assert re.fullmatch(r"css/portal\.[0-9a-f]{12}\.css", hashed)
    assert f'href="/static/{hashed}"'.encode() in response.content
    assert b'"/static/css/portal.css"' not in response.content
    assert (production.static_root / hashed).is_file()


@pytest.fixture
def gunicorn(production: SimpleNamespace, tmp_path: Path) -> Iterator[SimpleNamespace]:
    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left by an earlier run")
    env = {
        **production.env,
        "HOST": HOST,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": "scrape-token-for-the-test",
        "GUNICORN_ACCESS_LOG": "1",
        "GUNICORN_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(CONFIG), "portal.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        try:
            wait_for_port(port, seconds=60, process=process)
        except ServerDidNotStart as error:
            pytest.fail(f"gunicorn: {error}\n{process.communicate()}")
        yield SimpleNamespace(port=port, process=process, metrics_dir=metrics_dir)
    finally:
        if process.poll() is None:
            stop(process)
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


def fetch(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("GET", path, headers={"Host": HOST, **headers})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_gunicorn_serves_health_and_hashed_static_files(
    production: SimpleNamespace, gunicorn: SimpleNamespace
) -> None:
    # Plain HTTP, as a load balancer probes (every other page redirects to HTTPS).
    status, headers, body = fetch(gunicorn.port, "/health/live")
    assert (status, body) == (200, b'{"status": "ok"}')
    assert "no-store" in headers["Cache-Control"]
    assert "Set-Cookie" not in headers
    status, _headers, body = fetch(gunicorn.port, "/health/ready")
    assert (status, body) == (200, b'{"status": "ok"}')
    assert fetch(gunicorn.port, "/accounts/login/")[0] == 301

    https = {"X-Forwarded-Proto": "https"}  # the TLS proxy in front (DJANGO_BEHIND_PROXY)
    hashed = production.manifest["css/portal.css"]
    status, headers, body = fetch(gunicorn.port, f"/static/{hashed}", **https)
    assert status == 200
    assert body == (production.static_root / hashed).read_bytes()
    assert headers["Cache-Control"] == "max-age=315360000, public, immutable"
    status, _headers, page = fetch(gunicorn.port, "/accounts/login/", **https)
    assert status == 200
    assert f'href="/static/{hashed}"'.encode() in page

    # /metrics adds up both workers' figures (PROMETHEUS_MULTIPROC_DIR, emptied of the
    # earlier run's files when the server started).
    assert not (gunicorn.metrics_dir / "counter_999999.db").exists()
    status, _headers, body = fetch(
        gunicorn.port, "/metrics", Authorization="Bearer scrape-token-for-the-test"
    )
    assert status == 200
    assert "django_http_requests_before_middlewares_total 6.0" in body.decode()

    # gunicorn's access log (GUNICORN_ACCESS_LOG=1): a JSON object a line on stdout.
    gunicorn.process.send_signal(signal.SIGTERM)
    out, _err = gunicorn.process.communicate(timeout=30)
    lines = [json.loads(line) for line in out.splitlines()]
    # A worker writes its line after the answer is sent: the other worker's next
    # line may come first.
    assert sorted((line["method"], line["status"]) for line in lines) == [
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
        ("GET", 301),
    ]
