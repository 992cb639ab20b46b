from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from accounts.oauth_keys import development_key

ROOT = Path(__file__).resolve().parents[2]

PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({k: getattr(s, k, None) for k in ("
    "'DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
    "'X_FRAME_OPTIONS', 'SECURE_REFERRER_POLICY', 'SECURE_SSL_REDIRECT', 'ALLOWED_HOSTS')}))"
)


# Production needs the OpenID Connect signing key (OAUTH_PRIVATE_KEY); a real one.
PRODUCTION_OAUTH_KEY = development_key(Path(tempfile.mkdtemp()) / "oauth.pem")


def run_with_env(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OAUTH_PRIVATE_KEY"))
    }
    clean["OAUTH_PRIVATE_KEY"] = PRODUCTION_OAUTH_KEY
    clean.update(env, DJANGO_SETTINGS_MODULE="portal.settings")
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_off_refuses_a_missing_secret_key() -> None:
    result = run_with_env(DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="portal.example.org")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_debug_off_refuses_an_insecure_secret_key() -> None:
    result = run_with_env(
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="portal.example.org",
        DJANGO_SECRET_KEY="django-insecure-" + "x" * 40,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_debug_off_refuses_a_missing_oauth_signing_key() -> None:
    result = run_with_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="a-long-and-random-production-key-" + "Zq8#" * 8,
        DJANGO_ALLOWED_HOSTS="portal.example.org",
        OAUTH_PRIVATE_KEY="",
    )
    assert result.returncode != 0
    assert "OAUTH_PRIVATE_KEY" in result.stderr


def test_debug_off_refuses_empty_allowed_hosts() -> None:
    result = run_with_env(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="prod-Key-7f3a9c2e" * 3)
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr


def test_debug_off_turns_on_transport_security() -> None:
    result = run_with_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="a-long-and-random-production-key-" + "Zq8#" * 8,
        DJANGO_ALLOWED_HOSTS="portal.example.org",
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["ALLOWED_HOSTS"] == ["portal.example.org"]


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["account_login", "account_signup", "settings_home"])
def test_security_headers_and_strict_csp(
    auth_client: Client, client: Client, url_name: str
) -> None:
    who = auth_client if url_name == "settings_home" else client
    response = who.get(reverse(url_name))
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["account_login", "account_signup", "settings_home"])
def test_pages_have_no_inline_script_or_style(
    auth_client: Client, client: Client, url_name: str
) -> None:
    who = auth_client if url_name == "settings_home" else client
    html = who.get(reverse(url_name)).content.decode()
    assert " style=" not in html
    assert "<style" not in html
    for chunk in html.split("<script")[1:]:
        tag = chunk.split(">", 1)[0]
        assert "src=" in tag, f"inline script found: <script{tag}>"


@pytest.mark.django_db
def test_sign_out_refuses_get(auth_client: Client) -> None:
    response = auth_client.get(reverse("account_logout"))
    assert response.status_code == 200  # a confirmation page, nothing done
    assert auth_client.get(reverse("settings_home")).status_code == 200


@pytest.mark.django_db
def test_csrf_is_enforced_on_sign_in(user: object) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("account_login"), {"login": "alice", "password": "x" * 12})
    assert response.status_code == 403


def test_argon2_is_the_first_hasher() -> None:
    from django.conf import settings

    # The test settings swap the hasher for speed; read the project's own list.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.PASSWORD_HASHERS[0])",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert settings.AUTH_USER_MODEL == "accounts.User"
