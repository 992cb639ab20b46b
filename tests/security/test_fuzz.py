"""Generated junk to every form of the settings and sign-in pages and to every
back-office list, as an anonymous visitor, a signed-in user and a staff member:
whatever arrives, the answer is never a server error (status >= 500).

The junk (``junk.py``): very long strings, NUL bytes, lone surrogates and bytes that
are not UTF-8 (percent-encoded and raw) in query strings and bodies, repeated keys,
methods the page does not take, malformed multipart bodies (no boundary, a bad
boundary, a truncated body), JSON that does not parse, odd charsets. The field
names come from the page's own forms (read from its HTML) and the back-office
list's filter links and bulk actions, so the junk reaches the forms and the filters
rather than stopping at the first unknown key. CSRF is checked as in production and
the requests carry the token, as a browser's would.

Bounded and reproducible (derandomised, no example database): each page and role
gets one fixed request of every kind and a few generated ones.
"""

from __future__ import annotations

import sys
import traceback
import zlib
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.core.cache import cache
from django.db.models import CharField, TextField
from django.http import HttpResponseServerError
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st

from accounts.models import User
from tests.conftest import verify_second_factor
from tests.security.junk import (
    BULK_ACTION_FIELDS,
    LIST_METHODS,
    LIST_PARAMETERS,
    Junk,
    form_examples,
    junk_requests,
    list_examples,
)

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "user", "staff")
CSRF_TOKEN = "fuzz" * 8  # a CSRF secret: 32 letters
EXAMPLES_PER_PAGE = 6
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_PAGE,
    deadline=None,
    derandomize=True,
    database=None,
    # A failure is reported as found: shrinking requests of 100 000 characters
    # against a full Django stack would take minutes.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- The pages ------------------------------------------------------------------

# Plausible values for the URL parameters: the forms answer 404 for someone else's
# or a missing object, which is the point of trying them.
URL_KWARGS = {"pk": "1", "card": "name", "provider_id": "oidc"}
# The settings pages, the second step of sign-in and allauth's pages (sign-in,
# sign-up, password, re-authentication, social accounts and providers), the
# language switch and the end of impersonation.
PAGE_PREFIXES = ("settings/", "accounts/", "i18n/", "hijack/")


def _named_routes(
    patterns: list[Any], prefix: str = "", namespace: str | None = None, params: tuple = ()
) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    for pattern in patterns:
        own = tuple(pattern.pattern.regex.groupindex)
        if isinstance(pattern, URLResolver):
            yield from _named_routes(
                pattern.url_patterns,
                prefix + str(pattern.pattern),
                pattern.namespace or namespace,
                params + own,
            )
        elif isinstance(pattern, URLPattern) and pattern.name:
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            yield prefix + str(pattern.pattern), name, params + own


def _pages() -> list[str]:
    urls: dict[str, None] = {}
    for route, name, params in _named_routes(get_resolver().url_patterns):
        if route.startswith(PAGE_PREFIXES):
            urls[reverse(name, kwargs={p: URL_KWARGS[p] for p in params})] = None
    return list(urls)


def _changelists() -> list[tuple[str, Any]]:
    return [
        (
            reverse(
                f"{admin.site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist"
            ),
            model_admin,
        )
        for model, model_admin in admin.site._registry.items()
    ]


def _backoffice_lists() -> list[str]:
    """Each list registered on the back-office, and the list's own extra pages
    without parameters (the audit log's CSV export)."""
    urls = []
    for changelist, model_admin in _changelists():
        urls.append(changelist)
        info = (model_admin.model._meta.app_label, model_admin.model._meta.model_name)
        standard = {"{}_{}_{}".format(*info, view) for view in ("changelist", "add")}
        for pattern in model_admin.get_urls():
            if (
                isinstance(pattern, URLPattern)
                and pattern.name
                and pattern.name not in standard
                and not pattern.pattern.regex.groupindex
                and pattern.pattern.regex.pattern.strip("^$")
            ):
                urls.append(reverse(f"{admin.site.name}:{pattern.name}"))
    return urls


PAGES = _pages()
BACKOFFICE_LISTS = _backoffice_lists()


# --- The clients ----------------------------------------------------------------


@pytest.fixture
def client_for(user: User, staff_user: User) -> Callable[[str], Client]:
    """A fresh client per request: junk may sign the client out (the sign-out form)
    and must not spend the next request's rate limits."""
    staff_user.is_superuser = True
    staff_user.save(update_fields=["is_superuser"])

    def make(role: str) -> Client:
        cache.clear()
        # CSRF checked as in production (the 400 and 403 pages it leads to are part of
        # what is tested); the requests carry the token as a browser would.
        client = Client(raise_request_exception=False, enforce_csrf_checks=True)
        client.cookies[django_settings.CSRF_COOKIE_NAME] = CSRF_TOKEN
        if role == "user":
            client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        elif role == "staff":
            client.force_login(staff_user, backend="django.contrib.auth.backends.ModelBackend")
            verify_second_factor(client, staff_user)
        return client

    return make


@pytest.fixture
def backoffice_rows(user: User, staff_user: User) -> None:
    """A row in each list whose table is otherwise empty: a filter that breaks only
    when the database compares it with a row (a regular expression on SQLite) must
    meet one."""
    from allauth.idp.oidc.models import Client as OAuthApp
    from allauth.socialaccount.models import SocialApp
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from accounts.models import AccountPolicy, AuditEvent

    AuditEvent.objects.create(action="login", actor=user, subject=user, subject_label="alice")
    AccountPolicy.objects.get_or_create(pk=1)
    SocialApp.objects.create(provider="github", name="GitHub", client_id="id", secret="secret")
    OAuthApp.objects.create(name="Notes", redirect_uris="https://app.example.com/callback")
    now = timezone.now()
    DBTaskResult.objects.create(
        enqueued_at=now,
        run_after=now,
        args_kwargs={"args": [], "kwargs": {}},
        task_path="accounts.tasks.deliver",
        backend_name="default",
        exception_class_path="",
        traceback="",
    )


