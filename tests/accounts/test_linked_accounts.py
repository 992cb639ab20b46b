from __future__ import annotations

import re
import time
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.core import mail
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import formats, timezone

from accounts.actor import Actor
from accounts.adapters import SocialAccountAdapter
from accounts.flows import social as social_flows
from accounts.flows.errors import AccessDenied, ImpersonationRefused, ReauthenticationRequired
from accounts.models import AuditEvent, User
from accounts.policy import PolicyDenied
from tests.conftest import PASSWORD, reauthenticate
from tests.helpers import code_from_last_email

pytestmark = pytest.mark.django_db

CONNECTIONS = "/accounts/3rdparty/"


# --- Helpers ----------------------------------------------------------------------------


def link(user: User, uid: str, username: str | None = None) -> SocialAccount:
    """A linked account, as allauth stores one after a sign-in with the provider."""
    return SocialAccount.objects.create(
        user=user,
        provider="dummy",
        uid=uid,
        extra_data={
            "id": int(uid),
            "username": username or f"{user.username}-on-dummy-{uid}",
            "email": f"{user.username}.{uid}@dummy.example",
        },
    )


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def reauthenticate_by_email_code(client: Client, user: User) -> None:
    """A user without a password proves it with a code sent to their verified address."""
    sent = client.post(reverse("reauthenticate_email"), {"action": "send"})
    assert sent.status_code == 302
    done = client.post(reverse("reauthenticate_email"), {"code": code_from_last_email(user.email)})
    assert done.status_code == 302, done.content[:500]


def record_reauthentication(client: Client, user: User) -> None:
    """As the email-code page does on success. Used only for a user with neither a
    password nor a verified address, who has no way to re-authenticate at all."""
    session = client.session
    session["account_authentication_methods_user"] = str(user.pk)
    session["account_authentication_methods"] = [
        {"method": "email_code", "at": time.time(), "reauthenticated": True}
    ]
    session.save()


def reauthenticate_as(client: Client, user: User) -> None:
    if user.has_usable_password():
        reauthenticate(client)
    elif EmailAddress.objects.filter(user=user, verified=True).exists():
        reauthenticate_by_email_code(client, user)
    else:
        record_reauthentication(client, user)


def unlink(client: Client, account: SocialAccount) -> Any:
    return client.post(reverse("socialaccount_connections"), {"account": account.pk})


def text(response: Any) -> str:
    return unescape(response.content.decode())


def subjects_to(address: str) -> list[str]:
    return [str(m.subject) for m in mail.outbox if address in m.to]


def start_connect(client: Client) -> Any:
    return client.post(reverse("dummy_login"), {"process": "connect"})


def finish_connect(client: Client, started: Any, uid: int = 4242) -> Any:
    """The provider's side: the dummy provider's form, filled in and sent."""
    assert started.status_code == 302, started.content[:500]
    location = started["Location"]
    assert location.startswith(reverse("dummy_authenticate")), location
    assert client.get(location).status_code == 200
    return client.post(
        location,
        {
            "id": uid,
            "username": "alice-at-dummy",
            "email": "alice.dummy@dummy.example",
            "email_verified": "on",
        },
    )


# --- The page -----------------------------------------------------------------------------


def test_url() -> None:
    assert reverse("socialaccount_connections") == CONNECTIONS


def test_page_lists_provider_account_name_and_date_linked(auth_client: Client, user: User) -> None:
    account = link(user, "101", username="alice-dummy-handle")
    response = auth_client.get(reverse("socialaccount_connections"))
    assert response.status_code == 200
    page = text(response)
    row = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    assert row is not None
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row[1], re.S)]
    linked_on = formats.date_format(timezone.localtime(account.date_joined), "DATE_FORMAT")
    assert cells[:3] == ["Dummy", "alice-dummy-handle", linked_on]
    assert f'datetime="{timezone.localtime(account.date_joined).isoformat()}"' in page
    assert page.count("<h1>") == 1
    assert "Unlink" in page


def test_page_with_no_linked_account(auth_client: Client) -> None:
    page = text(auth_client.get(reverse("socialaccount_connections")))
    assert "No account is linked yet." in page


def test_page_does_not_list_someone_elses_accounts(
    auth_client: Client, user_factory: Callable[..., User]
) -> None:
    bob = user_factory(username="bob")
    link(bob, "202", username="bob-dummy-handle")
    page = text(auth_client.get(reverse("socialaccount_connections")))
    assert "bob-dummy-handle" not in page
    assert "No account is linked yet." in page


