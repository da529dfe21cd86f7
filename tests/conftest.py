from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from tests import queue
from videos.models import Membership, Project, ProviderAccount, ProviderKind, Role


@pytest.fixture(autouse=True)
def fast_sandbox(settings, tmp_path):
    """Sandbox tasks finish in ~2 s with small frames; files go to a per-test folder."""
    settings.SANDBOX_TASK_SECONDS = 1.5
    settings.SANDBOX_MAX_EDGE = 480
    settings.TRACK_POLL_SECONDS = 0.25
    settings.TRACK_MAX_POLL_SECONDS = 0.5
    # The twins refresh at once; the NewAPI floor has its own test.
    settings.TRACK_PROVIDER_REFRESH_SECONDS = {}
    settings.DATA_DIR = tmp_path / "data"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
    }


def grant_spending(user):
    """Staff gave this user the right to create projects and spend."""
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="spend"))
    return user


@pytest.fixture(autouse=True)
def fresh_fragment_cache():
    """Each test starts with nothing drawn: on SQLite ids come again after each test's
    rollback. (Only the in-memory cache: clearing Redis would empty the queue too; there,
    keys carry the database and ids are never reused within a run.)"""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    fragments = caches["template_fragments"]
    if isinstance(fragments, LocMemCache):
        fragments.clear()


@pytest.fixture
def no_fragment_cache(settings):
    """Pages drawn in full every time: for counting what a page costs when nothing of it is
    cached (with Redis the fragment cache outlives a test, and a run)."""
    settings.CACHES = {
        **settings.CACHES,
        "template_fragments": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }


@pytest.fixture
def user(db):
    casey = get_user_model().objects.create_user("casey", "casey@example.com", "pw-casey-123")
    return grant_spending(casey)


@pytest.fixture
def project(user):
    project = Project.objects.create(name="Launch film", created_by=user)
    Membership.objects.create(project=project, user=user, role=Role.CREATOR)
    return project


@pytest.fixture
def sandbox_apimart(db, live_server):
    return ProviderAccount.objects.create(
        all_projects=True,
        kind=ProviderKind.APIMART,
        label="apimart (sandbox)",
        base_url=f"{live_server.url}/sandbox/apimart",
        credential="sk-sandbox-test-key-0001",
    )


# One key per provider twin. Kling's secret follows the twin's rule ("sandbox-secret-" + access
# key); kie's is the webhook key the twin signs callbacks with.
SANDBOX_CREDENTIALS = {
    "apimart": ("sk-sandbox-apimart-chain", ""),
    "newapi": ("sk-sandbox-newapi-chain", ""),
    "kie": ("sk-sandbox-kie-chain", "sandbox-kie-webhook-key"),
    "kling": ("AKchaintest0123456789", "sandbox-secret-AKchaintest0123456789"),
}


@pytest.fixture
def sandbox_account(db, live_server):
    """Makes a ProviderAccount of a kind, pointed at that provider's twin on the live server."""

    def make(kind: str) -> ProviderAccount:
        key, secret = SANDBOX_CREDENTIALS[kind]
        return ProviderAccount.objects.create(
            all_projects=True,
            kind=kind,
            label=f"{kind} (sandbox)",
            base_url=f"{live_server.url}/sandbox/{kind}",
            credential=key,
            secret_key=secret,
        )

    return make


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture
def page_viewport() -> dict[str, int]:
    return {"width": 1280, "height": 860}


