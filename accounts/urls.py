from django.urls import path

from accounts.views import email, home, phone, profile, reauth, security

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
]
