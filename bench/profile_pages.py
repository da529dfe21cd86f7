"""Where a page spends its time: the pages of bench/web.py, profiled in one process.

Builds the same fresh database as bench/web.py (500 clips, a 50-deep chain, one clip
running) in production settings (DEBUG off, cached templates), then calls Django's WSGI
handler directly, without a server or a load generator, and prints for each page: the
microseconds per request, the queries per request, and the functions that took most of the
time (cProfile, sorted by own time or by cumulative time). The CPU time per request
(process time) moves less than the clock on a shared machine.

Run: .venv/bin/python bench/profile_pages.py [--only fragment,project] [--requests 500]
     [--sort tottime|cumtime] [--top 25] [--query-times]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench_web", ROOT / "bench" / "web.py")
web = importlib.util.module_from_spec(spec)
spec.loader.exec_module(web)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated pages")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumtime"])
    parser.add_argument("--top", type=int, default=25, help="0: timings only")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--explain", action="store_true", help="each query's plan (PostgreSQL: EXPLAIN ANALYZE)"
    )
    parser.add_argument("--full-sql", action="store_true", help="print each query whole")
    parser.add_argument(
        "--query-times", action="store_true", help="time each query alone (run and fetch)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="clipchain-bench-profile-"))
    database = None
    database_url = ""
    if args.postgres:
        import psycopg

        database = f"clipchain_bench_profile_{os.getpid()}"
        with psycopg.connect(args.pg_url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {database}")
        database_url = args.pg_url.rsplit("/", 1)[0] + f"/{database}"
    env = web.production_env(folder, database_url=database_url)
    env["REDIS_URL"] = args.redis_url
    try:
        web.run_manage(env, "migrate", "--noinput", "-v0")
        web.run_manage(env, "collectstatic", "--noinput", "-v0")
        os.environ.update(env)
        sys.path[:0] = [str(folder), str(ROOT)]
        import django

        django.setup()
        ids = web.seed()
        if database:
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        profile(ids, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if database:
            import psycopg
            from django.db import connections

            connections.close_all()
            with psycopg.connect(args.pg_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def profile(ids: dict, args) -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test import Client

    client = Client()
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="bench"))
    client.get("/projects/", headers={"host": "127.0.0.1"})  # a CSRF cookie, as browsers hold
    cookie = "; ".join(f"{k}={v.value}" for k, v in client.cookies.items())
    handler = WSGIHandler()

    def environ(path: str, headers: dict[str, str]) -> dict:
        path, _, query = path.partition("?")
        env = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        for name, value in headers.items():
            env["HTTP_" + name.upper().replace("-", "_")] = value
        return env

    def call(path: str, headers: dict[str, str]) -> tuple[int, dict]:
        status = []
        response = handler(environ(path, headers), lambda s, h, *a: status.append((s, dict(h))))
        b"".join(response)
        response.close()
        return int(status[0][0].split()[0]), status[0][1]

    poll = web.poll_url(ids)
    etag = call(poll, {"Cookie": cookie, "HX-Request": "true"})[1]["ETag"]
    # As bench/web.py measures them, less "project~" (a query string never seen before,
    # which only a load generator makes).
    pages = [
        page for page in web.page_targets(ids, cookie=cookie, etag=etag) if page[0] != "project~"
    ]
    if args.only:
        wanted = set(args.only.split(","))
        pages = [page for page in pages if page[0] in wanted]
    for name, path, headers in pages:
        for _ in range(20):  # warm: templates compiled, fragments cached
            status, _ = call(path, headers)
            assert status in (200, 304), (name, status)
        queries: list[str] = []

        def count(execute, sql, params, *rest, seen=queries):
            seen.append((sql, params))
            return execute(sql, params, *rest)

        with connection.execute_wrapper(count):
            call(path, headers)
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(args.requests):
            call(path, headers)
        plain = (time.perf_counter() - started) / args.requests * 1e6
        # CPU time moves less than the clock when the machine is shared.
        cpu = (time.process_time() - cpu_started) / args.requests * 1e6
        print(f"{name:<11} {plain:6.0f} us/request  {cpu:6.0f} us CPU  {len(queries)} queries")
        if not args.top:
            continue
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            call(path, headers)
        profiler.disable()
        print(f"\n=== {name}  {path}")
        for sql, params in queries:
            took = f"{query_time(connection, sql, params):6.0f} us  " if args.query_times else ""
            print("   ", took + (sql if args.full_sql else sql[:160]))
            if args.explain:
                print("       ", "\n        ".join(plan(connection, sql, params)))
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats(args.sort)
        stats.print_stats(args.top)
        text = out.getvalue()
        print(text[text.find("   ncalls") :].replace(str(ROOT) + "/", ""))


def plan(connection, sql: str, params) -> list[str]:
    """The query's plan: PostgreSQL's as run (EXPLAIN ANALYZE), SQLite's as chosen."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN ANALYZE " + sql, params)
            return [row[0] for row in cursor.fetchall()]
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return [row[-1] for row in cursor.fetchall()]


def query_time(connection, sql: str, params, repeat: int = 200) -> float:
    """Microseconds to run one query and fetch its rows, through the driver's cursor."""
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for _ in range(repeat):
            cursor.execute(sql, params)
            cursor.fetchall()
    return (time.perf_counter() - started) / repeat * 1e6


if __name__ == "__main__":
    main()
