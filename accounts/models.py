from __future__ import annotations

import hashlib
import hmac
import zoneinfo
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from accounts.user_search import SEARCHED_FIELDS, SearchTextField

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

LANGUAGE_CHOICES = [("en", _("English")), ("fr", _("French"))]
TIME_ZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones())]


class PortalUserManager(UserManager["User"]):
    """Looks usernames and emails up case-insensitively, as the database constrains them."""

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(username__iexact=username)


class User(AbstractUser):
    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        PENDING_DELETION = "pending_deletion", _("Pending deletion")

    email = models.EmailField(_("email address"), blank=True)
    # The address folded for comparison (see accounts.emails.email_key), so that
    # look-alikes such as a dotless ı or full-width letters cannot belong to two
    # accounts. Derived from ``email`` on every save.
    email_key = models.CharField(max_length=254, blank=True, editable=False)
    first_name = models.CharField(_("given name"), max_length=150, blank=True)
    last_name = models.CharField(_("family name"), max_length=150, blank=True)
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    avatar = models.ImageField(_("avatar"), upload_to="avatars/", blank=True)
    phone = models.CharField(
        _("phone number"), max_length=16, blank=True, help_text=_("E.164 format.")
    )
    phone_verified = models.BooleanField(_("phone number verified"), default=False)
    language = models.CharField(
        _("preferred language"),
        max_length=8,
        choices=LANGUAGE_CHOICES,
        blank=True,
        help_text=_("Empty: the browser's language is used."),
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, choices=TIME_ZONE_CHOICES, default="UTC"
    )

    state = models.CharField(
        _("account state"), max_length=20, choices=State.choices, default=State.ACTIVE
    )
    state_changed_at = models.DateTimeField(_("state changed at"), null=True, blank=True)
    state_reason = models.TextField(_("reason for the state"), blank=True)
    suspended_until = models.DateTimeField(_("suspended until"), null=True, blank=True)
    deletion_scheduled_for = models.DateTimeField(
        _("deletion scheduled for"), null=True, blank=True
    )
    # What the user list's search looks in (see accounts.user_search): the keys a
    # search may start, one per line; derived on every write, never edited.
    search_text = SearchTextField(blank=True, default="", editable=False)

    objects: ClassVar[PortalUserManager] = PortalUserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        permissions = [
            ("suspend_user", _("Can suspend and restore users")),
            ("end_user_sessions", _("Can end a user's sessions")),
            ("reset_user_mfa", _("Can reset a user's second factors")),
            ("schedule_user_deletion", _("Can schedule a user's deletion")),
            ("purge_user", _("Can delete a user at once")),
            ("impersonate_user", _("Can impersonate users")),
        ]
        constraints = [
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
            models.UniqueConstraint(
                Lower("email"),
                condition=~Q(email=""),
                name="accounts_user_email_ci_unique",
            ),
            models.UniqueConstraint(
                "email_key", condition=~Q(email_key=""), name="accounts_user_email_key_unique"
            ),
            models.UniqueConstraint(
                "phone", condition=~Q(phone=""), name="accounts_user_phone_unique"
            ),
            models.CheckConstraint(
                condition=Q(state="active", is_active=True)
                | (~Q(state="active") & Q(is_active=False)),
                name="accounts_user_is_active_mirrors_state",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["active", "suspended", "pending_deletion"]),
                name="accounts_user_state_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "date_joined"], name="accounts_user_state_joined"),
            # The list's default order and its keyset pages (ties broken by id).
            models.Index(fields=["-date_joined", "-id"], name="accounts_user_joined_id"),
            models.Index(fields=["state", "suspended_until"], name="accounts_user_suspension"),
            models.Index(
                fields=["state", "deletion_scheduled_for"], name="accounts_user_deletion_due"
            ),
        ]

    def __str__(self) -> str:
        return self.username

    # The permissions a credential of this request may use (a machine client's
    # token: its scopes, accounts.oauth.SCOPE_PERMISSIONS); None: all the account's.
    # Set on the request's user object only, so every permission check of the
    # flows (``has_perm``) applies the token's scopes too.
    credential_permissions: frozenset[str] | None = None

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        if self.credential_permissions is not None and perm not in self.credential_permissions:
            return False
        return super().has_perm(perm, obj)

    @property
    def is_service_account(self) -> bool:
        """The account a machine client acts as (``MachineClient``): it never signs
        in, cannot be impersonated, and is managed on its app's back-office page."""
        return self.pk is not None and hasattr(self, "machine_client")

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Derived columns: kept here so that no path (admin, allauth, services)
        # can store an address without its comparison key, or a searched field
        # without the search text (which its field computes on write).
        from accounts.emails import email_key

        self.email_key = email_key(self.email)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            fields = set(update_fields)
            if "email" in fields:
                fields.add("email_key")
            if not fields.isdisjoint(SEARCHED_FIELDS):
                fields.add("search_text")
            kwargs["update_fields"] = fields
        super().save(*args, **kwargs)

    @property
    def shown_name(self) -> str:
        """The name the interface greets the user with."""
        return self.display_name or self.get_full_name() or self.username

    @property
    def initials(self) -> str:
        parts = [p for p in self.shown_name.split() if p]
        letters = "".join(p[0] for p in parts[:2]) or self.username[:1]
        return letters.upper()


