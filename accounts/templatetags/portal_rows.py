"""The rows of the settings pages' long tables, written in Python.

A row through the template engine costs some seventy microseconds (each variable,
filter, tag and translation is a node); the sessions page lists fifty of them, the
two-step page twenty security keys. These tags write the markup the pages' row
templates wrote, character for character but for whitespace, with the row's
strings translated once per table, not once per row, and the dates through
``portal_time.date_text``. ``tests/accounts/test_row_tags.py`` compares each with
the template it replaces.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.conf import settings
from django.template.context import Context
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext

from accounts.markup import esc
from accounts.templatetags.portal_time import date_text, isoformat, local
from accounts.templatetags.portal_urls import row_urls

register = template.Library()


def csrf_input(context: Context) -> str:
    """What ``{% csrf_token %}`` writes."""
    token = context.get("csrf_token")
    if not token or token == "NOTPROVIDED":
        return ""
    return format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token)


def danger_form(action: str, csrf: str, label: str, hidden: str, fields: str = "") -> str:
    """A row's POST form with its one red button; ``hidden`` names the row for screen
    readers. Every argument is already escaped."""
    return (
        f'<form method="post" action="{action}">{csrf}{fields}'
        f'<button type="submit" class="button button-danger">{label}'
        f'<span class="visually-hidden"> {hidden}</span></button></form>'
    )


# (value, zone, format, language) -> its <time> element; a few thousand entries.
_times: dict[tuple[Any, ...], str] = {}
_TIMES = 4096


class Times:
    """``<time datetime="{{ value|isoformat }}">{{ value|date:fmt }}</time>`` for the
    rows of one table: the time zone and language are read once, and each value's
    element is remembered (a table shows the same dates on every visit)."""

    def __init__(self) -> None:
        self.zone = timezone.get_current_timezone() if settings.USE_TZ else None
        self.language = get_language()

    def html(self, value: Any, fmt: str) -> str:
        key = (value, self.zone, fmt, self.language)
        try:
            return _times[key]
        except KeyError:
            pass
        except TypeError:  # not hashable: no value a table shows
            return self._html(value, fmt)
        if len(_times) >= _TIMES:
            _times.clear()
        html = _times[key] = self._html(value, fmt)
        return html

    def _html(self, value: Any, fmt: str) -> str:
        value = local(value)
        return f'<time datetime="{esc(isoformat(value))}">{esc(date_text(value, fmt))}</time>'


@register.simple_tag(takes_context=True)
def session_rows(context: Context, rows: Iterable[Any], policy: Any) -> SafeString:
    """The rows of ``accounts/sessions.html``."""
    editable = "sessions" in policy.editable_fields
    this_device = esc(gettext("This device"))
    end = esc(gettext("End"))
    csrf = csrf_input(context) if editable else ""
    end_url = row_urls("session_end")
    times = Times()
    out = []
    for row in rows:
        device = esc(row.device)
        ip = esc(row.ip)
        out.append(
            f"<tr{' class="current-row"' if row.current else ''}>"
            f"<td>{device}"
            f"{f' <span class="badge badge-success">{this_device}</span>' if row.current else ''}"
            f"</td><td>{ip}</td>"
            f"<td>{times.html(row.signed_in, 'DATETIME_FORMAT')}</td>"
            f"<td>{times.html(row.last_seen, 'DATETIME_FORMAT')}</td>"
        )
        if editable:
            if row.current:
                out.append("<td></td>")
            else:
                action = esc(end_url(row.pk))
                out.append(f"<td>{danger_form(action, csrf, end, f'{device}, {ip}')}</td>")
        out.append("</tr>\n")
    return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)


@register.simple_tag(takes_context=True)
def passkey_rows(context: Context, passkeys: Iterable[Any], policy: Any) -> SafeString:
    """The security keys' rows of ``accounts/two_factor.html``."""
    editable = "passkeys" in policy.editable_fields
    never = esc(gettext("Never"))
    rename = esc(gettext("Rename"))
    remove = esc(gettext("Remove"))
    csrf = csrf_input(context) if editable else ""
    rename_url, remove_url = row_urls("passkey_rename"), row_urls("passkey_remove")
    times = Times()
    out = []
    for key in passkeys:
        name = esc(key.name)
        last_used = times.html(key.last_used_at, "DATETIME_FORMAT") if key.last_used_at else never
        out.append(
            f"<tr><td>{name}</td><td>{times.html(key.created_at, 'DATE_FORMAT')}</td>"
            f"<td>{last_used}</td>"
        )
        if editable:
            out.append(
                f'<td class="row-actions">\n<a class="button button-secondary" '
                f'href="{esc(rename_url(key.pk))}">{rename}'
                f'<span class="visually-hidden"> {name}</span></a>\n'
                f"{danger_form(esc(remove_url(key.pk)), csrf, remove, name)}\n</td>"
            )
        out.append("</tr>\n")
    return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)


