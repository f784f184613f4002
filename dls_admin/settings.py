"""One settings module, read from the environment (django-environ). See .env.example.

The embedded default (no environment at all) runs on SQLite with a file-system Celery broker,
so a fresh clone needs no server. ``DJANGO_ENV=production`` turns on the production checks:
it refuses to start without a secret key, allowed hosts, or a signing key.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from dls_admin.logging import logging_config
from dls_admin.security import parse_csp, parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    env.read_env(str(env_file))

# pytest (>= 8.2) sets PYTEST_VERSION: the suite always runs with the test environment.
DJANGO_ENV = "test" if os.environ.get("PYTEST_VERSION") else env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in ("development", "production", "test"):
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, production or test, not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789"
if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")  # no default: fails loudly when missing
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY == _DEV_SECRET_KEY:
        raise ImproperlyConfigured(
            "SECRET_KEY must be at least 50 random characters in production "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production")
else:
    SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

# The base URL of this server: the `iss` of local licenses and the links in emails.
BASE_URL = env.str("BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "csp",
    "axes",  # login attempts in the database (dls_admin.login_throttle)
    "django_celery_beat",
    "ninja",  # serves the API docs' Swagger UI from our own static files (no CDN, CSP 'self')
    "dls_admin.apps.DlsAdminConfig",  # ops commands, health check, login throttle
    "licenses",
    "devices",
    "usage",
    "api",
    "portal",
]
# The simulator, load generator and benchmarks (client/tools): never in production.
DEV_TOOLS = env.bool("DEV_TOOLS", default=not PRODUCTION)
if DEV_TOOLS:
    INSTALLED_APPS.append("client.tools")

MIDDLEWARE = [
    "dls_admin.logging.RequestIdMiddleware",
    "api.cors.DeviceApiMiddleware",  # CORS, no cookies, JSON 404/405 under /api/ (SPEC 6)
    "dls_admin.security.TrustedProxyMiddleware",
    "api.contact.ClientAddressMiddleware",  # device requests record their address (docs/insight.md)
    "django.middleware.security.SecurityMiddleware",
    "dls_admin.pages_only.CSPMiddleware",  # these four: not for the device endpoints (dls_admin/pages_only.py)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "dls_admin.pages_only.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # as is: check --deploy looks for it by name
    "dls_admin.pages_only.AuthenticationMiddleware",
    "dls_admin.pages_only.MessageMiddleware",
    "portal.errors.ErrorPagesMiddleware",  # our 403/404 pages, in the demo (DEBUG) too; 403 without traceback
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # axes' own lockout answer; ours is a form error (never set)
]

ROOT_URLCONF = "dls_admin.urls"
WSGI_APPLICATION = "dls_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite is the embedded default. IMMEDIATE transactions take the write lock at BEGIN, so a
# transaction that counts seats and then inserts cannot interleave with another one.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'dls.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"}
    )
    if "TEST" not in DATABASES["default"] and DJANGO_ENV == "test":
        # A file, not :memory:, so threads in race tests share one database; one per run.
        DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# The device API's hot statements (devices.prepared.hot_cursor) are bound on the server and
# prepared once per connection on PostgreSQL; off behind a pooler that cannot keep a session's
# prepared statements (PgBouncer in transaction mode before 1.21). docs/operations.md.
HOT_SQL_PREPARED = env.bool("HOT_SQL_PREPARED", default=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Security. The same headers in every environment; HTTPS-only parts in production (section
# "Production" below). See docs/security.md.
# The policy (django-csp) is written in the environment as the header's text; empty turns it off.
# CSP_REPORT_ONLY sends it as Content-Security-Policy-Report-Only instead, to trial a change.
_csp_policy = {
    "DIRECTIVES": parse_csp(
        env.str(
            "CONTENT_SECURITY_POLICY",
            default="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'",
        )
    )
}
if not _csp_policy["DIRECTIVES"]:
    _csp_policy = {}
if env.bool("CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp_policy
else:
    CONTENT_SECURITY_POLICY = _csp_policy
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
# The reverse proxies / load balancers in front of the web processes (addresses or CIDR
# networks): X-Forwarded-For is believed only on connections from them (docs/operations.md).
TRUSTED_PROXIES = parse_networks(env.list("TRUSTED_PROXIES", default=[]))
if "TRUSTED_PROXY_COUNT" in os.environ:
    raise ImproperlyConfigured(
        "TRUSTED_PROXY_COUNT trusted X-Forwarded-For from any peer and is gone: set TRUSTED_PROXIES to the "
        "proxies' addresses or networks instead, e.g. TRUSTED_PROXIES=10.0.0.5 or 10.0.0.0/24"
    )
# Login throttling (dls_admin.login_throttle, on django-axes): attempts per (username, address)
# pair and per address per window, counted in the database before the password is checked.
AUTHENTICATION_BACKENDS = [
    "dls_admin.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Off in the test suite (other tests log in freely); tests/test_ops_login_throttle.py turns it on.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=0 if DJANGO_ENV == "test" else 5)
LOGIN_FAILURE_LIMIT_ADDRESS = env.int("LOGIN_FAILURE_LIMIT_ADDRESS", default=0 if DJANGO_ENV == "test" else 30)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)
AXES_ENABLED = True  # axes' default, set here so login_throttle reads it as a declared setting
AXES_USERNAME_FORM_FIELD = "username"  # likewise axes' default
AXES_HANDLER = "dls_admin.login_throttle.ThrottleHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_FAILURE_LIMIT = "dls_admin.login_throttle.failure_limit"
AXES_COOLOFF_TIME = "dls_admin.login_throttle.cool_off"
AXES_USERNAME_CALLABLE = "dls_admin.login_throttle.normalize_username"
AXES_CLIENT_IP_CALLABLE = "dls_admin.security.client_address"
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_VERBOSE = False
# The password-reset form (dls_admin.password_reset): requests per client address and per email.
# Off in the test suite like the login throttle; its own tests turn them on.
PASSWORD_RESET_RATE_LIMIT_ADDRESS = env.str(
    "PASSWORD_RESET_RATE_LIMIT_ADDRESS", default="0" if DJANGO_ENV == "test" else "10/h"
)
PASSWORD_RESET_RATE_LIMIT_EMAIL = env.str(
    "PASSWORD_RESET_RATE_LIMIT_EMAIL", default="0" if DJANGO_ENV == "test" else "3/h"
)
PASSWORD_RESET_IN_BACKGROUND = DJANGO_ENV != "test"

REDIS_URL = env.str("REDIS_URL", default="")
# Short socket timeouts: the cache only holds rate-limit counts, and a request must not wait on a
# hung Redis (the limits then count per process, api/ratelimit.py; docs/operations.md "Failures").
CACHE_SOCKET_TIMEOUT = env.float("CACHE_SOCKET_TIMEOUT", default=0.25)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": CACHE_SOCKET_TIMEOUT, "socket_timeout": CACHE_SOCKET_TIMEOUT},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "dls"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if DJANGO_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Email: console in development, SMTP by EMAIL_URL (e.g. smtp+tls://user:pass@host:587).
# Production refuses the console (it would print working password-reset links into the logs) and
# any in-memory backend: a mail server, or explicitly filemail:///path or dummymail://.
_email_url = env.str("EMAIL_URL", default="" if PRODUCTION else "consolemail://")
EMAIL_CONFIG = env.email_url_config(_email_url) if _email_url else {}
if PRODUCTION and EMAIL_CONFIG.get("EMAIL_BACKEND") not in (
    "django.core.mail.backends.smtp.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
):
    raise ImproperlyConfigured(
        "Production needs EMAIL_URL for a mail server (e.g. smtp+tls://user:password@host:587), or explicitly "
        "filemail:///path or dummymail://: the console backend would print password-reset links into the logs"
    )
if DJANGO_ENV == "test":
    EMAIL_CONFIG = {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="DLS Admin <noreply@localhost>")

# Celery: Redis when REDIS_URL is set, otherwise a file-system broker that needs no daemon.
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _broker_dir = VAR_DIR / "celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# Device API (SPEC section 6).
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="60/m")
API_RATE_LIMIT_ADDRESS = env.str("API_RATE_LIMIT_ADDRESS", default="6000/m")
# Admin API (SPEC 13): requests per token; 0 turns it off.
ADMIN_API_RATE_LIMIT = env.str("ADMIN_API_RATE_LIMIT", default="600/m")
# Webhooks (SPEC 14): allow endpoints on loopback, private and link-local addresses (tests, on-premise).
WEBHOOK_ALLOW_PRIVATE_HOSTS = env.bool("WEBHOOK_ALLOW_PRIVATE_HOSTS", default=False)

# Key sharing and clone flags (usage.anomalies, docs/insight.md), per project and UTC day.
ANOMALY_NETWORKS_PER_DAY = env.int("ANOMALY_NETWORKS_PER_DAY", default=20)  # distinct /24 or /48 networks
ANOMALY_DOMAINS_PER_DAY = env.int("ANOMALY_DOMAINS_PER_DAY", default=5)  # registrable domains outside the allowed
ANOMALY_HOP_MINUTES = env.int("ANOMALY_HOP_MINUTES", default=10)  # one device from far-apart networks within
ANOMALY_ROLLBACK_MINUTES = env.int("ANOMALY_ROLLBACK_MINUTES", default=30)  # a slot reported again this far back
SEAT_BURN_GAP_HOURS = env.int("SEAT_BURN_GAP_HOURS", default=48)  # a new UUID this soon after an old one idled
# The HMAC key of projects' session passwords (devices/protection.py); empty: derived from SECRET_KEY.
PROTECTION_KEY = env.str("PROTECTION_KEY", default="")
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024  # 1 MiB, the device API's body limit

# Local license signing keys (SPEC section 7): from configuration, never the database.
# SIGNING_KEYS: a comma-separated list of base64url Ed25519 private keys (raw 32 bytes); the first
# signs, all verify. SIGNING_KEY_FILE: a file with one such key per line, same rule.
SIGNING_KEYS = env.list("SIGNING_KEYS", default=[])
SIGNING_KEY_FILE = env.str("SIGNING_KEY_FILE", default="")
if PRODUCTION and not (SIGNING_KEYS or SIGNING_KEY_FILE):
    raise ImproperlyConfigured("Production needs SIGNING_KEYS or SIGNING_KEY_FILE (see docs/operations.md)")
DEV_SIGNING_KEY_FILE = VAR_DIR / "signing-key.txt"

# Retention (SPEC section 8).
REPORT_RETENTION_DAYS = env.int("REPORT_RETENTION_DAYS", default=400)

# Logs: everything to standard output; JSON lines (one object per record) in production.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "text")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = logging_config(json_format=LOG_FORMAT == "json", level=env.str("LOG_LEVEL", default="INFO"))

# Production: HTTPS only (docs/operations.md). `manage.py check --deploy` passes with no warning.
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz"]  # load balancers probe over plain HTTP
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    # The header a TLS-terminating proxy sets, e.g. "HTTP_X_FORWARDED_PROTO,https". Only set it
    # when that proxy always sets or strips the header; otherwise clients could forge it.
    _proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
    if _proxy_ssl_header:
        if len(_proxy_ssl_header) != 2:
            raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be HEADER,value e.g. HTTP_X_FORWARDED_PROTO,https")
        SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

VAR_DIR.mkdir(exist_ok=True)
