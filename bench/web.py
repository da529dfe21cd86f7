"""What the pages cost under load, through the production server (gunicorn).

Makes a fresh database (SQLite in a temporary DATA_DIR, or a new PostgreSQL database with
--postgres), seeds a project of 500 clips with a 50-deep chain among them, collects static
files, starts gunicorn with gunicorn.conf.py in production settings (DEBUG off), then
measures requests per second and the 99th percentile latency of:

  bare       a Django view returning a few bytes (the ceiling; only in this bench's URLconf)
  bare+login the same view with a logged-in session: the session and the user are read, as
             for every page of the studio (the floor of any page a member sees)
  fragment   the clip page's progress fragment polled while the clip is unchanged (a 304)
  fragment!  the same poll answered in full (no If-None-Match): the progress moved
  status!    a poll whose status changed: the card and, out of band, details and chain
  clip       the clip page of the last clip of the 50-deep chain
  project    the project page of 500 clips, its parts drawn from the fragment cache
  project~   the same page with nothing in the cache (each request adds a query parameter
             no one has asked for before, so every part is drawn afresh)
  search     a library search by words (two words, 99 of the 500 clips match)

and prints each as a ratio to the bare view, with the server's own CPU time per answer
("cpu ms", read from /proc: a cost the machine's other load hardly moves) and the bare
view's over it ("cpu bare", the same ratio measured that way), and the CPU time PostgreSQL's
and Redis's processes spent per answer ("db cpu ms": they share this machine's cores, so a
page pays it too; SQLite's is inside the server's). Then the poll and the bare
view again with each client waiting about --pace-ms after every answer, as polling tabs do:
the p99 a poll waits below saturation (flat out, latency is only connections over rate).
Uses wrk when installed, else a small load generator in Python threads (which competes with
the server for the CPU: prefer wrk).

Run: .venv/bin/python bench/web.py [--postgres] [--seconds 5] [--connections 50]
     [--pace-ms 2000,200,100,40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-123"
PROMPT_WORDS = [
    "golden",
    "retriever",
    "beach",
    "sunset",
    "fog",
    "forest",
    "lighthouse",
    "rain",
    "neon",
    "city",
    "night",
    "drone",
    "mountain",
    "river",
    "desert",
    "storm",
    "snow",
    "harbour",
    "train",
    "market",
    "garden",
    "ocean",
    "wave",
]

# The bench's own URLconf: the studio's URLs plus the bare view. Production never has it.
BENCH_URLS = """
from django.http import HttpResponse
from django.urls import path

from studio.urls import urlpatterns as studio_urlpatterns


def bare(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/bare", bare), *studio_urlpatterns]
"""


def seed(*, clips: int = 500, chain_depth: int = 50) -> dict:
    """Rows for the bench, written straight through the ORM (nothing is queued)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from videos.models import (
        Clip,
        ClipKind,
        ClipStatus,
        Membership,
        Project,
        ProviderAccount,
        ProviderKind,
        Role,
    )

    user = get_user_model().objects.create_user("bench", "bench@example.com", PASSWORD)
    project = Project.objects.create(name="Bench project", created_by=user)
    Membership.objects.create(project=project, user=user, role=Role.ADMIN)
    account = ProviderAccount.objects.create(
        kind=ProviderKind.APIMART,
        label="apimart",
        base_url="https://api.apimart.example/v1",
        credential="sk-bench-0000",
    )
    now = timezone.now()
    rows = []
    for n in range(clips - chain_depth):
        words = [PROMPT_WORDS[(n * 7 + k * 3) % len(PROMPT_WORDS)] for k in range(6)]
        rows.append(
            Clip(
                project=project,
                created_by=user,
                provider_account=account,
                model="veo3.1-fast-official",
                prompt=f"A {' '.join(words)} shot, take {n}",
                params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
                status=ClipStatus.READY,
                progress=100,
                file_key=f"clips/{n}.mp4",
                poster_key=f"posters/{n}.jpg",
                duration_seconds=8.0,
                width=1280,
                height=720,
                file_size=4_000_000,
                created_at=now - timedelta(minutes=clips - n),
            )
        )
    Clip.objects.bulk_create(rows)
    parent = None
    for step in range(chain_depth):
        clip = Clip.objects.create(
            project=project,
            created_by=user,
            provider_account=account,
            model="veo3.1-fast-official",
            prompt=f"The long chain, part {step + 1}: a lighthouse keeper walks on",
            params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
            status=ClipStatus.READY,
            progress=100,
            file_key=f"chain/{step}.mp4",
            poster_key=f"chain/{step}.jpg",
            duration_seconds=8.0,
            width=1280,
            height=720,
            parent=parent,
            root_id=(parent.root_id or parent.pk) if parent else None,
            kind=ClipKind.GENERATE if parent is None else ClipKind.CONTINUE,
            is_main_line=parent is not None,
            created_at=now - timedelta(seconds=chain_depth - step),
        )
        parent = clip
    running = Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model="veo3.1-fast-official",
        prompt="A clip the provider is still making",
        params={"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"},
        status=ClipStatus.RUNNING,
        progress=40,
        phase="Generating",
        provider_task_id="task-bench-running",
        submitted_at=now - timedelta(seconds=30),
    )
    assert parent is not None
    return {"project": project.pk, "chain_tip": parent.pk, "running": running.pk}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the server ------------------------------------------------------------------------------


