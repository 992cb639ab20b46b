"""The whole user journey with the keyboard only, in English and in French.

``test_journeys.py`` runs the user's journey with the mouse and only its main steps
with the keyboard. This test repeats the whole journey with Tab, Shift+Tab, Enter
and Space: every control is reached with Tab (the focus visible at each stop), every
activation is a key press, every value is typed. No mouse or pointer event reaches
the page, no element is clicked or filled by Playwright; the one thing done outside
the page is choosing the file in the file chooser the keyboard opened. Each step
checks the database, and the console stays free of errors (a CSP violation is one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from accounts.models import AuditEvent, User
from tests.conftest import PASSWORD
from tests.e2e.journey_helpers import (
    Browsers,
    Shots,
    Tab,
    add_virtual_authenticator,
    count_pointer_presses,
    focused,
    heading,
    key_from_setup_page,
    live_sessions,
    pointer_presses,
    tab_to,
    totp_code,
    tr,
)
from tests.helpers import code_from_last_email

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("webauthn_on_live_server"),
]

LANGUAGES = ["en", "fr"]
NEW_PASSWORD = "another-long-passphrase-for-2026"
# A submit button of the form itself (allauth's "Cancel" buttons name another form).
SUBMIT = "button[type=submit]:not([form])"


class FocusLost(AssertionError):
    """The focus fell to <body> after an in-place update."""


class Keyboard:
    """Tab, Shift+Tab, Enter, Space and typing, nothing else; every focus stop is
    recorded (and checked visible by :func:`tab_to`)."""

    def __init__(self, tab: Tab) -> None:
        self.tab = tab
        self.keys = tab.page.keyboard
        self.stops: list[dict[str, Any]] = []
        self.focus_lost: list[str] = []

    def to(self, selector: str, *, backwards: bool = False) -> dict[str, Any]:
        return tab_to(self.tab, selector, backwards=backwards, stops=self.stops)

    def type_in(self, selector: str, text: str, *, replace: bool = False) -> None:
        """Tabs to the field and types ``text`` (after selecting what it holds)."""
        self.to(selector)
        if replace:
            self.keys.press("ControlOrMeta+a")
        self.keys.type(text)

    def press(self, selector: str, key: str = "Enter", *, backwards: bool = False) -> None:
        """Tabs to the control and presses ``key`` on it (no page load expected)."""
        self.to(selector, backwards=backwards)
        self.keys.press(key)

    def go(self, selector: str, key: str = "Enter", *, backwards: bool = False) -> None:
        """Tabs to the link or button and presses ``key``: the next page loads."""
        self.to(selector, backwards=backwards)
        with self.tab.page.expect_navigation():
            self.keys.press(key)

    def nav(self, path: str) -> None:
        """The settings navigation's link to ``path``."""
        self.go(f"nav.settings-nav a[href='{path}']")
        self.tab.wait_path(path)

    def wait_focus(self, selector: str, *, timeout: float = 10_000) -> None:
        """Waits for the page (an htmx swap settling) to move the focus to ``selector``;
        that stop too must show the focus."""
        self.tab.page.wait_for_function(
            "(sel) => document.activeElement && document.activeElement.matches(sel)",
            arg=selector,
            timeout=timeout,
        )
        state = focused(self.tab)
        assert state is not None, "nothing has the focus"
        assert state["visible"], f"focus is not visible on {state}"
        self.stops.append(state)

    def expect_focus_in(self, card: str, step: str) -> None:
        """After an in-place update (settled) the focus must stay, visible, in ``card``.
        A loss is recorded and raised at the end of the journey, which goes on meanwhile
        from where Chromium resumes Tab."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

        try:
            self.wait_focus(f"{card}, {card} *", timeout=5_000)
        except PlaywrightTimeoutError:
            self.focus_lost.append(f"{step}: focus on {focused(self.tab) or '<body>'}")

    def reauthenticate_if_asked(self, password: str) -> bool:
        """allauth's password re-authentication (the stopped request is replayed)."""
        if not self.tab.path().startswith("/accounts/reauthenticate/"):
            return False
        self.type_in("input[name=password]", password)
        self.go(f"form[action='/accounts/reauthenticate/'] {SUBMIT}")
        return True

    def sign_in(self, login: str, password: str, *, remember: bool = False) -> None:
        self.tab.wait_path("/accounts/login/")
        self.type_in("input[name=login]", login)
        self.type_in("input[name=password]", password)
        if remember:
            self.press("input[name=remember]", "Space")
            assert self.tab.page.evaluate(
                "() => document.querySelector('input[name=remember]').checked"
            )
        self.go(f"form[action='/accounts/login/'] {SUBMIT}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_keyboard_whole_user_journey(
    lang: str, browsers: Browsers, shots: Shots, tmp_path: Path
) -> None:
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from django_otp_webauthn.models import WebAuthnCredential
    from PIL import Image

    from accounts.models import BackupCodeDevice

    username = f"kim_{lang}"
    email = f"kim.{lang}@example.org"
    new_email = f"kim.{lang}.new@example.org"
    display_name = "Kim Lefèvre"
    key_name = "Clé verte" if lang == "fr" else "Green key"
    tab = browsers.open(lang)
    count_pointer_presses(tab)
    cdp, authenticator = add_virtual_authenticator(tab)
    kb = Keyboard(tab)
    keys = kb.keys

    # Sign up, in the browser's language.
    tab.goto("/accounts/signup/")
    assert tab.page.locator("html").get_attribute("lang") == lang
    kb.type_in("input[name=email]", email)
    kb.type_in("input[name=username]", username)
    kb.type_in("input[name=password1]", PASSWORD)
    kb.type_in("input[name=password2]", PASSWORD)
    kb.go(f"form[action='/accounts/signup/'] {SUBMIT}")
    user = User.objects.get(username=username)
    assert not EmailAddress.objects.get(user=user, email=email).verified

    # The verification code from the email, typed.
    tab.wait_path("/accounts/confirm-email/")
    kb.type_in("main form input[name=code]", code_from_last_email(email))
    kb.go(f"main form:has(input[name=code]) {SUBMIT}")
    tab.wait_path("/settings/")
    assert heading(tab) == tr(lang, "Account settings")
    assert EmailAddress.objects.get(user=user, email=email).verified
    shots(tab, "signed-up", mobile=False)

    # The display name, edited in place (no page load).
    kb.nav("/settings/profile/")
    marker = tab.page.evaluate("() => (window.__marker = Math.random())")
    kb.press("#card-name a[href='/settings/profile/name/edit/']")
    # The opened form's field takes the focus (autofocus). Chromium focuses it natively
    # as soon as it is inserted, before htmx has wired the new form (its settle step
    # removes "htmx-added"): an Enter in between would post the whole page.
    kb.wait_focus("#card-name:not(.htmx-added) input[name=display_name]")
    keys.press("ControlOrMeta+a")
    keys.type(display_name)
    kb.press(f"#card-name {SUBMIT}")
    tab.page.locator("#card-name").get_by_text(display_name).wait_for()
    kb.wait_focus("#card-name:not(.htmx-added) a[href='/settings/profile/name/edit/']")
    assert tab.page.evaluate("() => window.__marker") == marker
    user.refresh_from_db()
    assert user.display_name == display_name

    # A picture: the file chooser opened from the keyboard.
    picture = tmp_path / "me.png"
    Image.new("RGB", (400, 300), (40, 140, 90)).save(picture)
    kb.to("#card-avatar input[name=avatar]")
    chooser = None
    # Headless Chromium now and then drops the first key press on a file field right
    # after an in-place edit settled; the focus is checked on the field each time, so
    # only the keyboard opens the chooser.
    for _attempt in range(2):
        kb.wait_focus("#card-avatar input[name=avatar]")
        try:
            with tab.page.expect_file_chooser(timeout=7_500) as opened:
                keys.press("Space")
        except PlaywrightTimeoutError:
            continue
        chooser = opened.value
        break
    assert chooser is not None, "Space on the focused picture field opened no file chooser"
    chooser.set_files(str(picture))
    kb.press(f"#card-avatar {SUBMIT}")
    # Settled: htmx has applied any autofocus of the new card.
    tab.page.locator("#card-avatar:not(.htmx-added) img.avatar").wait_for()
    assert tab.page.evaluate("() => window.__marker") == marker
    user.refresh_from_db()
    assert str(user.avatar.name).endswith(".webp")
    kb.expect_focus_in("#card-avatar", "after the picture upload")
    shots(tab, "profile-saved", mobile=False)

    # The authenticator app, after confirming the password.
    kb.nav("/settings/two-factor/")
    kb.go("form[action='/settings/two-factor/totp/'] button", "Space")
    assert kb.reauthenticate_if_asked(PASSWORD)
    tab.wait_path("/settings/two-factor/totp/confirm/")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert key_from_setup_page(tab) == device.bin_key
    kb.type_in("main form input[name=code]", totp_code(device))
    kb.go(f"form[action='/settings/two-factor/totp/confirm/'] {SUBMIT}")
    tab.wait_path("/settings/two-factor/backup-codes/new/")
    device.refresh_from_db()
    assert device.confirmed

    # The backup codes: saved as a file (Enter on the link), then acknowledged.
    shown = [c.strip() for c in tab.page.locator("#backup-codes li").all_inner_texts()]
    assert len(shown) == 10
    kb.to("a[href='/settings/two-factor/backup-codes/download/']")
    with tab.page.expect_download() as saved:
        keys.press("Enter")
    saved_text = Path(saved.value.path()).read_text(encoding="utf-8")
    assert all(code in saved_text for code in shown)
    shots(tab, "backup-codes", mobile=False)
    kb.go("form[action='/settings/two-factor/backup-codes/new/'] button", "Space")
    tab.wait_path("/settings/two-factor/")
    assert BackupCodeDevice.objects.filter(user=user).exists()

    # Sign out (the header's button, reached with Shift+Tab from the page's end), and
    # in again with the authenticator's code; "remember me" ticked with Space.
    kb.go("header form[action='/accounts/logout/'] button", backwards=True)
    tab.wait_path("/accounts/login/")
    assert live_sessions(user) == 0
    kb.sign_in(username, PASSWORD, remember=True)
    tab.wait_path("/accounts/2fa/")
    totp_form = "main form:has(input[name=method][value=totp])"
    kb.type_in(f"{totp_form} input[name=code]", totp_code(device))
    kb.go(f"{totp_form} {SUBMIT}")
    tab.wait_path("/settings/")
    assert AuditEvent.objects.filter(action="mfa.sign_in", subject=user).count() == 1
    assert live_sessions(user) == 1

    # A security key (Chromium's virtual authenticator), named with the keyboard.
    kb.nav("/settings/two-factor/")
    kb.go("a[href='/settings/two-factor/passkeys/add/']")
    kb.reauthenticate_if_asked(PASSWORD)
    tab.wait_path("/settings/two-factor/passkeys/add/")
    tab.page.locator("#passkey-register-button").wait_for()
    kb.go("#passkey-register-button")
    tab.page.wait_for_url("**/settings/two-factor/passkeys/*/?new=1")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(credentials["credentials"]) == 1
    kb.type_in("main form input[name=name]", key_name, replace=True)
    kb.go(f"main form:has(input[name=name]) {SUBMIT}")
    tab.wait_path("/settings/two-factor/")
    credential = WebAuthnCredential.objects.get(user=user)
    assert credential.name == key_name
    shots(tab, "two-factor-on", mobile=False)

    # A new email address, proven by the code sent to it.
    kb.nav("/settings/email/")
    kb.type_in("main form[action='/settings/email/'] input[name=email]", new_email)
    kb.go(f"main form[action='/settings/email/'] {SUBMIT}")
    kb.reauthenticate_if_asked(PASSWORD)
    tab.wait_path("/settings/email/confirm/")
    kb.type_in("main form input[name=code]", code_from_last_email(new_email))
    kb.go(f"main form[action='/settings/email/confirm/'] {SUBMIT}")
    tab.wait_path("/settings/email/")
    user.refresh_from_db()
    assert user.email == new_email
    assert EmailAddress.objects.get(user=user, primary=True).email == new_email
    assert any(email in m.to for m in mail.outbox[-2:]), "the old address is told"
    assert AuditEvent.objects.filter(action="email.changed", subject=user).count() == 1

    # A new password.
    kb.nav("/accounts/password/change/")
    kb.type_in("input[name=oldpassword]", PASSWORD)
    kb.type_in("input[name=password1]", NEW_PASSWORD)
    kb.type_in("input[name=password2]", NEW_PASSWORD)
    kb.go(f"main form[action='/accounts/password/change/'] {SUBMIT}")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action="password.changed", subject=user).count() == 1

    # Link an account (allauth's dummy provider), then unlink it.
    kb.nav("/accounts/3rdparty/")
    kb.go("a[href='/accounts/dummy/login/?process=connect']")
    kb.go(f"main form {SUBMIT}")
    kb.reauthenticate_if_asked(NEW_PASSWORD)
    tab.wait_path("/accounts/dummy/authenticate/")
    kb.type_in("input[name=id]", "4242")
    kb.type_in("input[name=username]", f"{username}-on-dummy")
    kb.go(f"main form:has(input[name=id]) {SUBMIT}")
    tab.wait_path("/accounts/3rdparty/")
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == ("dummy", "4242")
    assert AuditEvent.objects.filter(action="social.linked", subject=user).count() == 1
    kb.go(f"main form:has(input[name=account][value='{account.pk}']) {SUBMIT}", "Space")
    kb.reauthenticate_if_asked(NEW_PASSWORD)
    tab.wait_path("/accounts/3rdparty/")
    assert not SocialAccount.objects.filter(user=user).exists()
    assert tab.page.get_by_text(tr(lang, "No account is linked yet.")).is_visible()
    assert AuditEvent.objects.filter(action="social.unlinked", subject=user).count() == 1

    # Export: a JSON file.
    kb.nav("/settings/export/")
    kb.to(f"main form[action='/settings/export/'] {SUBMIT}")
    with tab.page.expect_download() as download_info:
        keys.press("Enter")
    download = download_info.value
    assert download.suggested_filename.endswith(".json")
    exported = json.dumps(json.loads(Path(download.path()).read_text(encoding="utf-8")))
    assert username in exported
    assert new_email in exported
    assert AuditEvent.objects.filter(action="account.data_exported", subject=user).count() == 1

    # Delete the account: type the username.
    kb.nav("/settings/delete/")
    kb.type_in("input[name=confirmation]", username)
    kb.go(f"main form[action='/settings/delete/'] {SUBMIT}")
    tab.wait_path("/accounts/login/")
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION
    assert user.deletion_scheduled_for is not None
    assert not user.is_active
    assert live_sessions(user) == 0

    # Sign in during the grace period, a backup code as the second step (typed from
    # the saved file), then cancel the deletion.
    kb.sign_in(username, NEW_PASSWORD)
    tab.wait_path("/accounts/2fa/")
    backup_form = "main form:has(input[name=method][value=backup])"
    kb.type_in(f"{backup_form} input[name=code]", shown[0])
    kb.go(f"{backup_form} {SUBMIT}")
    tab.wait_path("/settings/delete/pending/")
    assert heading(tab) == tr(lang, "Your account is scheduled for deletion")
    shots(tab, "deletion-pending", mobile=False)
    kb.go("main form[action='/settings/delete/cancel/'] button", "Space")
    tab.wait_path("/settings/")
    assert heading(tab) == tr(lang, "Account settings")
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    assert user.is_active
    assert user.deletion_scheduled_for is None
    assert AuditEvent.objects.filter(action="account.deletion_cancelled", subject=user).exists()

    assert pointer_presses(tab) == 0
    assert kb.stops
    assert all(s["visible"] and s["focusVisible"] for s in kb.stops)
    tab.assert_no_console_errors()
    if kb.focus_lost:
        raise FocusLost("; ".join(kb.focus_lost))
