"""The Management API's user lifecycle: create, edit, suspend and restore,
schedule and cancel the deletion, delete at once. Each answer is the
back-office's for the same action and role."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, PersonalAccessToken, User
from accounts.services.audit import Action
from tests.accounts.test_backoffice_roles import (
    OPERATORS,
    SECURITY,
    SUPERUSER,
    SUPPORT,
    is_signed_in,
    live_client,
    make_staff,
)
from tests.api.conftest import ApiClient, assert_error, make_token, management_client
from tests.conftest import staff_signed_in

pytestmark = pytest.mark.django_db

USERS = "/api/management/users"
STRONG = "Quiet-lantern-harbour-73"


def url(user: User | int, tail: str = "") -> str:
    pk = user if isinstance(user, int) else user.pk
    return f"{USERS}/{pk}{tail}"


@pytest.fixture
def staff(user_factory: Callable[..., User]) -> Callable[[str], User]:
    """staff(role) -> a staff member of that role (``make_staff``)."""
    return lambda role: make_staff(user_factory, role)


@pytest.fixture
def editor(user_factory: Callable[..., User]) -> User:
    """Staff with the "add user" and "change user" permissions, not a superuser
    (no role has them: superusers and such members create and edit accounts)."""
    member = user_factory(username="eddie", is_staff=True)
    member.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts", codename__in=["add_user", "change_user"]
        )
    )
    return member


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def only_event(action: str, actor: User) -> AuditEvent:
    found = events(action)
    assert len(found) == 1, found
    event = found[0]
    assert event.actor_id == actor.pk
    assert event.surface == "api"
    return event


def mails_to(address: str) -> list[Any]:
    return [m for m in mail.outbox if m.to == [address]]


def token_works(token: str) -> bool:
    return ApiClient(token).get("/api/my-account").status_code == 200


def query_count(call: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


def history(user: User, rows: int) -> None:
    """Rows that grow with an account's life: tokens, addresses, audit events."""
    for n in range(rows):
        make_token(user)
        EmailAddress.objects.create(user=user, email=f"old{n}-{user.username}@example.org")
        AuditEvent.objects.create(action=Action.SIGNED_IN, actor=user, subject=user)


# --- POST /users -------------------------------------------------------------------------


