"""Clipchain settings: one file, read from the environment.

Every value has a default that runs locally with no set-up (SQLite, django-q2's ORM
broker, files under ./data). A malformed value stops start-up with a message naming the
variable, rather than running with a silently wrong configuration.
"""

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
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
    "axes",
    "videos",
]
if SANDBOX_ENABLED:
    INSTALLED_APPS.append("sandbox")

MIDDLEWARE = [
    # /healthz and /readyz, answered before host checks and the HTTPS redirect.
    "videos.health.probe_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A visitor who came through a review link gets 404s from the studio's other pages.
    "videos.guest_views.GuestBoundary",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-csp's, with the policy built once (the same for every answer).
    "videos.policy_header.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "studio.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # Compiled templates stay in memory (runserver drops them when a file changes);
            # the partials loader serves "page.html#fragment". Named here because
            # template-partials replaces any loaders not wrapped in its own.
            "loaders": [
                (
                    "template_partials.loader.Loader",
                    [
                        (
                            "django.template.loaders.cached.Loader",
                            [
                                "django.template.loaders.filesystem.Loader",
                                "django.template.loaders.app_directories.Loader",
                            ],
                        )
                    ],
                )
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
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # A database that does not answer fails a request (and /readyz) within seconds,
        # not after the operating system's TCP timeout.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
            "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)
        )
        if env_bool("DATABASE_PREPARED_STATEMENTS", True):
            # Values sent apart from the SQL, and a statement run five times on a connection
            # is prepared: PostgreSQL then stops planning it anew. An unchanged clip poll took
            # 1.8 ms without and 1.0-1.1 ms with (bench/profile_pages.py --postgres). Turn off
            # (DATABASE_PREPARED_STATEMENTS=0) behind a pooler in transaction mode that
            # cannot keep prepared statements (PgBouncer before 1.21).
            DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
else:
    # SQLite cannot create the folder its file lives in.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # Kept open between requests, as for PostgreSQL: each new connection would
            # run the PRAGMAs below again.
            "CONN_MAX_AGE": 60,
            "NAME": Path(env_str("SQLITE_PATH", str(DATA_DIR / "clipchain.sqlite3"))),
            # On a file, not in memory, so the tests' tracker and worker processes share it.
            "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
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
# The queue's name is its key prefix in Redis: studios sharing one Redis each need their
# own, and so does each parallel test worker (pytest-xdist), which has a database of its own.
Q_CLUSTER_NAME = env_str("Q_CLUSTER_NAME") or "clipchain" + (
    f"-{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else ""
)
Q_CLUSTER: dict = {
    "name": Q_CLUSTER_NAME,
    "workers": env_int("Q_WORKERS", 4, minimum=1),
    # Queue tasks are media work (mirror, poster, export); provider calls are the tracker's.
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
    # Sessions are read on every request: from Redis, with the database behind it. (Only a
    # cache every process shares will do: a per-process cache would keep a session that
    # logged out in one process alive in the others.)
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "clipchain",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    FRAGMENT_CACHE: dict = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "clipchain-fragments",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
else:
    Q_CLUSTER["orm"] = "default"
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Sessions in the database, read with SQL made once (Django's own store otherwise).
    SESSION_ENGINE = "videos.sessions"
    # Without a shared cache each web process keeps its own: fragments are keyed by what
    # they show, so a process can never serve another's stale copy, only miss.
    FRAGMENT_CACHE = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fragments",
        # About 20 KB a part and 35 KB a whole kept page: at most about 20 MB a process.
        "OPTIONS": {"MAX_ENTRIES": 500},
    }
# Rendered parts of busy pages (the clip grid, the project's chains and activity, the
# library filters), read by Django's {% cache %} tag. Each key carries the *version* of what
# the part shows (the rows it draws, the viewer's rights, the query string) and a
# fingerprint of the templates, so a change of data or of code is a new key, never a stale
# page (videos/fragments.py).
CACHES["template_fragments"] = {
    **FRAGMENT_CACHE,
    "KEY_FUNCTION": "videos.fragments.fragment_key",
}

# How the tracker (manage.py tracker) follows provider tasks. A task is first asked about
# TRACK_POLL_SECONDS after submission, then less often as it runs long, at most every
# TRACK_MAX_POLL_SECONDS; the page polls every 2 s.
TRACK_POLL_SECONDS = env_float("TRACK_POLL_SECONDS", 2.0)
TRACK_MAX_POLL_SECONDS = env_float("TRACK_MAX_POLL_SECONDS", 30.0)
# Never asked more often than the provider refreshes its tasks (the NewAPI gateway: 15 s).
TRACK_PROVIDER_REFRESH_SECONDS = {"newapi": env_float("TRACK_NEWAPI_REFRESH_SECONDS", 15.0)}
# Status checks in flight at once per tracker process, and submissions sent side by side.
TRACKER_THREADS = env_int("TRACKER_THREADS", 32, minimum=1)
TRACKER_SUBMIT_THREADS = env_int("TRACKER_SUBMIT_THREADS", 4, minimum=1)
# An idle tracker looks for due polls and new clips this often.
TRACKER_IDLE_SECONDS = env_float("TRACKER_IDLE_SECONDS", 0.5)
# A submitter renews its claim on a clip every third of this while the provider call runs;
# a claim not renewed for this long belonged to a process that died.
SUBMIT_LEASE_SECONDS = env_float("SUBMIT_LEASE_SECONDS", 15.0)
# A tracker holds the clips of one round of status checks this long; one killed mid-round
# leaves them unpolled until it lapses. Longer than a round's checks can take.
TRACK_POLL_LEASE_SECONDS = env_float("TRACK_POLL_LEASE_SECONDS", 60.0)
# A provider task still unfinished after this long is given up as expired (Kling jobs
# have been seen to run over an hour).
TRACK_DEADLINE_SECONDS = env_int("TRACK_DEADLINE_SECONDS", 3 * 3600, minimum=60)
# Where providers can reach this studio to deliver callbacks (kie, Kling). Empty: poll only.
PUBLIC_URL = env_str("PUBLIC_URL").rstrip("/")
PROVIDER_TIMEOUT_SECONDS = env_float("PROVIDER_TIMEOUT_SECONDS", 30.0)
DOWNLOAD_TIMEOUT_SECONDS = env_float("DOWNLOAD_TIMEOUT_SECONDS", 120.0)
# Server-side fetches (provider videos, pasted frame links) never reach private, loopback or
# link-local addresses (videos/netguard.py), except on these hosts (an internal gateway).
FETCH_ALLOWED_HOSTS = env_list("FETCH_ALLOWED_HOSTS", [])

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
            else "videos.static_storage.ForgivingManifestStorage"
        )
    },
}