# --- Unlinking ------------------------------------------------------------------------------


def test_unlink_needs_a_recent_reauthentication(auth_client: Client, user: User) -> None:
    account = link(user, "101")
    response = unlink(auth_client, account)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert SocialAccount.objects.filter(pk=account.pk).exists()
    assert not AuditEvent.objects.filter(action="social.unlinked").exists()
    assert not mail.outbox


def test_unlink_when_the_password_remains(auth_client: Client, user: User) -> None:
    account = link(user, "101")
    reauthenticate(auth_client)
    response = unlink(auth_client, account)
    assert response.status_code == 302
    assert response["Location"] == reverse("socialaccount_connections")
    assert not SocialAccount.objects.filter(user=user).exists()
    event = AuditEvent.objects.get(action="social.unlinked")
    assert event.subject == user
    assert event.actor == user
    assert event.data["provider"] == "Dummy"
    assert subjects_to(user.email) == ["[Account portal] An account was unlinked from yours"]


# (password, linked accounts, verified email) -> may the first account be unlinked?
# allauth refuses to unlink the last account of a user without a usable password
# ("no_password") and, with a password, of a user without a verified address
# ("no_verified_email": nothing to reset the password with).
GUARD = [
    (True, 1, True, None),
    (True, 1, False, "no_verified_email"),
    (True, 2, True, None),
    (True, 2, False, None),
    (False, 1, True, "no_password"),
    (False, 1, False, "no_password"),
    (False, 2, True, None),
    (False, 2, False, None),
]


@pytest.mark.parametrize(
    ("has_password", "accounts", "verified", "refusal"),
    GUARD,
    ids=[
        f"{'password' if p else 'no-password'}-{n}-linked-{'verified' if v else 'unverified'}"
        for p, n, v, _r in GUARD
    ],
)
def test_last_way_to_sign_in_guard(
    user_factory: Callable[..., User],
    has_password: bool,
    accounts: int,
    verified: bool,
    refusal: str | None,
) -> None:
    person = user_factory(
        username="carol", password=PASSWORD if has_password else None, verified=verified
    )
    linked = [link(person, str(300 + i)) for i in range(accounts)]
    client = signed_in(person)
    reauthenticate_as(client, person)
    mail.outbox.clear()

    response = unlink(client, linked[0])

    if refusal is None:
        assert response.status_code == 302, text(response)[:1000]
        assert not SocialAccount.objects.filter(pk=linked[0].pk).exists()
        assert SocialAccount.objects.filter(user=person).count() == accounts - 1
        assert AuditEvent.objects.filter(action="social.unlinked", subject=person).count() == 1
        assert subjects_to(person.email) == ["[Account portal] An account was unlinked from yours"]
    else:
        assert response.status_code == 200
        assert str(SocialAccountAdapter.error_messages[refusal]) in text(response)
        assert 'role="alert"' in response.content.decode()
        assert SocialAccount.objects.filter(user=person).count() == accounts
        assert not AuditEvent.objects.filter(action="social.unlinked").exists()
        assert not mail.outbox


def test_someone_elses_account_id_is_not_removed(
    auth_client: Client, user: User, user_factory: Callable[..., User]
) -> None:
    bob = user_factory(username="bob")
    bobs = link(bob, "202")
    link(user, "101")
    reauthenticate(auth_client)
    response = unlink(auth_client, bobs)
    assert response.status_code == 200
    assert SocialAccount.objects.filter(pk=bobs.pk, user=bob).exists()
    assert SocialAccount.objects.filter(user=user).count() == 1
    assert not AuditEvent.objects.filter(action="social.unlinked").exists()
    assert not mail.outbox


def test_csrf_is_enforced_on_unlink(user: User) -> None:
    account = link(user, "101")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    record_reauthentication(client, user)
    assert unlink(client, account).status_code == 403
    assert SocialAccount.objects.filter(pk=account.pk).exists()


# --- Linking ------------------------------------------------------------------------------


def test_linking_needs_a_recent_reauthentication(auth_client: Client, user: User) -> None:
    response = start_connect(auth_client)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not SocialAccount.objects.exists()
    assert not AuditEvent.objects.filter(action="social.linked").exists()