def test_creating_a_user_with_a_password(user_factory: Callable[..., User]) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    response = management_client(boss).post(
        USERS,
        {
            "username": "New.Person",
            "email": "  New.Person@Example.ORG ",
            "password": STRONG,
            "display_name": "Newcomer",
            "given_name": "Nora",
            "family_name": "Person",
            "language": "fr",
            "time_zone": "Europe/Paris",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    user = User.objects.get(pk=body["id"])
    assert (body["username"], body["email"], body["state"]) == (
        "new.person",
        "new.person@example.org",
        "active",
    )
    assert (body["given_name"], body["family_name"], body["language"]) == ("Nora", "Person", "fr")
    assert (body["is_staff"], body["is_superuser"]) == (False, False)
    assert user.check_password(STRONG)
    assert user.email_key == "new.person@example.org"
    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.primary, address.verified) == (
        "new.person@example.org",
        True,
        False,
    )
    event = only_event(Action.CREATED_BY_STAFF, boss)
    assert event.subject_id == user.pk
    assert event.data["after"]["username"] == "new.person"
    assert event.data["after"]["email"] == "new.person@example.org"
    assert event.data["password"] == "set"
    assert "password" not in event.data["fields"]
    assert STRONG not in str(event.data)
    assert user.password not in str(event.data)
    assert mail.outbox == []
    # The account signs in with its password; the unproven address is then checked.
    browser = Client()
    browser.post(reverse("account_login"), {"login": "new.person", "password": STRONG})
    assert any("new.person@example.org" in m.to for m in mail.outbox)


def test_an_invitation_lets_the_user_choose_a_password_with_the_reset_pages(
    user_factory: Callable[..., User],
) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    response = management_client(boss).post(
        USERS, {"username": "invitee", "email": "invitee@example.org", "send_invitation": True}
    )
    assert response.status_code == 201, response.content
    user = User.objects.get(username="invitee")
    assert not user.has_usable_password()
    assert only_event(Action.CREATED_BY_STAFF, boss).data["password"] == "invitation"
    (invitation,) = mail.outbox
    assert invitation.to == ["invitee@example.org"]
    assert "invitee" in invitation.body
    reset_url = re.search(r"https?://\S+/accounts/password/reset/", invitation.body)
    assert reset_url is not None, invitation.body
    assert reset_url.group(0) in invitation.alternatives[0][0]

    # The page the link opens: the address, then the code sent there, then a password.
    browser = Client()
    mail.outbox.clear()
    response = browser.post(reverse("account_reset_password"), {"email": "invitee@example.org"})
    assert response.status_code == 302, response.content
    (code_mail,) = mail.outbox
    code = re.search(r"^\s*([A-Z0-9]{4,}[A-Z0-9-]*)\s*$", code_mail.body, re.M)
    assert code is not None, code_mail.body
    response = browser.post(reverse("account_confirm_password_reset_code"), {"code": code.group(1)})
    assert response.status_code == 302, response.content
    response = browser.post(
        reverse("account_complete_password_reset"), {"password1": STRONG, "password2": STRONG}
    )
    assert response.status_code == 302, response.content
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert EmailAddress.objects.get(user=user).verified


def test_creating_without_a_password_or_an_invitation(user_factory: Callable[..., User]) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    response = management_client(boss).post(
        USERS, {"username": "quiet", "email": "quiet@example.org"}
    )
    assert response.status_code == 201, response.content
    user = User.objects.get(username="quiet")
    assert not user.has_usable_password()
    assert user.time_zone == "UTC"
    assert only_event(Action.CREATED_BY_STAFF, boss).data["password"] == "none"
    assert mail.outbox == []


def test_staff_with_the_add_permission_create_others_do_not(
    editor: User, staff: Callable[[str], User], user: User
) -> None:
    made = {"username": "made", "email": "made@example.org"}
    assert management_client(editor).post(USERS, made).status_code == 201
    members = {role: staff(role) for role in (SUPPORT, SECURITY, OPERATORS)}
    refused = [*(management_client(m) for m in members.values()), ApiClient(make_token(user))]
    for n, client in enumerate(refused):
        data = {"username": f"refused{n}", "email": f"refused{n}@example.org"}
        assert_error(client.post(USERS, data), 403, "forbidden")
    assert not User.objects.filter(username__startswith="refused").exists()
    assert events(Action.CREATED_BY_STAFF)[0].actor_id == editor.pk
    # The back-office's add page says the same.
    add_page = reverse("admin:accounts_user_add")
    assert staff_signed_in(editor).get(add_page).status_code == 200
    assert staff_signed_in(members[SUPPORT]).get(add_page).status_code == 403


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"username": "admin"}, "username"),
        ({"username": "ab"}, "username"),
        ({"username": "two  words"}, "username"),
        ({"username": "ALICE"}, "username"),
        ({"username": "a\x00b"}, "username"),
        ({"username": "x" * 151}, "username"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "ALICE@example.org"}, "email"),
        ({"email": "alice@exａmple.org"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "newbie@example.org"}, "password"),
        ({"password": STRONG, "send_invitation": True}, "send_invitation"),
        ({"display_name": "Bell\x07"}, "display_name"),
        ({"given_name": "Nul\x00"}, "given_name"),
        ({"family_name": "Tab\tbed"}, "family_name"),
        ({"language": "xx"}, "language"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"is_staff": True}, "is_staff"),
        ({"is_superuser": True}, "is_superuser"),
        ({"groups": ["Support"]}, "groups"),
    ],
)
def test_creating_refuses_bad_values_on_their_field(
    user_factory: Callable[..., User], user: User, changes: dict[str, Any], field: str
) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    data = {"username": "newbie", "email": "newbie@example.org"} | changes
    body = assert_error(management_client(boss).post(USERS, data), 422, "validation_error")
    assert list(body["details"]) == [field], body
    assert not User.objects.filter(email="newbie@example.org").exists()
    assert events(Action.CREATED_BY_STAFF) == []


def test_a_taken_username_or_address_says_so_as_the_back_office(
    user_factory: Callable[..., User], user: User
) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    client = management_client(boss)
    body = assert_error(
        client.post(USERS, {"username": "Alice", "email": "other@example.org"}),
        422,
        "validation_error",
    )
    taken = body["details"]["username"]
    assert taken == ["A user with that username already exists."]
    body = assert_error(
        client.post(USERS, {"username": "other", "email": "Alice@Example.org"}),
        422,
        "validation_error",
    )
    assert body["details"]["email"] == ["A user is already registered with this email address."]
    # The back-office's add form: the same rule and words for the username.
    browser = staff_signed_in(boss)
    page = browser.post(
        reverse("admin:accounts_user_add"),
        {"username": "ALICE", "usable_password": "false", "_save": "Save"},
    )
    assert page.status_code == 200
    assert page.context_data["adminform"].form.errors["username"] == taken