@register.simple_tag
def activity_rows(rows: Iterable[Any]) -> SafeString:
    """The rows of ``accounts/security.html``."""
    by_staff = esc(gettext("by staff"))
    support = esc(gettext("Support"))
    times = Times()
    out = []
    for row in rows:
        badge = f' <span class="badge">{by_staff}</span>' if row.by_someone_else else ""
        if row.support:
            where = f"<td>{support}</td><td>—</td>"
        else:
            where = f"<td>{esc(row.device or '—')}</td>\n<td>{esc(row.ip_address or '—')}</td>"
        out.append(
            f"<tr><td>{times.html(row.when, 'DATETIME_FORMAT')}</td>"
            f"<td>{esc(row.label)}{badge}</td>{where}</tr>\n"
        )
    return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)


@register.simple_tag(takes_context=True)
def token_rows(context: Context, rows: Iterable[Any], policy: Any) -> SafeString:
    """The rows of ``accounts/tokens.html``."""
    editable = "tokens" in policy.editable_fields
    never = esc(gettext("Never"))
    revoked = esc(gettext("Revoked"))
    active = esc(gettext("Active"))
    expired = esc(gettext("Expired"))
    revoke = esc(gettext("Revoke"))
    csrf = csrf_input(context) if editable else ""
    revoke_url = row_urls("token_revoke")
    times = Times()
    out = []
    for row in rows:
        token = row["token"]
        name = esc(token.name)
        prefix = esc(row["shown_prefix"])
        last_used = (
            times.html(token.last_used_at, "DATETIME_FORMAT") if token.last_used_at else never
        )
        if token.revoked_at:
            status = revoked
        elif row["live"]:
            status = f'<span class="badge badge-success">{active}</span>'
        else:
            status = expired
        out.append(
            f"<tr><td>{name}</td><td><code>{prefix}</code></td>"
            f"<td>{', '.join(esc(scope) for scope in token.scopes)}</td>"
            f"<td>{times.html(token.expires_at, 'DATETIME_FORMAT')}</td>"
            f"<td>{last_used}</td><td>{status}</td>"
        )
        if editable:
            form = ""
            if row["live"]:
                action = esc(revoke_url(token.pk))
                form = danger_form(action, csrf, revoke, f"{name}, {prefix}")
            out.append(f"<td>{form}</td>")
        out.append("</tr>\n")
    return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)


@register.simple_tag(takes_context=True)
def app_rows(context: Context, apps: Iterable[Any], policy: Any) -> SafeString:
    """The rows of ``accounts/connected_apps.html``."""
    editable = "connected_apps" in policy.editable_fields
    never = esc(gettext("Never"))
    revoke = esc(gettext("Revoke"))
    csrf = csrf_input(context) if editable else ""
    revoke_url = row_urls("connected_app_revoke")
    times = Times()
    out = []
    for app in apps:
        name = esc(app.name)
        scopes = "".join(f"<li>{esc(scope.label)}</li>" for scope in app.scopes)
        last_used = times.html(app.last_used_at, "DATETIME_FORMAT") if app.last_used_at else never
        out.append(
            f'<tr><td>{name}</td><td><ul class="scope-list">{scopes}</ul></td>'
            f"<td>{times.html(app.first_used_at, 'DATETIME_FORMAT')}</td><td>{last_used}</td>"
        )
        if editable:
            action = esc(revoke_url(app.id))
            out.append(f"<td>{danger_form(action, csrf, revoke, name)}</td>")
        out.append("</tr>\n")
    return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)


@register.simple_tag(takes_context=True)
def linked_accounts(context: Context) -> list[Any]:
    """The signed-in user's linked accounts as the APIs list them
    (``linked_accounts_list``), for ``socialaccount/connections.html``."""
    from accounts.selectors.social import linked_accounts_list

    return linked_accounts_list(user=context["request"].user)


@register.simple_tag(takes_context=True)
def linked_account_rows(context: Context, accounts: Iterable[Any], policy: Any) -> SafeString:
    """The rows of ``socialaccount/connections.html`` (``linked_accounts``' items)."""
    editable = "social" in policy.editable_fields
    unlink = esc(gettext("Unlink"))
    csrf = csrf_input(context) if editable else ""
    action = esc(reverse("socialaccount_connections")) if editable else ""
    times = Times()
    out = []
    for account in accounts:
        brand = esc(account.provider_name)
        shown = esc(account.display)
        out.append(
            f"<tr><td>{brand}</td><td>{shown}</td>"
            f"<td>{times.html(account.linked_at, 'DATE_FORMAT')}</td>"
        )
        if editable:
            field = f'<input type="hidden" name="account" value="{esc(account.pk)}">'
            out.append(f"<td>{danger_form(action, csrf, unlink, f'{brand} {shown}', field)}</td>")
        out.append("</tr>\n")
    return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)