@pytest.fixture
def page(monkeypatch, page_viewport):
    """A Chromium page (Debian's build, driven by Playwright); override page_viewport to resize."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are ordinary blocking calls, which Django must be told to allow.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=page_viewport)
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()
        # While Playwright's loop runs, Django keeps this thread's connections in a separate,
        # context-local store; close them here, or PostgreSQL keeps an idle session that
        # blocks dropping the test database at the end of the run.
        connections.close_all()


@pytest.fixture
def drain_queue(db):
    queue.purge()
    yield queue.drain
    queue.purge()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    from tests.seaweedfs import seaweedfs

    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_storage(settings, s3_server):
    """Point default storage at a fresh bucket on the SeaweedFS server."""
    import uuid

    import boto3

    bucket = f"clips-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    ).create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_server.endpoint_url,
                "access_key": s3_server.access_key,
                "secret_key": s3_server.secret_key,
                "region_name": s3_server.region,
                "default_acl": None,
                "file_overwrite": False,
                "querystring_auth": True,
                "addressing_style": "path",
                "signature_version": "s3v4",
            },
        },
    }
    return bucket


# --- credential-leak scanner -------------------------------------------------------------------
# Every provider credential's plaintext is remembered as it is saved. Every HTTP response the
# studio renders during the suite (test client, live server, the browser's pages, the admin)
# and every log record is searched for it. A test during which one shows up fails at
# teardown, saying where; leaks outside any test fail the session's last teardown.

import html  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402

from django.conf import settings as django_settings  # noqa: E402
from django.db.models.signals import post_save  # noqa: E402


class CredentialLeakScanner:
    # Shorter values (a fixture's "x") would match ordinary text.
    MIN_LENGTH = 8

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.leaks: list[str] = []
        self._lock = threading.Lock()

    def remember(self, *values: str) -> None:
        with self._lock:
            self.secrets.update(v for v in values if v and len(v) >= self.MIN_LENGTH)

    def scan(self, text: str, where: str) -> None:
        if not text:
            return
        texts = (text, html.unescape(text))
        with self._lock:
            for secret in self.secrets:
                if any(secret in t for t in texts):
                    self.leaks.append(f"{where} contains the key ending …{secret[-4:]}")

    def take_since(self, mark: int) -> list[str]:
        with self._lock:
            found = self.leaks[mark:]
            del self.leaks[mark:]
        return found


LEAK_SCANNER = CredentialLeakScanner()


class CredentialLeakMiddleware:
    """Outermost middleware (added for the test session only): scans each rendered response."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        where = f"{request.method} {request.get_full_path()} ({response.status_code})"
        headers = "\n".join(f"{name}: {value}" for name, value in response.items())
        LEAK_SCANNER.scan(headers, f"the headers of {where}")
        if not response.streaming:
            LEAK_SCANNER.scan(response.content.decode("utf-8", "replace"), where)
        return response


class CredentialLeakLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be formatted still gets its raw text scanned
            text = f"{record.msg} {record.args}"
        LEAK_SCANNER.scan(text, f"a log record from {record.name!r}")


def _remember_credentials(sender, instance, **kwargs) -> None:
    LEAK_SCANNER.remember(instance.credential, instance.secret_key)


@pytest.fixture(scope="session", autouse=True)
def credential_leak_scanner():
    middleware = f"{__name__}.CredentialLeakMiddleware"
    django_settings.MIDDLEWARE = [middleware, *django_settings.MIDDLEWARE]
    post_save.connect(
        _remember_credentials, sender=ProviderAccount, dispatch_uid="credential-leak-scanner"
    )
    handler = CredentialLeakLogHandler(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield LEAK_SCANNER
    logging.getLogger().removeHandler(handler)
    post_save.disconnect(sender=ProviderAccount, dispatch_uid="credential-leak-scanner")
    django_settings.MIDDLEWARE = [m for m in django_settings.MIDDLEWARE if m != middleware]
    leaks = LEAK_SCANNER.take_since(0)
    if leaks:
        pytest.fail("Credential plaintext outside any test: " + "; ".join(leaks), pytrace=False)


@pytest.fixture(autouse=True)
def no_credential_leaks(credential_leak_scanner):
    mark = len(credential_leak_scanner.leaks)
    yield credential_leak_scanner
    leaks = credential_leak_scanner.take_since(mark)
    if leaks:
        pytest.fail("A stored credential was rendered: " + "; ".join(leaks), pytrace=False)
