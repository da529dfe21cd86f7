"""Soak: the studio as deployed, on PostgreSQL + Redis + S3, with a worker and a tracker killed.

Starts, all on this machine:
- PostgreSQL: a fresh database; Redis: a fresh broker db; SeaweedFS (S3) from tests/seaweedfs.py;
- the web app under gunicorn with production settings (DEBUG off);
- the provider twins under their own gunicorn (the sandbox needs DEBUG on: it stands in for
  someone else's servers, so it runs as a separate service on the same database);
- 3 queue workers (``manage.py qcluster``) and 2 trackers (``manage.py tracker``), as two
  worker machines would run them;
then creates CLIPS clips through ``services.create_clip`` (half apimart, half Kling), SIGKILLs
one worker (with its forked sentinel and workers) and one tracker a third of the way in,
starts a replacement of each 10 s later, and prints: clips final (by status), duplicate
provider submissions (target 0), lost clips (not final or failed for the studio's fault;
target 0), objects in S3, and the wall time.

Run: .venv/bin/python bench/soak.py [CLIPS]        (default 300)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import boto3
import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.seaweedfs import seaweedfs  # noqa: E402

PG = "postgres://postgres@127.0.0.1:5432"
REDIS_DB = 14
FERNET = "NX2ZlK1Xj1B8m3G8w8O3m2uQ0l0mQ9yJvXvQ8u6p0yA="

MAKE = """
import django, sys
django.setup()
from django.contrib.auth import get_user_model
from videos.models import Membership, Project, ProviderAccount, Role
from videos import services
count, port = int(sys.argv[1]), sys.argv[2]
user, _ = get_user_model().objects.get_or_create(username="soak", is_superuser=True)
project, _ = Project.objects.get_or_create(name="Soak")
Membership.objects.get_or_create(project=project, user=user, defaults={"role": Role.ADMIN})
base = f"http://127.0.0.1:{port}/sandbox"
apimart = ProviderAccount.objects.create(label="apimart", kind="apimart", all_projects=True,
    max_in_flight=60, requests_per_minute=3000, base_url=f"{base}/apimart",
    credential="sk-soak-0000")
kling = ProviderAccount.objects.create(label="kling", kind="kling", all_projects=True,
    max_in_flight=60, requests_per_minute=3000, base_url=f"{base}/kling",
    credential="AKsoak0000000000", secret_key="sandbox-secret-AKsoak0000000000")
