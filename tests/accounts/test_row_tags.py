"""The settings tables' quicker tags write exactly what Django's own tags write."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.template import Context, Template
from django.utils import timezone, translation
from django.utils.safestring import mark_safe

from accounts.selectors.social import LinkedAccount


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 3, 29, 0, 59, 30, 123456, tzinfo=UTC),  # the night Paris changes hour
        datetime(2026, 12, 6, 16, 0, tzinfo=UTC),
        date(2026, 1, 2),
        None,
        "",
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Pacific/Chatham"])
def test_isoformat_is_date_c(value: object, zone: str) -> None:
    with timezone.override(zone):
        ours = Template("{% load portal_time %}{{ value|isoformat }}").render(
            Context({"value": value})
        )
        django = Template("{{ value|date:'c' }}").render(Context({"value": value}))
    assert ours == django


@pytest.mark.parametrize(
    "name",
    ["session_end", "passkey_rename", "passkey_remove", "token_revoke", "connected_app_revoke"],
)
@pytest.mark.parametrize("pk", [1, 42, 987654321])
def test_row_url_is_url(name: str, pk: int) -> None:
    context = Context({"name": name, "pk": pk})
    with translation.override("fr"):
        ours = Template("{% load portal_urls %}{% row_url name pk %}").render(context)
        django = Template("{% url name pk %}").render(context)
    assert ours == django
    assert str(pk) in ours


def test_row_url_with_a_script_prefix() -> None:
    from django.urls import get_script_prefix, set_script_prefix

    old = get_script_prefix()
    set_script_prefix("/portal/")
    try:
        context = Context({"pk": 7})
        ours = Template("{% load portal_urls %}{% row_url 'session_end' pk %}").render(context)
        django = Template("{% url 'session_end' pk %}").render(context)
    finally:
        set_script_prefix(old)
    assert ours == django == "/portal/settings/sessions/7/end/"


# --- The tables' rows, written in Python (accounts/templatetags/portal_rows.py) --------

# The row templates the tags replace, as the pages had them.
SESSION_ROW = """{% load i18n portal_time portal_urls %}{% for row in rows %}
<tr{% if row.current %} class="current-row"{% endif %}>
<td>{{ row.device }}{% if row.current %} <span class="badge badge-success">{% translate "This device" %}</span>{% endif %}</td>
<td>{{ row.ip }}</td>
<td><time datetime="{{ row.signed_in|isoformat }}">{{ row.signed_in|date:"DATETIME_FORMAT" }}</time></td>
<td><time datetime="{{ row.last_seen|isoformat }}">{{ row.last_seen|date:"DATETIME_FORMAT" }}</time></td>
{% if "sessions" in policy.editable_fields %}
<td>{% if not row.current %}<form method="post" action="{% row_url 'session_end' row.pk %}">{% csrf_token %}<button type="submit" class="button button-danger">{% translate "End" %}<span class="visually-hidden"> {{ row.device }}, {{ row.ip }}</span></button></form>{% endif %}</td>
{% endif %}
</tr>
{% endfor %}"""  # noqa: E501

PASSKEY_ROW = """{% load i18n portal_time portal_urls %}{% for key in passkeys %}
<tr>
<td>{{ key.name }}</td>
<td><time datetime="{{ key.created_at|isoformat }}">{{ key.created_at|date:"DATE_FORMAT" }}</time></td>
<td>{% if key.last_used_at %}<time datetime="{{ key.last_used_at|isoformat }}">{{ key.last_used_at|date:"DATETIME_FORMAT" }}</time>{% else %}{% translate "Never" %}{% endif %}</td>
{% if "passkeys" in policy.editable_fields %}
<td class="row-actions">
<a class="button button-secondary" href="{% row_url 'passkey_rename' key.pk %}">{% translate "Rename" %}<span class="visually-hidden"> {{ key.name }}</span></a>
<form method="post" action="{% row_url 'passkey_remove' key.pk %}">{% csrf_token %}<button type="submit" class="button button-danger">{% translate "Remove" %}<span class="visually-hidden"> {{ key.name }}</span></button></form>
</td>
{% endif %}
</tr>
{% endfor %}"""  # noqa: E501

ACTIVITY_ROW = """{% load i18n portal_time %}{% for row in rows %}
<tr>
<td><time datetime="{{ row.when|isoformat }}">{{ row.when|date:"DATETIME_FORMAT" }}</time></td>
<td>{{ row.label }}{% if row.by_someone_else %} <span class="badge">{% translate "by staff" %}</span>{% endif %}</td>
{% if row.support %}<td>{% translate "Support" %}</td><td>—</td>{% else %}<td>{{ row.device|default:"—" }}</td>
<td>{{ row.ip_address|default:"—" }}</td>{% endif %}
</tr>
{% endfor %}"""  # noqa: E501


TOKEN_ROW = """{% load i18n portal_time portal_urls %}{% for row in rows %}
<tr>
<td>{{ row.token.name }}</td>
<td><code>{{ row.shown_prefix }}</code></td>
<td>{{ row.token.scopes|join:", " }}</td>
<td><time datetime="{{ row.token.expires_at|isoformat }}">{{ row.token.expires_at|date:"DATETIME_FORMAT" }}</time></td>
<td>{% if row.token.last_used_at %}<time datetime="{{ row.token.last_used_at|isoformat }}">{{ row.token.last_used_at|date:"DATETIME_FORMAT" }}</time>{% else %}{% translate "Never" %}{% endif %}</td>
<td>{% if row.token.revoked_at %}{% translate "Revoked" %}{% elif row.live %}<span class="badge badge-success">{% translate "Active" %}</span>{% else %}{% translate "Expired" %}{% endif %}</td>
{% if "tokens" in policy.editable_fields %}
<td>{% if row.live %}<form method="post" action="{% row_url 'token_revoke' row.token.pk %}">{% csrf_token %}<button type="submit" class="button button-danger">{% translate "Revoke" %}<span class="visually-hidden"> {{ row.token.name }}, {{ row.shown_prefix }}</span></button></form>{% endif %}</td>
{% endif %}
</tr>
{% endfor %}"""  # noqa: E501


APP_ROW = """{% load i18n portal_time portal_urls %}{% for app in apps %}
<tr>
<td>{{ app.name }}</td>
<td><ul class="scope-list">{% for scope in app.scopes %}<li>{{ scope.label }}</li>{% endfor %}</ul></td>
<td><time datetime="{{ app.first_used_at|isoformat }}">{{ app.first_used_at|date:"DATETIME_FORMAT" }}</time></td>
<td>{% if app.last_used_at %}<time datetime="{{ app.last_used_at|isoformat }}">{{ app.last_used_at|date:"DATETIME_FORMAT" }}</time>{% else %}{% translate "Never" %}{% endif %}</td>
{% if "connected_apps" in policy.editable_fields %}
<td><form method="post" action="{% row_url 'connected_app_revoke' app.id %}">{% csrf_token %}<button type="submit" class="button button-danger">{% translate "Revoke" %}<span class="visually-hidden"> {{ app.name }}</span></button></form></td>
{% endif %}
</tr>
{% endfor %}"""  # noqa: E501


def _cells(html: str) -> str:
    """The markup with whitespace between tags dropped and other runs made one space:
    what a browser builds from a table's rows is the same."""
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", html)).strip()


