from django.urls import path

from accounts.views import email, home, mfa, phone, profile, reauth, security, two_factor

urlpatterns = [
    path("", home.settings_home, name="settings_home"),
    path("profile/", profile.profile, name="profile"),
    path("profile/name/edit/", profile.name_edit, name="profile_name_edit"),
    path("profile/details/edit/", profile.details_edit, name="profile_details_edit"),
    path("profile/username/edit/", profile.username_edit, name="profile_username_edit"),
    path("profile/avatar/", profile.avatar_upload, name="profile_avatar"),
    path("profile/avatar/remove/", profile.avatar_delete, name="profile_avatar_remove"),
    path("profile/<slug:card>/", profile.card, name="profile_card"),
    path("email/", email.email, name="email"),
    path("email/confirm/", email.email_confirm, name="email_confirm"),
    path("email/resend/", email.email_resend, name="email_resend"),
    path("email/cancel/", email.email_cancel, name="email_cancel"),
    path("phone/", phone.phone, name="phone"),
    path("phone/confirm/", phone.phone_confirm, name="phone_confirm"),
    path("phone/resend/", phone.phone_resend, name="phone_resend"),
    path("phone/cancel/", phone.phone_cancel, name="phone_cancel"),
    path("phone/remove/", phone.phone_delete, name="phone_remove"),
    path("security/", security.security_activity, name="security_activity"),
    path("reauthenticate/email/", reauth.reauthenticate_email, name="reauthenticate_email"),
    path(
        "reauthenticate/two-factor/",
        two_factor.reauthenticate,
        name="reauthenticate_two_factor",
    ),
    path(
        "reauthenticate/webauthn/begin/",
        two_factor.ReauthBeginAuthentication.as_view(),
        name="reauthenticate_webauthn_begin",
    ),
    path(
        "reauthenticate/webauthn/complete/",
        two_factor.ReauthCompleteAuthentication.as_view(),
        name="reauthenticate_webauthn_complete",
    ),
    path("two-factor/", mfa.overview, name="two_factor"),
    path("two-factor/totp/", mfa.totp_start, name="totp_start"),
    path("two-factor/totp/confirm/", mfa.totp_confirm, name="totp_confirm"),
    path("two-factor/totp/remove/", mfa.totp_delete, name="totp_remove"),
    path("two-factor/passkeys/add/", mfa.passkey_add, name="passkey_add"),
    path(
        "two-factor/passkeys/register/begin/",
        mfa.RegisterBegin.as_view(),
        name="passkey_register_begin",
    ),
    path(
        "two-factor/passkeys/register/complete/",
        mfa.RegisterComplete.as_view(),
        name="passkey_register_complete",
    ),
    path("two-factor/passkeys/<int:pk>/", mfa.passkey_rename, name="passkey_rename"),
    path("two-factor/passkeys/<int:pk>/remove/", mfa.passkey_delete, name="passkey_remove"),
    path("two-factor/backup-codes/", mfa.backup_codes_regenerate, name="backup_codes_regenerate"),
    path("two-factor/backup-codes/new/", mfa.backup_codes_new, name="backup_codes_new"),
    path(
        "two-factor/backup-codes/download/",
        mfa.backup_codes_download,
        name="backup_codes_download",
    ),
]
