"""Whole journeys in a real Chromium, in English and in French.

1. A user, from signing up to cancelling the deletion of their account.
2. A security admin: suspend, restore and impersonate a user signed in elsewhere.
3. An operator: the field policy changes what a signed-in user sees.
4. The user's main steps with the keyboard only, the focus visible at each stop.

Each step checks the database, and each page's console stays free of errors (a CSP
violation is one). Screenshots: ``var/e2e/<test>/`` (or ``$E2E_ARTIFACTS``), each
key step at 1280 px and 390 px wide.

Two tests pin fixes for what the journeys ran into: a security key finishes a
sign-in during the deletion grace period, and an in-place edit keeps the keyboard
focus in its card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core import mail

from accounts.models import AuditEvent, User
from tests.conftest import PASSWORD
from tests.e2e.journey_helpers import (
    Browsers,
    Shots,
    Tab,
    add_virtual_authenticator,
    choose_language,
    count_pointer_presses,
    enter_totp,
    focused,
    heading,
    key_from_setup_page,
    live_sessions,
    pointer_presses,
    reauthenticate_if_asked,
    second_step_backup,
    second_step_key,
    second_step_totp,
    sign_in_password,
    sign_out,
    staff_member,
    submit_form,
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


def nav(tab: Tab, path: str) -> None:
    """Follows the settings navigation's link to ``path``."""
    with tab.page.expect_navigation():
        tab.page.locator(f"nav.settings-nav a[href='{path}']").click()
    tab.wait_path(path)


