"""How soon provider progress reaches the page, through the real web server and worker.

Starts the studio (web + django-q2 worker, as bin/run does) on a free port with a throwaway
DATA_DIR, generates a clip against the apimart sandbox (whose progress is a known function
of time), polls the clip page's HTMX fragment every 100 ms, and prints, for each progress
value the page showed, how long after the provider first reported it the page had it.
Run: .venv/bin/python bench/progress_latency.py [SANDBOX_TASK_SECONDS]
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    run_seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    data = Path(tempfile.mkdtemp(prefix="clipchain-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data),
        "SANDBOX_TASK_SECONDS": str(run_seconds),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [*manage, "seed_demo", "--base-url", f"http://127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    password = seeded.stdout.strip().split(" / ")[-1]
    server = subprocess.Popen(
        [*manage, "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        http = httpx.Client(base_url=base, follow_redirects=True, timeout=10)
        for _ in range(100):
            try:
                http.get("/login/")
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        token = http.cookies["csrftoken"]
        http.post(
            "/login/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": token},
        )
        db = sqlite3.connect(data / "clipchain.sqlite3")
        project_id = db.execute("SELECT id FROM videos_project").fetchone()[0]
        account_id = db.execute(
            "SELECT id FROM videos_provideraccount WHERE kind='apimart'"
        ).fetchone()[0]
        page = http.post(
            f"/projects/{project_id}/clips/new/",
            data={
                "provider_account": account_id,
                "model": "veo3.1-fast-official",
                "prompt": "latency bench",
                "duration": 8,
                "aspect_ratio": "16:9",
                "resolution": "720p",
                "csrfmiddlewaretoken": http.cookies["csrftoken"],
            },
        )
        clip_url = str(page.url)
        seen: dict[int, float] = {}
        staleness: list[float] = []
        deadline = time.time() + run_seconds + 60
        created = None
        while time.time() < deadline:
            fragment = http.get(clip_url, headers={"HX-Request": "true"}).text
            match = re.search(r'id="clip-progress" max="100" value="(\d+)"', fragment)
            if created is None:
                row = db.execute("SELECT created_at FROM sandbox_sandboxtask").fetchone()
                created = datetime.fromisoformat(row[0]).timestamp() if row else None
            if match and int(match[1]) not in seen:
                seen[int(match[1])] = time.time()
            if match and created is not None and 0 < int(match[1]) < 100:
                # How far behind the provider's current progress the page is, in seconds.
                staleness.append(time.time() - created - run_seconds * int(match[1]) / 100)
            if "hx-trigger" not in fragment:
                break
            time.sleep(0.1)
        assert created is not None, "the sandbox never received the task"
        lags = []
        for value, at in sorted(seen.items()):
            if 0 < value < 100:
                reported = created + run_seconds * value / 100
                lags.append(at - reported)
                print(
                    f"progress {value:3d}%: on the page {at - reported:5.2f} s after the provider"
                )
        print(
            f"values seen: {len(lags)}; worst lag {max(lags):.2f} s; "
            f"mean lag {sum(lags) / len(lags):.2f} s"
        )
        print(
            f"page behind the provider, sampled every 100 ms: worst {max(staleness):.2f} s, "
            f"mean {sum(staleness) / len(staleness):.2f} s; the browser polls every 2 s, so a "
            "person sees it up to 2 s later (target: under 5 s)"
        )
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