for i in range(count):
    if i % 2:
        services.create_clip(project=project, user=user, account=kling, model="kling-v1-6",
            prompt=f"soak {i}", params={"duration": 5, "aspect_ratio": "16:9", "mode": "std"})
    else:
        services.create_clip(project=project, user=user, account=apimart,
            model="veo3.1-fast-official", prompt=f"soak {i}",
            params={"duration": 4, "aspect_ratio": "16:9", "resolution": "720p"})
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    clips = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    folder = Path(tempfile.mkdtemp(prefix="clipchain-soak-"))
    name = f"clipchain_soak_{os.getpid()}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}").flushdb()
    web_port, twin_port = free_port(), free_port()
    processes: list[subprocess.Popen] = []
    started = time.monotonic()
    with seaweedfs(folder / "s3") as s3:
        bucket = "soak"
        client = boto3.client(
            "s3",
            endpoint_url=s3.endpoint_url,
            aws_access_key_id=s3.access_key,
            aws_secret_access_key=s3.secret_key,
            region_name=s3.region,
        )
        client.create_bucket(Bucket=bucket)
        common = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "studio.settings",
            "DATABASE_URL": f"{PG}/{name}",
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "S3_BUCKET": bucket,
            "S3_ENDPOINT_URL": s3.endpoint_url,
            "S3_ACCESS_KEY_ID": s3.access_key,
            "S3_SECRET_ACCESS_KEY": s3.secret_key,
            "S3_REGION": s3.region,
            "SECRET_KEY": "soak-secret-key-not-for-production-0123456789abcdef",
            "FERNET_KEYS": FERNET,
            "DATA_DIR": str(folder / "data"),
            "LOG_LEVEL": "WARNING",
            "SANDBOX_TASK_SECONDS": "20",
            "SANDBOX_MAX_EDGE": "320",
            "TRACK_POLL_SECONDS": "2",
        }
        # The studio's own processes: production settings. The twins are on loopback, which
        # the fetch guard allows only where told to.
        studio = {
            **common,
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0",
            "FETCH_ALLOWED_HOSTS": "127.0.0.1",
        }
        twins = {**common, "DEBUG": "1", "SANDBOX": "1"}
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        log = (folder / "soak.log").open("ab")

        def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
            )
            processes.append(process)
            return process

        try:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=twins, check=True
            )
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                cwd=ROOT,
                env=studio,
                check=True,
            )
            start([gunicorn, "studio.wsgi:application", "--bind", f"127.0.0.1:{web_port}"], studio)
            start(
                [
                    gunicorn,
                    "studio.wsgi:application",
                    "--config",
                    "/dev/null",
                    "--bind",
                    f"127.0.0.1:{twin_port}",
                    "--workers",
                    "2",
                    "--threads",
                    "8",
                    "--worker-class",
                    "gthread",
                ],
                twins,
            )
            manage = [sys.executable, "manage.py"]
            workers = [start([*manage, "qcluster"], studio) for _ in range(3)]
            trackers = [start([*manage, "tracker"], studio) for _ in range(2)]
            time.sleep(4)
            subprocess.run(
                [sys.executable, "-c", textwrap.dedent(MAKE), str(clips), str(twin_port)],
                cwd=ROOT,
                env=studio,
                check=True,
            )
            db = psycopg.connect(f"{PG}/{name}", autocommit=True)

            def count(where: str) -> int:
                return db.execute(f"SELECT count(*) FROM videos_clip WHERE {where}").fetchone()[0]

            final = "status IN ('ready','partial','failed','expired','cancelled')"
            killed, killed_at = False, 0.0
            deadline = time.monotonic() + 1800
            while count(final) < clips and time.monotonic() < deadline:
                if not killed and count(final) >= clips // 3:
                    for victim in (workers[0], trackers[0]):
                        os.killpg(victim.pid, signal.SIGKILL)
                    killed_at = time.monotonic()
                    killed = True
                    print(f"SIGKILLed one worker and one tracker with {count(final)} clips final")
                if killed and killed_at and time.monotonic() - killed_at > 10:
                    start([*manage, "qcluster"], studio)
                    start([*manage, "tracker"], studio)
                    killed_at = 0.0
                time.sleep(1)
            wall = time.monotonic() - started
            ready = httpx.get(f"http://127.0.0.1:{web_port}/readyz", timeout=10)
            print(
                "web /readyz under gunicorn (production settings): "
                f"{ready.status_code} {ready.text}"
            )
            statuses = dict(
                db.execute("SELECT status, count(*) FROM videos_clip GROUP BY status").fetchall()
            )
            tasks = db.execute("SELECT count(*) FROM sandbox_sandboxtask").fetchone()[0]
            tracked = db.execute("SELECT count(*) FROM videos_clip WHERE provider_task_id <> ''")
            tracked = tracked.fetchone()[0]
            objects = sum(
                1
                for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix="clips/"
                )
                for _ in page.get("Contents", [])
            )
            lost = clips - statuses.get("ready", 0) - statuses.get("partial", 0)
            print(f"clips final: {count(final)} of {clips}  {statuses}")
            print(f"duplicate provider submissions: {tasks - tracked} (target 0; {tasks} tasks)")
            print(f"lost clips (not ready): {lost} (target 0); videos in S3: {objects}")
            print(f"wall time: {wall:.0f} s")
            db.close()
        finally:
            # Whatever happened, nothing this soak started keeps running.
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
