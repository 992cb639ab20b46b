from django.urls import path

from accounts.views import home, profile

urlpatterns = [
    path("", home.settings_home, name="settings_home"),
    path("profile/", profile.profile, name="profile"),
    path("profile/name/edit/", profile.name_edit, name="profile_name_edit"),
    path("profile/details/edit/", profile.details_edit, name="profile_details_edit"),
    path("profile/username/edit/", profile.username_edit, name="profile_username_edit"),
    path("profile/avatar/", profile.avatar_upload, name="profile_avatar"),
    path("profile/avatar/remove/", profile.avatar_delete, name="profile_avatar_remove"),
    path("profile/<slug:card>/", profile.card, name="profile_card"),
]
