"""Staff register OAuth apps in the back-office: apps acting for users and machine
clients with their service accounts, the redirect URI rules, a secret shown once,
new secrets, revoking every token, deleting; each change audited, each gated by
the model permissions, and nobody hands a machine client permissions they lack."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from allauth.idp.oidc.models import Client as App
from allauth.idp.oidc.models import Token
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from accounts.models import AppGrant, AuditEvent, MachineClient, User
from accounts.services.audit import Action
from tests.api.conftest import ApiClient, assert_error
from tests.conftest import staff_signed_in
from tests.oauth.conftest import (
    REDIRECT_URI,
    TOKEN,
    RegisteredApp,
    authorize,
    exchange,
    machine_token,
)

pytestmark = pytest.mark.django_db

ADD = "/admin/allauth_idp_oidc/client/add/"
LIST = "/admin/allauth_idp_oidc/client/"


def change_url(app: App) -> str:
    return reverse("admin:allauth_idp_oidc_client_change", args=[app.pk])


def new_secret_url(app: App) -> str:
    return reverse("admin:allauth_idp_oidc_client_new_secret", args=[app.pk])


def delete_url(app: App) -> str:
    return reverse("admin:allauth_idp_oidc_client_delete", args=[app.pk])


def revoke_url(app: App) -> str:
    return reverse("admin:allauth_idp_oidc_client_revoke_tokens", args=[app.pk])


def user_app_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Notes",
        "kind": "user",
        "type": "confidential",
        "redirect_uris": REDIRECT_URI,
        "cors_origins": "",
        "scopes": ["openid", "profile", "email", "account:read", "account:write"],
        "_save": "Save",
    }
    data.update(changes)
    return data


def machine_data(groups: list[Group], **changes: Any) -> dict[str, Any]:
    machine = {
        "name": "Nightly sync",
        "kind": "machine",
        "redirect_uris": "",
        "scopes": ["users:read"],
        "groups": [g.pk for g in groups],
    }
    return user_app_data(**(machine | changes))


def field_errors(response: Any, field: str) -> str:
    return " ".join(response.context["adminform"].form.errors.get(field, []))


def text(response: Any) -> str:
    return unescape(response.content.decode())


def shown_secret(response: Any) -> str:
    found = re.search(r'id="oauth-client-secret"[^>]*value="([^"]+)"', response.content.decode())
    assert found, response.content[:2000]
    return unescape(found.group(1))


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def group_with(name: str, *permissions: str) -> Group:
    group = Group.objects.create(name=name)
    for permission in permissions:
        app_label, codename = permission.split(".")
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return group


@pytest.fixture
def boss(user_factory: Callable[..., User]) -> User:
    return user_factory(username="boss", is_staff=True, is_superuser=True)


@pytest.fixture
def boss_client(boss: User) -> Client:
    return staff_signed_in(boss)


@pytest.fixture
def operator(user_factory: Callable[..., User]) -> User:
    member = user_factory(username="olive", is_staff=True)
    member.groups.add(Group.objects.get(name="Operators"))
    return member


@pytest.fixture
def operator_client(operator: User) -> Client:
    return staff_signed_in(operator)


@pytest.fixture
def readers() -> Group:
    return group_with("Directory readers", "accounts.view_user")


def create_machine(client: Client, groups: list[Group], **changes: Any) -> tuple[App, str]:
    response = client.post(ADD, machine_data(groups, **changes))
    assert response.status_code == 200, response.content[:3000]
    app = App.objects.get(name=changes.get("name", "Nightly sync"))
    return app, shown_secret(response)


# --- The page on the back-office ------------------------------------------------------


def test_the_back_office_shows_the_portals_app_page_and_no_token_list() -> None:
    from accounts.admin.oauth_apps import OAuthAppAdmin

    assert isinstance(admin.site._registry[App], OAuthAppAdmin)
    assert Token not in admin.site._registry


def test_the_add_page_offers_the_portals_fields_only(operator_client: Client) -> None:
    response = operator_client.get(ADD)
    assert response.status_code == 200
    page = text(response)
    for name in ("name", "kind", "type", "redirect_uris", "cors_origins", "scopes", "groups"):
        assert f'name="{name}"' in page
    for hidden in ("skip_consent", "allow_uri_wildcards", "grant_types", "secret", "owner"):
        assert f'name="{hidden}"' not in page
    assert page.count("<h1") == 1


# --- An app acting for users ----------------------------------------------------------


def test_an_operator_registers_an_app_for_users_and_sees_its_secret_once(
    operator: User, operator_client: Client, auth_client: Client
) -> None:
    response = operator_client.post(ADD, user_app_data())
    assert response.status_code == 200, response.content[:3000]
    secret = shown_secret(response)
    app = App.objects.get(name="Notes")
    assert "Copy the secret now." in text(response)
    assert app.pk in text(response)

    # Safe in HTTP Basic whether or not the app URL-encodes it.
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}", secret)
    # Stored hashed, never in clear.
    assert app.secret != secret
    assert secret not in app.secret
    assert app.check_secret(secret)
    assert app.type == App.Type.CONFIDENTIAL
    assert app.get_grant_types() == ["authorization_code", "refresh_token"]
    assert app.get_response_types() == ["code"]
    assert app.get_redirect_uris() == [REDIRECT_URI]
    assert app.get_scopes() == ["openid", "profile", "email", "account:read", "account:write"]
    assert (app.skip_consent, app.allow_uri_wildcards) == (False, False)
    assert not MachineClient.objects.filter(client=app).exists()

    # Shown once: the app's page does not have it.
    page = operator_client.get(change_url(app))
    assert page.status_code == 200
    assert secret not in page.content.decode()

    [event] = events(Action.OAUTH_APP_CREATED)
    assert (event.actor, event.surface, event.subject) == (operator, "admin", None)
    assert event.subject_label == "Notes"
    assert event.data["client_id"] == app.pk
    assert event.data["kind"] == "user"
    assert event.data["redirect_uris"] == [REDIRECT_URI]
    assert secret not in str(event.data)

    # The app works with what staff were shown.
    code, verifier = authorize(auth_client, RegisteredApp(app=app, secret=secret))
    tokens = exchange(RegisteredApp(app=app, secret=secret), code, verifier)
    assert tokens.status_code == 200, tokens.content


def test_the_secret_page_is_not_stored_by_the_browser(operator_client: Client) -> None:
    response = operator_client.post(ADD, user_app_data())
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_a_public_app_has_no_secret(operator_client: Client) -> None:
    response = operator_client.post(ADD, user_app_data(type="public"))
    assert response.status_code == 302
    app = App.objects.get(name="Notes")
    assert app.type == App.Type.PUBLIC
    assert app.secret.startswith("!")  # Django's unusable hash: no secret matches
    assert not app.check_secret("anything")
    page = operator_client.get(change_url(app))
    assert "New secret" not in text(page)
    for method in ("get", "post"):
        refused = getattr(operator_client, method)(new_secret_url(app), follow=True)
        assert refused.redirect_chain == [(change_url(app), 302)]
        assert "A public app has no secret" in text(refused)
    assert not events(Action.OAUTH_APP_SECRET_ROTATED)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com:8443/oauth/done?from=portal",
        "http://localhost:8080/callback",
        "http://127.0.0.1/callback",
        "http://[::1]:3000/callback",
    ],
)
def test_redirect_uris_that_are_accepted(operator_client: Client, uri: str) -> None:
    response = operator_client.post(ADD, user_app_data(redirect_uris=f"{uri}\n\n{uri}\n"))
    assert response.status_code == 200, response.content[:3000]
    assert App.objects.get(name="Notes").get_redirect_uris() == [uri]


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://example.com/callback", "must use HTTPS"),
        ("http://localhost.example.com/callback", "must use HTTPS"),
        ("http://127.0.0.1.example.com/callback", "must use HTTPS"),
        ("https://app.example.com/callback#done", "fragment"),
        ("https://app.example.com/callback#", "fragment"),
        ("https://*.example.com/callback", "wildcards"),
        ("https://app.example.com/*", "wildcards"),
        ("https://user:pass@app.example.com/callback", "user name or password"),
        ("https://evil.example@app.example.com/callback", "user name or password"),
        ("/callback", "not an absolute address"),
        ("app.example.com/callback", "not an absolute address"),
        ("ftp://app.example.com/callback", "must use HTTPS"),
        ("javascript:alert(1)", "not an absolute address"),
        ("com.example.app:/callback", "not an absolute address"),
        ("https://app.example.com:99999/callback", "not a valid address"),
        ("https://app exa.com/callback", "spaces"),
        ("https://app.example.com/" + "a" * 2001, "too long"),
    ],
)
def test_redirect_uris_that_are_refused(operator_client: Client, uri: str, message: str) -> None:
    response = operator_client.post(ADD, user_app_data(redirect_uris=uri))
    assert response.status_code == 200
    assert message in field_errors(response, "redirect_uris")
    assert not App.objects.exists()
    assert not AuditEvent.objects.exists()


def test_an_app_for_users_needs_a_redirect_uri(operator_client: Client) -> None:
    response = operator_client.post(ADD, user_app_data(redirect_uris=""))
    assert "at least one redirect URI" in field_errors(response, "redirect_uris")
    assert not App.objects.exists()


def test_browser_origins_are_origins(operator_client: Client) -> None:
    for bad, message in (
        ("https://app.example.com/", "not an origin"),
        ("https://app.example.com/path", "not an origin"),
        ("http://app.example.com", "must use HTTPS"),
        ("https://*.example.com", "wildcards"),
    ):
        response = operator_client.post(ADD, user_app_data(cors_origins=bad))
        errors = response.context["adminform"].form.errors
        assert message in field_errors(response, "cors_origins"), (bad, errors)
    assert not App.objects.exists()
    good = operator_client.post(
        ADD, user_app_data(cors_origins="https://app.example.com\nhttp://localhost:5173")
    )
    assert good.status_code == 200
    assert App.objects.get().get_cors_origins() == [
        "https://app.example.com",
        "http://localhost:5173",
    ]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"scopes": ["openid", "users:read"]}, "scopes", "users' scopes. Remove: users:read"),
        ({"scopes": []}, "scopes", "This field is required"),
        ({"scopes": ["nope"]}, "scopes", "Select a valid choice"),
        ({"kind": "robot"}, "kind", "Select a valid choice"),
        ({"type": "secretive"}, "type", "Select a valid choice"),
        ({"name": "   "}, "name", "This field is required"),
        ({"name": "Bad\x07name"}, "name", "control characters"),
        ({"name": "x" * 101}, "name", "at most 100 characters"),
        ({"redirect_uris": "\n".join(f"https://a{n}.example.com/cb" for n in range(21))},
         "redirect_uris", "At most 20"),
    ],
)  # fmt: skip
def test_bad_input_for_an_app_for_users_saves_nothing(
    operator_client: Client, changes: dict[str, Any], field: str, message: str
) -> None:
    response = operator_client.post(ADD, user_app_data(**changes))
    assert response.status_code == 200
    assert message in field_errors(response, field)
    assert not App.objects.exists()
    assert not AuditEvent.objects.exists()


def test_groups_are_for_machine_clients_only(operator_client: Client) -> None:
    group = Group.objects.get(name="Operators")
    response = operator_client.post(ADD, user_app_data(groups=[group.pk]))
    assert "machine clients only" in field_errors(response, "groups")
    assert not App.objects.exists()


# --- A machine client -------------------------------------------------------------


def test_a_machine_client_gets_a_service_account_that_lists_users(
    boss: User, boss_client: Client, readers: Group, user: User
) -> None:
    app, secret = create_machine(boss_client, [readers])
    assert app.get_grant_types() == ["client_credentials"]
    assert app.get_response_types() == []
    assert app.get_redirect_uris() == []
    assert app.type == App.Type.CONFIDENTIAL
    assert app.check_secret(secret)

    account = MachineClient.objects.get(client=app).account
    assert account.username == "svc-nightly-sync"
    assert account.is_service_account
    assert account.is_staff
    assert not account.is_superuser
    assert not account.has_usable_password()
    assert account.email == ""
    assert not account.emailaddress_set.exists()
    assert list(account.groups.all()) == [readers]

    [event] = events(Action.OAUTH_APP_CREATED)
    assert event.actor == boss
    assert event.data["kind"] == "machine"
    assert event.data["service_account"] == "svc-nightly-sync"
    assert event.data["groups"] == ["Directory readers"]
    assert event.data["scopes"] == ["users:read"]

    reply = machine_token(RegisteredApp(app=app, secret=secret), "users:read")
    assert reply.status_code == 200, reply.content
    listed = ApiClient(reply.json()["access_token"]).get("/api/management/users")
    assert listed.status_code == 200, listed.content
    assert "alice" in [row["username"] for row in listed.json()["items"]]


def test_a_second_machine_client_with_the_same_name_gets_its_own_account(
    boss_client: Client, readers: Group
) -> None:
    first, _secret = create_machine(boss_client, [readers])
    response = boss_client.post(ADD, machine_data([readers]))
    assert response.status_code == 200
    second = App.objects.exclude(pk=first.pk).get()
    assert second.machine.account.username == f"svc-nightly-sync-{second.pk[:8]}"


def test_a_machine_client_without_the_group_permission_cannot_list_users(
    boss_client: Client,
) -> None:
    nothing = Group.objects.create(name="Nothing")
    app, secret = create_machine(boss_client, [nothing])
    token = machine_token(RegisteredApp(app=app, secret=secret), "users:read").json()
    assert_error(ApiClient(token["access_token"]).get("/api/management/users"), 403, "forbidden")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"type": "public"}, "type", "must be confidential"),
        ({"redirect_uris": REDIRECT_URI}, "redirect_uris", "no redirect URI"),
        ({"cors_origins": "https://app.example.com"}, "cors_origins", "no browser origin"),
        ({"scopes": ["users:read", "account:read"]}, "scopes", "Remove: account:read"),
    ],
)
def test_a_machine_client_follows_its_kinds_rules(
    boss_client: Client, readers: Group, changes: dict[str, Any], field: str, message: str
) -> None:
    response = boss_client.post(ADD, machine_data([readers], **changes))
    assert response.status_code == 200
    assert message in field_errors(response, field)
    assert not App.objects.exists()
    assert not User.objects.filter(username__startswith="svc-").exists()


@pytest.mark.parametrize("group", ["abc", "-1", "0", "9" * 30])
def test_a_group_id_that_is_none_is_a_form_error(boss_client: Client, group: str) -> None:
    response = boss_client.post(ADD, machine_data([]) | {"groups": [group]})
    assert response.status_code == 200
    assert "is not a valid value" in field_errors(response, "groups")
    assert not App.objects.exists()


def test_nobody_gives_a_machine_client_permissions_they_do_not_hold(
    operator: User, operator_client: Client, readers: Group
) -> None:
    response = operator_client.post(ADD, machine_data([readers]))
    assert response.status_code == 200
    assert "only permissions you hold yourself" in field_errors(response, "groups")
    assert "accounts.view_user" in field_errors(response, "groups")
    assert not App.objects.exists()
    assert not User.objects.filter(username__startswith="svc-").exists()

    # What the operator holds (the policy) they may give.
    operators = Group.objects.get(name="Operators")
    app, _secret = create_machine(
        operator_client, [operators], name="Policy bot", scopes=["policy:write"]
    )
    assert list(app.machine.account.groups.all()) == [operators]


def test_a_group_beyond_the_scopes_is_not_counted(operator_client: Client, readers: Group) -> None:
    """The scopes bound what the groups give: a group with users' reading, on a client
    that may only ask for policy:write, hands out nothing the operator lacks."""
    app, _secret = create_machine(
        operator_client, [readers], name="Policy bot", scopes=["policy:write"]
    )
    assert list(app.machine.account.groups.all()) == [readers]


def test_changing_a_machine_clients_groups_is_audited_and_checked(
    boss: User, boss_client: Client, operator_client: Client, readers: Group
) -> None:
    app, _secret = create_machine(boss_client, [readers])
    auditors = group_with("Auditors", "accounts.view_auditevent")
    data = machine_data([auditors], scopes=["users:read", "audit:read"])
    response = boss_client.post(change_url(app), data)
    assert response.status_code == 302, response.content[:3000]
    assert list(app.machine.account.groups.all()) == [auditors]
    [event] = events(Action.OAUTH_APP_CHANGED)
    assert event.actor == boss
    assert event.data["changed"]["groups"] == [["Directory readers"], ["Auditors"]]
    assert event.data["changed"]["scopes"] == [["users:read"], ["users:read", "audit:read"]]

    # An operator may change the app, but not hand out what they do not hold.
    refused = operator_client.post(change_url(app), data | {"name": "Renamed"})
    assert refused.status_code == 200
    assert "only permissions you hold" in field_errors(refused, "groups")
    app.refresh_from_db()
    assert app.name == "Nightly sync"
    assert len(events(Action.OAUTH_APP_CHANGED)) == 1


# --- Changing, new secrets, revoking, deleting --------------------------------------


def test_changing_an_app_is_audited_and_narrower_scopes_end_its_tokens(
    operator: User, operator_client: Client, auth_client: Client, user: User
) -> None:
    secret = shown_secret(operator_client.post(ADD, user_app_data()))
    app = App.objects.get()
    registered = RegisteredApp(app=app, secret=secret)
    code, verifier = authorize(auth_client, registered)
    access = exchange(registered, code, verifier).json()["access_token"]

    # The name and the addresses: the tokens live on.
    other = "https://app.example.com/other"
    response = operator_client.post(
        change_url(app), user_app_data(name="Notes 2", redirect_uris=f"{REDIRECT_URI}\n{other}")
    )
    assert response.status_code == 302, response.content[:3000]
    app.refresh_from_db()
    assert (app.name, app.get_redirect_uris()) == ("Notes 2", [REDIRECT_URI, other])
    [event] = events(Action.OAUTH_APP_CHANGED)
    assert event.data["changed"] == {
        "name": ["Notes", "Notes 2"],
        "redirect_uris": [[REDIRECT_URI], [REDIRECT_URI, other]],
    }
    assert "tokens_revoked" not in event.data
    assert ApiClient(access).get("/api/my-account").status_code == 200

    # Saving without a change records nothing.
    operator_client.post(
        change_url(app), user_app_data(name="Notes 2", redirect_uris=f"{REDIRECT_URI}\n{other}")
    )
    assert len(events(Action.OAUTH_APP_CHANGED)) == 1

    # A scope taken away: the tokens carrying it die, and the grant with them.
    narrower = operator_client.post(
        change_url(app),
        user_app_data(name="Notes 2", redirect_uris=REDIRECT_URI, scopes=["openid"]),
    )
    assert narrower.status_code == 302
    assert events(Action.OAUTH_APP_CHANGED)[-1].data["tokens_revoked"] == 2
    assert_error(ApiClient(access).get("/api/my-account"), 401, "unauthenticated")
    assert not AppGrant.objects.filter(client=app).exists()


def test_an_apps_page_offers_the_scopes_of_its_kind_only(
    boss_client: Client, readers: Group
) -> None:
    app, _secret = create_machine(boss_client, [readers])
    page = text(boss_client.get(change_url(app)))
    assert 'value="users:read"' in page
    assert 'value="account:read"' not in page
    response = boss_client.post(
        change_url(app), machine_data([readers], scopes=["users:read", "account:read"])
    )
    assert "Select a valid choice" in field_errors(response, "scopes")
    app.refresh_from_db()
    assert app.get_scopes() == ["users:read"]


def test_the_kind_and_type_stay_as_created(operator_client: Client) -> None:
    operator_client.post(ADD, user_app_data(type="public"))
    app = App.objects.get()
    operator_client.post(change_url(app), user_app_data(kind="machine", type="confidential"))
    app.refresh_from_db()
    assert app.type == App.Type.PUBLIC
    assert app.get_grant_types() == ["authorization_code", "refresh_token"]
    assert not MachineClient.objects.exists()


def test_a_new_secret_replaces_the_old_one_and_is_shown_once(
    boss: User, boss_client: Client, readers: Group
) -> None:
    app, old = create_machine(boss_client, [readers])
    confirm = boss_client.get(new_secret_url(app))
    assert confirm.status_code == 200
    app.refresh_from_db()
    assert app.check_secret(old)  # a GET changes nothing

    response = boss_client.post(new_secret_url(app))
    assert response.status_code == 200
    new = shown_secret(response)
    assert new != old
    app.refresh_from_db()
    assert app.check_secret(new)
    assert new not in app.secret
    assert machine_token(RegisteredApp(app=app, secret=old), "users:read").status_code == 401
    assert machine_token(RegisteredApp(app=app, secret=new), "users:read").status_code == 200
    [event] = events(Action.OAUTH_APP_SECRET_ROTATED)
    assert (event.actor, event.surface, event.data["client_id"]) == (boss, "admin", app.pk)
    assert new not in str(event.data)
    assert new not in boss_client.get(change_url(app)).content.decode()


def test_only_who_holds_a_machine_clients_permissions_gets_its_secret(
    boss_client: Client, operator_client: Client, readers: Group
) -> None:
    app, old = create_machine(boss_client, [readers])
    refused = operator_client.post(new_secret_url(app))
    assert refused.status_code == 403
    app.refresh_from_db()
    assert app.check_secret(old)
    assert not events(Action.OAUTH_APP_SECRET_ROTATED)


def test_revoke_all_tokens_stops_a_machine_clients_token(
    boss: User, boss_client: Client, readers: Group
) -> None:
    app, secret = create_machine(boss_client, [readers])
    registered = RegisteredApp(app=app, secret=secret)
    api = ApiClient(machine_token(registered, "users:read").json()["access_token"])
    assert api.get("/api/management/users").status_code == 200

    response = boss_client.post(
        LIST, {"action": "revoke_tokens_selected", "_selected_action": [app.pk]}
    )
    assert response.status_code == 302
    assert_error(api.get("/api/management/users"), 401, "unauthenticated")
    assert not Token.objects.filter(client=app).exists()
    [event] = events(Action.OAUTH_APP_TOKENS_REVOKED)
    assert (event.actor, event.surface) == (boss, "admin")
    assert event.data == {"client_id": app.pk, "name": "Nightly sync", "tokens_revoked": 1}

    # The app's own page does the same, after a confirmation.
    again = ApiClient(machine_token(registered, "users:read").json()["access_token"])
    assert boss_client.get(revoke_url(app)).status_code == 200
    assert again.get("/api/management/users").status_code == 200
    assert boss_client.post(revoke_url(app)).status_code == 302
    assert_error(again.get("/api/management/users"), 401, "unauthenticated")
    assert len(events(Action.OAUTH_APP_TOKENS_REVOKED)) == 2


def test_revoking_an_apps_tokens_ends_what_it_holds_for_users(
    operator_client: Client, auth_client: Client, user: User
) -> None:
    secret = shown_secret(operator_client.post(ADD, user_app_data()))
    app = App.objects.get()
    registered = RegisteredApp(app=app, secret=secret)
    code, verifier = authorize(auth_client, registered)
    tokens = exchange(registered, code, verifier).json()
    assert operator_client.post(revoke_url(app)).status_code == 302
    assert_error(ApiClient(tokens["access_token"]).get("/api/my-account"), 401, "unauthenticated")
    refreshed = Client().post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=registered.basic(),
    )
    assert refreshed.status_code == 400
    assert not AppGrant.objects.filter(user=user, client=app).exists()


def test_deleting_a_machine_client(boss: User, boss_client: Client, readers: Group) -> None:
    app, secret = create_machine(boss_client, [readers])
    api = ApiClient(
        machine_token(RegisteredApp(app=app, secret=secret), "users:read").json()["access_token"]
    )
    account = app.machine.account
    confirm = boss_client.get(reverse("admin:allauth_idp_oidc_client_delete", args=[app.pk]))
    assert confirm.status_code == 200
    response = boss_client.post(
        reverse("admin:allauth_idp_oidc_client_delete", args=[app.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not App.objects.filter(pk=app.pk).exists()
    assert not Token.objects.exists()
    assert not MachineClient.objects.exists()
    assert_error(api.get("/api/management/users"), 401, "unauthenticated")
    # The account stays, so the audit log still names who made the client's calls.
    account.refresh_from_db()
    assert (account.state, account.is_active) == (User.State.SUSPENDED, False)
    assert not account.groups.exists()
    [event] = events(Action.OAUTH_APP_DELETED)
    assert (event.actor, event.surface) == (boss, "admin")
    assert event.data["client_id"] == app.pk
    assert event.data["service_account"] == account.username
    assert event.data["tokens_revoked"] == 1


def test_deleting_apps_from_the_list(operator_client: Client) -> None:
    operator_client.post(ADD, user_app_data())
    operator_client.post(ADD, user_app_data(name="Calendar"))
    ids = list(App.objects.values_list("pk", flat=True))
    confirm = operator_client.post(LIST, {"action": "delete_selected", "_selected_action": ids})
    assert confirm.status_code == 200
    done = operator_client.post(
        LIST, {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert done.status_code == 302
    assert not App.objects.exists()
    assert len(events(Action.OAUTH_APP_DELETED)) == 2


# --- Who may ----------------------------------------------------------------------


@pytest.fixture
def an_app(operator_client: Client) -> App:
    operator_client.post(ADD, user_app_data())
    return App.objects.get()


@pytest.mark.parametrize("role", ["Support", "staff without a group"])
def test_staff_without_the_permissions_get_403(
    user_factory: Callable[..., User], an_app: App, role: str
) -> None:
    member = user_factory(username="sue", is_staff=True)
    if role == "Support":
        member.groups.add(Group.objects.get(name="Support"))
    client = staff_signed_in(member)
    before = AuditEvent.objects.count()
    secret_hash = an_app.secret
    for method, url, data in (
        ("get", LIST, None),
        ("get", ADD, None),
        ("post", ADD, user_app_data(name="Mine")),
        ("get", change_url(an_app), None),
        ("post", change_url(an_app), user_app_data(name="Renamed")),
        ("post", new_secret_url(an_app), {}),
        ("post", revoke_url(an_app), {}),
        ("post", delete_url(an_app), {"post": "yes"}),
        ("post", LIST, {"action": "revoke_tokens_selected", "_selected_action": [an_app.pk]}),
    ):  # fmt: skip
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, (method, url, response.status_code)
    an_app.refresh_from_db()
    assert (an_app.name, an_app.secret) == ("Notes", secret_hash)
    assert App.objects.count() == 1
    assert AuditEvent.objects.count() == before


def test_security_admins_see_apps_without_changing_them(
    user_factory: Callable[..., User], an_app: App
) -> None:
    member = user_factory(username="sec", is_staff=True)
    member.groups.add(Group.objects.get(name="Security admins"))
    client = staff_signed_in(member)
    assert client.get(LIST).status_code == 200
    page = client.get(change_url(an_app))
    assert page.status_code == 200
    assert "New secret" not in text(page)
    assert "Revoke all tokens" not in text(page)
    assert REDIRECT_URI in text(page)
    assert client.post(change_url(an_app), user_app_data(name="Renamed")).status_code == 403
    assert client.post(new_secret_url(an_app)).status_code == 403
    assert client.get(ADD).status_code == 403
    an_app.refresh_from_db()
    assert an_app.name == "Notes"


def test_the_pages_need_a_verified_second_factor(operator: User, an_app: App) -> None:
    client = Client()
    client.force_login(operator, backend="django.contrib.auth.backends.ModelBackend")
    for url in (LIST, ADD, change_url(an_app), new_secret_url(an_app)):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/admin/login/" in response["Location"]
    assert client.post(new_secret_url(an_app)).status_code == 302
    assert not events(Action.OAUTH_APP_SECRET_ROTATED)


def test_csrf_is_checked(operator: User, an_app: App) -> None:
    client = staff_signed_in(operator, Client(enforce_csrf_checks=True))
    before = an_app.secret
    assert client.post(ADD, user_app_data(name="Forged")).status_code == 403
    assert client.post(new_secret_url(an_app)).status_code == 403
    assert client.post(revoke_url(an_app)).status_code == 403
    assert (
        client.post(
            reverse("admin:allauth_idp_oidc_client_delete", args=[an_app.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    an_app.refresh_from_db()
    assert an_app.secret == before
    assert list(App.objects.values_list("name", flat=True)) == ["Notes"]
    assert len(events(Action.OAUTH_APP_CREATED)) == 1


def test_an_unknown_app_is_a_404(operator_client: Client) -> None:
    for url in ("/admin/allauth_idp_oidc/client/nope/new-secret/",
                "/admin/allauth_idp_oidc/client/nope/revoke-tokens/"):  # fmt: skip
        assert operator_client.get(url).status_code == 404
        assert operator_client.post(url).status_code == 404


def test_bad_ids_in_a_bulk_action_are_a_400(operator_client: Client) -> None:
    response = operator_client.post(
        LIST, {"action": "revoke_tokens_selected", "_selected_action": ["x" * 500]}
    )
    assert response.status_code == 400


# --- Query budgets ------------------------------------------------------------------


def test_the_pages_query_budget(
    boss_client: Client, readers: Group, django_assert_max_num_queries: Any
) -> None:
    """Six apps listed: a query per row would exceed the list's budget."""
    for n in range(3):
        create_machine(boss_client, [readers], name=f"Sync {n}")
        boss_client.post(ADD, user_app_data(name=f"App {n}"))
    app = App.objects.filter(machine__isnull=False).first()
    assert app is not None
    with django_assert_max_num_queries(8):
        assert boss_client.get(LIST).status_code == 200
    with django_assert_max_num_queries(9):
        assert boss_client.get(change_url(app)).status_code == 200
