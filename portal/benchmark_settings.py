"""Settings of the server that ``manage.py benchmark_pages`` starts, and of nothing
else: the project's settings (from the environment, as in production) with a
URLconf that adds the bare view the pages are compared with. Selected only by the
command, through ``DJANGO_SETTINGS_MODULE`` in its child's environment."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "accounts.management.commands.benchmark_pages"

# The pages' static files by their plain names: the benchmark measures pages and
# does not run collectstatic (the manifest of hashed names is then missing).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
