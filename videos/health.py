"""Probes for load balancers and orchestrators: /healthz (alive) and /readyz (can serve).

/healthz answers from the process alone, so a slow database never gets a healthy web
process killed. /readyz checks what a request needs: the database, the queue's broker
(Redis or the ORM broker, as settings say) and file storage; each check has a timeout of
about two seconds, and a 503 names each part that is down and why.

``probe_middleware`` answers both first, before host checks and the HTTPS redirect: probes
come over plain HTTP to the machine's own address (a Kubernetes probe's Host is the pod's
IP), and they use no session, cookie or host name.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

PROBE_TIMEOUT_SECONDS = 2


class Down(Exception):
    """A dependency that cannot be used, with what was tried in plain words."""


def _reason(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return first_line[:200]


def check_database() -> None:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        # A broken connection is not reused by the next request.
        connection.close()
        raise Down(f"{connection.vendor} database unreachable: {_reason(exc)}") from exc


def check_broker() -> None:
    cluster = settings.Q_CLUSTER
    if cluster.get("redis"):
        import redis

        client = redis.Redis.from_url(
            cluster["redis"],
            socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
            socket_timeout=PROBE_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            raise Down(f"Redis broker unreachable: {_reason(exc)}") from exc
        finally:
            client.close()
        return
    # The ORM broker keeps the queue in a table of the database named by Q_CLUSTER["orm"].
    connection = connections[cluster.get("orm", "default")]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM django_q_ormq LIMIT 1")
    except Exception as exc:
        connection.close()
        raise Down(f"ORM broker table unusable: {_reason(exc)}") from exc


@functools.cache
def _s3_probe_client(bucket: str, endpoint_url: str | None):
    import boto3
    from botocore.config import Config

    storage = default_storage
    return boto3.Session(
        aws_access_key_id=storage.access_key, aws_secret_access_key=storage.secret_key
    ).client(
        "s3",
        region_name=storage.region_name,
        endpoint_url=endpoint_url,
        config=storage.client_config.merge(
            Config(
                connect_timeout=PROBE_TIMEOUT_SECONDS,
                read_timeout=PROBE_TIMEOUT_SECONDS,
                retries={"max_attempts": 1, "mode": "standard"},
            )
        ),
    )


def check_storage() -> None:
    bucket = getattr(default_storage, "bucket_name", None)
    if bucket:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            _s3_probe_client(bucket, default_storage.endpoint_url).head_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            raise Down(f"S3 bucket {bucket!r} unreachable: {_reason(exc)}") from exc
        return
    # Local files: the folder is made on the first save, so the nearest existing folder on
    # its path must be writable.
    location = default_storage.path("")
    existing = location
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK):
        raise Down(f"media folder {location} is not writable")


CHECKS = {"database": check_database, "broker": check_broker, "storage": check_storage}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Down as exc:
            checks[name] = str(exc)
        else:
            checks[name] = "ok"
    down = [name for name, result in checks.items() if result != "ok"]
    if down:
        return JsonResponse(
            {"status": "unavailable", "down": down, "checks": checks},
            status=503,
        )
    return JsonResponse({"status": "ok", "checks": checks})


PROBES = {"/healthz": healthz, "/readyz": readyz}


def probe_middleware(get_response: Callable[[HttpRequest], HttpResponse]):
    def middleware(request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None:
            return probe(request)
        return get_response(request)

    return middleware
