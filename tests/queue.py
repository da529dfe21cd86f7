"""Running queued django-q2 tasks inside a test, through the configured broker.

Tasks travel exactly as in production (enqueued on commit, signed, stored by the ORM or
Redis broker, dequeued, executed by django-q2's own worker loop, results saved by its
monitor); only the worker runs in the test's process, so a failure raises here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from multiprocessing import Queue, Value

from django_q.brokers import get_broker
from django_q.monitor import monitor
from django_q.signing import SignedPackage
from django_q.worker import worker


def run_task(pack: str) -> None:
    task = SignedPackage.loads(pack)
    # "sync" makes django-q2's worker re-raise a task's exception instead of swallowing it.
    task["sync"] = True
    task_queue: Queue = Queue()
    result_queue: Queue = Queue()
    task_queue.put(task)
    task_queue.put("STOP")
    try:
        worker(task_queue, result_queue, Value("f", -1))
    finally:
        result_queue.put("STOP")
        monitor(result_queue)
        for queue in (task_queue, result_queue):
            queue.close()
            queue.join_thread()


def drain(*, until: Callable[[], bool], timeout: float = 60.0) -> int:
    """Run queued tasks and tracker rounds until ``until()`` holds; returns how many tasks ran.

    The tracker runs in this thread (threads=0), as one round whenever the queue is empty,
    so submissions and status checks happen exactly as the tracker process makes them.
    """
    from videos.pipeline.tracker import Tracker

    broker = get_broker()
    tracker = Tracker(threads=0)
    ran = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if until():
            return ran
        packages = broker.dequeue()
        if not packages:
            tracker.run_once()
            time.sleep(0.05)
            continue
        for ack_id, pack in packages:
            broker.acknowledge(ack_id)
            run_task(pack)
            ran += 1
    raise AssertionError(f"The queue did not get there within {timeout} s ({ran} tasks ran).")


def purge() -> None:
    broker = get_broker()
    broker.purge_queue()
