"""How many clips the studio can follow at once: the tracker against the old per-clip design.

For each N, starts a throwaway studio (SQLite, the apimart sandbox served by runserver with
120 s tasks), creates N clips through the app's own ``services.create_clip`` (so the app's
own pipeline submits them), waits until all N run at the provider, then samples the
database every 0.25 s for WINDOW seconds and prints:

- round: p50 and p95 seconds between two status checks of one clip (a full round);
- polls/s: status checks recorded per second, and the per-minute rate against the limit;
- staleness: p95 of how old the progress shown on the clip page is (now - last poll);
- lag: seconds from creating one more clip mid-run to the provider accepting it.

The old design is the code before the tracker (git rev OLD_REV, checked out into a temp
worktree): a django-q2 task per clip polling in a loop, with Q_WORKERS=4.

Run: .venv/bin/python bench/tracking.py [N ...]          (default: 16 200 1000)
     .venv/bin/python bench/tracking.py --old 16 200      (the old design too, side by side)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_REV = "410f263"
WINDOW = 40.0
# Long enough that no task finishes (and no video renders) while the bench measures.
TASK_SECONDS = 900.0

SETUP = """
import django, os, sys
django.setup()
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from videos.models import Membership, Project, ProviderAccount, Role
from videos import services
n, port, rpm = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
user, _ = get_user_model().objects.get_or_create(username="bench", is_superuser=True)
project, _ = Project.objects.get_or_create(name="Bench")
Membership.objects.get_or_create(project=project, user=user, defaults={"role": Role.ADMIN})
fields = {f.name for f in ProviderAccount._meta.get_fields()}
extra = {k: v for k, v in {"max_in_flight": 100000, "requests_per_minute": rpm}.items()
         if k in fields}
account, _ = ProviderAccount.objects.get_or_create(
    label="apimart bench", kind="apimart",
    defaults={"base_url": f"http://127.0.0.1:{port}/sandbox/apimart",
              "credential": "sk-bench-0000", "all_projects": True, **extra})
params = {"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"}
for i in range(n):
    services.create_clip(project=project, user=user, account=account,
                         model="veo3.1-fast-official", prompt=f"bench {i}", params=params)
print(account.pk)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def when(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Studio:
    """One throwaway studio on a code root: sandbox web server + the design's workers."""

    def __init__(self, root: Path, design: str, n: int) -> None:
        self.root, self.design, self.n = root, design, n
        self.data = Path(tempfile.mkdtemp(prefix=f"clipchain-track-{design}-"))
        self.port = free_port()
        self.rpm = max(600, n * 40)  # the limit the new tracker must respect
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "studio.settings",
            "DATA_DIR": str(self.data),
            "SANDBOX_TASK_SECONDS": str(TASK_SECONDS),
            "TRACK_POLL_SECONDS": "2",
            "TRACK_MAX_POLL_SECONDS": "2",  # every clip due every 2 s: measures raw rounds
            "LOG_LEVEL": "WARNING",
            "TRACKER_SUBMIT_THREADS": "16",
            # Shared by every process, so the tracker can run as in production (DEBUG off).
            "SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
            "FERNET_KEYS": "NX2ZlK1Xj1B8m3G8w8O3m2uQ0l0mQ9yJvXvQ8u6p0yA=",
            "PYTHONPATH": str(root),
        }
        self.env.pop("DATABASE_URL", None)
        self.env.pop("REDIS_URL", None)
        self.processes: list[subprocess.Popen] = []

    def manage(self, *args: str, background: bool = False):
        command = [sys.executable, "manage.py", *args]
        if background:
            process = subprocess.Popen(
                command,
                cwd=self.root,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=(self.data / f"{args[0]}.log").open("ab"),
                # Its own group: django-q2's sentinel and workers are stopped with it.
                start_new_session=True,
            )
            self.processes.append(process)
            return process
        return subprocess.run(command, cwd=self.root, env=self.env, check=True, capture_output=True)

    def create(self, n: int) -> None:
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(SETUP), str(n), str(self.port), str(self.rpm)],
            cwd=self.root,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data / "clipchain.sqlite3", timeout=30)

    def serve_sandbox(self) -> None:
        """The provider twins under gunicorn (two processes), so they answer polls cheaply."""
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "studio.wsgi:application",
                "--config",
                "/dev/null",  # not the studio's own production settings
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "16",
                "--worker-class",
                "gthread",
            ],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=(self.data / "sandbox.log").open("ab"),
            start_new_session=True,
        )
        self.processes.append(process)
        time.sleep(3)

    def start(self) -> None:
        self.manage("migrate", "-v0")
        self.serve_sandbox()
        self.create(0)
        if self.design == "old":
            self.env["Q_WORKERS"] = "4"
            self.manage("qcluster", background=True)
        else:
            # The tracker needs no sandbox of its own: run it with production settings.
            production = {**self.env, "DEBUG": "0", "SANDBOX": "0", "ALLOWED_HOSTS": "localhost"}
            process = subprocess.Popen(
                [sys.executable, "manage.py", "tracker"],
                cwd=self.root,
                env=production,
                stdout=subprocess.DEVNULL,
                stderr=(self.data / "tracker.log").open("ab"),
                start_new_session=True,
            )
            self.processes.append(process)
            self.manage("qcluster", background=True)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
            # What the process forked (django-q2's sentinel and workers) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


