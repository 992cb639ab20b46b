"""Accessibility: axe-core on every page of the portal, in English and French, on a
wide and a phone-sized screen, and (on the wide screen) in the dark colour scheme.

Serious and critical violations fail the test. axe-core comes from the npm registry,
pinned by tests/a11y/package-lock.json (``make test`` runs ``npm ci`` there); it is
injected with ``page.evaluate``, which the page's Content-Security-Policy does not
govern, so the policy stays as strict as in production.

Each language and width is one test: one browser context walks through every page
an anonymous visitor, a user and a staff member can reach, signing in through the
real pages, and reports every violation at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.conftest import PASSWORD

AXE_PATH = Path(__file__).resolve().parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not AXE_PATH.exists(),
        reason="axe-core is not installed: run `npm ci --prefix tests/a11y` (make test does)",
    ),
]

BLOCKING_IMPACTS = frozenset({"serious", "critical"})
LOCALES = {"en": "en-GB", "fr": "fr-FR"}
WIDTHS = (1280, 390)
# Rules whose outcome depends on the colour scheme: run again in dark mode.
COLOUR_RULES = ["color-contrast", "link-in-text-block"]
MAX_NODES_SHOWN = 5
# Markup of Django's admin that our templates and stylesheets cannot change, each
# (rule, a fragment of the failing node's selector), ignored on /admin/ pages only.
ADMIN_EXCLUSIONS = (
    # admin/js/SelectFilter2.js (the two-box widgets for groups and permissions)
    # writes <span class="help-tooltip search-label-icon" aria-label="…">, with no role.
    ("aria-prohibited-attr", ".help-tooltip.search-label-icon"),
    # admin/search_form.html labels the search box with a magnifier icon only
    # (<label><img alt="Search"></label>) and, with search_help_text, describes it:
    # axe finds no visible text label. The box is named "Search" by the icon's alt.
    ("label-title-only", "#searchbar"),
)

RESTYLE = """() => {
  const root = document.documentElement;
  root.style.display = "none";
  void root.offsetHeight;
  root.style.removeProperty("display");
}"""

RUN_AXE = """async (options) => {
  const results = await axe.run(document, options);
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => ({
      target: n.target.map((t) => (Array.isArray(t) ? t.join(" >>> ") : t)).join(", "),
      summary: n.failureSummary || "",
    })),
  }));
}"""


@dataclass
class Audit:
    """Runs axe on the page the browser is on and keeps what it finds."""

    page: Any
    base_url: str
    language: str
    width: int
    axe_source: str
    checked: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def dark(self) -> bool:
        """The dark colour scheme is checked on the wide screen."""
        return self.width == WIDTHS[0]

    def go(self, path: str) -> int:
        """Opens ``path``; returns the status of the answer."""
        return self.page.goto(f"{self.base_url}{path}").status

    def submit(self, selector: str) -> int:
        """Clicks a submit button (or presses Enter in a field) and waits for the next
        page; returns the status of the answer."""
        target = self.page.locator(selector)
        with self.page.expect_navigation() as navigation:
            if target.evaluate("el => el.matches('input:not([type=submit])')"):
                target.press("Enter")
            else:
                target.click()
        return navigation.value.status

    def check(self, name: str, path: str | None = None) -> None:
        page = self.page
        page.wait_for_load_state("load")
        if path is not None:
            assert urlsplit(page.url).path == path, (
                f"{name}: expected {path}, the browser is at {page.url}"
            )
        lang = page.evaluate("document.documentElement.lang")
        assert lang == self.language, (
            f"{name} ({page.url}): <html lang={lang!r}>, not {self.language!r}"
        )
        if page.evaluate("typeof window.axe") == "undefined":
            page.evaluate(self.axe_source)
        self._record(name, "light", page.evaluate(RUN_AXE, {"resultTypes": ["violations"]}))
        if self.dark:
            self._scheme("dark")
            try:
                options = {
                    "resultTypes": ["violations"],
                    "runOnly": {"type": "rule", "values": COLOUR_RULES},
                }
                self._record(name, "dark", page.evaluate(RUN_AXE, options))
            finally:
                self._scheme("light")
        self.checked.append(name)

    def _scheme(self, scheme: str) -> None:
        self.page.emulate_media(color_scheme=scheme)
        # Chromium keeps the old colours of links (:link, :visited) after the switch:
        # restyle the whole page, as loading it in that scheme would.
        self.page.evaluate(RESTYLE)

    def _record(self, name: str, scheme: str, violations: list[dict[str, Any]]) -> None:
        in_admin = urlsplit(self.page.url).path.startswith(reverse("admin:index"))
        for violation in violations:
            if violation["impact"] not in BLOCKING_IMPACTS:
                continue
            if in_admin:
                violation["nodes"] = [
                    node
                    for node in violation["nodes"]
                    if not any(
                        rule == violation["id"] and fragment in node["target"]
                        for rule, fragment in ADMIN_EXCLUSIONS
                    )
                ]
                if not violation["nodes"]:
                    continue
            lines = [
                f"{name} [{self.language}, {self.width} px, {scheme}] {self.page.url}",
                f"  {violation['id']} ({violation['impact']}): {violation['help']}",
            ]
            nodes = violation["nodes"]
            for node in nodes[:MAX_NODES_SHOWN]:
                summary = " ".join(node["summary"].split())
                lines.append(f"    - {node['target']}: {summary}"[:400])
            if len(nodes) > MAX_NODES_SHOWN:
                lines.append(f"    … and {len(nodes) - MAX_NODES_SHOWN} more")
            self.failures.append("\n".join(lines))


@pytest.fixture
def audit_for(browser: Any, live_server: Any) -> Iterator[Callable[[str, int], Audit]]:
    contexts: list[Any] = []
    source = AXE_PATH.read_text(encoding="utf-8")

    def make(language: str, width: int) -> Audit:
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            locale=LOCALES[language],
            color_scheme="light",
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return Audit(page, live_server.url, language, width, source)

    yield make
    for context in contexts:
        context.close()


# --- Steps ---------------------------------------------------------------------------


def sign_in(audit: Audit, login: str) -> None:
    audit.page.context.clear_cookies()
    audit.go(reverse("account_login"))
    audit.page.locator("input[name='login']").fill(login)
    audit.page.locator("input[name='password']").fill(PASSWORD)
    audit.submit("input[name='password']")


def totp_code(device: Any, *, after_last: bool = False) -> str:
    """The device's code now; with ``after_last``, never that of a time step the
    device has already accepted (a code cannot be replayed)."""
    from django_otp.oath import TOTP, hotp

    totp = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    totp.time = time.time()
    step = max(totp.t(), device.last_t + 1) if after_last else totp.t()
    return f"{hotp(device.bin_key, step, digits=device.digits):0{device.digits}d}"


def second_step(audit: Audit, device: Any) -> None:
    device.refresh_from_db()
    code_field = "form:has(input[name='method'][value='totp']) input[name='code']"
    audit.page.locator(code_field).fill(totp_code(device, after_last=True))
    audit.submit(code_field)
    assert urlsplit(audit.page.url).path != reverse("two_factor_verify"), "second step refused"


def use_session_of(audit: Audit, user: User) -> None:
    """Signs ``user`` in by handing the browser a session: for an account without a
    password, which cannot sign in through the sign-in page."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    audit.page.context.clear_cookies()
    audit.page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": audit.base_url,
            }
        ]
    )


