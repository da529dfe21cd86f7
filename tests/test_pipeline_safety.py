"""Nothing is lost and nothing is paid for twice, whatever the queue or the provider does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sandbox.models import SandboxTask
from videos import pipeline
from videos.models import Clip, ClipStatus

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
    pipeline.track_clip(clip_id=clip.pk)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.MIRRORING
    assert any(0 < value < 100 for value in seen), seen
    assert seen == sorted(seen)


def test_a_restarted_worker_carries_on_from_the_database(make_clip, drain_queue):
    clip = make_clip()
    pipeline.submit_clip(clip_id=clip.pk)
    # The worker died: the queue lost every task, only the database remembers.
    from tests.queue import purge

    purge()
    Clip.objects.filter(pk=clip.pk).update(last_polled_at=timezone.now() - timedelta(minutes=5))

    counts = pipeline.resume_stalled()

    assert counts["track"] == 1
    drain_queue(until=lambda: bool(Clip.objects.get(pk=clip.pk).poster_key), timeout=60)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY
    assert SandboxTask.objects.count() == 1


def test_a_submission_lost_mid_call_is_never_sent_again(make_clip):
    clip = make_clip(status=ClipStatus.SUBMITTING)
    Clip.objects.filter(pk=clip.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    pipeline.resume_stalled()

    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED
    assert clip.error_code == "submit_unknown"
    assert "not charged twice" in clip.error_message
    assert SandboxTask.objects.count() == 0


def test_a_queued_clip_whose_task_was_lost_is_submitted_by_the_safety_net(make_clip, drain_queue):
    clip = make_clip()
    Clip.objects.filter(pk=clip.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert pipeline.resume_stalled()["submit"] == 1
    drain_queue(until=lambda: Clip.objects.get(pk=clip.pk).status != ClipStatus.QUEUED)
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
    assert clip.status == ClipStatus.FAILED
    assert clip.error_code == "no_answer"
    assert "never charged twice" in clip.error_message


def test_rate_limited_submissions_wait_and_then_give_up_with_a_message(make_clip):
    clip = make_clip(prompt="A storm [sandbox:429]")
    pipeline.submit_clip(clip_id=clip.pk)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED
    assert "rate-limiting" in clip.error_message


def test_an_expired_result_link_marks_the_clip_expired_not_failed(make_clip, drain_queue):
    clip = make_clip(prompt="Neon alley [sandbox:expired]")
    pipeline.submit_clip(clip_id=clip.pk)
    drain_queue(until=lambda: Clip.objects.get(pk=clip.pk).is_final, timeout=60)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.EXPIRED
    assert "expired" in clip.error_message


def test_a_task_the_provider_forgot_fails_and_its_ledger_entry_is_settled(make_clip):
    from videos.models import LedgerEntry

    clip = make_clip()
    pipeline.submit_clip(clip_id=clip.pk)
    SandboxTask.objects.all().delete()  # the provider no longer knows the task

    pipeline.track_clip(clip_id=clip.pk)

    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED
    assert clip.error_code == "not_found"
    entry = LedgerEntry.objects.get(clip=clip)
    assert entry.settled_at is not None
    assert entry.actual_is_estimate
