"""Registered OAuth apps (``allauth.idp.oidc`` clients): creating, changing,
replacing the secret, revoking the tokens and deleting, each with its audit event.
The flows (``accounts.flows.oauth_apps``) check who may.

Two kinds, fixed at creation:

- an app acting for users: authorization code (PKCE, checked at the authorize
  step) and refresh tokens, response type ``code``, the users' scopes, at least one
  redirect URI; confidential (with a secret) or public (none);
- a machine client: client credentials, the Management API's scopes, confidential,
  no redirect URI, bound to a service account (``MachineClient``) whose groups
  carry its permissions. The account cannot sign in (no usable password, no
  address) and is staff, so the staff permission checks apply to it.

Secrets are shown once to the staff member and stored hashed; never
``skip_consent``, never wildcards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allauth.idp.oidc.adapter import get_adapter
from allauth.idp.oidc.models import Client, Token
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts.actor import Actor
from accounts.models import AppGrant, MachineClient, User
from accounts.oauth import MACHINE_SCOPES, USER_SCOPES, client_tokens_revoke
from accounts.services.audit import Action, audit_record

USER_APP = "user"
MACHINE = "machine"
USER_GRANT_TYPES = [Client.GrantType.AUTHORIZATION_CODE.value, Client.GrantType.REFRESH_TOKEN.value]
MACHINE_GRANT_TYPES = [Client.GrantType.CLIENT_CREDENTIALS.value]


@dataclass(frozen=True, kw_only=True)
class AppSettings:
    """What staff choose for an app (values checked by ``OAuthAppForm``)."""

    name: str
    redirect_uris: list[str]
    cors_origins: list[str]
    scopes: list[str]
    # The service account's groups (machine clients); None: unchanged.
    groups: list[Group] | None = None


@dataclass(frozen=True)
class NewApp:
    client: Client
    # Shown once; only its hash is stored. None for a public app.
    secret: str | None


def app_kind(client: Client) -> str:
    if client.pk is not None and MachineClient.objects.filter(client_id=client.pk).exists():
        return MACHINE
    return USER_APP


def service_account(client: Client) -> User | None:
    machine = MachineClient.objects.filter(client_id=client.pk).select_related("account").first()
    return machine.account if machine is not None else None


def _check(kind: str, public: bool, settings: AppSettings) -> None:
    """The kinds' rules, which the form explains to staff: here, a last guard."""
    allowed = USER_SCOPES if kind == USER_APP else MACHINE_SCOPES
    if not settings.scopes or not set(settings.scopes) <= {s.value for s in allowed}:
        raise ValueError(f"scopes {settings.scopes!r} for a {kind} app")
    if kind == MACHINE and (public or settings.redirect_uris or settings.cors_origins):
        raise ValueError("a machine client is confidential, without redirect URIs or origins")
    if kind == USER_APP and (not settings.redirect_uris or settings.groups):
        raise ValueError("an app acting for users has redirect URIs and no groups")


def _apply(client: Client, settings: AppSettings) -> None:
    client.name = settings.name
    client.set_redirect_uris(settings.redirect_uris)
    client.set_cors_origins(settings.cors_origins)
    client.set_scopes(settings.scopes)
    client.set_default_scopes([])
    client.allow_uri_wildcards = False
    client.skip_consent = False


def _snapshot(client: Client, account: User | None) -> dict[str, Any]:
    snapshot: dict[str, Any] = {
        "name": client.name,
        "redirect_uris": client.get_redirect_uris(),
        "cors_origins": client.get_cors_origins(),
        "scopes": client.get_scopes(),
    }
    if account is not None:
        snapshot["groups"] = sorted(account.groups.values_list("name", flat=True))
    return snapshot


def _service_account_create(client: Client) -> User:
    """``svc-<name>``, or ``svc-<name>-<id>`` when the name is taken (meanwhile too)."""
    base = "svc-" + (slugify(client.name)[:40].strip("-") or client.pk[:12])
    account = User(username=base, display_name=client.name[:150], is_staff=True)
    account.set_unusable_password()
    try:
        if User.objects.filter(username__iexact=base).exists():
            raise IntegrityError(base)
        with transaction.atomic():
            account.save()
    except IntegrityError:
        account.pk = None
        account.username = f"{base}-{client.pk[:8]}"
        account.save()
    MachineClient.objects.create(client=client, account=account)
    return account


def _tokens_revoke(client: Client) -> int:
    """The app's tokens die, and users' connected apps lose it (it must ask again)."""
    revoked = client_tokens_revoke(client=client)
    AppGrant.objects.filter(client=client).delete()
    return revoked


def _record(ctx: Actor, action: str, client: Client, data: dict[str, Any]) -> None:
    audit_record(
        ctx=ctx,
        action=action,
        subject=None,
        subject_label=client.name,
        data={"client_id": client.pk, "name": client.name, **data},
    )


