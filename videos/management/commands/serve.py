"""Run the web server, the queue worker and the tracker together; Ctrl-C stops all three.

A worker or tracker that dies is started again (with a growing pause), and the web server
keeps serving meanwhile: the pages say when clips are waiting for a process.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

# A child that keeps dying is restarted after a pause doubling up to this.
LONGEST_PAUSE = 30.0


class Child:
    def __init__(self, name: str, argv: list[str], *, essential: bool) -> None:
        self.name, self.argv, self.essential = name, argv, essential
        self.process: subprocess.Popen | None = None
        self.pause = 1.0
        self.restart_at = 0.0
        self.started_at = 0.0

    def start(self) -> None:
        # Its own process group: django-q2's worker forks a sentinel and workers, which
        # must go with it when it dies, or they would keep running beside its replacement.
        self.process = subprocess.Popen(self.argv, start_new_session=True)
        self.started_at = time.monotonic()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


class Command(BaseCommand):
    help = "Start the web server, the django-q2 worker and the tracker; stop all on Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))

    def handle(self, *args, port: int, host: str, **options):
        manage = [sys.executable, "manage.py"]
        children = [
            Child(
                "web server", [*manage, "runserver", f"{host}:{port}", "--noreload"], essential=True
            ),
            Child("worker", [*manage, "qcluster"], essential=False),
            Child("tracker", [*manage, "tracker"], essential=False),
        ]
        for child in children:
            child.start()
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                time.sleep(0.5)
                for child in children:
                    if child.running():
                        if time.monotonic() - child.started_at > 60:
                            child.pause = 1.0
                        continue
                    if child.essential:
                        self.stderr.write(f"The {child.name} stopped; stopping everything.")
                        stopping = True
                        break
                    now = time.monotonic()
                    if child.restart_at == 0.0:
                        child.signal_group(signal.SIGKILL)  # whatever it left behind
                        code = child.process.returncode if child.process else None
                        self.stderr.write(
                            f"The {child.name} stopped (exit {code}); starting it again in "
                            f"{child.pause:.0f} s. The web server keeps serving."
                        )
                        child.restart_at = now + child.pause
                    elif now >= child.restart_at:
                        child.start()
                        child.restart_at = 0.0
                        child.pause = min(LONGEST_PAUSE, child.pause * 2)
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                child.signal_group(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in children:
                if child.process is None:
                    continue
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                child.signal_group(signal.SIGKILL)
        self.stdout.write("Stopped the web server, the worker and the tracker.")