# --- 1. The user's journey ------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_user_journey(
    lang: str, browsers: Browsers, shots: Shots, tmp_path: Path, live_server: Any
) -> None:
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from django_otp_webauthn.models import WebAuthnCredential
    from PIL import Image

    from accounts.models import BackupCodeDevice

    username = f"chloe_{lang}"
    email = f"chloe.{lang}@example.org"
    new_email = f"chloe.{lang}.new@example.org"
    tab = browsers.open(lang)
    cdp, authenticator = add_virtual_authenticator(tab)

    # Sign up, in the browser's language.
    tab.goto("/accounts/signup/")
    assert tab.page.locator("html").get_attribute("lang") == lang
    tab.page.locator("input[name=email]").fill(email)
    tab.page.locator("input[name=username]").fill(username)
    tab.page.locator("input[name=password1]").fill(PASSWORD)
    tab.page.locator("input[name=password2]").fill(PASSWORD)
    shots(tab, "sign-up")
    submit_form(tab, "form[action='/accounts/signup/']")
    user = User.objects.get(username=username)
    assert not EmailAddress.objects.get(user=user, email=email).verified

    # The verification code from the email.
    tab.wait_path("/accounts/confirm-email/")
    shots(tab, "verification-code")
    tab.page.locator("input[name=code]").fill(code_from_last_email(email))
    submit_form(tab, "main form:has(input[name=code])")
    tab.wait_path("/settings/")
    assert heading(tab) == tr(lang, "Account settings")
    assert EmailAddress.objects.get(user=user, email=email).verified
    shots(tab, "signed-up")

    # The display name, edited in place (no page load), and a picture.
    nav(tab, "/settings/profile/")
    marker = tab.page.evaluate("() => (window.__marker = Math.random())")
    card = tab.page.locator("#card-name")
    card.locator("a[href='/settings/profile/name/edit/']").click()
    card.locator("input[name=display_name]").fill("Chloé Dubois")
    shots(tab, "display-name-editing", mobile=False)
    card.locator("button[type=submit]").click()
    card.get_by_text("Chloé Dubois").wait_for()
    assert tab.page.evaluate("() => window.__marker") == marker
    assert tab.page.get_by_text(tr(lang, "Your display name was saved.")).is_visible()
    user.refresh_from_db()
    assert user.display_name == "Chloé Dubois"
    picture = tmp_path / "me.png"
    Image.new("RGB", (400, 300), (200, 60, 90)).save(picture)
    tab.page.locator("#card-avatar input[name=avatar]").set_input_files(str(picture))
    tab.page.locator("#card-avatar button[type=submit]").click()
    tab.page.locator("#card-avatar img.avatar").wait_for()
    user.refresh_from_db()
    assert str(user.avatar.name).endswith(".webp")
    assert tab.page.evaluate("() => window.__marker") == marker
    shots(tab, "profile-saved")

    # The authenticator app (after confirming the password).
    nav(tab, "/settings/two-factor/")
    submit_form(tab, "form[action='/settings/two-factor/totp/']")
    assert reauthenticate_if_asked(tab)
    tab.wait_path("/settings/two-factor/totp/confirm/")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert key_from_setup_page(tab) == device.bin_key
    shots(tab, "authenticator-setup")
    tab.page.locator("main form input[name=code]").fill(totp_code(device))
    submit_form(tab, "form[action='/settings/two-factor/totp/confirm/']")
    tab.wait_path("/settings/two-factor/backup-codes/new/")
    backup_codes = [c.strip() for c in tab.page.locator("#backup-codes li").all_inner_texts()]
    assert len(backup_codes) == 10
    shots(tab, "backup-codes")
    submit_form(tab, "form[action='/settings/two-factor/backup-codes/new/']")
    tab.wait_path("/settings/two-factor/")
    device.refresh_from_db()
    assert device.confirmed
    assert BackupCodeDevice.objects.filter(user=user).exists()

    # Sign out, and in again with the second step.
    sign_out(tab)
    assert live_sessions(user) == 0
    sign_in_password(tab, username)
    tab.wait_path("/accounts/2fa/")
    shots(tab, "second-step")
    second_step_totp(tab, device)
    tab.wait_path("/settings/")
    assert AuditEvent.objects.filter(action="mfa.sign_in", subject=user).count() == 1

    # A security key (Chromium's virtual authenticator).
    nav(tab, "/settings/two-factor/")
    with tab.page.expect_navigation():
        tab.page.locator("a[href='/settings/two-factor/passkeys/add/']").click()
    assert reauthenticate_if_asked(tab)
    tab.wait_path("/settings/two-factor/passkeys/add/")
    shots(tab, "security-key-add")
    with tab.page.expect_navigation():
        tab.page.locator("#passkey-register-button").click()
    tab.page.wait_for_url("**/settings/two-factor/passkeys/*/?new=1")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(credentials["credentials"]) == 1
    tab.page.locator("input[name=name]").fill("Clé bleue" if lang == "fr" else "Blue key")
    submit_form(tab, "main form:has(input[name=name])")
    tab.wait_path("/settings/two-factor/")
    credential = WebAuthnCredential.objects.get(user=user)
    assert credential.name == ("Clé bleue" if lang == "fr" else "Blue key")
    assert credential.last_used_at is None
    shots(tab, "two-factor-on")

    # Sign out, and in with the key.
    sign_out(tab)
    sign_in_password(tab, username)
    second_step_key(tab)
    tab.wait_path("/settings/")
    credential.refresh_from_db()
    assert credential.last_used_at is not None

    # A new email address, proven by a code (after confirming it's them).
    nav(tab, "/settings/email/")
    tab.page.locator("input[name=email]").fill(new_email)
    submit_form(tab, "main form[action='/settings/email/']")
    assert reauthenticate_if_asked(tab)
    tab.wait_path("/settings/email/confirm/")
    shots(tab, "email-code")
    tab.page.locator("main form input[name=code]").fill(code_from_last_email(new_email))
    submit_form(tab, "main form[action='/settings/email/confirm/']")
    tab.wait_path("/settings/email/")
    user.refresh_from_db()
    assert user.email == new_email
    assert EmailAddress.objects.get(user=user, primary=True).email == new_email
    assert any(email in m.to for m in mail.outbox[-2:]), "the old address is told"
    assert AuditEvent.objects.filter(action="email.changed", subject=user).count() == 1
    shots(tab, "email-changed")

    # A second browser, signed in before the password changes, is signed out by it.
    other = browsers.open(lang)
    sign_in_password(other, new_email)
    second_step_backup(other, backup_codes[0])
    other.wait_path("/settings/")
    assert live_sessions(user) == 2
    nav(tab, "/accounts/password/change/")
    tab.page.locator("input[name=oldpassword]").fill(PASSWORD)
    tab.page.locator("input[name=password1]").fill(NEW_PASSWORD)
    tab.page.locator("input[name=password2]").fill(NEW_PASSWORD)
    shots(tab, "password-change", mobile=False)
    submit_form(tab, "main form[action='/accounts/password/change/']")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert live_sessions(user) == 1
    assert AuditEvent.objects.filter(action="password.changed", subject=user).count() == 1
    other.goto("/settings/")
    other.wait_path("/accounts/login/")
    shots(other, "other-browser-signed-out")
    other.assert_no_console_errors()

    # Link an account (allauth's dummy provider), then unlink it.
    nav(tab, "/accounts/3rdparty/")
    with tab.page.expect_navigation():
        tab.page.locator("a[href='/accounts/dummy/login/?process=connect']").click()
    submit_form(tab, "main form")
    reauthenticate_if_asked(tab, NEW_PASSWORD)
    tab.wait_path("/accounts/dummy/authenticate/")
    tab.page.locator("input[name=id]").fill("4242")
    tab.page.locator("input[name=username]").fill(f"{username}-on-dummy")
    shots(tab, "provider-form", mobile=False)
    submit_form(tab, "main form:has(input[name=id])")
    tab.wait_path("/accounts/3rdparty/")
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == ("dummy", "4242")
    assert AuditEvent.objects.filter(action="social.linked", subject=user).count() == 1
    assert tab.page.get_by_role("cell", name=f"{username}-on-dummy", exact=True).is_visible()
    shots(tab, "account-linked")
    submit_form(tab, f"main form:has(input[name=account][value='{account.pk}'])")
    reauthenticate_if_asked(tab, NEW_PASSWORD)
    tab.wait_path("/accounts/3rdparty/")
    assert not SocialAccount.objects.filter(user=user).exists()
    assert tab.page.get_by_text(tr(lang, "No account is linked yet.")).is_visible()
    assert AuditEvent.objects.filter(action="social.unlinked", subject=user).count() == 1

    # Export: a JSON file.
    nav(tab, "/settings/export/")
    with tab.page.expect_download() as download_info:
        tab.page.locator("main form[action='/settings/export/'] button").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".json")
    exported = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert username in json.dumps(exported)
    assert new_email in json.dumps(exported)
    assert AuditEvent.objects.filter(action="account.data_exported", subject=user).count() == 1
    shots(tab, "export")

    # Delete the account: type the username.
    nav(tab, "/settings/delete/")
    tab.page.locator("input[name=confirmation]").fill(username)
    shots(tab, "delete")
    submit_form(tab, "main form[action='/settings/delete/']")
    tab.wait_path("/accounts/login/")
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION
    assert user.deletion_scheduled_for is not None
    assert not user.is_active
    assert live_sessions(user) == 0
    assert AuditEvent.objects.filter(action="account.deletion_scheduled", subject=user).exists()
    shots(tab, "deletion-scheduled")

    # Signing in during the grace period (second step included) shows only the
    # "scheduled for deletion" page.
    # (A backup code: the security key is refused here, see
    # test_grace_period_sign_in_with_a_security_key.)
    sign_in_password(tab, username, NEW_PASSWORD)
    shots(tab, "grace-second-step", mobile=False)
    second_step_backup(tab, backup_codes[1])
    tab.wait_path("/settings/delete/pending/")
    assert heading(tab) == tr(lang, "Your account is scheduled for deletion")
    assert tab.page.locator("nav.settings-nav").count() == 0
    shots(tab, "deletion-pending")
    tab.goto("/settings/profile/")
    tab.wait_path("/settings/delete/pending/")

    # Cancel: the settings work again.
    submit_form(tab, "main form[action='/settings/delete/cancel/']")
    tab.wait_path("/settings/")
    assert heading(tab) == tr(lang, "Account settings")
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    assert user.is_active
    assert user.deletion_scheduled_for is None
    assert AuditEvent.objects.filter(action="account.deletion_cancelled", subject=user).exists()
    shots(tab, "deletion-cancelled")
    nav(tab, "/settings/profile/")
    assert tab.page.locator("#card-name").get_by_text("Chloé Dubois").is_visible()
    tab.assert_no_console_errors()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_grace_period_sign_in_with_a_security_key(
    lang: str, browsers: Browsers, shots: Shots, user: User
) -> None:
    """The user journey's grace-period sign-in, with the security key as the second step."""
    tab = browsers.open(lang)
    add_virtual_authenticator(tab)
    sign_in_password(tab, user.username)
    tab.wait_path("/settings/")
    tab.goto("/settings/two-factor/passkeys/add/")
    assert reauthenticate_if_asked(tab)
    tab.wait_path("/settings/two-factor/passkeys/add/")
    with tab.page.expect_navigation():
        tab.page.locator("#passkey-register-button").click()
    tab.page.wait_for_url("**/settings/two-factor/passkeys/*/?new=1")
    submit_form(tab, "main form:has(input[name=name])")
    tab.wait_path("/settings/two-factor/backup-codes/new/")
    submit_form(tab, "form[action='/settings/two-factor/backup-codes/new/']")
    nav(tab, "/settings/delete/")
    tab.page.locator("input[name=confirmation]").fill(user.username)
    submit_form(tab, "main form[action='/settings/delete/']")
    tab.wait_path("/accounts/login/")
    user.refresh_from_db()
    assert user.state == User.State.PENDING_DELETION

    sign_in_password(tab, user.username)
    tab.wait_path("/accounts/2fa/")
    with tab.page.expect_response(lambda r: "/2fa/webauthn/complete/" in r.url) as answer:
        tab.page.locator("#passkey-verification-button").click()
    if answer.value.status != 200:
        # Today: 403 and "This user account is disabled." under the button.
        tab.page.locator("#passkey-verification-status-message").filter(has_text=".").wait_for()
        shots(tab, "grace-sign-in-with-key-refused")
    assert answer.value.status == 200
    tab.wait_path("/settings/delete/pending/")
    tab.assert_no_console_errors()


