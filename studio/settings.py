"""Clipchain settings: one file, read from the environment.

Every value has a default that runs locally with no set-up (SQLite, django-q2's ORM
broker, files under ./data). A malformed value stops start-up with a message naming the
variable, rather than running with a silently wrong configuration.
"""

import base64
import hashlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no).")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum of {minimum}.")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name}={value} must not be negative.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "clipchain-local-development-only-not-secret"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data"))).resolve()

# The provider sandbox is a stand-in for other companies' servers. It answers any bearer
# key, so it must never be reachable where real users are: production (DEBUG off) refuses it.
SANDBOX_ENABLED = env_bool("SANDBOX", DEBUG)
if SANDBOX_ENABLED and not DEBUG:
    raise ImproperlyConfigured(
        "SANDBOX=1 is refused when DEBUG is off: the provider sandbox accepts any key and "
        "must never be reachable in production."
    )
# How long a sandbox task takes from submission to a finished video.
SANDBOX_TASK_SECONDS = env_float("SANDBOX_TASK_SECONDS", 6.0)
# Sandbox videos keep the requested duration and aspect ratio but are drawn at most this
# many pixels on the long edge, so a demo "4K" request renders in seconds, not minutes.
SANDBOX_MAX_EDGE = env_int("SANDBOX_MAX_EDGE", 1280, minimum=64)
# The key the kie twin signs its callbacks with (the demo's kie account holds the same key).
SANDBOX_KIE_WEBHOOK_KEY = env_str("SANDBOX_KIE_WEBHOOK_KEY", "sandbox-kie-webhook-key")
# The "timeout" fault answers only after this long, beyond PROVIDER_TIMEOUT_SECONDS.
SANDBOX_TIMEOUT_SECONDS = env_float("SANDBOX_TIMEOUT_SECONDS", 40.0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_q",
    "videos",
]
if SANDBOX_ENABLED:
    INSTALLED_APPS.append("sandbox")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "studio.urls"

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

WSGI_APPLICATION = "studio.wsgi.application"

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
else:
    # SQLite cannot create the folder its file lives in.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "clipchain.sqlite3",
            "OPTIONS": {
                # WAL lets the web server read while the worker writes; IMMEDIATE takes the
                # write lock at BEGIN so two writers queue on busy_timeout instead of one
                # failing with "database is locked" half-way through a transaction.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                ),
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-q2: the ORM broker by default (nothing to run but the worker), Redis at scale.
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER: dict = {
    "name": "clipchain",
    "workers": env_int("Q_WORKERS", 4, minimum=1),
    # A tracking task polls for at most TRACK_BUDGET_SECONDS, far below this timeout.
    "timeout": 600,
    "retry": 660,
    # Every task is safe to run twice (state is checked in the database first), so a
    # task lost with a killed worker is simply delivered again.
    "max_attempts": 3,
    "ack_failures": True,
    "save_limit": 500,
    "catch_up": False,
    "poll": 0.5,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# How the tracker follows a provider task. The page polls every 2 s, the tracker polls the
# provider every TRACK_POLL_SECONDS, so progress reaches the page within about 4 s.
TRACK_POLL_SECONDS = env_float("TRACK_POLL_SECONDS", 2.0)
# One tracking task polls for this long, then hands over to a fresh task so that a few
# long provider jobs never hold every worker.
TRACK_BUDGET_SECONDS = env_float("TRACK_BUDGET_SECONDS", 45.0)
# A provider task still unfinished after this long is given up as expired (Kling jobs
# have been seen to run over an hour).
TRACK_DEADLINE_SECONDS = env_int("TRACK_DEADLINE_SECONDS", 3 * 3600, minimum=60)
# Where providers can reach this studio to deliver callbacks (kie, Kling). Empty: poll only.
PUBLIC_URL = env_str("PUBLIC_URL").rstrip("/")
PROVIDER_TIMEOUT_SECONDS = env_float("PROVIDER_TIMEOUT_SECONDS", 30.0)
DOWNLOAD_TIMEOUT_SECONDS = env_float("DOWNLOAD_TIMEOUT_SECONDS", 120.0)

# Credentials are encrypted with Fernet. FERNET_KEYS is a comma-separated list, newest
# first, so keys can be rotated: the first encrypts, all of them decrypt.
FERNET_KEYS = env_list("FERNET_KEYS", [])
if not FERNET_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("FERNET_KEYS must be set when DEBUG is off.")
    digest = hashlib.sha256(("fernet:" + SECRET_KEY).encode()).digest()
    FERNET_KEYS = [base64.urlsafe_b64encode(digest).decode()]

# Storage: files under DATA_DIR/media by default, S3-compatible storage when S3_BUCKET is set.
S3_BUCKET = env_str("S3_BUCKET")
if S3_BUCKET:
    default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "region_name": env_str("S3_REGION") or None,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
            "querystring_expire": env_int("S3_URL_EXPIRE_SECONDS", 3600, minimum=60),
            "addressing_style": "path",
            "signature_version": "s3v4",
        },
    }
else:
    default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": DATA_DIR / "media"},
    }
STORAGES = {
    "default": default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# A pasted data: URI of a 10 MB image is ~14 MB of form text; Django's 2.5 MB default would
# refuse it with a bare 400 before the form could explain anything.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "projects"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
