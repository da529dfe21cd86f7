"""The production server: gunicorn with gunicorn.conf.py, static files through WhiteNoise."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.test_deploy import production_settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr


def serve(env: dict[str, str], port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [str(ROOT / "bin/serve")],
        cwd=ROOT,
        env={**env, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_up(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn exited: {server.stdout.read()}")
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not answer within 60 s")


def test_gunicorn_serves_pages_and_hashed_compressed_static_files(tmp_path):
    env = production_settings(tmp_path)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(env, port)
    try:
        wait_until_up(base, server)
        host = {"Host": "clips.example.com"}
        # Plain HTTP is sent to HTTPS, except for the probes, which come from inside the
        # network to the machine's own address.
        assert httpx.get(f"{base}/login/", headers=host).status_code == 301
        health = httpx.get(f"{base}/readyz", timeout=10)
        assert health.status_code == 200, health.text
        assert json.loads(health.text)["status"] == "ok"
        # Behind the TLS proxy (which says so in X-Forwarded-Proto) the page is served.
        https = {"X-Forwarded-Proto": "https", **host}
        page = httpx.get(f"{base}/login/", headers=https)
        assert page.status_code == 200
        css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page.text)
        assert css, page.text
        styles = httpx.get(f"{base}{css[1]}", headers={"Accept-Encoding": "gzip", **https})
        assert styles.status_code == 200
        assert styles.headers["Content-Encoding"] == "gzip"
        assert "immutable" in styles.headers["Cache-Control"]
        assert ".htmx-indicator" in styles.text
    finally:
        server.send_signal(signal.SIGTERM)
        # A graceful stop: requests in flight finish, then the master exits cleanly.
        assert server.wait(timeout=40) == 0
    log = server.stdout.read()
    assert re.search(r'"GET /readyz HTTP/1\.1" 200 \d+ \d+ms', log), log
    assert "Using worker: gthread" in log, log


def test_gunicorn_refuses_to_start_without_collectstatic(tmp_path):
    env = production_settings(tmp_path)
    server = serve(env, free_port())
    assert server.wait(timeout=60) != 0
    out = server.stdout.read()
    assert "staticfiles.json does not exist" in out and "collectstatic" in out, out


@pytest.mark.django_db
def test_a_static_file_collectstatic_never_saw_does_not_fail_the_page(
    client, settings, tmp_path, caplog
):
    static_root = tmp_path / "static"
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "videos.static_storage.ForgivingManifestStorage"},
    }
    with override_settings(STATIC_ROOT=static_root, STORAGES=storages, DEBUG=False):
        call_command("collectstatic", interactive=False, verbosity=0)
        # A release that added a script but skipped collectstatic.
        manifest = static_root / "staticfiles.json"
        data = json.loads(manifest.read_text())
        del data["paths"]["js/polling.js"]
        manifest.write_text(json.dumps(data))
        for path in static_root.glob("js/polling*"):
            path.unlink()
    with override_settings(STATIC_ROOT=static_root, STORAGES=storages, DEBUG=False):
        page = client.get("/login/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<script src="/static/js/polling.js" defer></script>' in html
    assert "'js/polling.js' is missing from collectstatic's output" in caplog.text
    assert re.search(r'href="/static/css/app\.[0-9a-f]{12}\.css"', html)


# --- the pages in a browser, under the Content Security Policy ---------------------------------

WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${where}`);
});
"""


@pytest.mark.browser
def test_the_pages_work_under_the_content_security_policy(page, live_server, user, project):
    from datetime import timedelta

    from django.utils import timezone

    from tests.chain_helpers import stored_clip
    from videos.models import Clip, ClipKind, ClipStatus, ProviderAccount

    account = ProviderAccount.objects.create(
        all_projects=True,
        kind="apimart",
        label="apimart",
        base_url=f"{live_server.url}/sandbox/apimart",
        credential="sk-csp-browser-0001",
    )
    root = stored_clip(project=project, user=user, account=account, seconds=2)
    stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=2,
        parent=root,
        kind=ClipKind.CONTINUE,
        is_main_line=True,
    )
    running = Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model="veo3.1-fast-official",
        prompt="A kite over the dunes",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
        status=ClipStatus.RUNNING,
        progress=30,
        provider_task_id="task-csp-running",
        submitted_at=timezone.now() - timedelta(seconds=65),
    )
    page.add_init_script(WATCH_VIOLATIONS)
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("casey")
    page.get_by_label("Password").fill("pw-casey-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/projects/")

    # The clip page polls through htmx, and its elapsed time ticks in the page.
    with page.expect_request(
        lambda request: (
            request.url.endswith(f"/clips/{running.pk}/?seen=running")
            and request.headers.get("hx-request") == "true"
        ),
        timeout=10_000,
    ):
        page.goto(f"{live_server.url}{running.get_absolute_url()}")
    elapsed = page.locator("[data-elapsed-since]")
    first = elapsed.inner_text()
    page.wait_for_function(
        "(first) => document.querySelector('[data-elapsed-since]').textContent !== first",
        arg=first,
        timeout=5_000,
    )
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("window.__violations") == []

    for path in (
        project.get_absolute_url(),
        f"/clips/{root.pk}/chain/",
        f"/projects/{project.pk}/clips/new/",
    ):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__violations") == [], path
    # And the policy is really there: an injected inline script does not run, and says so.
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true'; document.body.append(s); }"
    )
    page.wait_for_function("window.__violations.length > 0", timeout=5_000)
    assert page.evaluate("window.injected") is None
    assert page.evaluate("window.__violations")[0].startswith("script-src")