def production_env(folder: Path, *, database_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    (folder / "bench_settings.py").write_text(
        "from studio.settings import *  # noqa: F403\nROOT_URLCONF = 'bench_urls'\n"
    )
    (folder / "bench_urls.py").write_text(BENCH_URLS)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "S3_", "SANDBOX")) and key != "DEBUG"
    }
    env.update(
        DEBUG="0",
        SECRET_KEY="bench-" + os.urandom(24).hex(),
        FERNET_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        # Plain HTTP on the loopback: no redirect, cookies without the Secure flag.
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        SECURE_HSTS_SECONDS="0",
        DATA_DIR=str(folder / "data"),
        STATIC_ROOT=str(folder / "static"),
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="bench_settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(folder), str(ROOT)])),
        LOG_LEVEL="WARNING",
    )
    return env


def run_manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def start_server(env: dict[str, str], port: int, *, workers: str, threads: str):
    sizing = {"WEB_CONCURRENCY": workers, "WEB_THREADS": threads}
    server = subprocess.Popen(
        [str(ROOT / "bin/serve"), "--access-logfile", "/dev/null"],
        cwd=ROOT,
        env={
            **env,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            **{name: value for name, value in sizing.items() if value},
        },
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit("gunicorn exited before answering")
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            return server, base
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not answer within 30 s")


def log_in(base: str) -> str:
    with httpx.Client(base_url=base) as http:
        http.get("/login/")
        answer = http.post(
            "/login/",
            data={
                "username": "bench",
                "password": PASSWORD,
                "csrfmiddlewaretoken": http.cookies["csrftoken"],
            },
        )
        assert answer.status_code == 302, answer.text[:300]
        return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


# --- load ------------------------------------------------------------------------------------


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}

# For "project~": a parameter no request has used before, so nothing is in the cache.
FRESH_QUERY_LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
local run = os.time()
request = function()
  n = n + 1
  return wrk.format(nil, wrk.path .. "?fresh=" .. run .. "-" .. tid .. "-" .. n)
end
"""


def fresh(url: str) -> bool:
    return url.endswith("?fresh")


def with_wrk(url: str, headers: dict[str, str], *, seconds: int, connections: int) -> tuple:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if fresh(url):
        script = Path(tempfile.mkdtemp()) / "fresh.lua"
        script.write_text(FRESH_QUERY_LUA)
        args += ["-s", str(script)]
        url = url.removesuffix("?fresh")
    args.append(url)
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    # Requests still unanswered after wrk's 2 s count as errors too.
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", out)
    failed = (int(errors[1]) if errors else 0) + (int(timeouts[1]) if timeouts else 0)
    return rate, float(p99[1]) * UNITS[p99[2]], failed


def with_threads(url: str, headers: dict[str, str], *, seconds: int, connections: int):
    """A load generator in Python threads, for machines without wrk (it competes with the
    server for the CPU, so its figures are lower)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        mine: list[float] = []
        failed = 0
        with httpx.Client(headers=headers, timeout=10) as http:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                target = f"{url}={random.randrange(2**31)}" if fresh(url) else url
                status = http.get(target).status_code
                mine.append((time.perf_counter() - started) * 1000)
                failed += status >= 400
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    p99 = statistics.quantiles(latencies, n=100)[98]
    return len(latencies) / seconds, p99, errors


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user and system) gunicorn's master and its workers have used (Linux)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    used = 0
    for process in [pid, *map(int, children)]:
        try:
            stat = Path(f"/proc/{process}/stat").read_text()
        except OSError:  # a worker that has just been replaced
            continue
        fields = stat.rsplit(")", 1)[1].split()  # fields 14 and 15: utime, stime
        used += int(fields[11]) + int(fields[12])
    return used / os.sysconf("SC_CLK_TCK")