def test_the_back_office_add_form_follows_the_username_rules_too(
    user_factory: Callable[..., User],
) -> None:
    browser = staff_signed_in(make_staff(user_factory, SUPERUSER))
    page = browser.post(
        reverse("admin:accounts_user_add"),
        {"username": "support", "usable_password": "false", "_save": "Save"},
    )
    assert page.status_code == 200
    assert "reserved" in str(page.context_data["adminform"].form.errors["username"])
    response = browser.post(
        reverse("admin:accounts_user_add"),
        {"username": "Fine.Name", "usable_password": "false", "_save": "Save"},
    )
    assert response.status_code == 302
    assert User.objects.filter(username="fine.name").exists()


def test_creating_costs_the_same_whatever_exists(
    user_factory: Callable[..., User], django_assert_max_num_queries: Any
) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    client = management_client(boss)

    def create(name: str) -> None:
        data = {"username": name, "email": f"{name}@example.org", "send_invitation": True}
        assert client.post(USERS, data).status_code == 201

    few = query_count(lambda: create("first"))
    for n in range(20):
        history(user_factory(username=f"filler{n}"), 2)
    with django_assert_max_num_queries(few):
        create("second")
    assert few <= 25, few


# --- PATCH /users/{id} ---------------------------------------------------------------


def test_editing_the_profile(user_factory: Callable[..., User], user: User) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    response = management_client(boss).patch(
        url(user),
        {
            "display_name": "Al",
            "given_name": "Alicia",
            "family_name": "",
            "language": "fr",
            "time_zone": "Europe/Paris",
            "username": "Alicia.M",
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["display_name"], body["given_name"], body["family_name"]) == ("Al", "Alicia", "")
    assert (body["username"], body["language"], body["time_zone"]) == (
        "alicia.m",
        "fr",
        "Europe/Paris",
    )
    user.refresh_from_db()
    assert (user.username, user.first_name, user.email) == (
        "alicia.m",
        "Alicia",
        "alice@example.org",
    )
    event = only_event(Action.UPDATED_BY_STAFF, boss)
    assert set(event.data["fields"]) == {
        "display_name",
        "first_name",
        "language",
        "time_zone",
        "username",
    }
    assert event.data["before"]["username"] == "alice"
    # Unchanged values change nothing and say nothing; profile edits send no mail.
    assert mail.outbox == []
    again = management_client(boss).patch(url(user), {"display_name": "Al"})
    assert again.status_code == 200
    assert len(events(Action.UPDATED_BY_STAFF)) == 1


def test_setting_the_email_address(user_factory: Callable[..., User], user: User) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    EmailAddress.objects.create(user=user, email="second@example.org", verified=True)
    alice_token = make_token(user)
    response = management_client(boss).patch(url(user), {"email": " New@Example.org"})
    assert response.status_code == 200, response.content
    assert response.json()["email"] == "new@example.org"
    user.refresh_from_db()
    assert (user.email, user.email_key) == ("new@example.org", "new@example.org")
    rows = list(EmailAddress.objects.filter(user=user).values_list("email", "primary", "verified"))
    assert rows == [("new@example.org", True, False)]
    event = only_event(Action.UPDATED_BY_STAFF, boss)
    assert event.data["before"]["email"] == "alice@example.org"
    assert event.data["after"]["email"] == "new@example.org"
    (to_old,) = mails_to("alice@example.org")
    (to_new,) = mails_to("new@example.org")
    for message in (to_old, to_new):
        assert "support" in message.subject.lower()
        assert "alice@example.org" in message.body
        assert "new@example.org" in message.body
    assert "no longer receive" in to_old.body
    # The unproven address is no way to verify the owner; the account still works.
    assert token_works(alice_token)
    verification = ApiClient(alice_token)
    assert verification.post("/api/verifications/code", {"channel": "email"}).status_code != 200


def test_an_address_the_user_had_proven_stays_verified(
    user_factory: Callable[..., User], user: User
) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    EmailAddress.objects.create(user=user, email="second@example.org", verified=True)
    response = management_client(boss).patch(url(user), {"email": "second@example.org"})
    assert response.status_code == 200
    assert list(EmailAddress.objects.filter(user=user).values_list("email", "verified")) == [
        ("second@example.org", True)
    ]


def test_setting_changing_and_removing_the_phone(
    user_factory: Callable[..., User], user: User
) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    client = management_client(boss)
    response = client.patch(url(user), {"phone": "+33 6 12 34 56 78"})
    assert response.status_code == 200, response.content
    assert response.json()["phone"] == "+33612345678"
    user.refresh_from_db()
    assert (user.phone, user.phone_verified) == ("+33612345678", False)
    (added,) = mails_to("alice@example.org")
    assert "+33 6 12 34 56 78" in added.body
    assert "added" in added.body
    event = only_event(Action.UPDATED_BY_STAFF, boss)
    assert event.data["after"]["phone"] == "+33612345678"

    User.objects.filter(pk=user.pk).update(phone_verified=True)
    mail.outbox.clear()
    assert client.patch(url(user), {"phone": "+33 6 98 76 54 32"}).status_code == 200
    user.refresh_from_db()
    assert (user.phone, user.phone_verified) == ("+33698765432", False)
    (changed,) = mail.outbox
    assert "+33 6 12 34 56 78" in changed.body
    assert "+33 6 98 76 54 32" in changed.body

    mail.outbox.clear()
    assert client.patch(url(user), {"phone": ""}).status_code == 200
    user.refresh_from_db()
    assert user.phone == ""
    (removed,) = mail.outbox
    assert "removed" in removed.body


def test_both_at_once_are_told_at_the_old_address(
    user_factory: Callable[..., User], user: User
) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    response = management_client(boss).patch(
        url(user), {"email": "new@example.org", "phone": "+33612345678"}
    )
    assert response.status_code == 200, response.content
    subjects = sorted(m.subject for m in mails_to("alice@example.org"))
    assert len(subjects) == 2
    assert any("phone" in s for s in subjects)
    assert len(mails_to("new@example.org")) == 1
    assert len(events(Action.UPDATED_BY_STAFF)) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"username": "root"}, "username"),
        ({"username": "bob"}, "username"),
        ({"username": ""}, "username"),
        ({"username": None}, "username"),
        ({"email": "bob@example.org"}, "email"),
        ({"email": "BOB@example.org"}, "email"),
        ({"email": "nope"}, "email"),
        ({"email": ""}, "email"),
        ({"email": "a\x00@example.org"}, "email"),
        ({"phone": "+33 1"}, "phone"),
        ({"phone": "+33 6 00 00 00 01"}, "phone"),
        ({"phone": "\x00"}, "phone"),
        ({"phone": "1" * 33}, "phone"),
        ({"display_name": "x" * 151}, "display_name"),
        ({"given_name": "line\nbreak"}, "given_name"),
        ({"language": "klingon"}, "language"),
        ({"time_zone": ""}, "time_zone"),
        ({"is_staff": True}, "is_staff"),
        ({"password": STRONG}, "password"),
        ({"state": "active"}, "state"),
    ],
)
def test_editing_refuses_bad_values_on_their_field(
    user_factory: Callable[..., User], user: User, changes: dict[str, Any], field: str
) -> None:
    user_factory(username="bob", phone="+33600000001")
    boss = make_staff(user_factory, SUPERUSER)
    before = User.objects.filter(pk=user.pk).values().get()
    body = assert_error(management_client(boss).patch(url(user), changes), 422, "validation_error")
    assert list(body["details"]) == [field], body
    assert User.objects.filter(pk=user.pk).values().get() == before
    assert events(Action.UPDATED_BY_STAFF) == []
    assert mail.outbox == []


