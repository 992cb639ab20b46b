"""Helpers of the browser journeys (``test_journeys.py``).

Selectors are language-neutral (URLs, names, ids) so each journey runs unchanged in
English and French; visible text is checked against Django's own catalogue through
:func:`tr`.
"""

from __future__ import annotations

import base64
import importlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils import translation

from tests.conftest import PASSWORD

DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 390, "height": 844}
LOCALES = {"en": "en-GB", "fr": "fr-FR"}
# Chromium logs a failed main-document load as a console error: expected for the
# pages a journey opens to see a 403 or a 404, never a CSP violation.
_STATUS_ERROR = re.compile(
    r"^Failed to load resource: the server responded with a status of 40[34]"
)


def tr(lang: str, message: str, **params: Any) -> str:
    """``message`` as the site shows it in ``lang`` (Django's merged catalogues)."""
    with translation.override(lang):
        text = translation.gettext(message)
    return text % params if params else text


# --- Browser contexts ------------------------------------------------------------------


@dataclass
class Tab:
    """A page in its own browser context (its own cookies: one "browser")."""

    page: Any
    base: str
    lang: str
    console: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def goto(self, path: str) -> Any:
        return self.page.goto(self.url(path))

    def wait_path(self, path: str) -> None:
        """Waits for the URL's path to be ``path`` (any query string)."""
        self.page.wait_for_url(re.compile(rf"^{re.escape(self.url(path))}(\?.*)?$"))

    def path(self) -> str:
        return self.page.evaluate("() => location.pathname")

    def text(self, selector: str = "main") -> str:
        return self.page.locator(selector).first.inner_text()

    def assert_no_console_errors(self, *, allow_status: bool = False) -> None:
        """No script error and no CSP violation (optionally, the 403/404 a step
        meant to see)."""
        errors = [e for e in self.console if not (allow_status and _STATUS_ERROR.match(e))]
        assert errors == [], errors
        self.console.clear()


class Browsers:
    """Opens contexts on the shared Chromium and closes them at the end."""

    def __init__(self, browser: Any, base: str) -> None:
        self.browser = browser
        self.base = base
        self.contexts: list[Any] = []

    def open(self, lang: str, *, locale: str | None = None) -> Tab:
        context = self.browser.new_context(
            viewport=DESKTOP, locale=locale or LOCALES[lang], accept_downloads=True
        )
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        tab = Tab(page=page, base=self.base, lang=lang)

        def console(msg: Any) -> None:
            if msg.type == "error":
                where = (msg.location or {}).get("url") or page.url
                tab.console.append(f"{msg.text} [{where}]")

        page.on("console", console)
        page.on("pageerror", lambda exc: tab.console.append(f"pageerror: {exc}"))
        return tab

    def close(self) -> None:
        for context in self.contexts:
            context.close()


class Shots:
    """Each step at desktop width (1280 px) and, for the key steps, at mobile
    width (390 px) by resizing the viewport."""

    def __init__(self, screenshot: Callable[[Any, str], Any]) -> None:
        self.take = screenshot
        self.count = 0

    def __call__(self, tab: Tab, name: str, *, mobile: bool = True) -> None:
        self.count += 1
        stem = f"{self.count:02d}-{name}"
        page = tab.page
        self.take(page, f"{stem}-desktop")
        if mobile:
            page.set_viewport_size(MOBILE)
            try:
                self.take(page, f"{stem}-mobile")
            finally:
                page.set_viewport_size(DESKTOP)
        # Playwright's screenshot (hiding the text caret) leaves an empty style=""
        # on inputs; htmx's attribute settling would copy it to the swapped-in
        # inputs with setAttribute, which the CSP refuses and logs as an error.
        page.evaluate(
            "() => document.querySelectorAll('[style=\"\"]')"
            ".forEach(e => e.removeAttribute('style'))"
        )


# --- Sign-in and the second factor ---------------------------------------------------


def submit_form(tab: Tab, form: str) -> None:
    """Presses the submit button of the form matched by ``form`` and waits for the
    next page."""
    with tab.page.expect_navigation():
        tab.page.locator(form).locator("button[type=submit], input[type=submit]").first.click()


def sign_in_password(
    tab: Tab, login: str, password: str = PASSWORD, *, next_path: str = ""
) -> None:
    if not tab.path().startswith("/accounts/login/"):
        tab.goto("/accounts/login/" + (f"?next={next_path}" if next_path else ""))
    tab.page.locator("input[name=login]").fill(login)
    tab.page.locator("input[name=password]").fill(password)
    submit_form(tab, "form[action='/accounts/login/']")


def sign_out(tab: Tab) -> None:
    submit_form(tab, "header form[action='/accounts/logout/']")
    tab.wait_path("/accounts/login/")


def enter_totp(tab: Tab, device: Any) -> None:
    """The authenticator app's form of the second step or of re-authentication."""
    form = "main form:has(input[name=method][value=totp])"
    tab.page.locator(form).locator("input[name=code]").fill(totp_code(device))
    submit_form(tab, form)


def second_step_totp(tab: Tab, device: Any) -> None:
    tab.wait_path("/accounts/2fa/")
    enter_totp(tab, device)