class _Policy:
    def __init__(self, editable: set[str]) -> None:
        self.editable_fields = frozenset(editable)


@dataclass
class _Row:
    pk: int
    device: str
    ip: str | None
    signed_in: datetime
    last_seen: datetime
    current: bool


@dataclass
class _Key:
    pk: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass
class _Event:
    when: datetime
    label: Any
    by_someone_else: bool
    support: bool
    device: str
    ip_address: str | None


@dataclass
class _Token:
    pk: int
    name: str
    scopes: list[str]
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass
class _Scope:
    label: Any


@dataclass
class _App:
    id: int
    name: Any
    scopes: list[_Scope]
    first_used_at: datetime
    last_used_at: datetime | None


WHEN = datetime(2026, 3, 29, 0, 59, 30, 123456, tzinfo=UTC)
LATER = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
AWKWARD = '<b>"Firefox" & co</b>'


def _both(template: str, tag: str, context: dict[str, Any]) -> tuple[str, str]:
    context = {**context, "csrf_token": "tok<en>"}
    theirs = Template(template).render(Context(context))
    ours = Template("{% load portal_rows %}" + tag).render(Context(context))
    return _cells(ours), _cells(theirs)


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Pacific/Chatham"])
@pytest.mark.parametrize("editable", [True, False])
def test_session_rows_are_the_template_rows(language: str, zone: str, editable: bool) -> None:
    rows = [
        _Row(1, "Firefox on Linux", "192.0.2.1", WHEN, LATER, current=True),
        _Row(22, AWKWARD, None, LATER, LATER, current=False),
        _Row(333, "Unknown device", "2001:db8::1", WHEN, WHEN, current=False),
    ]
    policy = _Policy({"sessions"} if editable else set())
    with translation.override(language), timezone.override(zone):
        ours, theirs = _both(
            SESSION_ROW, "{% session_rows rows policy %}", {"rows": rows, "policy": policy}
        )
    assert ours == theirs
    assert ("&lt;b&gt;&quot;Firefox&quot; &amp; co&lt;/b&gt;" in ours) is True


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Chatham"])
@pytest.mark.parametrize("editable", [True, False])
def test_passkey_rows_are_the_template_rows(language: str, zone: str, editable: bool) -> None:
    passkeys = [_Key(5, "YubiKey", WHEN, None), _Key(6, AWKWARD, LATER, WHEN)]
    policy = _Policy({"passkeys"} if editable else set())
    with translation.override(language), timezone.override(zone):
        ours, theirs = _both(
            PASSKEY_ROW,
            "{% passkey_rows passkeys policy %}",
            {"passkeys": passkeys, "policy": policy},
        )
    assert ours == theirs