# --- Pages -----------------------------------------------------------------------------


def anonymous_pages(audit: Audit, alice: User) -> None:
    audit.page.context.clear_cookies()
    audit.go(reverse("account_login"))
    audit.check("sign-in", reverse("account_login"))
    audit.page.locator("input[name='login']").fill(alice.username)
    audit.page.locator("input[name='password']").fill("not-the-password")
    audit.submit("input[name='password']")
    audit.check("sign-in (wrong password)", reverse("account_login"))
    audit.go(reverse("account_signup"))
    audit.check("sign-up", reverse("account_signup"))
    audit.go(reverse("account_reset_password"))
    audit.check("password reset", reverse("account_reset_password"))
    audit.page.locator("input[name='email']").fill(alice.email)
    audit.submit("input[name='email']")
    audit.check("password reset code", reverse("account_confirm_password_reset_code"))
    audit.go(reverse("two_factor_help"))
    audit.check("two-factor help", reverse("two_factor_help"))
    assert audit.go("/no-such-page/") == 404
    audit.check("404", "/no-such-page/")

    audit.page.context.clear_cookies()
    audit.go(reverse("account_signup"))
    audit.page.locator("input[name='email']").fill(f"newcomer-{audit.language}@example.org")
    audit.page.locator("input[name='username']").fill(f"newcomer_{audit.language}")
    audit.page.locator("input[name='password1']").fill(PASSWORD)
    audit.page.locator("input[name='password2']").fill(PASSWORD)
    audit.submit("input[name='password2']")
    audit.check("email verification code", reverse("account_email_verification_sent"))


