"""What production (``DJANGO_DEBUG=0``) needs from the environment, checked before
``make serve`` runs anything, so a missing setting is one clear list instead of a
traceback: ``python -m portal.preflight``.

The rules are those of ``portal/settings.py``; once the list is empty the settings
are loaded for real, and any other refusal of theirs is printed as a message too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit


def problems(environ: Mapping[str, str]) -> list[str]:
    def get(name: str) -> str:
        return environ.get(name, "").strip()

    found = []
    key = get("DJANGO_SECRET_KEY")
    if len(key) < 32 or key.startswith("django-insecure-") or len(set(key)) < 5:
        found.append(
            "DJANGO_SECRET_KEY: a long random value, at least 32 characters "
            '(for example: python -c "import secrets; print(secrets.token_urlsafe(50))")'
        )
    if not [host for host in get("DJANGO_ALLOWED_HOSTS").split(",") if host.strip()]:
        found.append(
            "DJANGO_ALLOWED_HOSTS: the host names the site answers to, comma separated "
            "(for example: accounts.example.org)"
        )
    site = urlsplit(get("SITE_URL"))
    if site.scheme not in {"http", "https"} or not site.hostname:
        found.append(
            "SITE_URL: the address users reach the site at, used in emails and as the "
            "passkeys' relying party (for example: https://accounts.example.org)"
        )
    if not get("OAUTH_PRIVATE_KEY") and not get("OAUTH_PRIVATE_KEY_FILE"):
        found.append(
            "OAUTH_PRIVATE_KEY_FILE (or OAUTH_PRIVATE_KEY): an RSA private key in PEM that "
            "signs OpenID Connect ID tokens (for example made with: openssl genpkey "
            "-algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out oauth-key.pem)"
        )
    return found


def main() -> int:
    missing = problems(os.environ)
    if missing:
        print("The production server (DJANGO_DEBUG=0) needs these environment variables:")
        for line in missing:
            print(f"  - {line}")
        print('See "Production" in README.md for the others.')
        return 1
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.DEBUG  # noqa: B018 (loads the settings)
    except ImproperlyConfigured as exc:
        print(f"The production settings are refused: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
