"""Run the tracker: sends queued clips and follows every provider task, in one process.

Run one or more per machine, on as many machines as you like: they share the work through
the database (leases and SKIP LOCKED), and a killed one loses nothing.
"""

import signal
import threading

from django.core.management.base import BaseCommand

from videos.pipeline.tracker import Tracker


class Command(BaseCommand):
    help = "Send queued clips to their providers and follow every provider task until done."

    def add_arguments(self, parser):
        parser.add_argument(
            "--threads", type=int, default=None, help="Status checks in flight at once."
        )
        parser.add_argument(
            "--once", action="store_true", help="Run one round, then stop (for cron or tests)."
        )

    def handle(self, *args, threads: int | None, once: bool, **options):
        tracker = Tracker(threads=threads)
        if once:
            try:
                result = tracker.run_once()
            finally:
                tracker.close()
            self.stdout.write(
                f"Polled {result.polled}, submitted {result.submitted}, deferred {result.deferred}."
            )
            return
        stop = threading.Event()

        def request_stop(*_):
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        try:
            tracker.run(stop=stop)
        finally:
            tracker.close()
        self.stdout.write("Tracker stopped.")