def test_who_may_edit(
    editor: User, user_factory: Callable[..., User], staff: Callable[[str], User], user: User
) -> None:
    """The back-office's rule: the "change user" permission; other staff and
    superusers are edited by superusers only; one's own profile, yes."""
    boss = make_staff(user_factory, SUPERUSER)
    colleague = staff(SUPPORT)
    client = management_client(editor)
    assert client.patch(url(user), {"display_name": "By editor"}).status_code == 200
    for target in (colleague, boss):
        assert_error(client.patch(url(target), {"display_name": "Hacked"}), 403, "forbidden")
        assert User.objects.get(pk=target.pk).display_name != "Hacked"
    assert management_client(boss).patch(url(colleague), {"display_name": "Sue"}).status_code == 200
    assert client.patch(url(editor), {"display_name": "Me"}).status_code == 200
    for role in (SUPPORT, SECURITY, OPERATORS):
        member = colleague if role == SUPPORT else staff(role)
        assert_error(
            management_client(member).patch(url(user), {"display_name": "No"}), 403, "forbidden"
        )
    assert_error(
        ApiClient(make_token(user)).patch(url(user), {"display_name": "No"}), 403, "forbidden"
    )
    assert User.objects.get(pk=user.pk).display_name == "By editor"
    # The back-office: the same refusals on the change page.
    editor_browser = staff_signed_in(editor)
    page = reverse("admin:accounts_user_change", args=[colleague.pk])
    assert editor_browser.post(page, {"username": colleague.username}).status_code == 403
    support_browser = staff_signed_in(colleague)
    page = reverse("admin:accounts_user_change", args=[user.pk])
    assert support_browser.post(page, {"username": "alice"}).status_code == 403


