"""A machine client's service account acts only through its client's tokens: it
never signs in (password, email code, password reset, linked account), cannot be
impersonated, and staff manage it on its client's page only."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.adapters import AccountAdapter
from accounts.flows.impersonation import can_impersonate
from accounts.models import AuditEvent, User
from tests.api.conftest import assert_error, management_client
from tests.conftest import PASSWORD, staff_signed_in
from tests.oauth.conftest import register_machine

pytestmark = pytest.mark.django_db

SERVICE_ACCOUNT_REFUSED = "service account of a machine client"


@pytest.fixture
def account() -> User:
    machine = register_machine(scopes=["users:read"], permissions=["accounts.view_user"])
    service = machine.app.machine.account
    assert service.is_service_account
    return service


def tampered(account: User, *, password: str = "", email: str = "") -> User:
    """The account as if someone had given it what it never has."""
    if password:
        account.set_password(password)
    if email:
        account.email = email
        EmailAddress.objects.create(user=account, email=email, verified=True, primary=True)
    account.save()
    return account


def signed_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def test_a_plain_user_is_no_service_account(user: User) -> None:
    assert not user.is_service_account


def test_no_sign_in_with_a_password(account: User) -> None:
    client = Client()
    # As made: no usable password, the generic error.
    response = client.post(reverse("account_login"), {"login": account.username, "password": ""})
    assert response.status_code == 200
    assert not signed_in(client)
    # Even with a password someone set: refused at the last door.
    tampered(account, password=PASSWORD)
    response = client.post(
        reverse("account_login"), {"login": account.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_inactive")
    assert not signed_in(client)
    assert not AuditEvent.objects.filter(action="signed_in", actor=account).exists()


def test_no_sign_in_by_email_code(account: User) -> None:
    """Sign-in by a code sent by email is not offered; any way that ends in
    allauth's login (a code, a confirmed address, a linked account) meets the
    adapter's refusal."""
    assert Client().get("/accounts/login/code/").status_code == 404
    tampered(account, email="svc@example.org")
    request = RequestFactory().get("/")
    from django.contrib.sessions.backends.db import SessionStore

    request.session = SessionStore()
    response = AccountAdapter().pre_login(
        request,
        account,
        email_verification="none",
        signal_kwargs=None,
        email="svc@example.org",
        signup=False,
        redirect_url=None,
    )
    assert response is not None
    assert response["Location"] == reverse("account_inactive")


def test_no_password_reset(account: User, user_factory: Callable[..., User]) -> None:
    tampered(account, email="svc@example.org")
    response = Client().post(reverse("account_reset_password"), {"email": "svc@example.org"})
    assert response.status_code == 302
    # Told as an unknown address is (the enumeration-safe answer): no code to reset with.
    unknown = Client().post(reverse("account_reset_password"), {"email": "nobody@example.org"})
    assert unknown.status_code == 302
    assert [m.to for m in mail.outbox] == [["svc@example.org"], ["nobody@example.org"]]
    assert mail.outbox[0].subject == mail.outbox[1].subject
    assert mail.outbox[0].body.replace("svc@", "nobody@") == mail.outbox[1].body
    # A real account's reset differs (a code is sent).
    user_factory(username="real", email="real@example.org")
    Client().post(reverse("account_reset_password"), {"email": "real@example.org"})
    assert mail.outbox[2].subject != mail.outbox[1].subject


def test_no_sign_in_with_a_linked_account(account: User) -> None:
    SocialAccount.objects.create(user=account, provider="dummy", uid="777")
    client = Client()
    started = client.post(reverse("dummy_login"), {"process": "login"})
    assert started.status_code == 302
    location = started["Location"]
    assert location.startswith(reverse("dummy_authenticate"))
    done = client.post(location, {"id": 777, "username": "svc", "email": "svc@dummy.example"})
    assert done.status_code == 302
    assert done["Location"] == reverse("account_inactive")
    assert not signed_in(client)


def test_no_impersonation(account: User, user_factory: Callable[..., User]) -> None:
    agent = user_factory(username="agent", is_staff=True)
    agent.groups.add(Group.objects.get(name="Security admins"))
    client = staff_signed_in(agent)
    response = client.post(
        reverse("admin:accounts_user_impersonate", args=[account.pk]),
        {"user_pk": account.pk, "reason": "Ticket 4242: checking the sync"},
    )
    assert response.status_code == 403
    assert client.session[SESSION_KEY] == str(agent.pk)
    assert "hijack_history" not in client.session
    # Nor by a link asked for through the Management API.
    link = management_client(agent).post(
        f"/api/management/users/{account.pk}/impersonation",
        data=json.dumps({"reason": "Ticket 4242: checking the sync"}),
        content_type="application/json",
    )
    assert_error(link, 403, "forbidden")
    # The rule says it in words, even of an account that someone made non-staff.
    account.is_staff = False
    assert not can_impersonate(hijacker=agent, hijacked=account)
    assert not AuditEvent.objects.filter(action__startswith="impersonation.").exists()


def test_staff_manage_it_on_its_clients_page_only(
    account: User, user_factory: Callable[..., User]
) -> None:
    boss = user_factory(username="boss", is_staff=True, is_superuser=True)
    before = (account.display_name, account.state, account.username)
    api = management_client(boss)
    for method, path, body in (
        ("PATCH", f"/api/management/users/{account.pk}", {"display_name": "Renamed"}),
        ("POST", f"/api/management/users/{account.pk}/suspension", {"reason": "Stop it"}),
        ("DELETE", f"/api/management/users/{account.pk}", None),
        (
            "POST",
            f"/api/management/users/{account.pk}/personal-access-tokens",
            {"name": "Backdoor", "scopes": ["account:read"], "expires_at": "2099-01-01T00:00:00Z"},
        ),
    ):
        data = json.dumps(body) if body is not None else ""
        response = api.generic(method, path, data=data)
        body_json = assert_error(response, 403, "forbidden")
        assert SERVICE_ACCOUNT_REFUSED in body_json["message"], (method, path)
    browser = staff_signed_in(boss)
    page = browser.post(
        reverse("admin:accounts_user_suspend", args=[account.pk]), {"reason": "Stop it"}
    )
    assert page.status_code == 403
    edit = browser.post(
        reverse("admin:accounts_user_change", args=[account.pk]),
        {"username": "svc-renamed", "is_staff": "on", "groups": []},
    )
    assert edit.status_code == 403
    account.refresh_from_db()
    assert (account.display_name, account.state, account.username) == before
    assert account.groups.count() == 1
    assert not account.access_tokens.exists()