def second_step_backup(tab: Tab, code: str) -> None:
    tab.wait_path("/accounts/2fa/")
    form = "main form:has(input[name=method][value=backup])"
    tab.page.locator(form).locator("input[name=code]").fill(code)
    submit_form(tab, form)


def second_step_key(tab: Tab) -> None:
    tab.wait_path("/accounts/2fa/")
    with tab.page.expect_navigation():
        tab.page.locator("#passkey-verification-button").click()


def reauthenticate_if_asked(tab: Tab, password: str = PASSWORD) -> bool:
    """On allauth's password re-authentication page, confirm with the password (the
    stopped POST is replayed)."""
    if not tab.path().startswith("/accounts/reauthenticate/"):
        return False
    tab.page.locator("input[name=password]").fill(password)
    submit_form(tab, "form[action='/accounts/reauthenticate/']")
    return True


def totp_code(device: Any) -> str:
    """The next code the device accepts: never a step already used (django-otp
    refuses replays), at most one step ahead of now (its tolerance)."""
    from django_otp.oath import hotp

    device.refresh_from_db()
    while True:
        now = int((time.time() - device.t0) // device.step)
        counter = max(now, device.last_t + 1)
        if counter <= now + device.tolerance:
            return f"{hotp(device.bin_key, counter, digits=device.digits):0{device.digits}d}"
        time.sleep(1)


def key_from_setup_page(tab: Tab) -> bytes:
    """The secret as a person would type it from the setup page."""
    secret = "".join(tab.page.locator("#totp-key").inner_text().split())
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def add_virtual_authenticator(tab: Tab) -> tuple[Any, str]:
    """Chromium's virtual security key for this page (DevTools WebAuthn domain)."""
    cdp = tab.page.context.new_cdp_session(tab.page)
    cdp.send("WebAuthn.enable")
    result = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, result["authenticatorId"]


# --- Back-office ---------------------------------------------------------------------


def ensure_role_groups() -> None:
    """The groups the migrations create (a transactional test's flush empties them)."""
    from django.contrib.auth.models import Group, Permission

    roles = importlib.import_module("accounts.migrations.0008_roles_and_search_indexes").ROLES
    for name, codenames in roles.items():
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames)
        )


def staff_member(user_factory: Callable[..., Any], username: str, group: str) -> tuple[Any, Any]:
    """A staff member of ``group`` with a confirmed authenticator app."""
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    ensure_role_groups()
    member = user_factory(username=username, is_staff=True)
    member.groups.add(Group.objects.get(name=group))
    device = TOTPDevice.objects.create(user=member, name="Phone", confirmed=True)
    return member, device


def choose_language(tab: Tab, lang: str) -> None:
    """The footer's language selector."""
    tab.page.locator("#language-select").select_option(lang)
    submit_form(tab, "form.language-form")
    assert tab.page.locator("html").get_attribute("lang") == lang


# --- Keyboard ------------------------------------------------------------------------

FOCUS_STATE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow && style.boxShadow !== 'none';
  return {
    tag: el.tagName.toLowerCase(),
    text: (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 60),
    name: el.getAttribute('name') || '',
    href: el.getAttribute('href') || '',
    id: el.id || '',
    visible: Boolean(outline || shadow),
    focusVisible: el.matches(':focus-visible'),
  };
}"""


def focused(tab: Tab) -> dict[str, Any] | None:
    return tab.page.evaluate(FOCUS_STATE)


def tab_to(
    tab: Tab,
    selector: str,
    *,
    backwards: bool = False,
    limit: int = 80,
    stops: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Presses Tab (or Shift+Tab) until the focused element matches ``selector``;
    checks on every stop that the focus is visible (an outline or a box shadow)."""
    key = "Shift+Tab" if backwards else "Tab"
    for presses in range(1, limit + 1):
        tab.page.keyboard.press(key)
        state = focused(tab)
        if state is None:
            continue
        if stops is not None:
            stops.append(state)
        assert state["visible"], f"focus is not visible on {state}"
        if tab.page.evaluate("(sel) => document.activeElement.matches(sel)", selector):
            return {**state, "presses": presses}
    raise AssertionError(f"{selector!r} not reached with {key} in {limit} presses")


def count_pointer_presses(tab: Tab) -> None:
    """Counts, on every page the context opens, each mouse or pointer press (kept in
    sessionStorage across navigations): a keyboard-only journey must end with none."""
    tab.page.context.add_init_script(
        """(() => {
          const bump = () => {
            const n = Number(sessionStorage.getItem('__pointerPresses') || 0);
            sessionStorage.setItem('__pointerPresses', String(n + 1));
          };
          addEventListener('mousedown', bump, true);
          addEventListener('pointerdown', bump, true);
        })();"""
    )


def pointer_presses(tab: Tab) -> int:
    return int(tab.page.evaluate("() => Number(sessionStorage.getItem('__pointerPresses') || 0)"))


def live_sessions(user: Any) -> int:
    """The user's sessions that still exist (allauth purges its rows lazily)."""
    from allauth.usersessions.models import UserSession

    return sum(1 for row in UserSession.objects.filter(user=user) if row.exists())


def heading(tab: Tab) -> str:
    return tab.page.locator("main h1").first.inner_text().strip()