def test_linking_through_the_provider(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    response = finish_connect(auth_client, start_connect(auth_client))
    assert response.status_code == 302
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == ("dummy", "4242")
    event = AuditEvent.objects.get(action="social.linked")
    assert event.subject == user
    assert event.actor == user
    assert event.data["provider"] == "Dummy"
    assert subjects_to(user.email) == ["[Account portal] An account was linked to yours"]
    # It is listed on the page.
    assert "alice-at-dummy" in text(auth_client.get(reverse("socialaccount_connections")))


def test_linking_resumes_after_reauthenticating(auth_client: Client, user: User) -> None:
    """The POST that was stopped for re-authentication goes on once it is done."""
    stopped = start_connect(auth_client)
    location = stopped["Location"]
    assert location.startswith(reverse("account_reauthenticate"))
    resumed = auth_client.post(location, {"password": PASSWORD})
    response = finish_connect(auth_client, resumed)
    assert response.status_code == 302
    assert SocialAccount.objects.filter(user=user, uid="4242").exists()


def test_linking_an_account_already_linked_to_someone_else(
    auth_client: Client, user: User, user_factory: Callable[..., User]
) -> None:
    bob = user_factory(username="bob")
    link(bob, "4242")
    reauthenticate(auth_client)
    finish_connect(auth_client, start_connect(auth_client), uid=4242)
    assert SocialAccount.objects.get(uid="4242").user == bob
    assert not SocialAccount.objects.filter(user=user).exists()
    assert not AuditEvent.objects.filter(action="social.linked").exists()


@pytest.mark.parametrize(("mode", "status"), [("read_only", 403), ("off", 404)])
def test_policy_refuses_linking(
    auth_client: Client, user: User, policy: Any, mode: str, status: int
) -> None:
    reauthenticate(auth_client)
    policy(social=mode)
    assert start_connect(auth_client).status_code == status
    assert not SocialAccount.objects.exists()
    assert not AuditEvent.objects.filter(action="social.linked").exists()
    assert not mail.outbox


@pytest.mark.parametrize("mode", ["read_only", "off"])
def test_a_link_started_before_the_policy_changed_is_not_completed(
    auth_client: Client, user: User, policy: Any, mode: str
) -> None:
    """The provider's return (its callback; the dummy provider's form) carries no
    ``process`` parameter: the process is in the state stashed when the link began."""
    reauthenticate(auth_client)
    started = start_connect(auth_client)
    policy(social=mode)
    finish_connect(auth_client, started)
    assert not SocialAccount.objects.exists()
    assert not AuditEvent.objects.filter(action="social.linked").exists()
    assert not mail.outbox


@pytest.mark.parametrize(("mode", "status"), [("read_only", 403), ("off", 404)])
def test_policy_refuses_unlinking(
    auth_client: Client, user: User, policy: Any, mode: str, status: int
) -> None:
    account = link(user, "101")
    reauthenticate(auth_client)
    policy(social=mode)
    assert unlink(auth_client, account).status_code == status
    assert SocialAccount.objects.filter(pk=account.pk).exists()
    assert not AuditEvent.objects.filter(action="social.unlinked").exists()


def test_policy_off_hides_the_page(auth_client: Client, user: User, policy: Any) -> None:
    link(user, "101")
    policy(social="off")
    assert auth_client.get(reverse("socialaccount_connections")).status_code == 404


def test_policy_read_only_shows_the_page_without_actions(
    auth_client: Client, user: User, policy: Any
) -> None:
    link(user, "101", username="alice-dummy-handle")
    policy(social="read_only")
    response = auth_client.get(reverse("socialaccount_connections"))
    assert response.status_code == 200
    page = text(response)
    assert "alice-dummy-handle" in page
    assert "Unlink" not in page
    assert "Link an account" not in page


# --- The flows the allauth signals call -------------------------------------------


def test_the_linked_flow_audits_and_tells_the_user_once_committed(user: User) -> None:
    account = link(user, "4242")
    mail.outbox.clear()
    with transaction.atomic():
        social_flows.social_linked(
            ctx=Actor(user=user, ip="198.51.100.4"), user=user, account=account
        )
        assert not mail.outbox
    assert len(subjects_to(user.email)) == 1
    event = AuditEvent.objects.get(action="social.linked")
    assert (event.subject, event.actor, event.ip_address) == (user, user, "198.51.100.4")
    assert event.data["provider"] == "Dummy"


def test_the_unlinked_flow_audits_and_tells_the_user(user: User) -> None:
    account = link(user, "4242")
    mail.outbox.clear()
    social_flows.social_unlinked(ctx=Actor(user=user), user=user, account=account)
    assert len(subjects_to(user.email)) == 1
    assert AuditEvent.objects.get(action="social.unlinked").data["account"]


# --- Unlinking from another surface (the flow the APIs call) ---------------------------


def api_actor(user: User, **extra: Any) -> Actor:
    return Actor(user=user, surface="api", reauthenticated_at=time.time(), **extra)


def test_unlink_flow_removes_audits_and_tells_the_user(user: User) -> None:
    account = link(user, "4242")
    mail.outbox.clear()

    social_flows.social_unlink(ctx=api_actor(user), pk=account.pk)

    assert not SocialAccount.objects.filter(pk=account.pk).exists()
    assert AuditEvent.objects.get(action="social.unlinked").subject == user
    assert len(subjects_to(user.email)) == 1


def test_unlink_flow_keeps_the_last_way_to_sign_in(user_factory: Callable[..., User]) -> None:
    bob = user_factory(password=None)
    account = link(bob, "4343")

    with pytest.raises(social_flows.UnlinkRefused, match="no password"):
        social_flows.social_unlink(ctx=api_actor(bob), pk=account.pk)

    assert SocialAccount.objects.filter(pk=account.pk).exists()
    assert not AuditEvent.objects.filter(action="social.unlinked").exists()


def test_unlink_flow_does_not_find_someone_elses_account(
    user: User, user_factory: Callable[..., User]
) -> None:
    theirs = link(user_factory(), "4444")

    with pytest.raises(AccessDenied) as refused:
        social_flows.social_unlink(ctx=api_actor(user), pk=theirs.pk)

    assert refused.value.status == 404
    assert SocialAccount.objects.filter(pk=theirs.pk).exists()


def test_unlink_flow_needs_policy_reauthentication_and_no_impersonation(
    user: User, staff_user: User, policy: Any
) -> None:
    account = link(user, "4545")

    with pytest.raises(ReauthenticationRequired):
        social_flows.social_unlink(ctx=Actor(user=user, surface="api"), pk=account.pk)
    with pytest.raises(ImpersonationRefused):
        social_flows.social_unlink(
            ctx=api_actor(user, impersonator_id=staff_user.pk), pk=account.pk
        )
    policy(social="read_only")
    with pytest.raises(PolicyDenied):
        social_flows.social_unlink(ctx=api_actor(user), pk=account.pk)

    assert SocialAccount.objects.filter(pk=account.pk).exists()


# --- The providers' apps ----------------------------------------------------------------


def _apps(apps: list[Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (app.pk or 0, app.provider, app.provider_id, app.name, app.client_id, app.settings)
        for app in apps
    )


def test_list_apps_gives_what_allauths_gives(settings: Any) -> None:
    """The adapter reads the site's apps with a prepared query: the same apps as
    allauth's own list, settings-backed apps included, whatever the filters."""
    from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
    from allauth.socialaccount.models import SocialApp
    from django.contrib.sites.models import Site
    from django.test import RequestFactory

    here = Site.objects.get_current()
    # An explicit id: the migration made site 1 with its id, not from the sequence.
    elsewhere = Site.objects.create(pk=here.pk + 1, domain="elsewhere.example", name="Elsewhere")
    for provider, name, client_id, sites in [
        ("github", "GitHub", "gh-1", [here]),
        ("github", "GitHub again", "gh-2", [here, elsewhere]),
        ("openid_connect", "Company", "oidc-1", [here]),
        ("google", "Google elsewhere", "g-1", [elsewhere]),
    ]:
        app = SocialApp.objects.create(
            provider=provider,
            provider_id="company" if provider == "openid_connect" else "",
            name=name,
            client_id=client_id,
            secret="s",
            settings={"server_url": "https://id.example"} if provider == "openid_connect" else {},
        )
        app.sites.set(sites)
    settings.SOCIALACCOUNT_PROVIDERS = {
        "gitlab": {"APP": {"client_id": "gl-1", "secret": "s", "name": "GitLab"}}
    }
    ours, allauths = SocialAccountAdapter(), DefaultSocialAccountAdapter()

    for kwargs in [{}, {"provider": "github"}, {"provider": "company"}, {"client_id": "gh-2"}]:
        request = RequestFactory().get("/")
        assert _apps(ours.list_apps(request, **kwargs)) == _apps(
            allauths.list_apps(request, **kwargs)
        ), kwargs
    everything = _apps(ours.list_apps(RequestFactory().get("/")))
    assert [app[3] for app in everything] == ["GitLab", "GitHub", "GitHub again", "Company"]