class PolicyMode(models.TextChoices):
    OFF = "off", _("Off: hidden")
    READ_ONLY = "read_only", _("Read-only: shown, not changeable")
    EDIT = "edit", _("Edit: shown and changeable")


def _mode_field(label: StrOrPromise, help_text: StrOrPromise) -> models.CharField:
    return models.CharField(
        label,
        max_length=10,
        choices=PolicyMode.choices,
        default=PolicyMode.EDIT,
        help_text=help_text,
    )


class AccountPolicy(models.Model):
    """What end users may see and change, field by field. A single row (pk = 1).

    Read it through ``accounts.policy``, never directly: that is where it is cached
    and where the modes are enforced.
    """

    enabled = models.BooleanField(
        _("self-service settings enabled"),
        default=True,
        help_text=_(
            "Master switch. Off: the settings area shows a single notice and refuses every "
            "change. Sign-in, sign-out, password reset and two-step verification keep working."
        ),
    )
    name = _mode_field(_("display name"), _("The name shown to others and in the header."))
    avatar = _mode_field(_("avatar"), _("The profile picture."))
    profile = _mode_field(
        _("personal details"), _("Given and family names, preferred language and time zone.")
    )
    username = _mode_field(_("username"), _("Changing it needs a recent re-authentication."))
    email = _mode_field(
        _("email address"), _("Adding, removing and changing email addresses (proven by a code).")
    )
    phone = _mode_field(_("phone number"), _("Adding, changing and removing the phone number."))
    password = _mode_field(_("password"), _("Changing or setting the password."))
    social = _mode_field(_("linked accounts"), _("Linking and unlinking social accounts."))
    mfa = _mode_field(_("two-step verification"), _("Authenticator app and backup codes."))
    passkeys = _mode_field(_("security keys and passkeys"), _("WebAuthn credentials."))
    sessions = _mode_field(_("sessions and devices"), _("Seeing and ending signed-in sessions."))
    delete_account = _mode_field(_("account deletion"), _("Deleting one's own account."))
    data_export = _mode_field(_("data export"), _("Downloading a copy of one's data."))
    tokens = _mode_field(
        _("personal access tokens"),
        _("Tokens that let the user's own programs use the Account API."),
    )
    connected_apps = _mode_field(
        _("connected apps"),
        _("Apps the user allowed to act for them (OAuth): seeing them and revoking them."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("account policy")
        verbose_name_plural = _("account policy")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="accounts_policy_single_row"),
        ]

    def __str__(self) -> str:
        return str(_("Account policy"))