def user_pages(audit: Audit, alice: User) -> None:
    from allauth.socialaccount.models import SocialAccount
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from django_otp_webauthn.models import WebAuthnCredential

    sign_in(audit, "alice")
    audit.check("settings home", reverse("settings_home"))
    audit.go(reverse("profile"))
    audit.check("profile", reverse("profile"))
    audit.go(reverse("profile_name_edit"))
    audit.check("profile: name form", reverse("profile_name_edit"))
    audit.go(reverse("profile_details_edit"))
    audit.check("profile: details form", reverse("profile_details_edit"))
    audit.go(reverse("profile_username_edit"))
    audit.check("re-authentication: password", reverse("account_reauthenticate"))
    audit.page.locator("input[name='password']").fill(PASSWORD)
    audit.submit("input[name='password']")
    audit.check("profile: username form", reverse("profile_username_edit"))

    audit.go(reverse("email"))
    audit.check("email", reverse("email"))
    audit.page.locator("input[name='email']").fill(f"alice.new.{audit.language}@example.org")
    audit.submit("input[name='email']")
    audit.check("email: confirm", reverse("email_confirm"))
    audit.page.locator("input[name='code']").fill("000000")
    audit.submit("input[name='code']")
    audit.check("email: confirm (wrong code)", reverse("email_confirm"))
    # A second code within 30 seconds is over the limit.
    assert audit.submit(f"form[action='{reverse('email_resend')}'] button") == 429
    audit.check("429", reverse("email_resend"))

    audit.go(reverse("phone"))
    audit.check("phone", reverse("phone"))
    audit.page.locator("input[name='phone']").fill("+33 6 12 34 56 78")
    audit.submit("input[name='phone']")
    audit.check("phone: confirm", reverse("phone_confirm"))

    audit.go(reverse("account_change_password"))
    audit.check("password change", reverse("account_change_password"))

    audit.go(reverse("two_factor"))
    audit.check("two-step verification (off)", reverse("two_factor"))
    audit.submit(f"form[action='{reverse('totp_start')}'] button")
    audit.check("authenticator app setup", reverse("totp_confirm"))
    device = TOTPDevice.objects.get(user=alice, confirmed=False)
    audit.page.locator("input[name='code']").fill(totp_code(device))
    audit.submit("input[name='code']")
    audit.check("backup codes", reverse("backup_codes_new"))
    audit.submit(f"form[action='{reverse('backup_codes_new')}'] button")
    audit.go(reverse("passkey_add"))
    audit.check("passkey add", reverse("passkey_add"))
    key = WebAuthnCredential.objects.create(
        user=alice,
        name="Blue key",
        confirmed=True,
        credential_id=f"credential-{alice.pk}".encode(),
        public_key=b"public-key",
        sign_count=0,
        aaguid="00000000-0000-0000-0000-000000000000",
    )
    audit.go(reverse("passkey_rename", args=[key.pk]))
    audit.check("passkey rename", reverse("passkey_rename", args=[key.pk]))
    audit.go(reverse("two_factor"))
    audit.check("two-step verification (on)", reverse("two_factor"))
    audit.go(reverse("reauthenticate_two_factor"))
    audit.check("re-authentication: second factor", reverse("reauthenticate_two_factor"))

    SocialAccount.objects.create(
        user=alice,
        provider="dummy",
        uid="1001",
        extra_data={"id": 1001, "username": "alice-on-dummy", "email": alice.email},
    )
    audit.go(reverse("socialaccount_connections"))
    audit.check("linked accounts", reverse("socialaccount_connections"))
    audit.go(reverse("sessions"))
    audit.check("sessions", reverse("sessions"))
    audit.go(reverse("security_activity"))
    audit.check("security activity", reverse("security_activity"))
    audit.go(reverse("tokens"))
    audit.check("personal access tokens", reverse("tokens"))
    oauth_pages(audit, alice)
    audit.go(reverse("export"))
    audit.check("export", reverse("export"))
    audit.go(reverse("delete_account"))
    audit.check("delete account", reverse("delete_account"))

    sign_in(audit, "alice")
    audit.check("second step of sign-in", reverse("two_factor_verify"))
    second_step(audit, TOTPDevice.objects.get(user=alice, confirmed=True))
    audit.check("settings home (after the second step)", reverse("settings_home"))