@transaction.atomic
def oauth_app_create(
    *, ctx: Actor, client: Client, kind: str, public: bool, settings: AppSettings
) -> NewApp:
    """Saves ``client`` (new, unsaved) as an app of ``kind``; a machine client gets
    its service account with ``settings.groups``. Returns the secret to show once."""
    if client.pk is not None and Client.objects.filter(pk=client.pk).exists():
        raise ValueError("a new app")
    _check(kind, public, settings)
    _apply(client, settings)
    client.type = Client.Type.PUBLIC if public else Client.Type.CONFIDENTIAL
    if kind == MACHINE:
        client.set_grant_types(MACHINE_GRANT_TYPES)
        client.set_response_types([])
    else:
        client.set_grant_types(USER_GRANT_TYPES)
        client.set_response_types([Client.ResponseType.CODE.value])
    secret: str | None = None
    if public:
        # No secret: the hash of none, which no secret matches.
        client.secret = make_password(None)
    else:
        secret = get_adapter().generate_client_secret()
        client.set_secret(secret)
    client.created_at = timezone.now()
    client.save()
    account = None
    if kind == MACHINE:
        account = _service_account_create(client)
        account.groups.set(settings.groups or [])
    data: dict[str, Any] = {"kind": kind, "type": client.type, **_snapshot(client, account)}
    del data["name"]
    if account is not None:
        data["service_account"] = account.username
    _record(ctx, Action.OAUTH_APP_CREATED, client, data)
    return NewApp(client=client, secret=secret)


@transaction.atomic
def oauth_app_update(*, ctx: Actor, client: Client, settings: AppSettings) -> dict[str, Any]:
    """Changes what staff may change after creation (the kind and the type stay).
    Scopes taken away end the app's tokens (they carry the old ones). Returns what
    changed (field: [before, after]); nothing changed, no audit event."""
    locked = Client.objects.select_for_update().get(pk=client.pk)
    account = service_account(locked)
    kind = MACHINE if account is not None else USER_APP
    _check(kind, locked.type == Client.Type.PUBLIC, settings)
    before = _snapshot(locked, account)
    _apply(locked, settings)
    locked.save()
    if account is not None and settings.groups is not None:
        account.groups.set(settings.groups)
    after = _snapshot(locked, account)
    changed = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
    if changed:
        data: dict[str, Any] = {"changed": changed}
        if set(before["scopes"]) - set(after["scopes"]):
            data["tokens_revoked"] = _tokens_revoke(locked)
        _record(ctx, Action.OAUTH_APP_CHANGED, locked, data)
    for name in ("name", "redirect_uris", "cors_origins", "scopes", "default_scopes"):
        setattr(client, name, getattr(locked, name))
    return changed


@transaction.atomic
def oauth_app_secret_rotate(*, ctx: Actor, client: Client) -> str:
    """A new secret for a confidential app; the old one stops working at once
    (tokens already issued live on: revoke them too if the old secret leaked)."""
    locked = Client.objects.select_for_update().get(pk=client.pk)
    if locked.type != Client.Type.CONFIDENTIAL:
        raise ValueError("a public app has no secret")
    secret = get_adapter().generate_client_secret()
    locked.set_secret(secret)
    locked.save(update_fields=["secret"])
    client.secret = locked.secret
    _record(ctx, Action.OAUTH_APP_SECRET_ROTATED, locked, {})
    return secret


@transaction.atomic
def oauth_app_tokens_revoke(*, ctx: Actor, client: Client) -> int:
    """Every token of the app dies (those it holds for users and its own); returns
    how many there were."""
    revoked = _tokens_revoke(client)
    _record(ctx, Action.OAUTH_APP_TOKENS_REVOKED, client, {"tokens_revoked": revoked})
    return revoked


@transaction.atomic
def oauth_app_delete(*, ctx: Actor, client: Client) -> None:
    """Deletes the app, its tokens and users' grants with it. A machine client's
    service account stays, suspended and without groups, so that the audit log
    still names who made its calls."""
    locked = Client.objects.select_for_update().filter(pk=client.pk).first()
    if locked is None:
        return
    account = service_account(locked)
    data: dict[str, Any] = {
        "kind": MACHINE if account is not None else USER_APP,
        "tokens_revoked": Token.objects.filter(client=locked).count(),
    }
    if account is not None:
        data["service_account"] = account.username
        account.groups.clear()
        account.state = User.State.SUSPENDED
        account.is_active = False
        account.state_changed_at = timezone.now()
        account.state_reason = _(
            "The service account of the deleted machine client %(name)s (%(id)s)."
        ) % {"name": locked.name, "id": locked.pk}
        account.save(update_fields=["state", "is_active", "state_changed_at", "state_reason"])
    _record(ctx, Action.OAUTH_APP_DELETED, locked, data)
    locked.delete()
