"""A submission whose answer was lost, in the browser: the creator adopts the task by its id."""

from __future__ import annotations

import time

import pytest

from sandbox.models import SandboxTask
from tests.browser import shot
from videos import pipeline
from videos.models import Clip, ClipStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_creator_tracks_a_lost_submission_by_the_id_from_the_dashboard(
    page, live_server, client, user, project, sandbox_apimart, drain_queue, settings
):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    settings.SANDBOX_TIMEOUT_SECONDS = 1.5  # the provider takes the task, but answers late
    clip = Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=sandbox_apimart,
        model="veo3.1-fast-official",
        prompt="A paper boat on a canal [sandbox:timeout]",
        params={"duration": 4, "aspect_ratio": "16:9", "resolution": "720p"},
    )
    pipeline.submit_clip(clip_id=clip.pk)
    assert Clip.objects.get(pk=clip.pk).status == ClipStatus.UNKNOWN
    deadline = time.monotonic() + 10
    while not SandboxTask.objects.exists():  # the provider's dashboard shows it
        assert time.monotonic() < deadline
        time.sleep(0.1)
    task_id = SandboxTask.objects.get().task_id

    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto(f"{live_server.url}/clips/{clip.pk}/")
    assert page.get_by_text("Outcome unknown").first.is_visible()
    assert page.get_by_role("button", name="It was never sent").is_visible()
    shot(page, "unknown-outcome")

    page.get_by_label("Provider task id").fill("task_that_does_not_exist")
    page.get_by_role("button", name="Track this task").click()
    assert page.get_by_text("The provider does not confirm task").is_visible()
    assert Clip.objects.get(pk=clip.pk).status == ClipStatus.UNKNOWN

    page.get_by_label("Provider task id").fill(task_id)
    page.get_by_role("button", name="Track this task").click()
    assert page.get_by_text("the clip is being tracked").is_visible()
    drain_queue(until=lambda: bool(Clip.objects.get(pk=clip.pk).poster_key), timeout=60)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY and clip.provider_task_id == task_id
    assert SandboxTask.objects.count() == 1  # tracked, never sent again