def oauth_pages(audit: Audit, alice: User) -> None:
    """Connected apps, and the provider's consent, error and sign-out pages."""
    from accounts.models import AppGrant
    from tests.oauth.conftest import AUTHORIZE, authorize_params, pkce_pair, register_app

    notes = register_app(name="Notes")
    AppGrant.objects.create(user=alice, client=notes.app, scopes=["openid", "account:read"])
    audit.go(reverse("connected_apps"))
    audit.check("connected apps", reverse("connected_apps"))
    _verifier, challenge = pkce_pair()
    assert audit.go(f"{AUTHORIZE}?{urlencode(authorize_params(notes, challenge))}") == 200
    audit.check("app consent", AUTHORIZE)
    unknown = authorize_params(notes, challenge, client_id="nobody")
    assert audit.go(f"{AUTHORIZE}?{urlencode(unknown)}") == 200
    audit.check("app error", AUTHORIZE)
    assert audit.go("/identity/o/logout?" + urlencode({"client_id": notes.id})) == 200
    audit.check("app sign-out", "/identity/o/logout")


def passwordless_pages(audit: Audit, bob: User) -> None:
    use_session_of(audit, bob)
    audit.go(reverse("account_set_password"))
    audit.check("password set", reverse("account_set_password"))
    audit.go(reverse("reauthenticate_email"))
    audit.check("re-authentication: email code", reverse("reauthenticate_email"))
    audit.submit("form:has(input[name='action'][value='send']) button")
    audit.check("re-authentication: email code (sent)", reverse("reauthenticate_email"))


def account_state_pages(audit: Audit, dora: User, sue: User) -> None:
    sign_in(audit, dora.username)
    audit.check("deletion pending", reverse("deletion_pending"))
    sign_in(audit, sue.username)
    audit.check("account suspended", reverse("account_inactive"))


def staff_pages(audit: Audit, sam: User, alice: User) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    sign_in(audit, sam.username)
    second_step(audit, TOTPDevice.objects.get(user=sam))
    audit.go(reverse("admin:index"))
    audit.check("back-office: index", reverse("admin:index"))
    audit.go(reverse("admin:accounts_user_changelist"))
    audit.check("back-office: users", reverse("admin:accounts_user_changelist"))
    audit.go(reverse("admin:accounts_user_change", args=[alice.pk]))
    audit.check("back-office: user", reverse("admin:accounts_user_change", args=[alice.pk]))
    audit.go(reverse("admin:accounts_user_suspend", args=[alice.pk]))
    audit.check("back-office: suspend", reverse("admin:accounts_user_suspend", args=[alice.pk]))
    audit.go(reverse("admin:accounts_auditevent_changelist"))
    audit.check("back-office: audit log", reverse("admin:accounts_auditevent_changelist"))
    audit.go(reverse("admin:accounts_accountpolicy_changelist"))
    audit.check("back-office: policy", reverse("admin:accounts_accountpolicy_change", args=[1]))
    oauth_app_pages(audit)
    impersonate = reverse("admin:accounts_user_impersonate", args=[alice.pk])
    audit.go(impersonate)
    audit.check("back-office: impersonate", impersonate)
    audit.page.locator("textarea[name='reason']").fill("Checking what the user reports")
    audit.submit("form:has(textarea[name='reason']) [type='submit']")
    assert audit.page.locator(".impersonation-banner").is_visible()
    audit.check("settings home (impersonated)", reverse("settings_home"))


