"""Nothing is lost and nothing is paid for twice, whatever the queue or the provider does."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from sandbox.models import SandboxTask
from videos import pipeline
from videos.models import Clip, ClipStatus, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def make_clip(project, user, sandbox_apimart):
    def make(prompt: str = "Slow pan over a desert at noon", **fields) -> Clip:
        return Clip.objects.create(
            project=project,
            created_by=user,
            provider_account=sandbox_apimart,
            model="veo3.1-fast-official",
            prompt=prompt,
            params={"duration": 4, "aspect_ratio": "16:9", "resolution": "720p"},
            **fields,
        )

    return make


def test_a_clip_is_submitted_once_even_when_its_task_runs_twice(make_clip):
    clip = make_clip()
    pipeline.submit_clip(clip_id=clip.pk)
    pipeline.submit_clip(clip_id=clip.pk)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.RUNNING
    assert SandboxTask.objects.count() == 1
    assert SandboxTask.objects.get().task_id == clip.provider_task_id


def test_the_provider_task_id_is_saved_before_tracking_starts(make_clip):
    clip = make_clip()
    pipeline.submit_clip(clip_id=clip.pk)
    stored = Clip.objects.get(pk=clip.pk)
    assert stored.provider_task_id.startswith("task_")
    assert stored.submitted_at is not None


def test_progress_reaches_the_database_while_the_provider_works(make_clip, monkeypatch):
    seen: list[int] = []
    original = Clip.record_progress

    def spy(self, **kwargs):
        seen.append(kwargs["progress"])
        return original(self, **kwargs)

    monkeypatch.setattr(Clip, "record_progress", spy)
    clip = make_clip()
    pipeline.submit_clip(clip_id=clip.pk)
    tracker = pipeline.Tracker(threads=0)
    deadline = time.monotonic() + 30
    while Clip.objects.get(pk=clip.pk).status == ClipStatus.RUNNING:
        assert time.monotonic() < deadline
        tracker.run_once()
        time.sleep(0.05)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.MIRRORING
    assert any(0 < value < 100 for value in seen), seen
    assert seen == sorted(seen)


def test_a_tracker_killed_mid_poll_loses_nothing(make_clip, drain_queue):
    clip = make_clip()
    pipeline.submit_clip(clip_id=clip.pk)
    # A tracker claimed the clip and died holding the lease; only the database remembers.
    Clip.objects.filter(pk=clip.pk).update(
        tracking_lease_until=timezone.now() + timedelta(seconds=1)
    )
    assert pipeline.tracker.claim_due() == []

    time.sleep(1.1)  # the dead tracker's lease lapses

    drain_queue(until=lambda: bool(Clip.objects.get(pk=clip.pk).poster_key), timeout=60)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY
    assert SandboxTask.objects.count() == 1


def test_a_submission_whose_submitter_died_is_never_sent_again(make_clip):
    now = timezone.now()
    clip = make_clip(
        status=ClipStatus.SUBMITTING,
        estimated_cost=Decimal("0.40"),
        submit_claimed_at=now - timedelta(minutes=1),
        submit_lease_until=now - timedelta(seconds=1),
    )

    pipeline.resume_stalled()

    clip.refresh_from_db()
    assert clip.status == ClipStatus.UNKNOWN
    assert "never charged twice" in clip.error_message
    assert SandboxTask.objects.count() == 0
    # It may be paid for: the estimate counts until someone settles it.
    entry = LedgerEntry.objects.get(clip=clip)
    assert entry.settled_at is None and entry.estimated_cost == Decimal("0.40")


def test_a_slow_submission_still_in_flight_is_never_judged_lost(make_clip):
    # Made an hour ago, claimed now: only the live lease counts, never the clip's age.
    clip = make_clip(status=ClipStatus.QUEUED)
    Clip.objects.filter(pk=clip.pk).update(created_at=timezone.now() - timedelta(hours=1))
    clip.refresh_from_db()
    assert clip.claim_submission(lease_seconds=30)

    pipeline.resume_stalled()

    clip.refresh_from_db()
    assert clip.status == ClipStatus.SUBMITTING


def test_an_answer_that_arrives_after_the_clip_was_given_up_is_recorded(make_clip):
    clip = make_clip(status=ClipStatus.SUBMITTING, submit_lease_until=timezone.now())
    pipeline.resume_stalled()
    clip.refresh_from_db()
    assert clip.status == ClipStatus.UNKNOWN

    assert pipeline.submit.record_task_id(clip, "task_late_answer")

    clip.refresh_from_db()
    assert clip.status == ClipStatus.RUNNING
    assert clip.provider_task_id == "task_late_answer"
    assert clip.error_message == ""


def test_the_submission_lease_is_renewed_while_a_slow_provider_answers(make_clip, settings):
    settings.SUBMIT_LEASE_SECONDS = 0.6
    settings.SANDBOX_TIMEOUT_SECONDS = 1.5  # the provider takes this long to answer
    settings.PROVIDER_TIMEOUT_SECONDS = 10
    clip = make_clip(prompt="A storm [sandbox:timeout]")
    verdicts: list[str] = []

    def safety_net_meanwhile():
        while len(verdicts) < 6:
            time.sleep(0.2)
            pipeline.resume_stalled()
            verdicts.append(Clip.objects.get(pk=clip.pk).status)

    watcher = threading.Thread(target=safety_net_meanwhile)
    watcher.start()
    pipeline.submit_clip(clip_id=clip.pk)
    watcher.join()

    clip.refresh_from_db()
    assert ClipStatus.UNKNOWN not in verdicts, verdicts
    assert clip.status == ClipStatus.RUNNING
    assert SandboxTask.objects.get().task_id == clip.provider_task_id


def test_a_new_clip_needs_no_queue_task_the_tracker_sends_it(make_clip):
    clip = make_clip()
    result = pipeline.Tracker(threads=0).run_once()
    assert result.submitted == 1
    clip.refresh_from_db()
    assert clip.status == ClipStatus.RUNNING
    assert SandboxTask.objects.count() == 1


def test_a_refused_submission_fails_with_plain_words(make_clip):
    clip = make_clip(prompt="A storm [sandbox:402]")
    pipeline.submit_clip(clip_id=clip.pk)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED
    assert "run out of balance" in clip.error_message
    assert "Insufficient balance" in clip.provider_message
    assert SandboxTask.objects.count() == 0


def test_an_unanswered_submission_is_not_sent_again(make_clip, settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    settings.SANDBOX_TIMEOUT_SECONDS = 1.5
    clip = make_clip(prompt="A storm [sandbox:timeout]")
    pipeline.submit_clip(clip_id=clip.pk)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.UNKNOWN
    assert clip.error_code == "outcome_unknown"
    assert "never charged twice" in clip.error_message
    time.sleep(1.5)  # the provider did take it, after the studio stopped waiting
    assert SandboxTask.objects.count() == 1


def test_rate_limited_submissions_wait_and_then_give_up_with_a_message_that_says_so(make_clip):
    clip = make_clip(prompt="A storm [sandbox:429]")
    pipeline.submit_clip(clip_id=clip.pk)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED
    assert "refused all 3 tries (HTTP 429)" in clip.error_message
    assert "nothing was charged" in clip.error_message
    assert "tried again" not in clip.error_message
    # Nothing was accepted, so nothing is promised in the ledger either.
    assert not LedgerEntry.objects.filter(clip=clip).exists()


def test_an_expired_result_link_marks_the_clip_expired_not_failed(make_clip, drain_queue):
    clip = make_clip(prompt="Neon alley [sandbox:expired]")
    pipeline.submit_clip(clip_id=clip.pk)
    drain_queue(until=lambda: Clip.objects.get(pk=clip.pk).is_final, timeout=60)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.EXPIRED
    assert "expired" in clip.error_message


def test_a_task_the_provider_forgot_fails_and_its_ledger_entry_is_settled(make_clip):
    clip = make_clip()
    pipeline.submit_clip(clip_id=clip.pk)
    SandboxTask.objects.all().delete()  # the provider no longer knows the task

    pipeline.poll_now(clip_id=clip.pk)

    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED
    assert clip.error_code == "not_found"
    entry = LedgerEntry.objects.get(clip=clip)
    assert entry.settled_at is not None
    assert entry.actual_is_estimate


def test_a_mirror_killed_mid_run_is_queued_again_once_its_lease_lapses(make_clip):
    now = timezone.now()
    clip = make_clip(
        status=ClipStatus.MIRRORING,
        provider_done_at=now - timedelta(minutes=5),
        tracking_lease_until=now + timedelta(seconds=30),  # a live run renews this
    )
    assert pipeline.resume_stalled()["mirror"] == 0
    Clip.objects.filter(pk=clip.pk).update(tracking_lease_until=now - timedelta(seconds=1))
    assert pipeline.resume_stalled()["mirror"] == 1
    # Queued once, under a fresh lease: the next pass leaves it to the queue.
    assert pipeline.resume_stalled()["mirror"] == 0


def test_a_running_mirror_renews_its_lease(make_clip):
    from videos.pipeline.common import work_lease

    clip = make_clip(status=ClipStatus.MIRRORING)
    with work_lease(clip, status=ClipStatus.MIRRORING):
        lease = Clip.objects.get(pk=clip.pk).tracking_lease_until
        assert lease > timezone.now() + timedelta(seconds=50)
