"""The settings navigation: the sections that exist, in order, as the policy allows."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.functional import Promise
from django.utils.safestring import SafeString
from django.utils.translation import get_language
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


# The sections' URLs by what reversing depends on: the same on every request.
_urls: dict[tuple[object, str, str | None], tuple[str, ...]] = {}


def _section_urls() -> tuple[str, ...]:
    key = (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix(), get_language())
    urls = _urls.get(key)
    if urls is None:
        urls = _urls[key] = tuple(reverse(section.url_name) for section in SECTIONS)
    return urls


def settings_sections(request: HttpRequest) -> list[NavItem]:
    policy = get_policy(request)
    if not policy.enabled:
        return []
    path = request.path
    items = []
    for section, url in zip(SECTIONS, _section_urls(), strict=True):
        if section.fields and not any(policy.visible(name) for name in section.fields):
            continue
        current = path == url if section.key == "home" else path.startswith(url)
        items.append(NavItem(section.key, section.label, url, current))
    return items


# The navigation's markup by language and items: a handful of variants, the same
# on every request (rendering its loop cost about as much as a small page's body).
_html: dict[tuple[str | None, tuple[tuple[str, str, bool], ...]], SafeString] = {}
_HTML_VARIANTS = 1024


def settings_nav_html(request: HttpRequest) -> SafeString:
    items = settings_sections(request)
    key = (get_language(), tuple((item.key, item.url, item.current) for item in items))
    html = _html.get(key)
    if html is None:
        if len(_html) >= _HTML_VARIANTS:
            _html.clear()
        html = render_to_string("accounts/includes/settings_nav.html", {"items": items})
        _html[key] = html
    return html
