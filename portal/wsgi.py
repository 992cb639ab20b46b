import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup(set_prefix=False)

# Django's handler, building requests that cannot break before the middleware runs.
from accounts.requests import PortalWSGIHandler  # noqa: E402

application = PortalWSGIHandler()
