"""Production settings: `check --deploy` is clean, templates are cached, headers are strict.

Each test runs Django in a process of its own with DEBUG off, as a deployment would.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def production_settings(folder: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SECURE_", "DJANGO_", "SANDBOX", "S3_"))
        # A database and broker of its own (SQLite in the folder): the session's may be a
        # PostgreSQL test database that only this process can see.
        and name not in {"DEBUG", "ALLOWED_HOSTS", "PUBLIC_URL", "DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        FERNET_KEYS=Fernet.generate_key().decode(),
        # Not optional either: with no host allowed, every request is refused.
        ALLOWED_HOSTS="clips.example.com,testserver",
        DATA_DIR=str(folder / "data"),
        STATIC_ROOT=str(folder / "static"),
        DJANGO_SETTINGS_MODULE="studio.settings",
    )
    return env


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    return production_settings(tmp_path)


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_check_deploy_finds_nothing_to_warn_about_in_production_settings(production_env):
    done = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout


def test_check_deploy_warns_when_https_is_switched_off(production_env):
    production_env.update(SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0")
    done = run([sys.executable, "manage.py", "check", "--deploy"], production_env)
    assert "security.W004" in done.stderr and "security.W008" in done.stderr


PROBE = """
import django, json
django.setup()
from django.conf import settings
from django.template import engines
from django.test.utils import setup_test_environment
setup_test_environment()
from django.test import Client
def chain(loaders):
    return [[type(l).__module__, chain(getattr(l, "loaders", []))] for l in loaders]
loaders = chain(engines["django"].engine.template_loaders)
http = Client()
https = Client(headers={"X-Forwarded-Proto": "https"})
plain = http.get("/projects/")
# A probe from inside the network, to the machine's own address.
health = http.get("/healthz", headers={"Host": "10.0.0.7:8000"})
page = https.get("/login/")
print(json.dumps({
    "loaders": loaders,
    "plain": [plain.status_code, plain.get("Location", "")],
    "health": health.status_code,
    "login": page.status_code,
    "csp": page.get("Content-Security-Policy", ""),
    "hsts": page.get("Strict-Transport-Security", ""),
    "html": page.content.decode(),
}))
"""


@pytest.fixture(scope="module")
def production_answers(tmp_path_factory) -> dict:
    production_env = production_settings(tmp_path_factory.mktemp("production"))
    collected = run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], production_env
    )
    assert collected.returncode == 0, collected.stderr
    migrated = run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], production_env)
    assert migrated.returncode == 0, migrated.stderr
    done = run([sys.executable, "-c", PROBE], production_env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_production_keeps_compiled_templates_in_memory(production_answers):
    # template-partials first (for "page.html#fragment"), then the cached loader.
    assert production_answers["loaders"] == [
        [
            "template_partials.loader",
            [
                [
                    "django.template.loaders.cached",
                    [
                        ["django.template.loaders.filesystem", []],
                        ["django.template.loaders.app_directories", []],
                    ],
                ]
            ],
        ]
    ]


def test_production_redirects_plain_http_but_not_the_health_probe(production_answers):
    assert production_answers["plain"] == [301, "https://testserver/projects/"]
    assert production_answers["health"] == 200


def test_production_pages_carry_hsts_and_a_strict_content_security_policy(
    production_answers,
):
    assert production_answers["login"] == 200
    assert production_answers["hsts"] == "max-age=31536000; includeSubDomains"
    policy = dict(
        (part.split(" ", 1) + [""])[:2]
        for part in (p.strip() for p in production_answers["csp"].split(";"))
        if part
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in production_answers["csp"]


def test_production_pages_have_no_inline_script_or_style(production_answers):
    html = production_answers["html"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts
    # Every script is a file of this site (htmx included), never inline code.
    for attributes, body in scripts:
        assert 'src="/static/' in attributes and body.strip() == "", attributes
    assert "<style" not in html and " style=" not in html
    # htmx is told not to eval (its trigger filters would need 'unsafe-eval').
    assert '"allowEval": false' in html
    # Static files are linked under their hashed names.
    assert re.search(r'href="/static/css/app\.[0-9a-f]{12}\.css"', html)


SESSIONS = """
import django, json
django.setup()
from django.conf import settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.core.cache import cache
from django.core.management import call_command
from django.test.utils import setup_test_environment
setup_test_environment()
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.test import Client
user = get_user_model().objects.create_user("dana", "dana@example.com", "pw-dana-12345")
client = Client()
client.force_login(user)
key = client.session.session_key
print(json.dumps({
    "engine": settings.SESSION_ENGINE,
    "cached": cache.get(KEY_PREFIX + key) is not None,
    "projects": client.get("/projects/").status_code,
}))
cache.delete(KEY_PREFIX + key)
"""


def test_with_redis_sessions_are_read_from_it(tmp_path):
    env = production_settings(tmp_path)
    env.update(DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/12", DATABASE_URL="")
    done = run([sys.executable, "-c", SESSIONS], env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {
        "engine": "django.contrib.sessions.backends.cached_db",
        "cached": True,
        "projects": 200,
    }