def test_nobody_sets_their_own_address_or_number_here(user_factory: Callable[..., User]) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    client = management_client(boss)
    for change in ({"email": "me@example.net"}, {"phone": "+33612345678"}):
        assert_error(client.patch(url(boss), change), 403, "forbidden")
    boss.refresh_from_db()
    assert (boss.email, boss.phone) == ("staff_superuser@example.org", "")


def test_unknown_and_huge_ids_are_404_for_every_endpoint(user_factory: Callable[..., User]) -> None:
    client = management_client(make_staff(user_factory, SUPERUSER))
    calls = [
        ("patch", "", {"display_name": "x"}),
        ("post", "/suspension", {"reason": "Spam"}),
        ("delete", "/suspension", None),
        ("post", "/deletion", {"reason": "Asked"}),
        ("delete", "/deletion", None),
        ("delete", "", None),
    ]
    for pk in (999999, 2**70):
        for method, tail, data in calls:
            response = getattr(client, method)(url(pk, tail), data)
            assert_error(response, 404, "not_found")


def test_editing_costs_the_same_whatever_the_history(
    user_factory: Callable[..., User], django_assert_max_num_queries: Any
) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    client = management_client(boss)
    small, large = user_factory(username="small"), user_factory(username="large")
    history(small, 1)
    history(large, 20)

    def edit(target: User) -> None:
        data = {"display_name": "X", "email": f"n-{target.username}@example.org", "phone": ""}
        assert client.patch(url(target), data).status_code == 200

    few = query_count(lambda: edit(small))
    with django_assert_max_num_queries(few):
        edit(large)
    # The purge deletes from every table holding the account's rows (OAuth tokens
    # and connected apps included): a fixed number of queries, the most of all.
    assert few <= 44, few


# --- Suspension ------------------------------------------------------------------------


def test_suspending_ends_sessions_and_tokens_and_tells_the_user(
    staff: Callable[[str], User], user: User
) -> None:
    member = staff(SUPPORT)
    browser = live_client(user)
    token = make_token(user)
    until = timezone.now() + timedelta(days=3)
    response = management_client(member).post(
        url(user, "/suspension"), {"reason": "  Spam  ", "until": until.isoformat()}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["state_reason"]) == ("suspended", "Spam")
    user.refresh_from_db()
    assert (user.state, user.is_active) == (User.State.SUSPENDED, False)
    assert abs((user.suspended_until - until).total_seconds()) < 1
    event = only_event(Action.SUSPENDED, member)
    assert (event.subject_id, event.data["reason"]) == (user.pk, "Spam")
    assert not is_signed_in(browser)
    assert not token_works(token)
    assert not PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    (message,) = mails_to("alice@example.org")
    assert "suspended" in message.body


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"reason": ""},
        {"reason": "   "},
        {"reason": "x" * 501},
        {"reason": "Spam\x00"},
        {"reason": "Spam", "until": "2001-01-01T00:00:00Z"},
        {"reason": "Spam", "until": "tomorrow"},
        {"reason": "Spam", "extra": 1},
    ],
)
def test_a_suspension_needs_a_reason_and_a_future_end(
    staff: Callable[[str], User], user: User, data: dict[str, Any]
) -> None:
    response = management_client(staff(SUPPORT)).post(url(user, "/suspension"), data)
    assert_error(response, 422, "validation_error")
    assert User.objects.get(pk=user.pk).state == User.State.ACTIVE
    assert events(Action.SUSPENDED) == []