class AuditEvent(models.Model):
    """An append-only record of a change to an account or its security.

    Written by the services in the same transaction as the change. ``subject_label``
    keeps a readable name of the subject that outlives it (a pseudonym once the
    account is purged).
    """

    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    actor = models.ForeignKey(
        User,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events_as_actor",
    )
    subject = models.ForeignKey(
        User,
        verbose_name=_("subject"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    subject_label = models.CharField(_("subject name"), max_length=150, blank=True)
    impersonator = models.ForeignKey(
        User,
        verbose_name=_("impersonator"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events_as_impersonator",
    )
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    # Where the actor acted: web, admin, api, token, app (an OAuth app), cli ("" before
    # it was recorded).
    surface = models.CharField(_("surface"), max_length=10, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["subject", "-created_at"], name="accounts_audit_subject_time"),
            models.Index(fields=["actor", "-created_at"], name="accounts_audit_actor_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.subject_label}"


class VerificationCode(models.Model):
    """A one-time code proving control of an address (email, phone) or identity.

    Only a keyed hash of the code is stored. One live code per user and purpose: a
    newer request replaces the older one. ``used_at`` is set once, by a conditional
    update, so two confirmations racing each other cannot both succeed.
    """

    class Purpose(models.TextChoices):
        EMAIL_CHANGE = "email_change", _("Email change")
        PHONE_CHANGE = "phone_change", _("Phone change")
        REAUTHENTICATE = "reauthenticate", _("Re-authentication")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="verification_codes")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    target = models.CharField(max_length=254)
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    # False when the code was not sent because the target is taken: the flow looks
    # the same from outside, and such a code can never be confirmed.
    deliverable = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("verification code")
        verbose_name_plural = _("verification codes")
        indexes = [models.Index(fields=["user", "purpose"], name="accounts_code_user_purpose")]

    def __str__(self) -> str:
        return f"{self.purpose} for {self.user_id}"


def normalize_backup_code(value: str) -> str:
    """Codes are accepted however typed: case, spaces and hyphens do not count."""
    return "".join(ch for ch in (value or "").lower() if ch.isalnum())


def backup_code_hash(code: str) -> str:
    """The keyed hash stored for a backup code (of its normalised spelling)."""
    return hmac.new(
        settings.SECRET_KEY.encode(),
        f"backup:{normalize_backup_code(code)}".encode(),
        hashlib.sha256,
    ).hexdigest()


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A user's set of single-use backup codes, as a django-otp device.

    django-otp's static device keeps its tokens in clear text; here only a keyed
    hash of each code is stored (``BackupCode``). A device exists only beside a real
    factor (authenticator app, security key) and goes when the last one goes.
    """

    class Meta:
        verbose_name = _("backup codes")
        verbose_name_plural = _("backup codes")

    def get_throttle_factor(self) -> int:
        return 1

    def verify_token(self, token: Any) -> bool:
        """Consumes one code. Two concurrent uses of the same code: one succeeds
        (the conditional update marks it used once)."""
        from django.db import transaction
        from django.utils import timezone

        allowed, _details = self.verify_is_allowed()
        if not allowed:
            return False
        digest = backup_code_hash(str(token or ""))
        with transaction.atomic():
            row = self.codes.filter(used_at__isnull=True, code_hash=digest).first()
            used = (
                row is not None
                and BackupCode.objects.filter(pk=row.pk, used_at__isnull=True).update(
                    used_at=timezone.now()
                )
                == 1
            )
        if used:
            self.throttle_reset()
        else:
            self.throttle_increment()
        return used


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=128)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("backup code")
        verbose_name_plural = _("backup codes")

    def __str__(self) -> str:
        return f"backup code {self.pk}"


class TokenScope(models.TextChoices):
    ACCOUNT_READ = "account:read", _("Read your account settings")
    ACCOUNT_WRITE = "account:write", _("Change your account settings")
    MANAGEMENT = "management", _("Manage users (staff, within your back-office permissions)")


class PersonalAccessToken(models.Model):
    """A token a user's own program sends as ``Authorization: Bearer pat_…``.

    Only a keyed SHA-256 of its secret is stored (``accounts.services.tokens``);
    ``prefix`` (the first characters of the secret) finds the row and names the
    token in lists. It dies when revoked, when it expires, and with the account
    (suspension, deletion, password change revoke it; every use checks the state).
    """

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="access_tokens", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    scopes = models.JSONField(_("scopes"), default=list)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    # Staff who made it for the user (the Management API); None when the user did.
    created_by = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta:
        verbose_name = _("personal access token")
        verbose_name_plural = _("personal access tokens")
        indexes = [models.Index(fields=["user", "revoked_at"], name="accounts_pat_user_live")]

    def __str__(self) -> str:
        return f"{self.name} (pat_{self.prefix}…)"


class OAuthScope(models.TextChoices):
    """What an OAuth app (accounts.oauth) may ask for: the OpenID Connect claims,
    the Account API for a user, and the Management API for a machine client."""

    OPENID = "openid", _("Know who you are on this site")
    PROFILE = "profile", _("See your name, username and profile details")
    EMAIL = "email", _("See your email address")
    PHONE = "phone", _("See your phone number")
    ACCOUNT_READ = "account:read", _("Read your account settings")
    ACCOUNT_WRITE = "account:write", _("Change your account settings")
    USERS_READ = "users:read", _("Read users")
    USERS_WRITE = "users:write", _("Create and change users")
    USERS_SUSPEND = "users:suspend", _("Suspend and restore users")
    USERS_DELETE = "users:delete", _("Delete users")
    USERS_IMPERSONATE = "users:impersonate", _("Impersonate users")
    AUDIT_READ = "audit:read", _("Read the audit log")
    POLICY_WRITE = "policy:write", _("Read and change the account policy")


class AppGrant(models.Model):
    """An app a user allowed to act for them ("connected apps"): made when the app
    first gets tokens for the user, gone when the user revokes it or when the
    account's tokens die (suspension, deletion, password change)."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="app_grants", verbose_name=_("user")
    )
    client = models.ForeignKey(
        "allauth_idp_oidc.Client",
        on_delete=models.CASCADE,
        related_name="grants",
        verbose_name=_("app"),
    )
    scopes = models.JSONField(_("scopes"), default=list)
    created_at = models.DateTimeField(_("first used"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("connected app")
        verbose_name_plural = _("connected apps")
        constraints = [
            models.UniqueConstraint(fields=["user", "client"], name="accounts_app_grant_once"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} for user #{self.user_id}"


class MachineClient(models.Model):
    """An OAuth client that calls the Management API as itself (client
    credentials), bound to a service account: an account that cannot sign in, whose
    groups carry the client's permissions, named as the actor in the audit log."""

    client = models.OneToOneField(
        "allauth_idp_oidc.Client",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="machine",
        verbose_name=_("app"),
    )
    account = models.OneToOneField(
        User,
        on_delete=models.CASCADE,
        related_name="machine_client",
        verbose_name=_("service account"),
    )

    class Meta:
        verbose_name = _("machine client")
        verbose_name_plural = _("machine clients")

    def __str__(self) -> str:
        return str(self.client_id)


class ApiVerification(models.Model):
    """A proof of identity made through the Account API (password, second factor,
    or a code sent to the user's own address), named by the id the client sends as
    ``X-Verification-Id``. Only a keyed hash of that id is stored.

    ``purpose`` says what it proves: ``identity`` counts as a re-authentication of
    its user until ``expires_at``; ``code`` is a code sent and not yet checked
    (checking it turns the row into an ``identity`` one).
    """

    class Purpose(models.TextChoices):
        IDENTITY = "identity", _("Identity")
        CODE = "code", _("Code sent")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_verifications")
    digest = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    method = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = _("API verification")
        verbose_name_plural = _("API verifications")

    def __str__(self) -> str:
        return f"{self.purpose} {self.method} for {self.user_id}"


class ImpersonationTicket(models.Model):
    """A single-use link a staff member asked for through the Management API: it
    starts the back-office's impersonation of ``target`` in ``staff``'s own browser
    (signed in to the back-office with a verified second factor), with ``reason``.

    Only a keyed SHA-256 of the link's 256-bit random token is stored
    (``accounts.services.impersonation``). ``used_at`` is set once, by a
    conditional update: a second use finds it set.
    """

    staff = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="+", verbose_name=_("staff member")
    )
    target = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="+", verbose_name=_("account")
    )
    digest = models.CharField(max_length=64, unique=True)
    reason = models.CharField(_("reason"), max_length=500)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("impersonation link")
        verbose_name_plural = _("impersonation links")

    def __str__(self) -> str:
        return f"impersonation link {self.pk} ({self.staff_id} -> {self.target_id})"
