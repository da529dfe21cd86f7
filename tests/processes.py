"""Real studio processes (tracker, worker) started by a test, sharing the test's database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def environment(**extra: str) -> dict[str, str]:
    """The environment of a manage.py process that uses this test's database."""
    db = connection.settings_dict
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if db["ENGINE"].endswith("sqlite3"):
        env["SQLITE_PATH"] = str(db["NAME"])
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    env.update(
        {
            "DATA_DIR": str(settings.DATA_DIR),
            "FERNET_KEYS": ",".join(settings.FERNET_KEYS),
            "SECRET_KEY": settings.SECRET_KEY,
            "LOG_LEVEL": "INFO",
            **extra,
        }
    )
    return env


@contextmanager
def manage(*args: str, log: Path, **env: str):
    """Run ``manage.py *args`` in the background; yields the Popen; stopped (SIGKILL) after."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=environment(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        kill_everything_using(settings.DATA_DIR)


def kill_everything_using(data_dir) -> None:
    """SIGKILL every process this test started (they all carry its DATA_DIR), children too."""
    marker = f"DATA_DIR={data_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            with suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def wait_for(condition, *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"Timed out after {timeout} s waiting for {what}.\n{tail}")