def test_restoring_a_suspended_account(staff: Callable[[str], User], user: User) -> None:
    member = staff(SUPPORT)
    client = management_client(member)
    assert client.post(url(user, "/suspension"), {"reason": "Spam"}).status_code == 200
    mail.outbox.clear()
    response = client.delete(url(user, "/suspension"))
    assert response.status_code == 200, response.content
    assert (response.json()["state"], response.json()["state_reason"]) == ("active", "")
    only_event(Action.RESTORED, member)
    (message,) = mails_to("alice@example.org")
    assert "works again" in message.body
    assert token_works(make_token(user))


def test_wrong_states_are_409(staff: Callable[[str], User], user: User) -> None:
    member = staff(SECURITY)
    client = management_client(member)
    body = assert_error(client.delete(url(user, "/suspension")), 409, "wrong_state")
    assert "not suspended" in body["message"]
    assert_error(client.delete(url(user, "/deletion")), 409, "wrong_state")
    assert client.post(url(user, "/suspension"), {"reason": "Spam"}).status_code == 200
    assert_error(client.post(url(user, "/suspension"), {"reason": "Again"}), 409, "wrong_state")
    assert_error(client.post(url(user, "/deletion"), {"reason": "Asked"}), 409, "wrong_state")
    # Cancelling a deletion does not lift a suspension, and the other way round.
    assert_error(client.delete(url(user, "/deletion")), 409, "wrong_state")
    assert User.objects.get(pk=user.pk).state == User.State.SUSPENDED
    assert client.delete(url(user, "/suspension")).status_code == 200
    assert client.post(url(user, "/deletion"), {"reason": "Asked"}).status_code == 200
    assert_error(client.delete(url(user, "/suspension")), 409, "wrong_state")
    assert User.objects.get(pk=user.pk).state == User.State.PENDING_DELETION
    assert len(events(Action.RESTORED)) == 1
    assert events(Action.DELETION_CANCELLED) == []


# --- Deletion ----------------------------------------------------------------------------