# --- 2. A security admin's journey ------------------------------------------------------


def admin_sign_in(tab: Tab, member: User, device: Any, lang: str) -> None:
    """Into the back-office with the second step; French chosen with the selector."""
    tab.goto("/admin/")
    tab.wait_path("/accounts/login/")
    if lang != "en":
        choose_language(tab, lang)
    sign_in_password(tab, member.username)
    second_step_totp(tab, device)
    tab.wait_path("/admin/")
    assert tab.page.locator("html").get_attribute("lang") == lang


@pytest.mark.parametrize("lang", LANGUAGES)
def test_staff_journey(
    lang: str, browsers: Browsers, shots: Shots, user: User, user_factory: Any
) -> None:
    member, device = staff_member(user_factory, "sam", "Security admins")
    change_page = f"/admin/accounts/user/{user.pk}/change/"

    # The user is signed in in their own browser.
    mine = browsers.open(lang)
    sign_in_password(mine, user.username)
    mine.wait_path("/settings/")
    assert live_sessions(user) == 1

    # The security admin signs in to the back-office with the second step.
    staff = browsers.open(lang, locale="en-GB")
    admin_sign_in(staff, member, device, lang)
    shots(staff, "back-office")

    # Finds the user with the list's search.
    with staff.page.expect_navigation():
        staff.page.locator("a[href='/admin/accounts/user/']").first.click()
    staff.page.locator("#searchbar").fill("alice@example")
    with staff.page.expect_navigation():
        staff.page.locator("#searchbar").press("Enter")
    rows = staff.page.locator("#result_list tbody tr")
    assert rows.count() == 1
    shots(staff, "user-search")
    with staff.page.expect_navigation():
        rows.locator(f"a[href^='{change_page}']").first.click()
    staff.wait_path(change_page)
    shots(staff, "user-page")

    # Suspends them with a reason: their browser loses access on its next page.
    with staff.page.expect_navigation():
        staff.page.locator(".object-tools a[href$='/suspend/']").click()
    staff.page.locator("textarea[name=reason]").fill("Chargeback fraud under review")
    shots(staff, "suspend", mobile=False)
    submit_form(staff, "#content form")
    staff.wait_path(change_page)
    user.refresh_from_db()
    assert user.state == User.State.SUSPENDED
    assert not user.is_active
    assert user.state_reason == "Chargeback fraud under review"
    assert live_sessions(user) == 0
    event = AuditEvent.objects.get(action="account.suspended", subject=user)
    assert event.actor == member
    shots(staff, "suspended")
    mine.goto("/settings/profile/")
    mine.wait_path("/accounts/login/")
    shots(mine, "user-signed-out")
    mine.assert_no_console_errors()

    # Restores them.
    with staff.page.expect_navigation():
        staff.page.locator(".object-tools a[href$='/restore/']").click()
    submit_form(staff, "#content form")
    staff.wait_path(change_page)
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    assert user.is_active
    assert AuditEvent.objects.filter(action="account.restored", subject=user).count() == 1

    # Impersonates them with a reason: the banner, and sensitive settings refused.
    with staff.page.expect_navigation():
        staff.page.locator(".object-tools a[href$='/impersonate/']").click()
    staff.page.locator("textarea[name=reason]").fill("Ticket 4411: the user cannot find a page")
    submit_form(staff, "#content form")
    staff.wait_path("/settings/")
    banner = staff.page.locator(".impersonation-banner")
    assert banner.is_visible()
    assert user.username in banner.inner_text()
    started = AuditEvent.objects.get(action="impersonation.started", subject=user)
    assert started.actor == member
    assert started.data["reason"] == "Ticket 4411: the user cannot find a page"
    shots(staff, "impersonating")
    staff.goto("/accounts/password/change/")
    staff.page.locator("input[name=oldpassword]").fill("not-the-password-at-all")
    staff.page.locator("input[name=password1]").fill(NEW_PASSWORD)
    staff.page.locator("input[name=password2]").fill(NEW_PASSWORD)
    response_statuses: list[int] = []
    staff.page.on("response", lambda r: response_statuses.append(r.status))
    submit_form(staff, "main form[action='/accounts/password/change/']")
    assert 403 in response_statuses
    refused = tr(
        lang,
        "You are viewing this account as its owner: this sensitive setting is not "
        "available while impersonating. Nothing was changed.",
    )
    assert staff.page.get_by_text(refused).is_visible()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action="password.changed").exists()
    shots(staff, "impersonation-refused")
    staff.assert_no_console_errors(allow_status=True)

    # Stops: back to the user's page, after verifying the second factor again.
    submit_form(staff, ".impersonation-banner form")
    staff.wait_path("/settings/reauthenticate/two-factor/")
    shots(staff, "verify-again")
    enter_totp(staff, device)
    staff.wait_path(change_page)
    ended = AuditEvent.objects.get(action="impersonation.ended", subject=user)
    assert ended.actor == member
    assert ended.data["reason"] == "Ticket 4411: the user cannot find a page"
    assert staff.page.locator(".impersonation-banner").count() == 0
    shots(staff, "back-on-user-page")
    staff.assert_no_console_errors()