STATIC_URL = "static/"
# Where `manage.py collectstatic` writes the hashed, compressed files WhiteNoise serves.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles"))).resolve()
STATICFILES_DIRS = [BASE_DIR / "static"]
# With DEBUG off, files are served under hashed names, compressed, cached for a year
# (videos/static_storage.py); gunicorn.conf.py refuses to start without collectstatic.

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

# Login throttling (django-axes), on the studio's and the admin's login alike: ten wrong
# passwords for one username from one address lock that pair out for 15 minutes. Keyed on
# the pair, so a stranger guessing cannot lock a user out everywhere, and other users on
# the same network are unaffected. A successful login clears the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, reading the signed-in user with SQL made once (videos/auth.py).
    # Sessions signed in through django.contrib.auth.backends.ModelBackend, before this
    # backend, are signed out once: their backend is no longer listed.
    "videos.auth.StudioModelBackend",
]
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind N reverse proxies every login would come from the proxy's address and share one
# lockout: the client's address is then read from X-Forwarded-For, N hops from the right.
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0) or None
if AXES_IPWARE_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Production is HTTPS only: plain HTTP is redirected, and browsers are told to remember
    # it (a year by default). Set SECURE_SSL_REDIRECT=0 only where a proxy already redirects.
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # The preload token asks browsers to hard-code the domain as HTTPS-only, a decision
        # for whoever owns the domain (hstspreload.org), not a default: opt in with
        # SECURE_HSTS_PRELOAD=1.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Load balancers probe over plain HTTP from inside the network (videos.health answers
# them before this redirect; the exemption keeps them working if it moves).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# Content Security Policy (django-csp): scripts and styles come only from this site's static
# files (htmx included), never inline, so injected markup cannot run script. htmx is told
# not to eval (templates/base.html), so none of its features need 'unsafe-eval'.
if S3_BUCKET:
    # Videos and posters are presigned S3 links the browser is redirected to.
    endpoint = urlsplit(env_str("S3_ENDPOINT_URL"))
    S3_ORIGIN = (
        f"{endpoint.scheme}://{endpoint.netloc}" if endpoint.netloc else "https://*.amazonaws.com"
    )
    MEDIA_SOURCES = [SELF, S3_ORIGIN]
else:
    MEDIA_SOURCES = [SELF]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # Data-driven widths (the budget bar, the chain strip) are style attributes; an
        # attribute cannot load or run anything.
        "style-src-attr": [UNSAFE_INLINE],
        # Frame previews may be links creators pasted (any https host) or local blob:/data:
        # previews of a chosen file.
        "img-src": [*MEDIA_SOURCES, "https:", "data:", "blob:"],
        "media-src": MEDIA_SOURCES,
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
