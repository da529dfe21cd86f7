"""The tracker: many clips at once, fair to every account, never two pollers on one clip."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from sandbox.models import SandboxTask
from videos import pipeline
from videos.models import Clip, ClipStatus, ProviderAccount
from videos.pipeline import tracker as tracking

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def make_clip(project, user):
    def make(account: ProviderAccount, prompt: str = "Waves at dusk", **fields) -> Clip:
        return Clip.objects.create(
            project=project,
            created_by=user,
            provider_account=account,
            model="veo3.1-fast-official",
            prompt=prompt,
            params={"duration": 4, "aspect_ratio": "16:9", "resolution": "720p"},
            **fields,
        )

    return make


def running(make_clip, account, count: int) -> list[Clip]:
    """Clips whose tasks run at the provider, due for a poll now."""
    now = timezone.now()
    return [
        make_clip(
            account,
            status=ClipStatus.RUNNING,
            provider_task_id=f"task_{account.pk}_{n}",
            submitted_at=now,
            next_poll_at=now,
        )
        for n in range(count)
    ]


def test_two_trackers_claiming_at_once_never_take_the_same_clip(make_clip, sandbox_apimart):
    clips = running(make_clip, sandbox_apimart, 120)
    claims: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def claim(into: list[int]) -> None:
        try:
            start.wait()
            while batch := tracking.claim_due(limit=7):
                into.extend(clip.pk for clip in batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(claims[n],)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not set(claims[0]) & set(claims[1])
    assert sorted(claims[0] + claims[1]) == sorted(clip.pk for clip in clips)
    assert claims[0] and claims[1], "both trackers should have had work"


def test_a_clip_under_another_trackers_lease_is_not_polled(make_clip, sandbox_apimart):
    (clip,) = running(make_clip, sandbox_apimart, 1)
    assert [c.pk for c in tracking.claim_due()] == [clip.pk]
    assert tracking.claim_due() == []


def test_a_lease_left_by_a_dead_tracker_lapses_after_the_poll_lease(
    make_clip, sandbox_apimart, settings
):
    settings.TRACK_POLL_LEASE_SECONDS = 90
    (clip,) = running(make_clip, sandbox_apimart, 1)
    claimed_at = timezone.now()
    assert [c.pk for c in tracking.claim_due()] == [clip.pk]
    # The claiming tracker dies here, before it records an answer.
    lease = Clip.objects.get(pk=clip.pk).tracking_lease_until
    assert timedelta(seconds=89) < lease - claimed_at < timedelta(seconds=91)

    Clip.objects.filter(pk=clip.pk).update(tracking_lease_until=timezone.now())
    assert [c.pk for c in tracking.claim_due()] == [clip.pk]


def test_a_429_slows_only_the_account_that_sent_it(make_clip, sandbox_account, monkeypatch):
    limited = sandbox_account("apimart")
    other = sandbox_account("apimart")
    for account in (limited, other):
        pipeline.submit_clip(clip_id=make_clip(account).pk)
    tracker = tracking.Tracker(threads=2)
    real_http = tracker.http_for

    def http_for(account):
        if account.pk != limited.pk:
            return real_http(account)
        # This account's provider says "slow down" to every status check.
        return httpx.Client(
            base_url=account.base_url,
            transport=httpx.MockTransport(
                lambda request: httpx.Response(
                    429,
                    headers={"Retry-After": "30"},
                    json={"error": {"code": 429, "message": "Too many requests"}},
                )
            ),
        )

    monkeypatch.setattr(tracker, "http_for", http_for)
    Clip.objects.update(next_poll_at=timezone.now())
    try:
        result = tracker.run_once()
    finally:
        tracker.close()

    assert result.by_account[limited.pk] == 1 and result.by_account[other.pk] == 1
    limited.refresh_from_db()
    assert limited.paused_until > timezone.now() + timedelta(seconds=25)
    slowed = Clip.objects.get(provider_account=limited)
    assert slowed.status == ClipStatus.RUNNING
    assert slowed.next_poll_at >= limited.paused_until - timedelta(seconds=1)
    # The other account is polled as usual: its clip made progress and is due again soon.
    fine = Clip.objects.get(provider_account=other)
    assert fine.last_polled_at is not None
    assert fine.next_poll_at < timezone.now() + timedelta(seconds=5)
    # While paused, the limited account's clips are not even claimed.
    Clip.objects.update(next_poll_at=timezone.now())
    assert [c.provider_account_id for c in tracking.claim_due()] == [other.pk]


def test_status_checks_never_exceed_the_accounts_rate(make_clip, sandbox_apimart):
    ProviderAccount.objects.filter(pk=sandbox_apimart.pk).update(requests_per_minute=60)
    running(make_clip, sandbox_apimart, 5)
    result = tracking.Tracker(threads=0).run_once()
    # 60 a minute: one now, the others spread a second apart.
    assert result.polled == 1 and result.deferred == 4
    waits = sorted(
        (c.next_poll_at - timezone.now()).total_seconds()
        for c in Clip.objects.filter(status=ClipStatus.RUNNING)  # the polled one: unknown task
    )
    assert len(waits) == 4 and waits[0] > 0.5 and waits[-1] > 3.5, waits


def test_the_token_bucket_holds_over_any_minute(sandbox_apimart):
    ProviderAccount.objects.filter(pk=sandbox_apimart.pk).update(requests_per_minute=600)
    granted = 0
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        got, _ = tracking.take_tokens(account_id=sandbox_apimart.pk, wanted=50)
        granted += got
    # A bucket of 10 plus 9.83 a second: at most 600 in any 60 s, so about 20 in one.
    assert 10 <= granted <= 21, granted


def test_queued_clips_wait_in_order_for_a_free_slot(client, user, make_clip, sandbox_apimart):
    ProviderAccount.objects.filter(pk=sandbox_apimart.pk).update(max_in_flight=1)
    sandbox_apimart.refresh_from_db()
    clips = [make_clip(sandbox_apimart, prompt=f"Take {n}") for n in range(5)]

    result = tracking.Tracker(threads=0).run_once()

    assert result.submitted == 1
    statuses = [Clip.objects.get(pk=c.pk).status for c in clips]
    assert statuses == [ClipStatus.RUNNING] + [ClipStatus.QUEUED] * 4
    assert SandboxTask.objects.count() == 1
    client.force_login(user)
    page = client.get(f"/clips/{clips[4].pk}/").content.decode()
    assert "Waiting for a free slot at apimart (sandbox): 3 ahead" in page
    # A clip asked to submit out of turn stays in line.
    assert not pipeline.submit_clip(clip_id=clips[3].pk)
    assert Clip.objects.get(pk=clips[3].pk).status == ClipStatus.QUEUED


def test_a_callback_makes_its_clip_due_at_once(make_clip, sandbox_apimart):
    (clip,) = running(make_clip, sandbox_apimart, 1)
    Clip.objects.filter(pk=clip.pk).update(next_poll_at=timezone.now() + timedelta(hours=1))
    assert tracking.claim_due() == []

    assert tracking.callback_received(account=sandbox_apimart, task_ids=(clip.provider_task_id,))

    assert [c.pk for c in tracking.claim_due()] == [clip.pk]


def test_the_deadline_is_judged_after_asking_the_provider(make_clip, sandbox_apimart, settings):
    settings.TRACK_DEADLINE_SECONDS = 60
    clip = make_clip(sandbox_apimart)
    pipeline.submit_clip(clip_id=clip.pk)
    time.sleep(settings.SANDBOX_TASK_SECONDS + 0.3)  # the provider has finished by now
    long_ago = timezone.now() - timedelta(hours=4)
    Clip.objects.filter(pk=clip.pk).update(submitted_at=long_ago, next_poll_at=timezone.now())

    tracking.Tracker(threads=0).run_once()

    clip.refresh_from_db()
    assert clip.status == ClipStatus.MIRRORING, clip.error_message


def test_a_task_still_running_past_the_deadline_expires_after_one_more_look(
    make_clip, sandbox_apimart, settings
):
    settings.TRACK_DEADLINE_SECONDS = 60
    clip = make_clip(sandbox_apimart, prompt="Forever [sandbox:never]")
    pipeline.submit_clip(clip_id=clip.pk)
    Clip.objects.filter(pk=clip.pk).update(
        submitted_at=timezone.now() - timedelta(hours=1), next_poll_at=timezone.now()
    )

    tracking.Tracker(threads=0).run_once()

    clip.refresh_from_db()
    assert clip.status == ClipStatus.EXPIRED
    assert "did not finish within 60 s" in clip.error_message


def test_cadence_follows_the_provider(make_clip, sandbox_account, settings):
    settings.TRACK_POLL_SECONDS = 2
    settings.TRACK_MAX_POLL_SECONDS = 30
    settings.TRACK_PROVIDER_REFRESH_SECONDS = {"newapi": 15.0}
    now = timezone.now()
    apimart = make_clip(sandbox_account("apimart"), submitted_at=now)
    assert tracking.cadence(apimart, now=now) == 2
    assert tracking.cadence(apimart, now=now + timedelta(seconds=120)) == 12
    assert tracking.cadence(apimart, now=now + timedelta(hours=1)) == 30
    # The provider expects ten minutes: asked every 30 s, then briskly once it is due.
    apimart.provider_estimate_seconds = 600
    assert tracking.cadence(apimart, now=now + timedelta(seconds=10)) == 30
    assert tracking.cadence(apimart, now=now + timedelta(seconds=610)) == 2
    # The NewAPI gateway refreshes every 15 s: never asked more often.
    newapi = make_clip(sandbox_account("newapi"), submitted_at=now)
    assert tracking.cadence(newapi, now=now) == 15


def test_a_failing_status_check_backs_off_and_the_task_is_kept(make_clip, sandbox_apimart):
    (clip,) = running(make_clip, sandbox_apimart, 1)
    error = pipeline.tracker.ProviderError("The provider had an internal error.", http_status=500)
    waits = []
    for _ in range(3):
        clip.refresh_from_db()
        tracking.record_failure(clip, error)
        clip.refresh_from_db()
        waits.append((clip.next_poll_at - timezone.now()).total_seconds())
    assert clip.status == ClipStatus.RUNNING and clip.poll_failures == 3
    assert waits[0] < waits[1] < waits[2]


def test_a_tracker_process_round_via_the_command(make_clip, sandbox_apimart):
    from django.core.management import call_command

    make_clip(sandbox_apimart)
    call_command("tracker", "--once")
    assert Clip.objects.get().status == ClipStatus.RUNNING


def test_the_clip_page_says_when_no_tracker_is_running(client, user, make_clip, sandbox_apimart):
    from videos.models import WorkerHeartbeat

    clip = make_clip(sandbox_apimart)
    client.force_login(user)
    assert "The tracker is not running" in client.get(f"/clips/{clip.pk}/").content.decode()
    WorkerHeartbeat.beat(name="worker@test:1", kind="worker")
    assert "The tracker is not running" in client.get(f"/clips/{clip.pk}/").content.decode()
    WorkerHeartbeat.beat(name="tracker@test:1", kind="tracker")
    assert "The tracker is not running" not in client.get(f"/clips/{clip.pk}/").content.decode()
    # A tracker last heard from 40 s ago is taken for gone; one heard 20 s ago is not.
    WorkerHeartbeat.objects.filter(kind="tracker").update(
        seen_at=timezone.now() - timedelta(seconds=40)
    )
    assert "The tracker is not running" in client.get(f"/clips/{clip.pk}/").content.decode()
    WorkerHeartbeat.objects.filter(kind="tracker").update(
        seen_at=timezone.now() - timedelta(seconds=20)
    )
    assert "The tracker is not running" not in client.get(f"/clips/{clip.pk}/").content.decode()


def test_the_clip_page_says_when_saving_waits_for_a_worker(
    client, user, make_clip, sandbox_apimart
):
    clip = make_clip(
        sandbox_apimart,
        status=ClipStatus.MIRRORING,
        provider_done_at=timezone.now() - timedelta(minutes=10),
    )
    client.force_login(user)
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "the queue worker may not be running" in page
