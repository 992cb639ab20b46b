"""Privileges in the back-office: only superusers change staff status, superuser
status, groups and permissions; nobody changes their own; every change is audited
and told to the other superusers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.test import Client

from accounts.actor import Actor
from accounts.flows.errors import AccessDenied
from accounts.flows.moderation import save_user_by_staff
from accounts.models import AuditEvent, User
from accounts.services.moderation import user_suspend
from tests.accounts.test_backoffice_users import change_form_data, user_page
from tests.conftest import staff_signed_in

pytestmark = pytest.mark.django_db

PRIVILEGES = ("is_staff", "is_superuser", "groups", "user_permissions")


signed_in = staff_signed_in


def privileges_of(user: User) -> dict[str, Any]:
    user = User.objects.get(pk=user.pk)
    return {
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": set(user.groups.values_list("name", flat=True)),
        "permissions": set(user.user_permissions.values_list("codename", flat=True)),
    }


def privilege_mails() -> list[Any]:
    return [m for m in mail.outbox if "privileges" in m.subject]


@pytest.fixture
def editor(user_factory: Callable[..., User]) -> User:
    """Staff who may edit accounts, without being a superuser."""
    member = user_factory(username="editor", is_staff=True, display_name="Editor")
    member.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts", codename__in=["view_user", "change_user"]
        )
    )
    return member


@pytest.fixture
def boss(user_factory: Callable[..., User]) -> User:
    return user_factory(username="boss", is_staff=True, is_superuser=True)


@pytest.fixture
def other_superusers(user_factory: Callable[..., User]) -> list[User]:
    root = user_factory(username="root", is_staff=True, is_superuser=True)
    retired = user_factory(username="retired", is_staff=True, is_superuser=True)
    user_suspend(ctx=None, user=retired, reason="Left the company")
    return [root, retired]


def escalation(client: Client, target: User) -> dict[str, Any]:
    """The target's change form, posted back with every privilege ticked and a new
    display name."""
    data = change_form_data(client, target, display_name="Renamed")
    data.update(
        {
            "is_staff": "on",
            "is_superuser": "on",
            "groups": [str(Group.objects.get(name="Security admins").pk)],
            "user_permissions": [str(Permission.objects.get(codename="purge_user").pk)],
        }
    )
    return data


# --- Staff who are not superusers ---------------------------------------------------------


@pytest.mark.parametrize("whom", ["themselves", "another user"])
def test_staff_who_are_not_superusers_cannot_change_privileges(
    editor: User, user: User, boss: User, whom: str
) -> None:
    client = signed_in(editor)
    target = editor if whom == "themselves" else user
    before = privileges_of(target)
    mail.outbox.clear()

    response = client.post(user_page(target), escalation(client, target))

    # The other fields are saved; the posted privileges are not form fields, ignored.
    assert response.status_code == 302
    assert response["Location"] == "/admin/accounts/user/"
    assert privileges_of(target) == before
    target.refresh_from_db()
    assert target.display_name == "Renamed"
    event = AuditEvent.objects.get(subject=target, action="account.updated_by_staff")
    assert event.data == {
        "fields": ["display_name"],
        "before": {"display_name": "Editor" if whom == "themselves" else "Alice Martin"},
        "after": {"display_name": "Renamed"},
    }
    assert privilege_mails() == []


def test_staff_who_are_not_superusers_see_the_privileges_read_only(
    editor: User, user: User
) -> None:
    client = signed_in(editor)
    for target in (editor, user):
        page = client.get(user_page(target))
        assert page.status_code == 200
        assert set(page.context_data["adminform"].form.fields).isdisjoint(PRIVILEGES)
        assert set(PRIVILEGES) <= set(page.context_data["adminform"].readonly_fields)


@pytest.mark.parametrize(
    "change",
    [
        {"is_superuser": True},
        {"is_staff": "toggle"},
        {"groups": ["Security admins"]},
        {"permissions": ["purge_user"]},
    ],
    ids=["is_superuser", "is_staff", "groups", "permissions"],
)
def test_the_flow_refuses_staff_who_are_not_superusers(
    editor: User, user: User, change: dict[str, Any]
) -> None:
    before = {u.pk: privileges_of(u) for u in (editor, user)}
    for target in (editor, user):
        with pytest.raises(AccessDenied, match="Only superusers") as refused:
            save_user_by_staff(ctx=Actor(user=editor, surface="api"), **edit(target, change))
        assert refused.value.status == 403
    assert {u.pk: privileges_of(u) for u in (editor, user)} == before
    assert not AuditEvent.objects.filter(action="account.updated_by_staff").exists()
    assert privilege_mails() == []


def edit(target: User, change: dict[str, Any]) -> dict[str, Any]:
    """The flow's arguments for ``change`` of ``target`` (as the Management API will
    call it)."""
    target = User.objects.get(pk=target.pk)
    kwargs: dict[str, Any] = {"user": target, "changed": []}
    for name in ("is_staff", "is_superuser"):
        if name in change:
            value = change[name]
            setattr(target, name, not getattr(target, name) if value == "toggle" else value)
            kwargs["changed"].append(name)
    if "groups" in change:
        kwargs["groups"] = Group.objects.filter(name__in=change["groups"])
    if "permissions" in change:
        kwargs["permissions"] = Permission.objects.filter(codename__in=change["permissions"])
    return kwargs


# --- Superusers --------------------------------------------------------------------------


def test_a_superuser_changes_another_users_staff_status(
    boss: User, user: User, other_superusers: list[User]
) -> None:
    client = signed_in(boss)
    mail.outbox.clear()

    response = client.post(user_page(user), change_form_data(client, user, is_staff="on"))

    assert response.status_code == 302
    assert privileges_of(user)["is_staff"] is True
    event = AuditEvent.objects.get(subject=user, action="account.updated_by_staff")
    assert event.actor == boss
    assert event.data == {
        "fields": ["is_staff"],
        "before": {"is_staff": "False"},
        "after": {"is_staff": "True"},
    }
    # The other active superuser is told; not the one who made the change, not a
    # deactivated superuser, not the user.
    sent = privilege_mails()
    assert [m.to for m in sent] == [["root@example.org"]]
    assert sent[0].subject == "[Account portal] The privileges of alice were changed"
    assert "boss changed the privileges of the account alice in the back-office:" in sent[0].body
    assert "- Staff status: no → yes" in sent[0].body
    assert "Superuser status" not in sent[0].body
    assert f"/admin/accounts/user/{user.pk}/change/" in sent[0].body


def test_a_superuser_changes_groups_and_permissions_of_another_user(
    boss: User, user: User, other_superusers: list[User]
) -> None:
    mail.outbox.clear()
    save_user_by_staff(
        ctx=Actor(user=boss, surface="api"),
        **edit(user, {"groups": ["Support"], "permissions": ["purge_user"]}),
    )
    assert privileges_of(user)["groups"] == {"Support"}
    assert privileges_of(user)["permissions"] == {"purge_user"}
    event = AuditEvent.objects.get(subject=user, action="account.updated_by_staff")
    assert event.data == {
        "groups_before": [],
        "groups_after": ["Support"],
        "permissions_before": [],
        "permissions_after": ["accounts.purge_user"],
    }
    [sent] = privilege_mails()
    assert sent.to == ["root@example.org"]
    assert "- Groups: — → Support" in sent.body
    assert "- Permissions: — → accounts.purge_user" in sent.body


def test_a_superuser_cannot_change_their_own_privileges_in_the_admin(
    boss: User, other_superusers: list[User]
) -> None:
    client = signed_in(boss)
    page = client.get(user_page(boss))
    assert set(page.context_data["adminform"].form.fields).isdisjoint(PRIVILEGES)
    data = change_form_data(client, boss, display_name="The boss")
    data.pop("is_superuser", None)  # unticked
    data["groups"] = [str(Group.objects.get(name="Support").pk)]
    before = privileges_of(boss)
    mail.outbox.clear()

    response = client.post(user_page(boss), data)

    assert response.status_code == 302
    assert privileges_of(boss) == before
    assert privileges_of(boss)["is_superuser"] is True
    boss.refresh_from_db()
    assert boss.display_name == "The boss"
    assert privilege_mails() == []


@pytest.mark.parametrize(
    "change",
    [{"is_superuser": False}, {"is_staff": False}, {"groups": ["Support"]}],
    ids=["is_superuser", "is_staff", "groups"],
)
def test_the_flow_refuses_a_superuser_changing_their_own_privileges(
    boss: User, other_superusers: list[User], change: dict[str, Any]
) -> None:
    before = privileges_of(boss)
    with pytest.raises(AccessDenied, match="nobody changes their own"):
        save_user_by_staff(ctx=Actor(user=boss, surface="api"), **edit(boss, change))
    assert privileges_of(boss) == before
    assert not AuditEvent.objects.filter(action="account.updated_by_staff").exists()
    assert privilege_mails() == []


def test_the_flow_saves_a_superusers_own_other_fields(boss: User) -> None:
    boss = User.objects.get(pk=boss.pk)
    boss.display_name = "The boss"
    save_user_by_staff(ctx=Actor(user=boss, surface="api"), user=boss, changed=["display_name"])
    assert User.objects.get(pk=boss.pk).display_name == "The boss"


# --- Other staff accounts are out of reach without being a superuser ---------------------


def test_staff_cannot_edit_another_staff_account(editor: User, boss: User) -> None:
    client = signed_in(editor)
    data = change_form_data(client, boss, display_name="Renamed")

    response = client.post(user_page(boss), data)

    assert response.status_code == 403
    assert User.objects.get(pk=boss.pk).display_name != "Renamed"
    assert not AuditEvent.objects.filter(action="account.updated_by_staff").exists()


def test_the_flow_refuses_staff_editing_another_staff_account(editor: User, boss: User) -> None:
    boss.display_name = "Renamed"

    with pytest.raises(AccessDenied) as refused:
        save_user_by_staff(
            ctx=Actor(user=editor, subject=boss, surface="admin"),
            user=boss,
            changed=["display_name"],
        )

    assert refused.value.status == 403
    assert User.objects.get(pk=boss.pk).display_name != "Renamed"


def test_staff_may_still_edit_their_own_profile_fields(editor: User) -> None:
    client = signed_in(editor)
    data = change_form_data(client, editor, display_name="Me again")

    response = client.post(user_page(editor), data)

    assert response.status_code == 302
    assert User.objects.get(pk=editor.pk).display_name == "Me again"