def measure(studio: Studio) -> dict[str, float]:
    n = studio.n
    started = time.monotonic()
    studio.create(n)
    with studio.db() as db:
        while True:
            running = db.execute(
                "SELECT count(*) FROM videos_clip WHERE status='running'"
            ).fetchone()
            if running[0] >= n or time.monotonic() - started > 600:
                break
            time.sleep(0.5)
    submit_all = time.monotonic() - started
    seen: dict[int, float] = {}
    intervals: list[float] = []
    staleness: list[float] = []
    polls = 0
    lag = float("nan")
    extra_made = False
    window_start = time.monotonic()
    with studio.db() as db:
        while time.monotonic() - window_start < WINDOW:
            now = time.time()
            rows = db.execute(
                "SELECT id, last_polled_at, submitted_at FROM videos_clip WHERE status='running'"
            ).fetchall()
            for clip_id, polled, submitted in rows:
                # Never polled since submission: the page has shown nothing newer since then.
                at = when(polled) or when(submitted)
                if at is None:
                    continue
                staleness.append(max(0.0, now - at))
                before = seen.get(clip_id)
                if before is not None and at > before + 1e-6:
                    intervals.append(at - before)
                    polls += 1
                seen[clip_id] = at
            if not extra_made and time.monotonic() - window_start > WINDOW / 2:
                studio.create(1)  # a creator asks for one more clip mid-run
                extra_made = True
            time.sleep(0.25)
        row = db.execute(
            "SELECT created_at, submitted_at FROM videos_clip ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row and row[1]:
            lag = when(row[1]) - when(row[0])
        elif row:
            lag = float("inf")  # not even sent within the window
    elapsed = time.monotonic() - window_start
    return {
        "n": n,
        "submit_all_s": submit_all,
        "round_p50_s": percentile(intervals, 50),
        "round_p95_s": percentile(intervals, 95),
        "polls_per_s": polls / elapsed,
        "stale_p95_s": percentile(staleness, 95),
        "stale_max_s": max(staleness) if staleness else float("nan"),
        "lag_s": lag,
        "rpm_limit": studio.rpm,
    }


def old_worktree() -> Path:
    path = Path(tempfile.gettempdir()) / f"clipchain-old-{OLD_REV}"
    if not path.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), OLD_REV],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="*", type=int, default=[16, 200, 1000])
    parser.add_argument("--old", action="store_true", help="measure the old design too")
    args = parser.parse_args()
    designs = [("new", ROOT)] + ([("old", old_worktree())] if args.old else [])
    print(
        f"{'design':7}{'N':>6}{'submit all':>12}{'round p50':>11}{'round p95':>11}{'polls/s':>9}"
        f"{'req/min (limit)':>18}{'stale p95':>11}{'stale max':>11}{'lag':>8}"
    )
    for n in args.sizes:
        for design, root in designs:
            if design == "old" and n > 200:
                continue  # the old design needs hours per round there
            studio = Studio(root, design, n)
            try:
                studio.start()
                r = measure(studio)
            finally:
                studio.stop()
            print(
                f"{design:7}{n:>6}{r['submit_all_s']:>11.1f}s{r['round_p50_s']:>10.1f}s"
                f"{r['round_p95_s']:>10.1f}s"
                f"{r['polls_per_s']:>9.1f}{r['polls_per_s'] * 60:>10.0f} ({r['rpm_limit']:>5})"
                f"{r['stale_p95_s']:>10.1f}s{r['stale_max_s']:>10.1f}s{r['lag_s']:>7.1f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