# --- 3. An operator's journey ------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_operator_journey(
    lang: str, browsers: Browsers, shots: Shots, user: User, user_factory: Any
) -> None:
    from accounts.models import AccountPolicy

    member, device = staff_member(user_factory, "olga", "Operators")

    # The user's browser before: every section, every control.
    mine = browsers.open(lang)
    sign_in_password(mine, user.username)
    mine.wait_path("/settings/")
    assert mine.page.locator("nav.settings-nav a[href='/settings/phone/']").count() == 1
    mine.goto("/settings/profile/")
    assert mine.page.locator("#card-name a[href='/settings/profile/name/edit/']").count() == 1
    shots(mine, "user-before")

    # The operator sets phone off, email and the display name read-only.
    operator = browsers.open(lang, locale="en-GB")
    admin_sign_in(operator, member, device, lang)
    with operator.page.expect_navigation():
        operator.page.locator("a[href='/admin/accounts/accountpolicy/']").first.click()
    operator.wait_path("/admin/accounts/accountpolicy/1/change/")
    operator.page.locator("select[name=phone]").select_option("off")
    operator.page.locator("select[name=email]").select_option("read_only")
    operator.page.locator("select[name=name]").select_option("read_only")
    shots(operator, "policy-page")
    with operator.page.expect_navigation():
        operator.page.locator("input[name=_save]").click()
    assert operator.page.locator(".messagelist .success").count() == 1
    row = AccountPolicy.objects.get(pk=1)
    assert (row.phone, row.email, row.name) == ("off", "read_only", "read_only")
    assert row.avatar == "edit"
    assert row.enabled
    event = AuditEvent.objects.get(action="policy.changed")
    assert event.actor == member
    shots(operator, "policy-saved")
    operator.assert_no_console_errors()

    # The user's browser after: phone gone (404), email and name without controls.
    mine.goto("/settings/")
    assert mine.page.locator("nav.settings-nav a[href='/settings/phone/']").count() == 0
    assert mine.page.locator("nav.settings-nav a[href='/settings/email/']").count() == 1
    shots(mine, "user-navigation-after")
    assert mine.goto("/settings/phone/").status == 404
    shots(mine, "phone-not-found", mobile=False)
    mine.goto("/settings/email/")
    assert mine.page.locator("main input[name=email]").count() == 0
    assert mine.page.get_by_text(user.email).first.is_visible()
    assert mine.page.get_by_text(tr(lang, "This can't be changed here.")).is_visible()
    shots(mine, "email-read-only")
    mine.goto("/settings/profile/")
    name_card = mine.page.locator("#card-name")
    assert name_card.get_by_text("Alice Martin").is_visible()
    assert name_card.locator("a, button, form").count() == 0
    assert name_card.get_by_text(tr(lang, "This can't be changed here.")).is_visible()
    # The picture stays editable.
    assert mine.page.locator("#card-avatar input[name=avatar]").count() == 1
    shots(mine, "profile-read-only")
    # A write that bypasses the page is refused too, and changes nothing.
    status = mine.page.evaluate(
        """async () => {
          const body = new FormData();
          body.append('csrfmiddlewaretoken',
                      document.querySelector('input[name=csrfmiddlewaretoken]').value);
          body.append('display_name', 'Changed anyway');
          const response = await fetch('/settings/profile/name/edit/', {method: 'POST', body});
          return response.status;
        }"""
    )
    assert status == 403
    user.refresh_from_db()
    assert user.display_name == "Alice Martin"
    mine.assert_no_console_errors(allow_status=True)