def test_scheduling_a_deletion(staff: Callable[[str], User], user: User, settings: Any) -> None:
    member = staff(SECURITY)
    browser = live_client(user)
    token = make_token(user)
    response = management_client(member).post(url(user, "/deletion"), {"reason": "Asked by mail"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "pending_deletion"
    user.refresh_from_db()
    expected = timezone.now() + timedelta(days=settings.ACCOUNT_DELETION_GRACE_DAYS)
    assert user.deletion_scheduled_for is not None
    assert abs((user.deletion_scheduled_for - expected).total_seconds()) < 60
    event = only_event(Action.DELETION_SCHEDULED, member)
    assert event.data["reason"] == "Asked by mail"
    assert not is_signed_in(browser)
    assert not token_works(token)
    (message,) = mails_to("alice@example.org")
    assert "delet" in message.subject.lower()


@pytest.mark.parametrize("data", [{}, {"reason": " "}, {"reason": "x" * 501}, {"reason": "\x00"}])
def test_a_deletion_needs_a_reason(
    staff: Callable[[str], User], user: User, data: dict[str, Any]
) -> None:
    response = management_client(staff(SECURITY)).post(url(user, "/deletion"), data)
    assert_error(response, 422, "validation_error")
    assert User.objects.get(pk=user.pk).state == User.State.ACTIVE


def test_cancelling_a_deletion_is_the_back_offices_restore(
    staff: Callable[[str], User], user: User
) -> None:
    """Its permission is the back-office restore's ("suspend and restore users"):
    Support may cancel a deletion Security admins scheduled, as on the user's page."""
    assert (
        management_client(staff(SECURITY))
        .post(url(user, "/deletion"), {"reason": "Asked"})
        .status_code
        == 200
    )
    member = staff(SUPPORT)
    mail.outbox.clear()
    response = management_client(member).delete(url(user, "/deletion"))
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "active"
    assert response.json()["deletion_scheduled_for"] is None
    only_event(Action.DELETION_CANCELLED, member)
    assert len(mails_to("alice@example.org")) == 1
    assert token_works(make_token(user))


def test_deleting_at_once(staff: Callable[[str], User], user: User) -> None:
    member = staff(SECURITY)
    pk = user.pk
    AuditEvent.objects.create(action=Action.SIGNED_IN, actor=user, subject=user)
    response = management_client(member).delete(url(user))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True
    assert body["pseudonym"].startswith("deleted-user-")
    assert not User.objects.filter(pk=pk).exists()
    assert not EmailAddress.objects.filter(email="alice@example.org").exists()
    purged = only_event(Action.ACCOUNT_PURGED, member)
    assert purged.subject_label == body["pseudonym"]
    assert AuditEvent.objects.filter(subject_label=body["pseudonym"]).count() == 2
    assert_error(management_client(member).get(url(pk)), 404, "not_found")


# --- Who may: roles, guard rails, and the back-office's answers --------------------------


LIFECYCLE = {
    # name: (method, tail, body, the back-office's permission)
    "suspend": ("post", "/suspension", {"reason": "Spam"}, "suspend_user"),
    "unsuspend": ("delete", "/suspension", None, "suspend_user"),
    "schedule_deletion": ("post", "/deletion", {"reason": "Asked"}, "schedule_user_deletion"),
    "cancel_deletion": ("delete", "/deletion", None, "suspend_user"),
    "purge": ("delete", "", None, "purge_user"),
}
PREPARE = {
    "unsuspend": "suspend_user",
    "cancel_deletion": "schedule_user_deletion",
}
ROLES_ALLOWED = {
    SUPPORT: {"suspend", "unsuspend", "cancel_deletion"},
    SECURITY: set(LIFECYCLE),
    OPERATORS: set(),
    SUPERUSER: set(LIFECYCLE),
}


def prepare(name: str, target: User) -> None:
    """Puts ``target`` in the state the action applies to."""
    from accounts.services.deletion import account_deletion_schedule
    from accounts.services.moderation import user_suspend

    if name == "unsuspend":
        user_suspend(ctx=None, user=target, reason="Earlier")
    elif name == "cancel_deletion":
        account_deletion_schedule(ctx=None, user=target, reason="Earlier")


def call(client: ApiClient, name: str, target: User | int) -> Any:
    method, tail, body, _permission = LIFECYCLE[name]
    return getattr(client, method)(url(target, tail), body)


@pytest.mark.parametrize("role", [SUPPORT, SECURITY, OPERATORS, SUPERUSER])
@pytest.mark.parametrize("name", list(LIFECYCLE))
def test_each_role_gets_its_permissions_answer(
    user_factory: Callable[..., User], role: str, name: str
) -> None:
    member = make_staff(user_factory, role)
    target = user_factory(username="target")
    prepare(name, target)
    client = management_client(member)
    before = list(AuditEvent.objects.values_list("pk", flat=True))
    response = call(client, name, target)
    if name in ROLES_ALLOWED[role]:
        assert response.status_code == 200, response.content
    else:
        assert_error(response, 403, "forbidden")
        assert list(AuditEvent.objects.values_list("pk", flat=True)) == before


@pytest.mark.parametrize("name", list(LIFECYCLE))
def test_end_users_tokens_get_403(user_factory: Callable[..., User], user: User, name: str) -> None:
    target = user_factory(username="target")
    prepare(name, target)
    assert_error(call(ApiClient(make_token(user)), name, target), 403, "forbidden")
    assert_error(call(ApiClient(make_token(user)), name, user), 403, "forbidden")
    assert User.objects.filter(pk=target.pk).exists()


# A suspended or pending staff member has no working token: restoring oneself
# cannot even be asked.
ON_ONESELF = ["suspend", "schedule_deletion", "purge"]


@pytest.mark.parametrize(
    ("name", "who"),
    [
        *((name, "themselves") for name in ON_ONESELF),
        *((name, who) for name in LIFECYCLE for who in ("staff", "a superuser")),
    ],
)
def test_nobody_acts_on_themselves_and_only_superusers_on_staff(
    user_factory: Callable[..., User], name: str, who: str
) -> None:
    member = make_staff(user_factory, SECURITY)
    if who == "themselves":
        target = member
    elif who == "staff":
        target = make_staff(user_factory, SUPPORT, username="colleague")
    else:
        target = make_staff(user_factory, SUPERUSER, username="chief")
    client = management_client(member)
    prepare(name, target)
    before = User.objects.filter(pk=target.pk).values().get()
    body = assert_error(call(client, name, target), 403, "forbidden")
    assert "superusers" in body["message"]
    assert User.objects.filter(pk=target.pk).values().get() == before


@pytest.mark.parametrize("name", list(LIFECYCLE))
def test_a_superuser_acts_on_staff_but_not_on_themselves(
    user_factory: Callable[..., User], name: str
) -> None:
    boss = make_staff(user_factory, SUPERUSER)
    colleague = make_staff(user_factory, SECURITY, username="colleague")
    client = management_client(boss)
    prepare(name, colleague)
    assert call(client, name, colleague).status_code == 200
    if name in ON_ONESELF:
        assert_error(call(client, name, boss), 403, "forbidden")


@pytest.mark.parametrize(
    ("name", "role", "allowed"),
    [
        ("suspend", SUPPORT, True),
        ("suspend", OPERATORS, False),
        ("purge", SECURITY, True),
        ("purge", SUPPORT, False),
    ],
)
def test_the_same_answer_as_the_back_offices_page(
    user_factory: Callable[..., User], name: str, role: str, allowed: bool
) -> None:
    member = make_staff(user_factory, role)
    in_api = user_factory(username="apitarget")
    in_admin = user_factory(username="target")
    api_answer = call(management_client(member), name, in_api)
    page = {"suspend": "admin:accounts_user_suspend", "purge": "admin:accounts_user_purge"}[name]
    form = {"suspend": {"reason": "Spam"}, "purge": {"username": "target"}}[name]
    admin_answer = staff_signed_in(member).post(reverse(page, args=[in_admin.pk]), form)
    if allowed:
        assert api_answer.status_code == 200, api_answer.content
        assert admin_answer.status_code == 302
    else:
        assert_error(api_answer, 403, "forbidden")
        assert admin_answer.status_code == 403
    after_api = User.objects.filter(pk=in_api.pk).values_list("state", flat=True).first()
    after_admin = User.objects.filter(pk=in_admin.pk).values_list("state", flat=True).first()
    assert after_api == after_admin
    # Each surface recorded its own.
    recorded = AuditEvent.objects.exclude(action=Action.TOKEN_CREATED)
    assert sorted(recorded.values_list("surface", flat=True)) == (
        ["admin", "api"] if allowed else []
    )


# --- Query budgets -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LIFECYCLE))
def test_each_state_change_costs_the_same_whatever_the_history(
    user_factory: Callable[..., User], name: str, django_assert_max_num_queries: Any
) -> None:
    """Tokens, addresses and audit events do not add queries (each live session
    of the account does: it is ended in its session store)."""
    boss = make_staff(user_factory, SUPERUSER)
    client = management_client(boss)
    small, large = user_factory(username="small"), user_factory(username="large")
    history(small, 1)
    history(large, 20)
    for target in (small, large):
        prepare(name, target)
    few = query_count(lambda: call(client, name, small))
    with django_assert_max_num_queries(few):
        assert call(client, name, large).status_code == 200
    # The purge deletes from every table holding the account's rows (OAuth tokens
    # and connected apps included): a fixed number of queries, the most of all.
    assert few <= 44, few


# --- One path, several modules ------------------------------------------------------------


def test_every_method_of_a_path_reaches_its_own_module(
    user_factory: Callable[..., User], user: User
) -> None:
    """``GET /users/{id}`` lives in ``users``, ``PATCH`` and ``DELETE`` here: each
    method reaches its operation, and another gets 405 with all of them allowed."""
    client = management_client(make_staff(user_factory, SUPERUSER))
    assert client.get(url(user)).json()["username"] == "alice"
    assert client.patch(url(user), {"display_name": "Both"}).json()["display_name"] == "Both"
    response = client.put(url(user), {})
    assert_error(response, 405, "method_not_allowed")
    assert set(response["Allow"].split(", ")) == {"GET", "PATCH", "DELETE"}
    document = Client().get("/api/openapi.json").json()
    assert set(document["paths"]["/api/management/users/{user_id}"]) == {"get", "patch", "delete"}


def test_a_suspension_end_with_an_offset_beyond_postgresqls_is_stored_in_utc(
    user_factory: Any, user: User
) -> None:
    from datetime import UTC, datetime
    from datetime import timezone as tz

    from django.contrib.auth.models import Group

    from tests.api.conftest import management_client

    support = user_factory(username="sue2", is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    # A valid ISO time whose offset (+22:37) PostgreSQL cannot store as given.
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    sent = until.astimezone(tz(timedelta(hours=22, minutes=37)))
    response = management_client(support).post(
        f"/api/management/users/{user.pk}/suspension",
        {"reason": "Spam reported", "until": sent.isoformat()},
    )
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.suspended_until == until
