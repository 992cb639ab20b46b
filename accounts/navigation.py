"""The settings navigation: the sections that exist, in order, as the policy allows."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.policy import get_policy


@dataclass(frozen=True)
class Section:
    key: str
    label: str | Promise
    url_name: str
    # Shown when any of these policy fields is not off; empty: always shown.
    fields: tuple[str, ...] = ()


SECTIONS: tuple[Section, ...] = (
    Section("home", _("Overview"), "settings_home"),
    Section("profile", _("Profile"), "profile", ("name", "avatar", "profile", "username")),
    Section("email", _("Email address"), "email", ("email",)),
    Section("phone", _("Phone number"), "phone", ("phone",)),
    Section("password", _("Password"), "account_change_password", ("password",)),
    Section("two_factor", _("Two-step verification"), "two_factor", ("mfa", "passkeys")),
    Section("social", _("Linked accounts"), "socialaccount_connections", ("social",)),
    Section("sessions", _("Sessions and devices"), "sessions", ("sessions",)),
    Section("security", _("Security activity"), "security_activity"),
    Section("tokens", _("Access tokens"), "tokens", ("tokens",)),
    Section("connected_apps", _("Connected apps"), "connected_apps", ("connected_apps",)),
    Section("export", _("Export your data"), "export", ("data_export",)),
    Section("delete", _("Delete your account"), "delete_account", ("delete_account",)),
)


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str | Promise
    url: str
    current: bool


def settings_sections(request: HttpRequest) -> list[NavItem]:
    policy = get_policy(request)
    if not policy.enabled:
        return []
    path = request.path
    items = []
    for section in SECTIONS:
        if section.fields and not any(policy.visible(name) for name in section.fields):
            continue
        url = reverse(section.url_name)
        current = path == url if section.key == "home" else path.startswith(url)
        items.append(NavItem(section.key, section.label, url, current))
    return items
