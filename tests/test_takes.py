"""Takes: several versions of one prompt, from the new-clip form, compared and picked.

apimart gets one submission asking for several samples; every other provider one
submission per take. The whole request is counted against the budget before anything is
sent, and a paid task's videos are each recorded once, whatever is polled twice.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.models import SandboxTask
from tests.chain_helpers import done, stored_clip
from videos import takes
from videos.models import (
    Activity,
    Clip,
    ClipStatus,
    LedgerEntry,
    ModelPrice,
    TakeGroup,
)
from videos.pipeline.tracker import apply_state
from videos.providers import State, TaskState, apimart

pytestmark = pytest.mark.django_db(transaction=True)

APIMART_FORM = {
    "model": "veo3.1-fast-official",
    "prompt": "A red kite over green hills",
    "duration": "4",
    "aspect_ratio": "16:9",
    "resolution": "720p",
}
KLING_FORM = {
    "model": "kling-v1-6",
    "prompt": "A lantern on a pier at night",
    "duration": "5",
    "aspect_ratio": "16:9",
    "resolution": "std",
}


@pytest.fixture(autouse=True)
def quick_sandbox(fast_sandbox, settings):
    settings.SANDBOX_TASK_SECONDS = 0.5


def all_done(group_id: int, count: int):
    def check() -> bool:
        clips = list(Clip.objects.filter(take_group_id=group_id))
        return len(clips) == count and all(done(clip.pk)() for clip in clips)

    return check


def ask_for_takes(client, project, account, form: dict, count: int):
    return client.post(
        f"/projects/{project.pk}/clips/new/",
        {**form, "provider_account": account.pk, "takes": str(count)},
    )


def test_four_apimart_takes_are_one_paid_request_and_four_clips(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("apimart")
    ModelPrice.objects.create(kind="apimart", model="veo3.1-fast-official", per_clip=Decimal("1"))
    client.force_login(user)

    response = ask_for_takes(client, project, account, APIMART_FORM, 4)

    group = TakeGroup.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/takes/{group.pk}/"
    (first,) = Clip.objects.all()
    assert first.take_group == group and first.params["sample_count"] == 4
    assert first.estimated_cost == Decimal("4")
    drain_queue(until=all_done(group.pk, 4), timeout=90)

    assert SandboxTask.objects.filter(provider="apimart").count() == 1
    made = list(group.takes.order_by("pk"))
    assert [clip.status for clip in made] == [ClipStatus.READY] * 4
    assert made[0].pk == first.pk and made[0].provider_task_id
    assert [clip.params.get("sample") for clip in made[1:]] == [2, 3, 4]
    assert all(not clip.provider_task_id for clip in made[1:])
    assert len({clip.sha256 for clip in made}) == 4  # four different videos
    entries = {entry.clip_id: entry for entry in LedgerEntry.objects.all()}
    assert entries[first.pk].actual_cost == Decimal("4")
    assert [entries[clip.pk].actual_cost for clip in made[1:]] == [Decimal("0")] * 3

    page = client.get(f"/takes/{group.pk}/").content.decode()
    assert page.count('class="take-video"') == 4
    assert "4 takes of one prompt" in page
    assert page.count("Pick this take") == 4


def test_other_providers_get_one_submission_per_take(
    client, user, project, live_server, sandbox_account, drain_queue
):
    account = sandbox_account("kling")
    client.force_login(user)

    ask_for_takes(client, project, account, KLING_FORM, 3)

    group = TakeGroup.objects.get()
    assert group.takes.count() == 3
    assert all("sample_count" not in clip.params for clip in group.takes.all())
    drain_queue(until=all_done(group.pk, 3), timeout=90)
    assert SandboxTask.objects.filter(provider="kling").count() == 3
    assert len({clip.provider_task_id for clip in group.takes.all()}) == 3


@pytest.mark.parametrize("kind, form", [("kling", KLING_FORM), ("apimart", APIMART_FORM)])
def test_takes_that_do_not_fit_the_budget_are_refused_whole(
    client, user, project, live_server, sandbox_account, kind, form
):
    account = sandbox_account(kind)
    ModelPrice.objects.create(kind=kind, model=form["model"], per_clip=Decimal("2"))
    project.budget = Decimal("5")
    project.save(update_fields=["budget"])
    client.force_login(user)

    response = ask_for_takes(client, project, account, form, 3)

    assert response.status_code == 200
    page = response.content.decode()
    assert "3 takes would cost about $6.00 ($2.00 each)" in page
    assert "$5.00 left of its $5.00 budget" in page and "Nothing was sent" in page
    assert not Clip.objects.exists() and not TakeGroup.objects.exists()


def test_two_takes_that_fit_the_budget_are_both_made(
    client, user, project, live_server, sandbox_account
):
    account = sandbox_account("kling")
    ModelPrice.objects.create(kind="kling", model="kling-v1-6", per_clip=Decimal("2"))
    project.budget = Decimal("4")
    project.save(update_fields=["budget"])
    client.force_login(user)
    ask_for_takes(client, project, account, KLING_FORM, 2)
    assert TakeGroup.objects.get().takes.count() == 2


def test_the_estimate_counts_every_take(client, user, project, live_server, sandbox_account):
    account = sandbox_account("kling")
    ModelPrice.objects.create(kind="kling", model="kling-v1-6", per_clip=Decimal("0.75"))
    client.force_login(user)
    page = client.get(
        f"/projects/{project.pk}/clips/new/",
        {**KLING_FORM, "provider_account": account.pk, "takes": "4"},
        headers={"HX-Request": "true", "HX-Target": "clip-estimate"},
    ).content.decode()
    assert "$3.00</strong> for 4 takes" in page


def test_a_bad_number_of_takes_is_said_by_the_field(client, user, project, sandbox_account):
    account = sandbox_account("kling")
    client.force_login(user)
    response = ask_for_takes(client, project, account, KLING_FORM, 9)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Clip.objects.exists()


# --- the tracker records a several-video task once ------------------------------------------


def test_a_finished_several_sample_task_is_recorded_once_however_often_it_is_polled(
    user, project, sandbox_account
):
    account = sandbox_account("apimart")
    group = takes.create_takes(
        project=project,
        user=user,
        account=account,
        model="veo3.1-fast-official",
        prompt="Waves",
        params={"duration": 4, "aspect_ratio": "16:9", "resolution": "720p"},
        count=3,
    )
    (clip,) = group.takes.all()
    Clip.objects.filter(pk=clip.pk).update(status=ClipStatus.RUNNING, provider_task_id="task_1")
    clip.refresh_from_db()
    state = TaskState(
        State.SUCCEEDED,
        progress=100,
        video_url="https://cdn.example/1.mp4",
        more_video_urls=("https://cdn.example/2.mp4", "https://cdn.example/3.mp4"),
    )
    apply_state(clip, state)
    apply_state(Clip.objects.get(pk=clip.pk), state)  # the same answer again

    takes_now = list(group.takes.order_by("pk"))
    assert [take.result_url for take in takes_now] == [
        "https://cdn.example/1.mp4",
        "https://cdn.example/2.mp4",
        "https://cdn.example/3.mp4",
    ]
    assert all(take.status == ClipStatus.MIRRORING for take in takes_now)
    assert LedgerEntry.objects.count() == 3


def test_apimart_reads_every_sample_of_a_finished_task():
    entries = {
        "code": 200,
        "data": {
            "status": "completed",
            "result": {
                "videos": [
                    {"url": ["https://x/1.mp4"], "expires_at": 1765087446},
                    {"url": "https://x/2.mp4"},
                ]
            },
        },
    }
    state = apimart.parse_status(entries)
    assert state.video_url == "https://x/1.mp4" and state.more_video_urls == ("https://x/2.mp4",)
    links = {
        "code": 200,
        "data": {
            "status": "completed",
            "result": {
                "videos": [{"url": ["https://x/1.mp4", "https://x/2.mp4", "https://x/1.mp4"]}]
            },
        },
    }
    assert apimart.parse_status(links).more_video_urls == ("https://x/2.mp4",)
    one = {"code": 200, "data": {"status": "completed", "result": {"videos": [{"url": ["u"]}]}}}
    assert apimart.parse_status(one).more_video_urls == ()


# --- picking --------------------------------------------------------------------------------


def finished_group(project, user, account, *, count=3, parent=None) -> TakeGroup:
    group = TakeGroup.objects.create(project=project, created_by=user)
    for n in range(count):
        stored_clip(
            project=project,
            user=user,
            account=account,
            seconds=2,
            size=(160, 90),
            model="kling-v1-6",
            prompt=f"Take {n}",
            take_group=group,
            parent=parent,
            params={"duration": 5, "aspect_ratio": "16:9", "provider_video_id": f"v{n}"},
        )
    return group


def test_the_pick_is_starred_and_offered_to_extend_and_continue(
    client, user, project, sandbox_account
):
    account = sandbox_account("kling")
    group = finished_group(project, user, account)
    second = group.takes.order_by("pk")[1]
    client.force_login(user)

    response = client.post(f"/takes/{group.pk}/pick/", {"take": second.pk})

    assert response.status_code == 302
    assert response["Location"] == f"/takes/{group.pk}/#take-{second.pk}"
    group.refresh_from_db()
    assert group.pick == second
    assert takes.preferred(group.takes.order_by("pk")[0]) == second
    page = client.get(f"/takes/{group.pk}/").content.decode()
    assert "★ The pick" in page and "the pick is take 2" in page
    assert f'href="/clips/{second.pk}/extend/"' in page
    assert f'href="/clips/{second.pk}/continue/"' in page
    assert Activity.objects.filter(verb="picked a take", clip=second).exists()


def test_takes_made_in_one_apimart_task_are_continued_not_extended(user, project, sandbox_account):
    from videos import chains

    account = sandbox_account("apimart")
    group = TakeGroup.objects.create(project=project, created_by=user)
    first = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=8,
        size=(160, 90),
        take_group=group,
        params={"duration": 8, "aspect_ratio": "16:9", "sample_count": 2},
    )
    second = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=8,
        size=(160, 90),
        take_group=group,
        params={"duration": 8, "aspect_ratio": "16:9", "sample_of": first.pk, "sample": 2},
    )
    for take in (first, second):
        assert "Continue from last frame" in chains.extend_refusal(take)


def test_picking_among_takes_after_a_clip_puts_the_pick_on_the_main_line(
    client, user, project, sandbox_account
):
    from videos import chains

    account = sandbox_account("kling")
    root = stored_clip(project=project, user=user, account=account, seconds=2, size=(160, 90))
    group = finished_group(project, user, account, parent=root)
    third = group.takes.order_by("pk")[2]
    client.force_login(user)
    client.post(f"/takes/{group.pk}/pick/", {"take": third.pk})
    assert chains.timeline(root).clip_ids == [root.pk, third.pk]


def test_a_take_without_video_cannot_be_the_pick(client, user, project, sandbox_account):
    account = sandbox_account("kling")
    group = finished_group(project, user, account, count=2)
    failed = group.takes.first()
    Clip.objects.filter(pk=failed.pk).update(status=ClipStatus.FAILED, file_key="")
    client.force_login(user)
    response = client.post(f"/takes/{group.pk}/pick/", {"take": failed.pk}, follow=True)
    assert "Only a take with a finished video can be the pick." in response.content.decode()
    group.refresh_from_db()
    assert group.pick is None


def test_a_clip_from_elsewhere_cannot_be_picked(client, user, project, sandbox_account):
    account = sandbox_account("kling")
    group = finished_group(project, user, account, count=2)
    stranger = stored_clip(project=project, user=user, account=account, seconds=2, size=(160, 90))
    client.force_login(user)
    for value in (stranger.pk, "nope", "99999999999999999999999"):
        response = client.post(f"/takes/{group.pk}/pick/", {"take": value}, follow=True)
        assert response.status_code == 200
    group.refresh_from_db()
    assert group.pick is None