SERVICES = {"postgres", "redis-server"}


def services_cpu_seconds() -> float:
    """CPU time PostgreSQL's and Redis's processes have used (Linux): on this one machine
    they share the cores with the web server, so their work on each answer is also what
    the pages cost (SQLite's is inside the web server's own)."""
    used = 0
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:  # a process that has just ended
            continue
        name, _, rest = stat.partition("(")[2].rpartition(")")
        if name.split(":")[0] not in SERVICES:
            continue
        fields = rest.split()
        used += int(fields[11]) + int(fields[12])
    return used / os.sysconf("SC_CLK_TCK")


def paced(targets: list[tuple], args) -> None:
    """Latency below saturation, as polling tabs see it: each of the connections waits
    about ``pace`` ms after every answer (half to one and a half times it, as tabs opened at
    different times poll out of step), then sends its next request at once on a new
    connection, as a proxy in front does. Flat out (above), the mean latency is only the
    number of connections over the rate (Little's law); paced, it is what a poll waits.

    Not wrk: after each answer wrk reconnects at once and waits with the connection open
    and silent, and gunicorn's gthread worker gives every new connection a thread that
    waits for its request, so 50 waiting connections hold all 8 threads; browsers reach
    gunicorn through a proxy that connects with the request in hand."""
    paces = [int(pace) for pace in args.pace_ms.split(",") if pace.strip()]
    polls = [target for target in targets if target[0] in ("bare", "fragment")]
    if not paces or len(polls) < 2:
        return
    print(f"\npaced: {args.connections} clients, each waiting after every answer")
    print(f"{'page':<11} {'wait ms':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    # Heavy pages measured flat out just before can leave requests queued in the server.
    time.sleep(3)
    for pace in paces:
        for name, url, headers in polls:
            warm_up = paced_load(url, headers, seconds=1, clients=args.connections, pace=pace)
            asyncio.run(warm_up)
            rate, p50, p99, errors = asyncio.run(
                paced_load(url, headers, seconds=args.seconds, clients=args.connections, pace=pace)
            )
            print(f"{name:<11} {pace:8d} {rate:8.0f} {p50:8.1f} {p99:8.1f} {errors:7d}")


async def paced_load(url: str, headers: dict[str, str], *, seconds: int, clients: int, pace: int):
    """Clients that each send a GET, read the whole answer, wait, and again: requests per
    second, p50 and p99 in ms (from connecting to the last byte), and answers not 2xx/3xx."""
    parts = httpx.URL(url)
    target = parts.raw_path.decode()
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parts.host}:{parts.port}\r\n{head}"
        "Connection: close\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal errors
        await asyncio.sleep(random.uniform(0, pace / 1000))  # out of step from the start
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                reader, writer = await asyncio.open_connection(parts.host, parts.port)
                writer.write(request)
                answer = await asyncio.wait_for(reader.read(), timeout=10)
                writer.close()
                status = int(answer.split(b" ", 2)[1])
            except (OSError, TimeoutError, IndexError, ValueError):
                status = 0
            latencies.append((time.perf_counter() - started) * 1000)
            errors += not 200 <= status < 400
            await asyncio.sleep(random.uniform(0.5, 1.5) * pace / 1000)

    await asyncio.gather(*(client() for _ in range(clients)))
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / seconds, cuts[49], cuts[98], errors


def poll_url(ids: dict, base: str = "") -> str:
    """The running clip's poll, as its page makes it."""
    return f"{base}/clips/{ids['running']}/?seen=running"