@pytest.mark.parametrize("language", ["en", "fr"])
def test_activity_rows_are_the_template_rows(language: str) -> None:
    rows = [
        _Event(WHEN, "Password changed", False, False, "Firefox on Linux", "192.0.2.1"),
        _Event(LATER, mark_safe("<i>safe</i>"), True, False, "", None),
        _Event(LATER, AWKWARD, True, True, "", None),
    ]
    with translation.override(language), timezone.override("Europe/Paris"):
        ours, theirs = _both(ACTIVITY_ROW, "{% activity_rows rows %}", {"rows": rows})
    assert ours == theirs


def test_a_date_is_written_again_in_another_zone_and_language() -> None:
    template = Template("{% load portal_time %}{{ when|datetext:'DATETIME_FORMAT' }}")
    with timezone.override("UTC"):
        utc = template.render(Context({"when": WHEN}))
    with timezone.override("Europe/Paris"):
        paris = template.render(Context({"when": WHEN}))
        with translation.override("fr"):
            french = template.render(Context({"when": WHEN}))

    assert (utc, paris, french) == (
        "March 29, 2026, 12:59 a.m.",
        "March 29, 2026, 1:59 a.m.",
        "29 mars 2026 01:59",
    )


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("editable", [True, False])
def test_token_rows_are_the_template_rows(language: str, editable: bool) -> None:
    rows = [
        {
            "token": _Token(1, "Backup", ["account:read"], LATER, None, None),
            "shown_prefix": "pat_ab",
            "live": True,
        },
        {
            "token": _Token(2, AWKWARD, ["a<b", "c"], WHEN, WHEN, None),
            "shown_prefix": "<x>",
            "live": False,
        },
        {"token": _Token(3, "Old", [], None, None, WHEN), "shown_prefix": "pat_cd", "live": False},
    ]
    policy = _Policy({"tokens"} if editable else set())
    with translation.override(language), timezone.override("Europe/Paris"):
        ours, theirs = _both(
            TOKEN_ROW, "{% token_rows rows policy %}", {"rows": rows, "policy": policy}
        )
    assert ours == theirs


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("editable", [True, False])
def test_app_rows_are_the_template_rows(language: str, editable: bool) -> None:
    apps = [
        _App(1, "Notes", [_Scope("Read your account"), _Scope(AWKWARD)], WHEN, None),
        _App(2, AWKWARD, [], LATER, WHEN),
    ]
    policy = _Policy({"connected_apps"} if editable else set())
    with translation.override(language), timezone.override("Pacific/Chatham"):
        ours, theirs = _both(
            APP_ROW, "{% app_rows apps policy %}", {"apps": apps, "policy": policy}
        )
    assert ours == theirs


LINKED_ROW = """{% load i18n portal_time %}{% for account in accounts %}
<tr>
<td>{{ account.provider_name }}</td>
<td>{{ account.display }}</td>
<td><time datetime="{{ account.linked_at|isoformat }}">{{ account.linked_at|datetext:"DATE_FORMAT" }}</time></td>
{% if "social" in policy.editable_fields %}
<td>
<form method="post" action="{% url 'socialaccount_connections' %}">
{% csrf_token %}
<input type="hidden" name="account" value="{{ account.pk }}">
<button type="submit" class="button button-danger">{% translate "Unlink" %}<span class="visually-hidden"> {{ account.provider_name }} {{ account.display }}</span></button>
</form>
</td>
{% endif %}
</tr>
{% endfor %}"""  # noqa: E501


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("editable", [True, False])
def test_linked_account_rows_are_the_template_rows(language: str, editable: bool) -> None:
    accounts = [
        LinkedAccount(1, "github", "GitHub", "1", "octocat", None, WHEN, None),
        LinkedAccount(22, "dummy", AWKWARD, "22", AWKWARD, None, LATER, None),
    ]
    policy = _Policy({"social"} if editable else set())
    with translation.override(language), timezone.override("Europe/Paris"):
        ours, theirs = _both(
            LINKED_ROW,
            "{% linked_account_rows accounts policy %}",
            {"accounts": accounts, "policy": policy},
        )
    assert ours == theirs
    assert ("&lt;b&gt;&quot;Firefox&quot; &amp; co&lt;/b&gt;" in ours) is True
