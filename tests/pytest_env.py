"""Loaded by pytest before Django's settings (see ``addopts`` in pyproject.toml).

The test suite runs with the development defaults (``DJANGO_DEBUG`` on, so no
production secret key is needed); Django's test runner still runs the code with
``DEBUG = False``. ``DATABASE_URL`` and ``REDIS_URL`` pass through unchanged, so the
same suite runs on SQLite and on PostgreSQL.

The request log (one line per request, at INFO) stays quiet in the suite: a failing
test's captured output shows the test's own records, not every request it made. The
tests of the logs turn it back on.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_REQUEST_LOG_LEVEL", "WARNING")