# --- Discovering the field names ------------------------------------------------


class _PageForms(HTMLParser):
    """What a page offers to send: the names of its forms' fields, the query keys of
    its links (a back-office list's filters and sorting) and the values of its
    ``action`` menu (a list's bulk actions)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, None] = {}
        self.link_keys: dict[str, None] = {}
        self.actions: dict[str, None] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        name = values.get("name") or ""
        if tag in ("input", "select", "textarea", "button") and name:
            self.fields[name] = None
        if tag == "select":
            self._select = name
        elif tag == "option" and self._select == "action" and values.get("value"):
            self.actions[values["value"] or ""] = None
        elif tag == "a" and (values.get("href") or "").startswith("?"):
            for key, _value in parse_qsl((values["href"] or "")[1:], keep_blank_values=True):
                self.link_keys[key] = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def _read_page(client: Client, url: str) -> _PageForms:
    response = client.get(url, follow=True)
    page = _PageForms()
    if response.get("Content-Type", "").startswith("text/html"):
        page.feed(response.content.decode(errors="replace"))
    page.fields.pop("csrfmiddlewaretoken", None)
    return page


def _field_names(client: Client, url: str) -> list[str]:
    # A page that only redirects (signed out, or signed in on a sign-in page) still
    # gets the usual names.
    return list(_read_page(client, url).fields) or ["email", "password", "code", "name"]


def _lookups(model_admin: Any) -> list[str]:
    """Lookups on the list's model a query string might try, most of which the list
    must refuse."""
    keys = []
    for field in model_admin.model._meta.concrete_fields:
        lookups = ["exact", "in", "gte", "isnull", "year"]
        if isinstance(field, CharField | TextField):
            lookups += ["contains", "regex"]
        keys += [field.name, *(f"{field.name}__{lookup}" for lookup in lookups)]
    return keys


def _send(client: Client, url: str, junk: Junk) -> Any:
    extra: dict[str, Any] = {"QUERY_STRING": junk.query.decode("latin-1")}  # as WSGI has it
    if junk.htmx:
        extra["HTTP_HX_REQUEST"] = "true"
    if junk.csrf_token:
        extra["HTTP_X_CSRFTOKEN"] = CSRF_TOKEN
    try:
        return client.generic(
            junk.method, url, data=junk.body, content_type=junk.content_type, **extra
        )
    except Exception:  # noqa: BLE001 - what the WSGI server makes of it is the point
        # An exception raised while Django renders the error page itself leaves the
        # handler: the WSGI server answers an empty 500.
        response = HttpResponseServerError()
        response.exc_info = sys.exc_info()  # type: ignore[attr-defined]
        return response


def _assert_no_server_error(response: Any, url: str, role: str, junk: Junk) -> None:
    if response.status_code < 500:
        return
    exc_info = getattr(response, "exc_info", None)
    detail = (
        "".join(traceback.format_exception(*exc_info))
        if exc_info
        else response.content[:2000].decode(errors="replace")
    )
    pytest.fail(f"{response.status_code} from {url} as {role}: {junk!r}\n{detail}", pytrace=False)


def _fuzz(
    send: Callable[[Junk], Any],
    strategy: st.SearchStrategy[Junk],
    examples: list[Junk],
    *,
    seed_text: str,
) -> None:
    """Runs ``send`` on the fixed examples, then on the generated ones. The seed comes
    from the page and role: reproducible, yet each page gets its own draws."""
    test = seed(zlib.crc32(seed_text.encode()))(FUZZ_SETTINGS(given(junk=strategy)(send)))
    for junk in examples:
        test = example(junk=junk)(test)
    test()


# --- The tests ------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", PAGES)
def test_junk_to_a_form_is_never_a_server_error(
    client_for: Callable[[str], Client], url: str, role: str
) -> None:
    keys = _field_names(client_for(role), url)

    def send(junk: Junk) -> None:
        _assert_no_server_error(_send(client_for(role), url, junk), url, role, junk)

    _fuzz(
        send,
        junk_requests(["next", *keys], keys),
        form_examples(keys),
        seed_text=f"{url} {role}",
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", BACKOFFICE_LISTS)
def test_junk_to_a_backoffice_list_is_never_a_server_error(
    client_for: Callable[[str], Client], backoffice_rows: None, url: str, role: str
) -> None:
    changelist, model_admin = next(
        (changelist, model_admin)
        for changelist, model_admin in _changelists()
        if url.startswith(changelist)
    )
    # The filters and actions offered on the list (the export takes the list's filters).
    page = _read_page(client_for("staff"), changelist)
    filters = list(dict.fromkeys([*page.link_keys, *LIST_PARAMETERS]))
    lookups = _lookups(model_admin)

    def send(junk: Junk) -> None:
        _assert_no_server_error(_send(client_for(role), url, junk), url, role, junk)

    _fuzz(
        send,
        junk_requests([*filters, *lookups], BULK_ACTION_FIELDS, LIST_METHODS),
        list_examples(filters, lookups, list(page.actions)),
        seed_text=f"{url} {role}",
    )
