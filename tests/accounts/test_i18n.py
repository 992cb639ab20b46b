from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db

LOCALE = Path(__file__).resolve().parents[2] / "locale"


def test_browser_language_is_used_when_the_user_has_none(client: Client) -> None:
    response = client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    html = response.content.decode()
    assert '<html lang="fr">' in html
    assert "Aller au contenu" in html


def test_users_preference_beats_the_browser(auth_client: Client, user: User) -> None:
    user.language = "fr"
    user.save(update_fields=["language"])
    response = auth_client.get(reverse("settings_home"), HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert '<html lang="fr">' in html
    assert "Paramètres du compte" in html


def test_dates_follow_the_users_time_zone(auth_client: Client, user: User) -> None:
    from datetime import UTC, datetime

    User.objects.filter(pk=user.pk).update(
        date_joined=datetime(2026, 1, 1, 23, 30, tzinfo=UTC), time_zone="Pacific/Auckland"
    )
    html = auth_client.get(reverse("settings_home")).content.decode()
    # 23:30 UTC on 1 January is already 2 January in Auckland.
    assert 'datetime="2026-01-02T12:30:00+13:00"' in html


def _entries(po: str) -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) for each entry of a .po file, header excluded."""
    entries = []
    for block in re.split(r"\n\s*\n", po):
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        text = "\n".join(line for line in lines if not line.startswith("#"))
        ids = re.findall(r'^msgid(?:_plural)? ((?:".*"\n?)+)', text + "\n", re.MULTILINE)
        strs = re.findall(r'^msgstr(?:\[\d\])? ((?:".*"\n?)+)', text + "\n", re.MULTILINE)
        if not ids:
            continue
        msgid = "".join(re.findall(r'"(.*)"', ids[0]))
        if not msgid:
            continue
        for s in strs or [""]:
            entries.append((msgid, "".join(re.findall(r'"(.*)"', s)), fuzzy))
    return entries


def test_french_catalogue_is_complete_and_not_fuzzy() -> None:
    po = (LOCALE / "fr" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    entries = _entries(po)
    assert len(entries) > 20
    missing = [msgid for msgid, msgstr, _ in entries if not msgstr]
    fuzzy = [msgid for msgid, _, is_fuzzy in entries if is_fuzzy]
    assert not missing, f"untranslated: {missing}"
    assert not fuzzy, f"fuzzy: {fuzzy}"
    assert (LOCALE / "fr" / "LC_MESSAGES" / "django.mo").exists()
