"""The back-office's form of an OAuth app: its kind, type, redirect URIs, browser
origins, scopes and, for a machine client, its service account's groups.

Redirect URIs and origins are compared character for character at the authorize
step, so each one registered must be exactly what the app sends: an absolute
HTTPS address (plain HTTP only on the machine itself: ``localhost``,
``127.0.0.1``, ``[::1]``), without a fragment, a wildcard or a user name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from allauth.idp.oidc.models import Client
from django import forms
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext_lazy as _

from accounts.admin_site import CheckedIdsField
from accounts.flows.oauth_apps import machine_permissions, not_held_message, permissions_missing
from accounts.models import OAuthScope, User
from accounts.oauth import MACHINE_SCOPES, USER_SCOPES
from accounts.services.oauth_apps import MACHINE, USER_APP, AppSettings

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_URIS = 20
MAX_URI_LENGTH = 2000

KIND_CHOICES = [
    (
        USER_APP,
        _("An app acting for users (authorization code with PKCE, refresh tokens)"),
    ),
    (MACHINE, _("A machine client (client credentials, the Management API)")),
]
TYPE_CHOICES = [
    (
        Client.Type.CONFIDENTIAL.value,
        _("Confidential: runs on a server and keeps a secret"),
    ),
    (
        Client.Type.PUBLIC.value,
        _("Public: runs in a browser or on a device, has no secret and must use PKCE"),
    ),
]
SCOPE_CHOICES = [
    (_("Apps acting for users"), [(s.value, f"{s.value}: {s.label}") for s in USER_SCOPES]),
    (_("Machine clients"), [(s.value, f"{s.value}: {s.label}") for s in MACHINE_SCOPES]),
]


def check_uri(value: str, *, origin: bool = False) -> None:
    """Raises ``ValidationError`` unless ``value`` is an address an app may
    register: a redirect URI, or (``origin``) a browser origin."""
    if len(value) > MAX_URI_LENGTH:
        raise ValidationError(
            _("%(uri)s… is too long (%(max)d characters at most).")
            % {"uri": value[:60], "max": MAX_URI_LENGTH}
        )
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError(
            _("%(uri)s: remove the spaces and control characters.") % {"uri": value}
        )
    if "*" in value:
        raise ValidationError(
            _("%(uri)s: wildcards are not allowed; register each address in full.") % {"uri": value}
        )
    if "#" in value:
        raise ValidationError(
            _("%(uri)s: an address with a fragment (#) is not allowed.") % {"uri": value}
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        hostname = parts.hostname
    except ValueError as exc:
        raise ValidationError(_("%(uri)s is not a valid address.") % {"uri": value}) from exc
    if not parts.scheme or not parts.netloc or not hostname:
        raise ValidationError(
            _("%(uri)s is not an absolute address (https://host/path).") % {"uri": value}
        )
    if "@" in parts.netloc:
        raise ValidationError(
            _("%(uri)s: a user name or password in the address is not allowed.") % {"uri": value}
        )
    scheme = parts.scheme.lower()
    if not (scheme == "https" or (scheme == "http" and hostname in LOOPBACK_HOSTS)):
        raise ValidationError(
            _("%(uri)s must use HTTPS (plain http only for localhost, 127.0.0.1 and [::1]).")
            % {"uri": value}
        )
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError as exc:
        raise ValidationError(_("%(uri)s is not a valid address.") % {"uri": value}) from exc
    if origin and (parts.path or parts.query):
        raise ValidationError(
            _(
                "%(uri)s is not an origin: only the scheme, the host and the port "
                "(https://app.example.com), without a path or a final slash."
            )
            % {"uri": value}
        )


def uri_lines(text: str, *, origin: bool = False) -> list[str]:
    """The addresses of a text box, one a line (blank lines ignored, repeats
    removed); every bad one is reported."""
    values = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if len(values) > MAX_URIS:
        raise ValidationError(_("At most %(max)d addresses.") % {"max": MAX_URIS})
    errors: list[ValidationError] = []
    for value in values:
        try:
            check_uri(value, origin=origin)
        except ValidationError as exc:
            errors.append(exc)
    if errors:
        raise ValidationError(errors)
    return values


GroupsField = CheckedIdsField


class OAuthAppForm(forms.ModelForm):
    """``staff``: the staff member filling it in (set by the back-office), for the
    rule that nobody hands a machine client permissions they do not hold."""

    staff: User | None = None

    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("Shown to users on the consent page and among their connected apps."),
    )
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=KIND_CHOICES,
        initial=USER_APP,
        widget=forms.RadioSelect,
        help_text=_("Chosen once: it cannot be changed later."),
    )
    type = forms.ChoiceField(
        label=_("Type"),
        choices=TYPE_CHOICES,
        initial=Client.Type.CONFIDENTIAL.value,
        widget=forms.RadioSelect,
        help_text=_("Chosen once. Machine clients are confidential."),
    )
    redirect_uris = forms.CharField(
        label=_("Redirect URIs"),
        required=False,
        max_length=MAX_URIS * (MAX_URI_LENGTH + 2),
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=_(
            "One per line, exactly as the app sends it: HTTPS (plain http only for "
            "localhost, 127.0.0.1 and [::1]), no fragment, no wildcard. Required for an "
            "app acting for users; none for a machine client."
        ),
    )
    cors_origins = forms.CharField(
        label=_("Browser origins (CORS)"),
        required=False,
        max_length=MAX_URIS * (MAX_URI_LENGTH + 2),
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text=_(
            "Optional, one per line: the origins (https://app.example.com) of a web app "
            "that calls the token endpoint from the browser."
        ),
    )
    scopes = forms.MultipleChoiceField(
        label=_("Allowed scopes"),
        choices=SCOPE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("What the app may ask for: users' scopes or the Management API's."),
    )
    groups = GroupsField(
        label=_("Service account's groups"),
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Machine clients only: the groups carry the permissions; the scopes of each "
            "token limit them further. You can give only permissions you hold yourself."
        ),
    )

    class Meta:
        model = Client
        fields = ["name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.creating = self.instance._state.adding
        self.app_kind = USER_APP
        if self.creating:
            return
        # The kind and the type are chosen once.
        for name in ("kind", "type"):
            self.fields.pop(name, None)
        machine = getattr(self.instance, "machine", None)
        self.app_kind = MACHINE if machine is not None else USER_APP
        scopes = self.fields.get("scopes")
        if isinstance(scopes, forms.ChoiceField):
            kinds_scopes = MACHINE_SCOPES if machine is not None else USER_SCOPES
            scopes.choices = [(s.value, f"{s.value}: {s.label}") for s in kinds_scopes]
        self.initial["redirect_uris"] = "\n".join(self.instance.get_redirect_uris())
        self.initial["cors_origins"] = "\n".join(self.instance.get_cors_origins())
        self.initial["scopes"] = self.instance.get_scopes()
        if machine is None:
            self.fields.pop("groups", None)
        elif "groups" in self.fields:
            self.initial["groups"] = list(machine.account.groups.all())

    def _post_clean(self) -> None:
        # Nothing is copied onto the app here: the flow saves it
        # (``accounts.flows.oauth_apps``). allauth's own model checks are looser.
        pass

    def clean_name(self) -> str:
        value = self.cleaned_data["name"].strip()
        if not value:
            raise ValidationError(_("Give the app a name."))
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValidationError(_("Remove the control characters."))
        return value

    def clean_redirect_uris(self) -> list[str]:
        return uri_lines(self.cleaned_data.get("redirect_uris") or "")

    def clean_cors_origins(self) -> list[str]:
        return uri_lines(self.cleaned_data.get("cors_origins") or "", origin=True)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        kind = data.get("kind", self.app_kind) if self.creating else self.app_kind
        self.app_kind = kind
        public = (
            data.get("type") == Client.Type.PUBLIC.value
            if self.creating
            else self.instance.type == Client.Type.PUBLIC
        )
        scopes = data.get("scopes")
        if kind == MACHINE:
            if public:
                self.add_error(
                    "type", _("A machine client keeps a secret: it must be confidential.")
                )
            if data.get("redirect_uris"):
                self.add_error(
                    "redirect_uris",
                    _("A machine client has no redirect URI: it never sends users anywhere."),
                )
            if data.get("cors_origins"):
                self.add_error(
                    "cors_origins",
                    _("A machine client has no browser origin: it calls from a server."),
                )
        elif "redirect_uris" in data and not data["redirect_uris"]:
            self.add_error(
                "redirect_uris", _("An app acting for users needs at least one redirect URI.")
            )
        if scopes is not None:
            allowed = {s.value for s in (MACHINE_SCOPES if kind == MACHINE else USER_SCOPES)}
            wrong = [s for s in scopes if s not in allowed]
            if wrong:
                message = (
                    _("A machine client may only have the Management API's scopes. Remove: %(s)s.")
                    if kind == MACHINE
                    else _("An app acting for users may only have users' scopes. Remove: %(s)s.")
                )
                self.add_error("scopes", message % {"s": ", ".join(wrong)})
        groups = data.get("groups")
        if kind != MACHINE and groups:
            self.add_error("groups", _("Groups are for machine clients only."))
        elif kind == MACHINE and scopes is not None and "groups" in self.fields:
            missing = permissions_missing(
                self.staff, machine_permissions(groups=groups or [], scopes=scopes)
            )
            if missing:
                self.add_error("groups", not_held_message(missing))
        return data

    def app_settings(self) -> AppSettings:
        data = self.cleaned_data
        return AppSettings(
            name=data["name"],
            redirect_uris=data.get("redirect_uris") or [],
            cors_origins=data.get("cors_origins") or [],
            scopes=[s.value for s in OAuthScope if s.value in set(data["scopes"])],
            groups=list(data["groups"])
            if self.app_kind == MACHINE and "groups" in self.fields
            else None,
        )

    @property
    def public(self) -> bool:
        return self.cleaned_data.get("type") == Client.Type.PUBLIC.value
