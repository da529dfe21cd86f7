"""What every pipeline step shares: queueing a step and a client for a provider account."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django_q.tasks import async_task

from videos.models import RUNNING_LEASE, ProviderAccount
from videos.providers import Credentials, ProviderClient, accepts_callbacks, client_for


def enqueue(step: str, clip_id: int) -> None:
    """Queue a pipeline step once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: async_task(f"videos.tasks.{step}", clip_id))


def client_for_account(
    account: ProviderAccount, *, http: httpx.Client | None = None
) -> ProviderClient:
    return client_for(
        account.kind,
        base_url=account.base_url,
        credentials=Credentials(key=account.credential, secret=account.secret_key),
        http=http,
    )


def callback_url(account: ProviderAccount) -> str:
    if not settings.PUBLIC_URL or not accepts_callbacks(account.kind):
        return ""
    return settings.PUBLIC_URL + reverse("provider-callback", args=[account.kind, account.pk])


@contextmanager
def renewing(renew: Callable[[], bool], *, every: float, name: str) -> Iterator[None]:
    """Call ``renew`` every ``every`` seconds from a background thread while the block runs.

    Leases in the database say a live process is still at work on a clip (a provider call,
    a mirror); renewal stops early once ``renew`` returns False (the clip moved on).
    """
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.wait(every) and renew():
                pass
        finally:
            # This thread's own database connection.
            connection.close()

    renewer = threading.Thread(target=loop, name=name, daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)


@contextmanager
def work_lease(clip, *, status: str) -> Iterator[None]:
    """Renew the clip's work lease while a queue step runs."""
    clip.renew_work_lease(status=status)
    with renewing(
        lambda: clip.renew_work_lease(status=status),
        every=RUNNING_LEASE.total_seconds() / 3,
        name=f"work-lease-{clip.pk}",
    ):
        yield