def page_targets(ids: dict, base: str = "", *, cookie: str, etag: str) -> list[tuple]:
    """The pages measured: (name, URL, request headers)."""
    session = {"Cookie": cookie}
    htmx = {**session, "HX-Request": "true"}
    project = f"{base}/projects/{ids['project']}/"
    return [
        ("bare", f"{base}/bench/bare", {}),
        ("bare+login", f"{base}/bench/bare", session),
        ("fragment", poll_url(ids, base), {**htmx, "If-None-Match": etag}),
        ("fragment!", poll_url(ids, base), htmx),
        ("status!", f"{base}/clips/{ids['running']}/?seen=queued", htmx),
        ("clip", f"{base}/clips/{ids['chain_tip']}/", session),
        ("project", project, session),
        ("project~", f"{project}?fresh", session),
        ("search", f"{project}?q=sunset+lighthouse", session),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--redis-url", default="", help="REDIS_URL for the server (sessions, broker)"
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", default="", help="WEB_CONCURRENCY (default: cores)")
    parser.add_argument("--threads", default="", help="WEB_THREADS (default: 4)")
    parser.add_argument("--only", default="", help="comma-separated pages (bare is kept)")
    parser.add_argument(
        "--pace-ms",
        default="2000,200,100,40",
        help="then measure the poll and the bare view with each client waiting about this "
        "many ms after each answer, as polling tabs do; comma-separated, empty for none",
    )
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        import django

        django.setup()
        print(json.dumps(seed()))
        return

    folder = Path(tempfile.mkdtemp(prefix="clipchain-bench-web-"))
    database = None
    if args.postgres:
        import psycopg

        database = f"clipchain_bench_{os.getpid()}"
        with psycopg.connect(args.pg_url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {database}")
        database_url = args.pg_url.rsplit("/", 1)[0] + f"/{database}"
    else:
        # The studio's own SQLite set-up (WAL, IMMEDIATE writes) in DATA_DIR.
        database_url = ""
    env = production_env(folder, database_url=database_url)
    env["REDIS_URL"] = args.redis_url
    server = None
    try:
        run_manage(env, "migrate", "--noinput", "-v0")
        run_manage(env, "collectstatic", "--noinput", "-v0")
        seeded = subprocess.run(
            [sys.executable, __file__, "--seed"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        ids = json.loads(seeded.stdout.strip().splitlines()[-1])
        if database:
            # What autovacuum would have done by now: without statistics the planner reads
            # every clip of the project instead of the search index.
            import psycopg

            with psycopg.connect(database_url, autocommit=True) as db:
                db.execute("ANALYZE")
        server, base = start_server(env, free_port(), workers=args.workers, threads=args.threads)
        cookie = log_in(base)
        poll = poll_url(ids, base)
        etag = httpx.get(poll, headers={"Cookie": cookie, "HX-Request": "true"}).headers["ETag"]
        targets = page_targets(ids, base, cookie=cookie, etag=etag)
        if args.only:
            wanted = {"bare", "bare+login", *args.only.split(",")}
            targets = [target for target in targets if target[0] in wanted]
        alone = {}
        one = httpx.Client()
        for name, url, headers in targets:
            times = []
            for _ in range(5):
                started = time.perf_counter()
                target = f"{url}={random.randrange(2**31)}" if fresh(url) else url
                status = one.get(target, headers=headers).status_code
                times.append((time.perf_counter() - started) * 1000)
                assert status in (200, 304), (name, status)
            alone[name] = statistics.median(times)
        load = with_wrk if shutil.which("wrk") else with_threads
        cores = os.cpu_count()
        print(
            f"{'postgresql' if args.postgres else 'sqlite'}"
            f"{' + redis' if args.redis_url else ''}, gunicorn "
            f"{args.workers or cores} workers x {args.threads or 4} threads, {cores} cores, "
            f"{args.connections} connections, {args.seconds} s each, load by "
            f"{'wrk' if load is with_wrk else 'Python threads'}"
        )
        print(
            f"{'page':<11} {'alone ms':>8} {'req/s':>8} {'p99 ms':>8} {'vs bare':>8} "
            f"{'vs login':>8} {'errors':>7} {'cpu ms':>8} {'cpu bare':>8} {'db cpu ms':>9}"
        )
        # Two ceilings: the bare view, and the bare view read with a session (what every
        # page a member sees costs before it does anything of its own).
        rates: dict[str, float] = {}
        costs: dict[str, float] = {}
        for name, url, headers in targets:
            load(url, headers, seconds=1, connections=args.connections)  # warm up
            used, services_used = server_cpu_seconds(server.pid), services_cpu_seconds()
            rate, p99, errors = load(
                url, headers, seconds=args.seconds, connections=args.connections
            )
            # The server's own CPU time per answer: what a page costs, whatever else the
            # machine (or the load generator) was doing meanwhile.
            answers = rate * args.seconds
            costs[name] = (server_cpu_seconds(server.pid) - used) * 1000 / answers
            services = (services_cpu_seconds() - services_used) * 1000 / answers
            rates[name] = rate
            login = f"{rate / rates['bare+login']:8.2f}" if "bare+login" in rates else " " * 8
            print(
                f"{name:<11} {alone[name]:8.1f} {rate:8.0f} {p99:8.1f} "
                f"{rate / rates['bare']:8.2f} {login} {errors:7d} "
                f"{costs[name]:8.2f} {costs['bare'] / costs[name]:8.2f} {services:9.2f}"
            )
        paced(targets, args)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=40)
        if database:
            import psycopg

            with psycopg.connect(args.pg_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
