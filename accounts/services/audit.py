"""The one way to write an audit event."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.actor import Actor
from accounts.models import AuditEvent, User
from portal.logs import security_event_log


class Action:
    """Audit actions and their labels, as users and staff read them."""

    POLICY_CHANGED = "policy.changed"
    PROFILE_UPDATED = "profile.updated"
    AVATAR_CHANGED = "avatar.changed"
    AVATAR_REMOVED = "avatar.removed"
    USERNAME_CHANGED = "username.changed"
    EMAIL_CHANGE_REQUESTED = "email.change_requested"
    EMAIL_CHANGED = "email.changed"
    PHONE_CHANGE_REQUESTED = "phone.change_requested"
    PHONE_ADDED = "phone.added"
    PHONE_CHANGED = "phone.changed"
    PHONE_REMOVED = "phone.removed"
    PASSWORD_CHANGED = "password.changed"
    PASSWORD_SET = "password.set"
    PASSWORD_RESET = "password.reset"
    REAUTHENTICATED = "reauthenticated"
    SIGNED_IN = "signed_in"
    SIGNED_OUT = "signed_out"
    TOTP_ADDED = "mfa.totp_added"
    TOTP_REPLACED = "mfa.totp_replaced"
    TOTP_REMOVED = "mfa.totp_removed"
    PASSKEY_ADDED = "mfa.passkey_added"
    PASSKEY_RENAMED = "mfa.passkey_renamed"
    PASSKEY_REMOVED = "mfa.passkey_removed"
    BACKUP_CODES_GENERATED = "mfa.backup_codes_generated"
    BACKUP_CODES_REMOVED = "mfa.backup_codes_removed"
    BACKUP_CODE_USED = "mfa.backup_code_used"
    MFA_SIGN_IN = "mfa.sign_in"
    MFA_RESET = "mfa.reset"
    DELETION_SCHEDULED = "account.deletion_scheduled"
    DELETION_CANCELLED = "account.deletion_cancelled"
    ACCOUNT_PURGED = "account.purged"
    DATA_EXPORTED = "account.data_exported"
    SESSION_ENDED = "session.ended"
    SESSIONS_ENDED = "session.others_ended"
    SOCIAL_LINKED = "social.linked"
    SOCIAL_UNLINKED = "social.unlinked"
    SUSPENDED = "account.suspended"
    UPDATED_BY_STAFF = "account.updated_by_staff"
    CREATED_BY_STAFF = "account.created_by_staff"
    RESTORED = "account.restored"
    SESSIONS_ENDED_BY_STAFF = "session.all_ended_by_staff"
    IMPERSONATION_STARTED = "impersonation.started"
    IMPERSONATION_ENDED = "impersonation.ended"
    IMPERSONATION_LINK_CREATED = "impersonation.link_created"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    APP_CONNECTED = "app.connected"
    APP_REVOKED = "app.revoked"
    OAUTH_APP_CREATED = "oauth_app.created"
    OAUTH_APP_CHANGED = "oauth_app.changed"
    OAUTH_APP_SECRET_ROTATED = "oauth_app.secret_rotated"
    OAUTH_APP_TOKENS_REVOKED = "oauth_app.tokens_revoked"
    OAUTH_APP_DELETED = "oauth_app.deleted"

    LABELS: ClassVar[dict[str, Any]] = {
        POLICY_CHANGED: _("Account policy changed"),
        PROFILE_UPDATED: _("Profile updated"),
        AVATAR_CHANGED: _("Avatar changed"),
        AVATAR_REMOVED: _("Avatar removed"),
        USERNAME_CHANGED: _("Username changed"),
        EMAIL_CHANGE_REQUESTED: _("Email change requested"),
        EMAIL_CHANGED: _("Email address changed"),
        PHONE_CHANGE_REQUESTED: _("Phone number verification requested"),
        PHONE_ADDED: _("Phone number added"),
        PHONE_CHANGED: _("Phone number changed"),
        PHONE_REMOVED: _("Phone number removed"),
        PASSWORD_CHANGED: _("Password changed"),
        PASSWORD_SET: _("Password set"),
        PASSWORD_RESET: _("Password reset"),
        REAUTHENTICATED: _("Identity confirmed"),
        TOKEN_CREATED: _("Personal access token created"),
        TOKEN_REVOKED: _("Personal access token revoked"),
        APP_CONNECTED: _("App connected to the account"),
        APP_REVOKED: _("Connected app revoked"),
        SIGNED_IN: _("Signed in"),
        SIGNED_OUT: _("Signed out"),
        TOTP_ADDED: _("Authenticator app added"),
        TOTP_REPLACED: _("Authenticator app replaced"),
        TOTP_REMOVED: _("Authenticator app removed"),
        PASSKEY_ADDED: _("Security key or passkey added"),
        PASSKEY_RENAMED: _("Security key or passkey renamed"),
        PASSKEY_REMOVED: _("Security key or passkey removed"),
        BACKUP_CODES_GENERATED: _("Backup codes generated"),
        BACKUP_CODES_REMOVED: _("Backup codes removed"),
        BACKUP_CODE_USED: _("Backup code used"),
        MFA_SIGN_IN: _("Signed in with a second factor"),
        MFA_RESET: _("Two-step verification reset by support"),
        DELETION_SCHEDULED: _("Account deletion scheduled"),
        DELETION_CANCELLED: _("Account deletion cancelled"),
        ACCOUNT_PURGED: _("Account deleted"),
        DATA_EXPORTED: _("Data exported"),
        SESSION_ENDED: _("Session ended"),
        SESSIONS_ENDED: _("Other sessions ended"),
        SOCIAL_LINKED: _("Account linked"),
        SOCIAL_UNLINKED: _("Account unlinked"),
        SUSPENDED: _("Account suspended"),
        UPDATED_BY_STAFF: _("Account details changed by staff"),
        CREATED_BY_STAFF: _("Account created by staff"),
        RESTORED: _("Account restored"),
        SESSIONS_ENDED_BY_STAFF: _("All sessions ended by staff"),
        IMPERSONATION_STARTED: _("Support started viewing the account as you"),
        IMPERSONATION_ENDED: _("Support stopped viewing the account as you"),
        IMPERSONATION_LINK_CREATED: _("Support asked for a link to view the account as you"),
        OAUTH_APP_CREATED: _("OAuth app registered"),
        OAUTH_APP_CHANGED: _("OAuth app changed"),
        OAUTH_APP_SECRET_ROTATED: _("OAuth app given a new secret"),
        OAUTH_APP_TOKENS_REVOKED: _("OAuth app's tokens revoked"),
        OAUTH_APP_DELETED: _("OAuth app deleted"),
    }


_FROM_CTX: Any = object()


@transaction.atomic
def audit_record(
    *,
    ctx: Actor | None,
    action: str,
    subject: User | None,
    data: dict[str, Any] | None = None,
    subject_label: str | None = None,
    actor: User | None = _FROM_CTX,
    impersonator_id: int | None = _FROM_CTX,
) -> AuditEvent:
    """Writes one audit event. The actor, impersonator, IP and user agent come from
    ``ctx`` (the system acts when it is None) unless given."""
    if actor is _FROM_CTX:
        actor = ctx.user if ctx is not None else None
    if impersonator_id is _FROM_CTX:
        impersonator_id = ctx.impersonator_id if ctx is not None else None
    event = AuditEvent.objects.create(
        action=action,
        actor=actor,
        subject=subject,
        subject_label=subject_label
        if subject_label is not None
        else (subject.username if subject is not None else ""),
        impersonator_id=impersonator_id,
        ip_address=ctx.ip if ctx is not None else None,
        surface=ctx.surface if ctx is not None else "cli",
        user_agent=(ctx.user_agent if ctx is not None else "")[:300],
        data=data or {},
    )
    # One log line per event, once it is committed; never its data (addresses,
    # numbers, names).
    transaction.on_commit(
        lambda: security_event_log(
            event=event.action,
            actor_id=event.actor_id,
            subject_id=event.subject_id,
            impersonator_id=event.impersonator_id,
            surface=event.surface,
            ip=event.ip_address,
        ),
        robust=True,
    )
    return event
