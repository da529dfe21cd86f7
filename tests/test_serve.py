"""bin/run's server: the web keeps serving when the worker or the tracker dies, which restart."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import manage, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int, pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid), "-f", pattern], capture_output=True, text=True)
    return [int(line) for line in found.stdout.split()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_the_web_keeps_serving_when_the_worker_and_tracker_die(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with manage("serve", "--port", str(port), log=log) as serve:
        login = f"http://127.0.0.1:{port}/login/"
        wait_for(
            lambda: _answers(login),
            timeout=60,
            what="the web server",
            log=log,
        )
        wait_for(
            lambda: children(serve.pid, "qcluster") and children(serve.pid, "tracker"),
            timeout=30,
            what="the worker and the tracker",
            log=log,
        )
        worker, tracker = children(serve.pid, "qcluster")[0], children(serve.pid, "tracker")[0]
        wait_for(lambda: children(worker, "qcluster"), timeout=30, what="the worker's sentinel")
        sentinel = children(worker, "qcluster")[0]
        for pid in (worker, tracker):
            subprocess.run(["kill", "-9", str(pid)], check=True)

        time.sleep(1)
        assert _answers(login), "the web server stopped with its worker"
        wait_for(
            lambda: (
                children(serve.pid, "qcluster") not in ([], [worker])
                and children(serve.pid, "tracker") not in ([], [tracker])
            ),
            timeout=30,
            what="the worker and the tracker to be started again",
            log=log,
        )
        assert _answers(login)
        assert "starting it again" in log.read_text()
        # What the killed worker had forked went with it: one set of workers, not two.
        wait_for(lambda: not alive(sentinel), timeout=10, what="the old sentinel to stop")
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=30)
    assert "Stopped the web server, the worker and the tracker." in log.read_text()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
