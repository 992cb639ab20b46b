from django.urls import path

from accounts.views import home

urlpatterns = [
    path("", home.settings_home, name="settings_home"),
]
