"""The Tokens section of the settings: the user's personal access tokens, making
one (shown once), revoking one; the policy field ``tokens``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.impersonation import STARTED_KEY
from accounts.models import AccountPolicy, AuditEvent, PersonalAccessToken, User
from accounts.policy import FIELDS
from accounts.services.audit import Action
from accounts.views.tokens import NEW_TOKEN_SESSION_KEY
from tests.api.conftest import ApiClient, make_token
from tests.conftest import reauthenticate, verify_second_factor

pytestmark = pytest.mark.django_db

URL = "/settings/tokens/"
CREATE = "/settings/tokens/create/"
NEW = "/settings/tokens/new/"


# --- Helpers ----------------------------------------------------------------------------


def day(days: int) -> str:
    return (timezone.localdate() + timedelta(days=days)).isoformat()


def form(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Backup script",
        "scopes": ["account:read"],
        "expires_at": day(30),
    }
    data.update(changes)
    return data


def text(response: Any) -> str:
    return unescape(response.content.decode())


def live(user: User) -> int:
    return PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).count()


def token_of(user: User) -> PersonalAccessToken:
    make_token(user)
    return PersonalAccessToken.objects.filter(user=user).latest("pk")


@pytest.fixture
def signed_in(auth_client: Client) -> Client:
    """alice, recently re-authenticated."""
    reauthenticate(auth_client)
    return auth_client


def impersonated(user: User, staff: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    reauthenticate(client)
    session = client.session
    session["hijack_history"] = [str(staff.pk)]
    session[STARTED_KEY] = time.time()
    session.save()
    return client


# --- The page ---------------------------------------------------------------------------------


def test_urls() -> None:
    assert reverse("tokens") == URL
    assert reverse("token_create") == CREATE
    assert reverse("tokens_new") == NEW
    assert reverse("token_revoke", args=[7]) == "/settings/tokens/7/revoke/"


def test_page_lists_the_users_tokens(
    auth_client: Client, user: User, user_factory: Callable[..., User]
) -> None:
    token = token_of(user)
    PersonalAccessToken.objects.filter(pk=token.pk).update(name="Deploy bot")
    bob = user_factory(username="bob")
    bobs = token_of(bob)
    PersonalAccessToken.objects.filter(pk=bobs.pk).update(name="Bob's tool")
    response = auth_client.get(URL)
    assert response.status_code == 200
    html = text(response)
    assert html.count("<h1>") == 1
    assert "Deploy bot" in html
    assert f"pat_{token.prefix}…" in html
    assert "account:read, account:write" in html
    assert "Never" in html  # not used yet
    assert "Bob's tool" not in html
    assert bobs.prefix not in html
    assert token.digest not in html
    assert reverse("token_revoke", args=[token.pk]) in html
    assert f'<a href="{URL}" aria-current="page">' in html


def test_the_form_is_accessible_and_defaults_to_30_days(auth_client: Client) -> None:
    html = text(auth_client.get(URL))
    assert f'action="{CREATE}"' in html
    assert '<label for="id_name">' in html
    assert "<legend>" in html  # the scopes' checkboxes are one group
    assert 'type="checkbox" name="scopes" value="account:read"' in html
    assert re.search(rf'type="date" name="expires_at" value="{day(30)}"', html)
    assert f'max="{day(365)}"' in html
    assert "<script>" not in html
    assert " style=" not in html


def test_no_tokens_says_so(auth_client: Client) -> None:
    assert "You have no tokens." in text(auth_client.get(URL))


def test_requires_sign_in(client: Client) -> None:
    for response in (client.get(URL), client.post(CREATE, form()), client.get(NEW)):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    assert not PersonalAccessToken.objects.exists()


# --- Making a token ---------------------------------------------------------------------------


def test_make_a_token_and_see_it_once(signed_in: Client, user: User) -> None:
    response = signed_in.post(CREATE, form(scopes=["account:read", "account:write"]))
    assert response.status_code == 302
    assert response["Location"] == NEW
    token = PersonalAccessToken.objects.get(user=user)
    assert (token.name, token.scopes) == ("Backup script", ["account:read", "account:write"])
    # It expires at the start of the chosen day, in the user's time zone.
    assert timezone.localtime(token.expires_at).date().isoformat() == day(30)
    assert timezone.localtime(token.expires_at).hour == 0
    assert AuditEvent.objects.filter(action=Action.TOKEN_CREATED, actor=user).exists()
    assert [str(m.subject) for m in mail.outbox] == [
        "[Account portal] A personal access token was created for your account"
    ]

    shown = signed_in.get(NEW)
    assert shown.status_code == 200
    html = text(shown)
    assert html.count("<h1>") == 1
    secret = re.search(r'value="(pat_[^"]+)"', html)
    assert secret is not None
    assert '<label for="new-token">' in html
    # The secret is real, and gone from the session once shown.
    assert ApiClient(secret.group(1)).get("/api/my-account").status_code == 200
    assert NEW_TOKEN_SESSION_KEY not in signed_in.session
    again = signed_in.get(NEW)
    assert again.status_code == 302
    assert again["Location"] == URL
    after = text(signed_in.get(URL))
    assert "shown only once" in after
    assert secret.group(1) not in after
    assert secret.group(1) not in mail.outbox[0].body


def test_the_new_token_is_not_shown_after_ten_minutes(signed_in: Client) -> None:
    assert signed_in.post(CREATE, form()).status_code == 302
    session = signed_in.session
    session[NEW_TOKEN_SESSION_KEY]["at"] = time.time() - 601
    session.save()
    response = signed_in.get(NEW)
    assert response.status_code == 302
    assert NEW_TOKEN_SESSION_KEY not in signed_in.session


def test_making_needs_a_recent_reauthentication(auth_client: Client, user: User) -> None:
    response = auth_client.post(CREATE, form())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not PersonalAccessToken.objects.exists()
    # Re-authenticating replays the kept request: the token is made then.
    from tests.conftest import PASSWORD

    replayed = auth_client.post(response["Location"], {"password": PASSWORD})
    assert replayed.status_code == 302
    assert replayed["Location"] == NEW
    assert live(user) == 1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"expires_at": day(366)}, "expires_at", "one year at most"),
        ({"expires_at": day(0)}, "expires_at", "in the future"),
        ({"expires_at": "31/12/2026"}, "expires_at", "Enter a valid date"),
        ({"scopes": []}, "scopes", "This field is required"),
        ({"scopes": ["admin"]}, "scopes", "Select a valid choice"),
        ({"name": "  "}, "name", "This field is required"),
        ({"name": "a\x00b"}, "name", "Null characters are not allowed"),
        ({"name": "a\x07b"}, "name", "control characters"),
    ],
    ids=["over-a-year", "today", "bad-date", "no-scope", "unknown-scope", "blank", "nul", "bell"],
)
def test_bad_input_is_shown_on_its_field(
    signed_in: Client, user: User, changes: dict[str, Any], field: str, message: str
) -> None:
    response = signed_in.post(CREATE, form(**changes))
    assert response.status_code == 400
    html = text(response)
    assert message in html
    # The error is tied to its field.
    assert f'id="id_{field}_error"' in html
    assert re.search(rf'aria-describedby="[^"]*id_{field}_error', html)
    assert not PersonalAccessToken.objects.exists()
    assert not mail.outbox


def test_too_many_tokens(signed_in: Client, user: User, settings: Any) -> None:
    settings.PERSONAL_ACCESS_TOKENS_PER_USER = 1
    token_of(user)
    response = signed_in.post(CREATE, form())
    assert response.status_code == 400
    assert "as many tokens as an account may have" in text(response)
    assert live(user) == 1


# --- Revoking ---------------------------------------------------------------------------------


def test_revoke(signed_in: Client, user: User) -> None:
    token = token_of(user)
    secret_client = ApiClient(make_token(user))
    response = signed_in.post(reverse("token_revoke", args=[token.pk]))
    assert response.status_code == 302
    assert response["Location"] == URL
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action=Action.TOKEN_REVOKED, actor=user).exists()
    assert [str(m.subject) for m in mail.outbox] == [
        "[Account portal] A personal access token of your account was revoked"
    ]
    page = text(signed_in.get(URL))
    assert "was revoked" in page
    assert "Revoked" in page
    # The revoked one has no button left; the other still works.
    assert reverse("token_revoke", args=[token.pk]) not in page
    assert secret_client.get("/api/my-account").status_code == 200


def test_revoking_needs_a_recent_reauthentication(auth_client: Client, user: User) -> None:
    token = token_of(user)
    response = auth_client.post(reverse("token_revoke", args=[token.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    token.refresh_from_db()
    assert token.revoked_at is None


def test_someone_elses_token_is_a_404(signed_in: Client, user_factory: Callable[..., User]) -> None:
    bob = user_factory(username="bob")
    bobs = token_of(bob)
    assert signed_in.post(reverse("token_revoke", args=[bobs.pk])).status_code == 404
    bobs.refresh_from_db()
    assert bobs.revoked_at is None
    assert not mail.outbox


@pytest.mark.parametrize("pk", ["999999", str(2**63), str(2**70)])
def test_an_unknown_token_is_a_404(signed_in: Client, pk: str) -> None:
    assert signed_in.post(f"/settings/tokens/{pk}/revoke/").status_code == 404


def test_writes_are_post_only(signed_in: Client, user: User) -> None:
    token = token_of(user)
    assert signed_in.get(reverse("token_revoke", args=[token.pk])).status_code == 405
    assert signed_in.get(CREATE).status_code == 405
    assert signed_in.post(URL, form()).status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


def test_csrf_is_enforced(user: User) -> None:
    token = token_of(user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session["account_authentication_methods_user"] = str(user.pk)
    session["account_authentication_methods"] = [
        {"method": "password", "at": time.time(), "reauthenticated": True}
    ]
    session.save()
    assert client.post(CREATE, form()).status_code == 403
    assert client.post(reverse("token_revoke", args=[token.pk])).status_code == 403
    assert live(user) == 1
    # With the page's token it goes through.
    client.get(URL)
    csrf = client.cookies["csrftoken"].value
    response = client.post(reverse("token_revoke", args=[token.pk]), {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    assert live(user) == 0


# --- The policy -------------------------------------------------------------------------------


def test_off_hides_the_section(signed_in: Client, user: User, policy: Any) -> None:
    token = token_of(user)
    policy(tokens="off")
    for response in (
        signed_in.get(URL),
        signed_in.get(NEW),
        signed_in.post(CREATE, form()),
        signed_in.post(reverse("token_revoke", args=[token.pk])),
    ):
        assert response.status_code == 404
    assert f'href="{URL}"' not in text(signed_in.get(reverse("settings_home")))
    assert live(user) == 1


def test_read_only_lists_without_controls(signed_in: Client, user: User, policy: Any) -> None:
    token = token_of(user)
    policy(tokens="read_only")
    response = signed_in.get(URL)
    assert response.status_code == 200
    html = text(response)
    assert token.name in html
    assert CREATE not in html
    assert reverse("token_revoke", args=[token.pk]) not in html
    assert 'method="post"' not in html.split('class="settings-content"')[1].split("</main>")[0]
    assert f'href="{URL}"' in text(signed_in.get(reverse("settings_home")))
    assert signed_in.post(CREATE, form()).status_code == 403
    assert signed_in.post(reverse("token_revoke", args=[token.pk])).status_code == 403
    assert live(user) == 1


def test_master_switch_off(signed_in: Client, user: User, policy: Any) -> None:
    token = token_of(user)
    policy(enabled=False)
    response = signed_in.get(URL)
    assert response.status_code == 200
    assert "turned off" in text(response)
    assert token.name not in text(response)
    assert signed_in.post(CREATE, form()).status_code == 403
    assert signed_in.post(reverse("token_revoke", args=[token.pk])).status_code == 403
    assert live(user) == 1


def test_impersonating_staff_cannot_make_revoke_or_see_a_new_token(
    user: User, staff_user: User
) -> None:
    token = token_of(user)
    client = impersonated(user, staff_user)
    assert client.get(URL).status_code == 200
    assert client.post(CREATE, form()).status_code == 403
    assert client.post(reverse("token_revoke", args=[token.pk])).status_code == 403
    session = client.session
    session[NEW_TOKEN_SESSION_KEY] = {"id": 1, "name": "x", "secret": "pat_x", "at": time.time()}
    session.save()
    assert client.get(NEW).status_code == 403
    assert live(user) == 1


def test_the_policy_page_shows_the_tokens_field(user_factory: Callable[..., User]) -> None:
    operator = user_factory(username="olivia", is_staff=True)
    operator.groups.add(Group.objects.get(name="Operators"))
    client = Client()
    client.force_login(operator, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, operator)
    url = reverse("admin:accounts_accountpolicy_change", args=[1])
    page = text(client.get(url))
    assert 'name="tokens"' in page
    assert "personal access tokens" in page.lower()
    data = dict.fromkeys(FIELDS, "edit") | {"enabled": "on", "tokens": "read_only"}
    assert client.post(url, data).status_code == 302
    assert AccountPolicy.objects.get(pk=1).tokens == "read_only"
    event = AuditEvent.objects.get(action=Action.POLICY_CHANGED)
    assert event.data["changed"] == {"tokens": {"before": "edit", "after": "read_only"}}


# --- Query budget -----------------------------------------------------------------------------


def test_query_budget_does_not_grow_with_tokens(
    auth_client: Client, user: User, django_assert_max_num_queries: Any
) -> None:
    def measure() -> int:
        with django_assert_max_num_queries(5), CaptureQueriesContext(connection) as ctx:
            assert auth_client.get(URL).status_code == 200
        return len(ctx.captured_queries)

    auth_client.get(URL)
    token_of(user)
    few = measure()
    for _ in range(19):
        token_of(user)
    assert measure() == few


# --- The blank form, written once per language, day and scopes ------------------------------


def test_the_blank_form_is_written_once_per_language_day_and_scopes(
    auth_client: Client, user: User, user_factory: Callable[..., User], monkeypatch: Any
) -> None:
    from django.template.loader import render_to_string
    from django.utils import translation
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.forms import TokenForm, blank_token_form_fields
    from accounts.policy import load_policy

    policy = load_policy()
    staff = user_factory(username="staffer", is_staff=True)
    TOTPDevice.objects.create(user=staff, name="Phone", confirmed=True)

    def fresh(who: User) -> str:
        form = TokenForm(policy=policy, user=who)
        return render_to_string("accounts/includes/form_fields.html", {"form": form})

    with translation.override("en"):
        alices, staffs = (blank_token_form_fields(user=u, policy=policy) for u in (user, staff))
        again = blank_token_form_fields(user=user, policy=policy)
        assert (alices, staffs, again) == (fresh(user), fresh(staff), alices)
    assert 'value="management"' in staffs
    assert 'value="management"' not in alices
    # What the page shows.
    assert alices in auth_client.get(URL).content.decode()
    with translation.override("fr"):
        french = blank_token_form_fields(user=user, policy=policy)
        assert french == fresh(user)
        assert "Nom" in french
    monkeypatch.setattr(timezone, "localdate", lambda: timezone.datetime(2030, 1, 1).date())
    with translation.override("en"):
        later = blank_token_form_fields(user=user, policy=policy)
    assert 'value="2030-01-31"' in later