def oauth_app_pages(audit: Audit) -> None:
    """Registering an app, the page that shows its secret once, its page, a new secret."""
    from allauth.idp.oidc.models import Client as OAuthApp

    add = reverse("admin:allauth_idp_oidc_client_add")
    audit.go(add)
    audit.check("back-office: register an OAuth app", add)
    audit.page.locator("input[name='name']").fill("Planner")
    audit.page.locator("textarea[name='redirect_uris']").fill("https://app.example.com/callback")
    audit.page.locator("input[name='scopes'][value='openid']").check()
    assert audit.submit("input[name='_save']") == 200
    audit.check("back-office: an OAuth app's secret", add)
    app = OAuthApp.objects.get(name="Planner")
    for name, url_name in (
        ("an OAuth app", "admin:allauth_idp_oidc_client_change"),
        ("an OAuth app's new secret", "admin:allauth_idp_oidc_client_new_secret"),
    ):
        path = reverse(url_name, args=[app.pk])
        audit.go(path)
        audit.check(f"back-office: {name}", path)
    audit.go(reverse("admin:allauth_idp_oidc_client_changelist"))
    audit.check("back-office: OAuth apps", reverse("admin:allauth_idp_oidc_client_changelist"))


READ_ONLY_FIELDS = (
    "name",
    "avatar",
    "profile",
    "username",
    "email",
    "mfa",
    "passkeys",
    "social",
    "sessions",
)


def policy_pages(audit: Audit, alice: User, set_policy: Callable[..., Any]) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    sign_in(audit, alice.username)
    second_step(audit, TOTPDevice.objects.get(user=alice, confirmed=True))
    set_policy(enabled=False)
    audit.go(reverse("settings_home"))
    audit.check("settings turned off", reverse("settings_home"))
    set_policy(enabled=True, **dict.fromkeys(READ_ONLY_FIELDS, "read_only"))
    for name, url_name in [
        ("profile", "profile"),
        ("email", "email"),
        ("two-step verification", "two_factor"),
        ("linked accounts", "socialaccount_connections"),
        ("sessions", "sessions"),
    ]:
        audit.go(reverse(url_name))
        assert audit.page.locator("main form[method='post']").count() == 0, name
        audit.check(f"{name} (read-only)", reverse(url_name))
    assert audit.go(reverse("profile_name_edit")) == 403
    audit.check("403", reverse("profile_name_edit"))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", sorted(LOCALES))
def test_every_page_has_no_serious_accessibility_violation(
    audit_for: Callable[[str, int], Audit],
    user_factory: Callable[..., User],
    policy: Callable[..., Any],
    language: str,
    width: int,
) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.services.deletion import account_deletion_schedule

    alice = user_factory(username="alice", display_name="Alice Martin", language=language)
    bob = user_factory(username="bob", password=None, language=language)
    dora = user_factory(username="dora", language=language)
    account_deletion_schedule(ctx=None, user=dora)
    sue = user_factory(username="sue", state="suspended", is_active=False, language=language)
    sam = user_factory(username="sam", is_staff=True, is_superuser=True, language=language)
    TOTPDevice.objects.create(user=sam, name="Phone", confirmed=True)

    audit = audit_for(language, width)
    anonymous_pages(audit, alice)
    user_pages(audit, alice)
    passwordless_pages(audit, bob)
    account_state_pages(audit, dora, sue)
    staff_pages(audit, sam, alice)
    policy_pages(audit, alice, policy)

    report = "\n".join(audit.failures)
    assert not audit.failures, (
        f"{len(audit.failures)} serious or critical accessibility violations "
        f"on {len(audit.checked)} pages:\n{report}"
    )
