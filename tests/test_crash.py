"""SIGKILL a real tracker process mid-submission and mid-tracking: nothing paid twice or lost."""

from __future__ import annotations

import signal

import pytest

from sandbox.models import SandboxTask
from tests.processes import manage, wait_for
from videos.models import Clip, ClipStatus

pytestmark = pytest.mark.django_db(transaction=True)

FAST_TRACKER = {
    "TRACK_POLL_SECONDS": "0.3",
    "TRACK_MAX_POLL_SECONDS": "0.5",
    "TRACKER_IDLE_SECONDS": "0.1",
    "SUBMIT_LEASE_SECONDS": "2",
    # A tracker killed mid-round leaves that round's clips leased; the next one waits this out.
    "TRACK_POLL_LEASE_SECONDS": "3",
}


def make_clips(project, user, account, *, count: int, model: str, prompt: str, params: dict):
    return [
        Clip.objects.create(
            project=project,
            created_by=user,
            provider_account=account,
            model=model,
            prompt=f"{prompt} #{n}",
            params=params,
        )
        for n in range(count)
    ]


def tracked_once_each(clips) -> None:
    """Every clip tracks the one task the provider made for it, and no task is orphaned."""
    tasks = {task.task_id for task in SandboxTask.objects.all()}
    ids = [Clip.objects.get(pk=clip.pk).provider_task_id.rpartition(":")[2] for clip in clips]
    assert len(tasks) == len(clips), f"{len(tasks)} provider tasks for {len(clips)} clips"
    assert sorted(ids) == sorted(tasks)


def test_a_tracker_killed_during_slow_submissions_pays_once_and_finds_every_task(
    project, user, sandbox_account, settings, tmp_path
):
    # Kling takes the task at once but answers only after 4 s: the kill lands in between.
    settings.SANDBOX_TIMEOUT_SECONDS = 4
    account = sandbox_account("kling")
    clips = make_clips(
        project,
        user,
        account,
        count=4,
        model="kling-v1-6",
        prompt="Harbour at dawn [sandbox:timeout]",
        params={"duration": 5, "aspect_ratio": "16:9", "mode": "std"},
    )
    log = tmp_path / "tracker.log"
    env = {**FAST_TRACKER, "PROVIDER_TIMEOUT_SECONDS": "20", "TRACKER_SUBMIT_THREADS": "4"}
    with manage("tracker", log=log, **env) as first:
        wait_for(
            lambda: (
                SandboxTask.objects.count() == 4
                and Clip.objects.filter(status=ClipStatus.SUBMITTING).count() == 4
            ),
            timeout=30,
            what="four submissions in flight",
            log=log,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    # Every answer is lost with the process; the provider has all four tasks.
    assert Clip.objects.filter(status=ClipStatus.SUBMITTING).count() == 4

    with manage("tracker", log=log, **env):
        wait_for(
            lambda: (
                not Clip.objects.filter(
                    status__in=[ClipStatus.SUBMITTING, ClipStatus.UNKNOWN, ClipStatus.QUEUED]
                ).exists()
                and not Clip.objects.filter(status=ClipStatus.RUNNING).exists()
            ),
            timeout=60,
            what="the new tracker to find and follow every task",
            log=log,
        )

    for clip in clips:
        clip.refresh_from_db()
        assert clip.status == ClipStatus.MIRRORING, (clip.status, clip.error_message)
    tracked_once_each(clips)


def test_a_tracker_killed_while_polling_is_replaced_without_loss(
    project, user, sandbox_apimart, settings, tmp_path
):
    settings.SANDBOX_TASK_SECONDS = 8
    clips = make_clips(
        project,
        user,
        sandbox_apimart,
        count=6,
        model="veo3.1-fast-official",
        prompt="Rain over rooftops",
        params={"duration": 4, "aspect_ratio": "16:9", "resolution": "720p"},
    )
    log = tmp_path / "tracker.log"
    with manage("tracker", log=log, **FAST_TRACKER) as first:
        wait_for(
            lambda: (
                Clip.objects.exclude(provider_task_id="").count() == 6
                and Clip.objects.filter(status=ClipStatus.RUNNING, progress__gt=0).exists()
            ),
            timeout=60,
            what="six clips sent and being tracked",
            log=log,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    with manage("tracker", log=log, **FAST_TRACKER):
        wait_for(
            lambda: Clip.objects.filter(status=ClipStatus.MIRRORING).count() == 6,
            # (No queue worker runs here, so finished clips wait in "Saving video".)
            timeout=60,
            what="every clip to finish at the provider",
            log=log,
        )
    tracked_once_each(clips)