# --- 4. The keyboard only ----------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_keyboard_journey(lang: str, browsers: Browsers, shots: Shots, user: User) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    tab = browsers.open(lang)
    count_pointer_presses(tab)
    keys = tab.page.keyboard
    stops: list[dict[str, Any]] = []

    def activate(selector: str, key: str = "Enter", *, backwards: bool = False) -> None:
        tab_to(tab, selector, backwards=backwards, stops=stops)
        with tab.page.expect_navigation():
            keys.press(key)

    # Sign in.
    tab.goto("/accounts/login/")
    tab_to(tab, "input[name=login]", stops=stops)
    keys.type(user.username)
    tab_to(tab, "input[name=password]", stops=stops)
    keys.type(PASSWORD)
    shots(tab, "sign-in")
    activate("form[action='/accounts/login/'] button[type=submit]")
    tab.wait_path("/settings/")
    assert live_sessions(user) == 1
    shots(tab, "signed-in")

    # Edit the display name in place.
    activate("nav.settings-nav a[href='/settings/profile/']")
    tab.wait_path("/settings/profile/")
    marker = tab.page.evaluate("() => (window.__marker = Math.random())")
    tab_to(tab, "#card-name a[href='/settings/profile/name/edit/']", stops=stops)
    keys.press("Enter")
    field = tab.page.locator("#card-name input[name=display_name]")
    field.wait_for()
    # The opened form takes the focus itself (autofocus, once htmx settles the swap).
    tab.page.wait_for_function(
        "() => document.activeElement.matches("
        "'#card-name:not(.htmx-added) input[name=display_name]')",
        timeout=10_000,
    )
    keys.press("ControlOrMeta+a")
    keys.type("Alice au clavier")
    shots(tab, "editing-name")
    tab_to(tab, "#card-name button[type=submit]", stops=stops)
    keys.press("Enter")
    tab.page.locator("#card-name").get_by_text("Alice au clavier").wait_for()
    assert tab.page.evaluate("() => window.__marker") == marker
    user.refresh_from_db()
    assert user.display_name == "Alice au clavier"
    shots(tab, "name-saved")

    # Two-step verification: set up the authenticator app.
    activate("nav.settings-nav a[href='/settings/two-factor/']", backwards=True)
    tab.wait_path("/settings/two-factor/")
    activate("form[action='/settings/two-factor/totp/'] button", "Space")
    tab.wait_path("/accounts/reauthenticate/")
    tab_to(tab, "input[name=password]", stops=stops)
    keys.type(PASSWORD)
    activate("form[action='/accounts/reauthenticate/'] button[type=submit]")
    tab.wait_path("/settings/two-factor/totp/confirm/")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert key_from_setup_page(tab) == device.bin_key
    tab_to(tab, "main input[name=code]", stops=stops)
    keys.type(totp_code(device))
    shots(tab, "authenticator-code")
    activate("form[action='/settings/two-factor/totp/confirm/'] button[type=submit]")
    tab.wait_path("/settings/two-factor/backup-codes/new/")
    shots(tab, "backup-codes")
    activate("form[action='/settings/two-factor/backup-codes/new/'] button", "Space")
    tab.wait_path("/settings/two-factor/")
    device.refresh_from_db()
    assert device.confirmed
    shots(tab, "two-factor-on")

    # Sign out.
    activate("header form[action='/accounts/logout/'] button", backwards=True)
    tab.wait_path("/accounts/login/")
    assert live_sessions(user) == 0
    shots(tab, "signed-out")

    assert pointer_presses(tab) == 0
    assert stops
    assert all(stop["visible"] for stop in stops)
    tab.assert_no_console_errors()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_keyboard_focus_stays_in_the_card_edited_in_place(
    lang: str, browsers: Browsers, user: User
) -> None:
    tab = browsers.open(lang)
    sign_in_password(tab, user.username)
    tab.goto("/settings/profile/")
    tab_to(tab, "#card-name a[href='/settings/profile/name/edit/']")
    tab.page.keyboard.press("Enter")
    tab.page.locator("#card-name input[name=display_name]").wait_for()
    # Opening the form: the focus moves to its field (htmx, once the swap settles).
    tab.page.wait_for_function(
        "() => document.activeElement.matches("
        "'#card-name:not(.htmx-added) input[name=display_name]')",
        timeout=10_000,
    )
    tab.page.keyboard.type("Alice")
    tab_to(tab, "#card-name button[type=submit]")
    tab.page.keyboard.press("Enter")
    tab.page.locator("#card-name a[href='/settings/profile/name/edit/']").wait_for()
    # Saving: the focus comes back into the card (htmx moves it once the swap settles).
    tab.page.wait_for_function(
        "() => Boolean(document.activeElement.closest('#card-name'))", timeout=10_000
    )
    assert tab.page.evaluate("() => Boolean(document.activeElement.closest('#card-name'))"), (
        f"the focus is on {focused(tab)}"
    )
