"""The field policy: the one place that decides what users may see and change.

Navigation, templates, views (decorators), forms, the door of every page
(``accounts.gates``), the flows and any later API all ask this module. The policy row is
read from the cache; saving it (``accounts.services.policy.policy_update``)
replaces the cached copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from accounts.models import AccountPolicy, PolicyMode

OFF, READ_ONLY, EDIT = PolicyMode.OFF.value, PolicyMode.READ_ONLY.value, PolicyMode.EDIT.value

FIELDS: tuple[str, ...] = (
    "name",
    "avatar",
    "profile",
    "username",
    "email",
    "phone",
    "password",
    "social",
    "mfa",
    "passkeys",
    "sessions",
    "delete_account",
    "data_export",
    "tokens",
    "connected_apps",
)

CACHE_KEY = "accounts:policy:v1"
_REQUEST_ATTR = "_account_policy"


@dataclass(frozen=True)
class Policy:
    enabled: bool = True
    modes: Mapping[str, str] = field(default_factory=lambda: dict.fromkeys(FIELDS, EDIT))

    def mode(self, name: str) -> str:
        return self.modes[name]

    def visible(self, name: str) -> bool:
        return self.modes[name] != OFF

    def editable(self, name: str) -> bool:
        return self.enabled and self.modes[name] == EDIT

    # Cached: templates ask for them in every row of a table. (cached_property
    # writes the instance's __dict__, which a frozen dataclass allows.)
    @cached_property
    def visible_fields(self) -> frozenset[str]:
        return frozenset(name for name in FIELDS if self.visible(name))

    @cached_property
    def editable_fields(self) -> frozenset[str]:
        return frozenset(name for name in FIELDS if self.editable(name))

    @classmethod
    def from_row(cls, row: AccountPolicy) -> Policy:
        return cls(enabled=row.enabled, modes={name: getattr(row, name) for name in FIELDS})


class PolicyDenied(PermissionDenied):
    """A write refused by the policy. Its message is shown to the user."""

    code = "policy.field_not_editable"


class SettingsOff(PolicyDenied):
    """The master switch is off: every settings write is refused."""

    code = "policy.not_enabled"


class FieldOff(Http404):
    """The field is off: its pages and endpoints do not exist."""

    code = "policy.field_not_enabled"


def _cache_timeout() -> int | None:
    # A shared cache (Redis) is replaced on save, so every process sees a change at
    # once. A per-process memory cache cannot be reached from the saving process:
    # it expires after a few seconds instead.
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith("LocMemCache"):
        return int(settings.POLICY_LOCAL_CACHE_SECONDS)
    return None


def load_policy() -> Policy:
    cached = cache.get(CACHE_KEY)
    if cached is not None:
        return Policy(enabled=cached["enabled"], modes=cached["modes"])
    row = AccountPolicy.objects.filter(pk=1).first()
    policy = Policy.from_row(row) if row is not None else Policy()
    # ``add``, not ``set``: a row read just before another process committed a change
    # must not replace the copy that process stores after its commit.
    store_policy(policy, replace=False)
    return policy


def store_policy(policy: Policy, *, replace: bool = True) -> None:
    value = {"enabled": policy.enabled, "modes": dict(policy.modes)}
    if replace:
        cache.set(CACHE_KEY, value, _cache_timeout())
    else:
        cache.add(CACHE_KEY, value, _cache_timeout())


def forget_policy() -> None:
    cache.delete(CACHE_KEY)


def get_policy(request: HttpRequest | None = None) -> Policy:
    """The policy in force, read once per request."""
    if request is None:
        return load_policy()
    policy = getattr(request, _REQUEST_ATTR, None)
    if policy is None:
        policy = load_policy()
        setattr(request, _REQUEST_ATTR, policy)
    return policy


# --- Checks ---------------------------------------------------------------

SETTINGS_OFF_MESSAGE = _(
    "Account settings are turned off on this site for now. Nothing was changed."
)
SETTINGS_OFF_READ_MESSAGE = _("Account settings are turned off on this site for now.")
READ_ONLY_MESSAGE = _(
    "This setting can't be changed here: the site shows it read-only. Nothing was changed."
)


def require_visible(policy: Policy, name: str) -> None:
    if not policy.visible(name):
        raise FieldOff


def require_readable(policy: Policy, *names: str) -> None:
    """A user's own read outside the pages (the Account API): 404 when every one of
    ``names`` is off, ``SettingsOff`` (403) when the master switch is off, where a
    page shows its one notice instead of the data. In the pages' order: a field
    that is off is a 404 whatever the switch."""
    if names and not any(policy.visible(name) for name in names):
        raise FieldOff
    if not policy.enabled:
        raise SettingsOff(SETTINGS_OFF_READ_MESSAGE)


def require_editable(policy: Policy, name: str) -> None:
    """404 when the field is off; PolicyDenied (403) when it can't be changed."""
    require_visible(policy, name)
    if not policy.enabled:
        raise SettingsOff(SETTINGS_OFF_MESSAGE)
    if not policy.editable(name):
        raise PolicyDenied(READ_ONLY_MESSAGE)


def is_write(request: HttpRequest) -> bool:
    return request.method not in {"GET", "HEAD", "OPTIONS", "TRACE"}


def settings_off_response(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/settings_off.html", status=200)


def section(*names: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A settings page showing ``names``: 404 when all are off, one notice when the
    master switch is off, 403 for any write that reaches it."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            policy = get_policy(request)
            if not any(policy.visible(name) for name in names):
                raise FieldOff
            if not policy.enabled:
                if is_write(request):
                    raise SettingsOff(SETTINGS_OFF_MESSAGE)
                return settings_off_response(request)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def field_editable(
    name: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A view that changes ``name``: it runs only when the policy allows the change."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            policy = get_policy(request)
            if is_write(request):
                require_editable(policy, name)
            else:
                require_visible(policy, name)
                if not policy.enabled:
                    return settings_off_response(request)
                if not policy.editable(name):
                    raise PolicyDenied(READ_ONLY_MESSAGE)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


class PolicyGuardedForm:
    """Form mixin: a form that changes ``policy_field`` refuses to validate unless the
    policy lets the user change it, whatever surface (page, htmx, later an API)
    built the form. Pass ``policy=get_policy(request)``."""

    policy_field: str = ""

    def __init__(self, *args: Any, policy: Policy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(*args, **kwargs)

    def clean(self) -> Any:
        if not self.policy.enabled:
            raise ValidationError(SETTINGS_OFF_MESSAGE, code="policy")
        if not self.policy.editable(self.policy_field):
            raise ValidationError(READ_ONLY_MESSAGE, code="policy")
        return super().clean()  # type: ignore[misc]
