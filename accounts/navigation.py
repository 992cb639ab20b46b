"""The settings navigation: the sections that exist, in order."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Section:
    key: str
    label: str | Promise
    url_name: str


SECTIONS: tuple[Section, ...] = (
    Section("home", _("Overview"), "settings_home"),
    Section("email", _("Email addresses"), "account_email"),
    Section("password", _("Password"), "account_change_password"),
)


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str | Promise
    url: str
    current: bool


def settings_sections(request: HttpRequest) -> list[NavItem]:
    path = request.path
    items = []
    for section in SECTIONS:
        url = reverse(section.url_name)
        current = path == url if section.key == "home" else path.startswith(url)
        items.append(NavItem(section.key, section.label, url, current))
    return items
