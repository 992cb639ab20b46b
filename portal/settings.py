"""Settings of the account portal, read from environment variables.

The defaults suit a developer's machine (debug on). Production sets
``DJANGO_DEBUG=0``: the site then refuses to start without a real secret key and a
list of allowed hosts, and switches on secure cookies, HSTS and the HTTPS redirect.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = os.environ.get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or list(default or [])


# --- Core -----------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", default=True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
_INSECURE_KEY_PREFIX = "django-insecure-"
if not DEBUG and (
    len(SECRET_KEY) < 32 or SECRET_KEY.startswith(_INSECURE_KEY_PREFIX) or len(set(SECRET_KEY)) < 5
):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a long random value when DJANGO_DEBUG is off "
        "(at least 32 characters, not a 'django-insecure-' key). For local development "
        "set DJANGO_DEBUG=1 instead."
    )
if not SECRET_KEY:
    SECRET_KEY = _INSECURE_KEY_PREFIX + "local-development-only-key-do-not-use-in-production"

SITE_URL = env_str("SITE_URL", "http://localhost:8000").rstrip("/")
_site = urlsplit(SITE_URL)
if _site.scheme not in {"http", "https"} or not _site.hostname:
    raise ImproperlyConfigured(f"SITE_URL must be an absolute http(s) URL, not {SITE_URL!r}.")
SITE_HOST = _site.hostname
SITE_ORIGIN = f"{_site.scheme}://{_site.netloc}"
PORTAL_NAME = env_str("PORTAL_NAME", "Account portal")

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", SITE_HOST] if DEBUG else []
)
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS must list the host names the site answers to when "
        "DJANGO_DEBUG is off (comma separated)."
    )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [SITE_ORIGIN])

INSTALLED_APPS = [
    "accounts.apps.AccountsConfig",
    "accounts.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.forms",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.usersessions",
    # Social sign-in providers: each is active once configured (back-office →
    # Social applications, or SOCIALACCOUNT_PROVIDERS); see the README.
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.microsoft",
    "allauth.socialaccount.providers.openid_connect",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp_webauthn",
    "hijack",
    "django_htmx",
    "django_tasks_db",
    # The Account API (accounts.api); "ninja" serves its documentation page's files.
    "ninja",
    # The portal as OAuth 2 / OpenID Connect provider for its APIs (accounts.oauth).
    "accounts.apps.OAuthProviderConfig",  # allauth.idp.oidc
]

MIDDLEWARE = [
    # Request counts and latencies by view (Prometheus, /metrics): first and last.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # The request id (X-Request-ID) and one log line per request.
    "portal.logs.RequestLogMiddleware",
    # /metrics for the scraper with METRICS_TOKEN, before sessions and the HTTPS
    # redirect (no cookie; plain HTTP on the private network). Anyone else goes on
    # as for any unknown address, so the page's existence is not told.
    "portal.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files with hashed names, before anything reads the session.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # /health/live and /health/ready, answered before sessions, locale and the gates.
    "accounts.health.HealthMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # A database that cannot be reached answers 503, not 500: before the first
    # middleware that may read it (sessions), after those that only add headers.
    "accounts.unavailable.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Errors under /api/ that the API did not answer itself get its JSON shape.
    "accounts.api.errors.ApiErrorShapeMiddleware",
    "accounts.api.middleware.ApiUploadsMiddleware",
    # Before CSRF, the first reader of request.POST: a form in another charset is a 400.
    "accounts.middleware.FormCharsetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in user's pages are never stored by browsers or proxies.
    "accounts.middleware.PrivatePagesMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "hijack.middleware.HijackUserMiddleware",
    "accounts.impersonation.ImpersonationMiddleware",
    # After every middleware that wraps request.user: the user itself, not three proxies.
    "accounts.middleware.ResolvedUserMiddleware",
    "accounts.middleware.UserPreferencesMiddleware",
    "accounts.gates.GateMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.SessionActivityMiddleware",
    "accounts.web.FlowErrorMiddleware",
    "portal.metrics.PortalPrometheusAfterMiddleware",
]

# allauth's "dummy" provider signs in without leaving the site: for development and
# the test suite only.
if DEBUG and env_bool("SOCIAL_DUMMY_PROVIDER", default=True):
    INSTALLED_APPS.append("allauth.socialaccount.providers.dummy")

ROOT_URLCONF = "portal.urls"
FORM_RENDERER = "accounts.forms_renderer.PortalFormRenderer"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"
SITE_ID = 1

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.portal",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)
if _db["ENGINE"] == "django.db.backends.postgresql":
    # psycopg's connection pool; Django requires CONN_MAX_AGE = 0 with it. With
    # CONN_HEALTH_CHECKS on (above), Django gives the pool
    # ``check=ConnectionPool.check_connection``: a connection broken by a restart of
    # PostgreSQL is dropped before it is handed out, and the pool reconnects by
    # itself. A request waits at most DATABASE_POOL_TIMEOUT seconds for a
    # connection, then gets a 503 (accounts.unavailable).
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN_SIZE", 1),
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10),
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
    }
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # Seconds a writer waits for another's lock before "database is locked"
            # (then a 503, accounts.unavailable).
            "timeout": 20,
        }
    )
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
CACHES: dict[str, dict]
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's Redis cache that serves from this process's memory while Redis
            # cannot be reached (accounts.cache).
            "BACKEND": "accounts.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("REDIS_KEY_PREFIX", "portal"),
            # Seconds to wait for Redis before serving from memory.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Users and passwords --------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # allauth's backend (username or email), letting an account scheduled for
    # deletion sign in to cancel it; Django's for sessions it started.
    "accounts.backends.PortalAuthenticationBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
PASSWORD_MIN_LENGTH = env_int("PASSWORD_MIN_LENGTH", 12)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {"NAME": "accounts.validators.MaximumLengthValidator", "OPTIONS": {"max_length": 4096}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "settings_home"
LOGOUT_REDIRECT_URL = "account_login"

# --- django-allauth -------------------------------------------------------

ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# The reset request never reaches a machine client's service account.
ACCOUNT_FORMS = {
    "reset_password": "accounts.forms.PasswordResetForm",
    # The password fields' help texts evaluated once per language, not on each use.
    "change_password": "accounts.forms.ChangePasswordForm",
    "set_password": "accounts.forms.SetPasswordForm",
}
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = True
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_TIMEOUT = 15 * 60
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_PRESERVE_USERNAME_CASING = False
ACCOUNT_USERNAME_MIN_LENGTH = 3
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{PORTAL_NAME}] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = _site.scheme
ACCOUNT_REAUTHENTICATION_TIMEOUT = env_int("REAUTHENTICATION_TIMEOUT", 300)
ACCOUNT_REAUTHENTICATION_REQUIRED = True
# The portal sends its own security notifications (accounts.notifications).
ACCOUNT_EMAIL_NOTIFICATIONS = False
# Session activity is tracked by accounts.middleware.SessionActivityMiddleware
# (at most once a minute per session instead of on every request).
USERSESSIONS_TRACK_ACTIVITY = False
# Rate limits stay on (allauth's defaults), stated here so they are visible.
ACCOUNT_RATE_LIMITS = {
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    # Each request mails a code, to addresses without an account too: per address,
    # room for a few retries but no flood of a victim's mailbox; per client address,
    # an office behind one NAT but not one sender cycling through addresses.
    "reset_password": "20/m/ip,60/h/ip,5/m/key,10/h/key",
    # Wrong passwords only; over the limit the session is signed out.
    "reauthenticate": "5/15m/user",
    "reset_password_from_key": "20/m/ip",
    "signup": "20/m/ip",
    # Sign-ins per client address. A load test from one machine (scripts/loadtest)
    # raises it on its own server: dozens of users behind one address.
    "login": env_str("RATE_LIMIT_LOGIN", "30/m/ip"),
    "login_failed": "10/m/ip,5/5m/key",
    "confirm_email": "1/3m/key",
    # The portal's own codes (email change, phone, re-authentication by email).
    "portal_email_change_code": "1/30s/user,10/h/user",
    "portal_phone_change_code": "1/30s/user,10/h/user",
    # Every text message, besides the account's own allowance: per destination
    # number and per client address (SMS pumping); SMS_SITE_HOURLY_CAP for the site.
    "portal_sms_destination": "3/h/key,10/d/key",
    "portal_sms_ip": "10/h/ip,30/d/ip",
    "portal_reauthentication_code": "1/30s/user,10/h/user",
    "portal_check_code": "20/m/user",
    "portal_data_export": "3/h/user",
    # Each picture is decoded (the costly part) only after this, refused ones included.
    "portal_avatar_upload": "10/h/user",
    "portal_token_create": "10/h/user",
}
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
# The unlink form reads the accounts only when a submission is checked.
SOCIALACCOUNT_FORMS = {"disconnect": "accounts.forms.DisconnectForm"}
SOCIALACCOUNT_PROVIDERS: dict[str, dict] = {}
ACCOUNT_DELETION_GRACE_DAYS = env_int("ACCOUNT_DELETION_GRACE_DAYS", 30)
# Whether visitors may create accounts (staff can always create them).
PORTAL_SIGNUP_OPEN = env_bool("PORTAL_SIGNUP_OPEN", default=True)
# Seconds between two updates of a session's "last seen" time and address.
SESSION_ACTIVITY_INTERVAL = env_int("SESSION_ACTIVITY_INTERVAL", 60)

# --- One-time codes and SMS -----------------------------------------------

VERIFICATION_CODE_TIMEOUT = env_int("VERIFICATION_CODE_TIMEOUT", 15 * 60)
VERIFICATION_CODE_MAX_ATTEMPTS = env_int("VERIFICATION_CODE_MAX_ATTEMPTS", 5)
PHONE_DEFAULT_REGION = env_str("PHONE_DEFAULT_REGION", "FR").upper()
# ISO region codes whose numbers may receive text messages (empty: all).
SMS_ALLOWED_REGIONS = [region.upper() for region in env_list("SMS_ALLOWED_REGIONS")]
# Text messages the whole site sends in a clock hour at most (0: no cap).
SMS_SITE_HOURLY_CAP = env_int("SMS_SITE_HOURLY_CAP", 1000)
SMS_BACKEND = env_str("SMS_BACKEND", "accounts.sms.backends.console.SmsBackend")
SMS_FILE_PATH = Path(env_str("SMS_FILE_PATH") or VAR_DIR / "sms")
SMS_TWILIO_ACCOUNT_SID = env_str("SMS_TWILIO_ACCOUNT_SID")
SMS_TWILIO_AUTH_TOKEN = env_str("SMS_TWILIO_AUTH_TOKEN")
SMS_TWILIO_FROM = env_str("SMS_TWILIO_FROM")
SMS_TWILIO_MESSAGING_SERVICE_SID = env_str("SMS_TWILIO_MESSAGING_SERVICE_SID")
SMS_TWILIO_API_BASE = env_str("SMS_TWILIO_API_BASE", "https://api.twilio.com")
# Seconds to wait for the SMS provider before giving up (the worker tries again).
SMS_TIMEOUT = env_int("SMS_TIMEOUT", 10)

# --- Task worker (django.tasks, database backend from django-tasks-db) ---------

# Security emails and text messages are delivered by the worker (`manage.py db_worker`)
# after the change is committed, never during the request.
TASKS = {"default": {"BACKEND": env_str("TASKS_BACKEND", "django_tasks_db.DatabaseBackend")}}
# Seconds to wait before each new attempt at a failed delivery.
DELIVERY_RETRY_DELAYS = (30, 120, 600, 3600)

# --- Second factor (django-otp, django-otp-webauthn) -------------------------

OTP_TOTP_ISSUER = PORTAL_NAME
OTP_TOTP_THROTTLE_FACTOR = 1
# WebAuthn: the relying party is the site of SITE_URL.
OTP_WEBAUTHN_RP_ID = SITE_HOST
OTP_WEBAUTHN_RP_NAME = PORTAL_NAME
OTP_WEBAUTHN_ALLOWED_ORIGINS = [SITE_ORIGIN]
# The stock passwordless view would skip allauth's login stages (and email
# verification): passkeys are a second factor here.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
BACKUP_CODE_COUNT = 10

# --- Impersonation (django-hijack) ------------------------------------------------

HIJACK_PERMISSION_CHECK = "accounts.impersonation.can_impersonate"
# The portal shows its own banner (no inline script or style).
HIJACK_INSERT_BEFORE = None
IMPERSONATION_MAX_SECONDS = env_int("IMPERSONATION_MAX_SECONDS", 30 * 60)

# --- Internationalisation -------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_TZ = True

# --- Static and media files -----------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT") or VAR_DIR / "static")
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT") or VAR_DIR / "media")
# Serve uploaded avatars from Django itself (turn off when the web server does).
SERVE_MEDIA = env_bool("DJANGO_SERVE_MEDIA", default=True)
# With debug off, `collectstatic` writes each file under a name holding a hash of its
# content (plus a gzip copy) and WhiteNoise serves them with a year-long cache. With
# debug on (development, and the test suite, which switches DEBUG off only at run
# time) files come straight from the apps' folders, no manifest needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "portal.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Seconds a per-process (local memory) cache keeps the field policy; with a shared
# cache (REDIS_URL) a save reaches every process at once.
POLICY_LOCAL_CACHE_SECONDS = env_int("POLICY_LOCAL_CACHE_SECONDS", 5)

# --- APIs -----------------------------------------------------------------

# The API reads PUT uploads itself (accounts.api.middleware), only under /api/.
NINJA_FIX_REQUEST_FILES_METHODS: set[str] = set()
# Live personal access tokens one account may hold.
PERSONAL_ACCESS_TOKENS_PER_USER = env_int("PERSONAL_ACCESS_TOKENS_PER_USER", 20)
# The Account API's lists (security activity) give at most this many rows a page.
API_PAGE_SIZE_MAX = 100

# --- OAuth 2 / OpenID Connect provider (allauth.idp.oidc, accounts.oauth) ---------

IDP_OIDC_ADAPTER = "accounts.oauth.PortalOIDCAdapter"
# Opaque access tokens (looked up on every call, so a suspension stops them at once;
# a self-contained JWT would outlive it), short-lived; refresh tokens rotate on use.
IDP_OIDC_ACCESS_TOKEN_FORMAT = "opaque"
IDP_OIDC_ACCESS_TOKEN_EXPIRES_IN = env_int("OAUTH_ACCESS_TOKEN_SECONDS", 600)
IDP_OIDC_REFRESH_TOKEN_EXPIRES_IN = env_int("OAUTH_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600)
IDP_OIDC_ROTATE_REFRESH_TOKEN = True
IDP_OIDC_AUTHORIZATION_CODE_EXPIRES_IN = env_int("OAUTH_CODE_SECONDS", 60)
IDP_OIDC_INTROSPECTION_ENABLED = True
# Confidential clients authenticate with their secret; public ones (PKCE) with none.
IDP_OIDC_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
IDP_OIDC_DCR_ENABLED = False
IDP_OIDC_CIMD_ENABLED = False
# The RS256 key signing ID tokens: OAUTH_PRIVATE_KEY (PEM) or OAUTH_PRIVATE_KEY_FILE;
# with debug on and neither set, one is made under var/ (accounts.oauth_keys).
IDP_OIDC_PRIVATE_KEY = env_str("OAUTH_PRIVATE_KEY").replace("\\n", "\n")
_OAUTH_KEY_FILE = env_str("OAUTH_PRIVATE_KEY_FILE")
if not IDP_OIDC_PRIVATE_KEY and _OAUTH_KEY_FILE:
    try:
        IDP_OIDC_PRIVATE_KEY = Path(_OAUTH_KEY_FILE).read_text()
    except OSError as exc:
        raise ImproperlyConfigured(f"OAUTH_PRIVATE_KEY_FILE cannot be read: {exc}") from exc
if not IDP_OIDC_PRIVATE_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "OAUTH_PRIVATE_KEY (an RSA private key in PEM) or OAUTH_PRIVATE_KEY_FILE must be "
            "set when DJANGO_DEBUG is off: it signs the OpenID Connect ID tokens."
        )
    from accounts.oauth_keys import development_key

    IDP_OIDC_PRIVATE_KEY = development_key(VAR_DIR / "oauth_private_key.pem")

# --- Email ----------------------------------------------------------------

# Django's mailers. The SMTP options apply only when the backend is SMTP.
EMAIL_BACKEND_PATH = env_str(
    "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
_mail_options: dict[str, object] = {}
if EMAIL_BACKEND_PATH.endswith("smtp.EmailBackend"):
    _mail_options = {
        "host": env_str("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 25),
        "username": env_str("EMAIL_HOST_USER"),
        "password": env_str("EMAIL_HOST_PASSWORD"),
        "use_tls": env_bool("EMAIL_USE_TLS"),
        "use_ssl": env_bool("EMAIL_USE_SSL"),
        "timeout": 20,
    }
MAILERS = {"default": {"BACKEND": EMAIL_BACKEND_PATH, "OPTIONS": _mail_options}}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"{PORTAL_NAME} <no-reply@{SITE_HOST}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security headers -----------------------------------------------------

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# The language chosen by a visitor (Django's set_language): sent over HTTPS only
# when debug is off, not on cross-site requests, and not readable by scripts.
LANGUAGE_COOKIE_SECURE = not DEBUG
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_HTTPONLY = True
# The same policy in development and production, so an inline script or style
# is caught on a developer's machine and not first in production.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    if env_bool("DJANGO_BEHIND_PROXY"):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A load balancer probes the app servers' health endpoints over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health/(live|ready)$"]

# --- Health endpoints (accounts.health) ---------------------------------------

# Callers sending "Authorization: Bearer <HEALTH_TOKEN>" see which readiness check
# failed and why; others only the status (unless debug is on). Empty: nobody by token.
HEALTH_TOKEN = env_str("HEALTH_TOKEN")

# --- Metrics (Prometheus) ----------------------------------------------------

# /metrics answers only a request with "Authorization: Bearer <METRICS_TOKEN>"
# (portal.metrics.MetricsMiddleware); while it is empty the page does not exist.
# PROMETHEUS_MULTIPROC_DIR (read by prometheus_client from the environment) turns on
# its multiprocess mode.
METRICS_TOKEN = env_str("METRICS_TOKEN")

# --- Logging --------------------------------------------------------------

# JSON lines on stdout (python-json-logger) by default in production, text with
# debug on. Every record carries the request id; portal.request writes one line per
# request, portal.security one per audit event.
LOG_FORMAT = env_str("DJANGO_LOG_FORMAT", "text" if DEBUG else "json").lower()
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"DJANGO_LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOG_LEVEL = env_str("DJANGO_LOG_LEVEL", "WARNING").upper()
REQUEST_LOG_LEVEL = env_str("DJANGO_REQUEST_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "portal.logs.RequestIdFilter"},
        "unavailable_answered": {"()": "accounts.unavailable.AnsweredFilter"},
    },
    "formatters": {
        "json": {"()": "portal.logs.json_formatter"},
        "text": {
            "()": "portal.logs.PortalTextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's records reach the console once, through the root logger.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # A 503 for a database out of reach is logged once, by accounts.unavailable.
        "django.request": {"filters": ["unavailable_answered"]},
        # Never below INFO, whatever DJANGO_LOG_LEVEL: their DEBUG records carry
        # secrets. SQL statements hold session keys and codes' rows in their
        # parameters; oauthlib writes the tokens it issues; a template's failed
        # variable lookup shows the object it looked in (a page's context).
        "django.db.backends": {"level": "INFO"},
        "oauthlib": {"level": "INFO"},
        "django.template": {"level": "INFO"},
        "portal.request": {"level": REQUEST_LOG_LEVEL},
        "portal.security": {"level": "INFO"},
    },
}
