"""Gunicorn for the studio's web process: ``bin/serve`` runs
``gunicorn -c gunicorn.conf.py studio.wsgi``.

Each value can be changed from the environment (below) or with gunicorn's own
GUNICORN_CMD_ARGS. Run ``manage.py migrate`` and ``manage.py collectstatic`` first: without
collectstatic's manifest the server refuses to start, rather than serve unstyled pages.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a whole number.") from None


bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
# A process per core (Python runs one thread at a time per process); threads in each overlap
# the waits on the database, Redis and S3. WEB_CONCURRENCY is the name platforms set.
workers = _int("WEB_CONCURRENCY", multiprocessing.cpu_count())
# gthread hands each new connection to a thread, which then waits for the request: keep a
# proxy in front that connects with the request in hand (nginx, a load balancer), or slow
# clients can hold every thread (bench/web.py's paced run shows why it does not use wrk).
worker_class = "gthread"
threads = _int("WEB_THREADS", 4)
# Pages answer in milliseconds and uploads are capped at 16 MB: a request still running after
# 30 s is stuck, and its worker is replaced.
timeout = _int("WEB_TIMEOUT", 30)
# On SIGTERM (a deploy, a scale-down) requests in flight get this long to finish.
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 30)
# No keep-alive by default: each answer closes its connection, so the next request is
# accepted by whichever worker is free. With keep-alive a gthread worker accepts every
# connection it can, and a few long-lived connections (a proxy's pool, a load test) can all
# land on one worker while the others idle: bench/web.py measured half the throughput that
# way on 2 workers. TLS ends at the proxy in front, so a new connection costs little. Set
# WEB_KEEPALIVE above the proxy's idle timeout (AWS ALB: 60 s) if you turn it on, or the
# proxy may send on a connection gunicorn just closed.
keepalive = _int("WEB_KEEPALIVE", 0)
# Workers are replaced after this many requests (jittered so they do not all restart at
# once), which bounds any slow growth of memory. Polls are cheap and frequent: a worker
# answering a thousand a second lives about a minute; a lower figure would spend the CPU
# on restarts and empty the worker's fragment cache every few seconds.
max_requests = _int("WEB_MAX_REQUESTS", 50000)
max_requests_jitter = max_requests // 10
# Heartbeat files on a RAM disk: a slow disk must not make a busy worker look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The proxy in front sets X-Forwarded-Proto; trust it from these addresses only.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Who, what, status, bytes, milliseconds, and the request id a proxy may set.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%({x-request-id}i)s" "%(a)s"'


def static_manifest_problem() -> str | None:
    """Why the static files cannot be served, or None (production only)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    from django.conf import settings

    if settings.DEBUG:
        return None
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if not manifest.exists():
        return (
            f"{manifest} does not exist: run `python manage.py collectstatic --noinput` "
            "before starting the web server (see README, Deploying)."
        )
    return None


def on_starting(server) -> None:
    problem = static_manifest_problem()
    if problem:
        raise RuntimeError(problem)
