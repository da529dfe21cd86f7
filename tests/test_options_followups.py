"""What comes after a generation: kie's 1080p version, NewAPI's retried extension, kie's
continuation semantics on the timeline, sound kept through mirror and export, and what a
provider's own cost units say everywhere."""

from __future__ import annotations

from decimal import Decimal

import av
import pytest
from django.core.files.storage import default_storage

from sandbox.models import SandboxTask
from tests.chain_helpers import finish, generate, stored_clip
from videos import chains, ledger, pricing, services
from videos.models import (
    ChainExport,
    Clip,
    ClipKind,
    ClipStatus,
    ExportStatus,
    LedgerEntry,
    ModelPrice,
)

pytestmark = pytest.mark.django_db(transaction=True)

SIXTEEN_NINE = {"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"}


@pytest.fixture(autouse=True)
def quick_sandbox(fast_sandbox, settings):
    settings.SANDBOX_TASK_SECONDS = 0.5


def streams(key: str) -> set[str]:
    with default_storage.open(key, "rb") as stored, av.open(stored) as container:
        return {stream.type for stream in container.streams}


# --- kie: the 1080p version -------------------------------------------------------------------


def test_get_1080p_makes_a_free_child_clip_with_its_own_file_and_then_extend_is_refused(
    client, user, project, live_server, sandbox_account, drain_queue
):
    kie = sandbox_account("kie")
    ModelPrice.objects.create(kind="kie", model="veo3", per_clip="1.25", per_second="0")
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=kie,
        model="veo3",
        params=SIXTEEN_NINE,
        prompt="A city skyline at night",
    )
    client.force_login(user)
    page = client.get(f"/clips/{root.pk}/").content.decode()
    assert "Get 1080p" in page
    assert f'href="/clips/{root.pk}/extend/"' in page

    response = client.post(f"/clips/{root.pk}/1080p/")
    assert response.status_code == 302
    hd = Clip.objects.get(parent=root)
    assert (hd.kind, hd.status, hd.estimated_cost) == (ClipKind.UPSCALE, ClipStatus.QUEUED, 0)
    # Asked for once: a second click makes nothing.
    client.post(f"/clips/{root.pk}/1080p/")
    assert Clip.objects.filter(parent=root).count() == 1

    hd = finish(drain_queue, hd)
    assert hd.status == ClipStatus.READY, hd.error_message
    assert hd.provider_task_id == f"1080p:{root.provider_task_id}"
    assert SandboxTask.objects.filter(provider="kie", kind="hd1080").count() == 1
    assert hd.file_key and hd.file_key != root.file_key
    entry = LedgerEntry.objects.get(clip=hd)
    assert (entry.estimated_cost, entry.actual_cost) == (0, 0)

    page = client.get(f"/clips/{root.pk}/").content.decode()
    assert f'src="/clips/{hd.pk}/video.mp4"' in page  # beside the 720p player
    assert f'src="/clips/{root.pk}/video.mp4"' in page
    assert "Download 1080p" in page
    # Seed: 生成1080P之后的视频不能扩展. Refused before anything is sent.
    assert f'href="/clips/{root.pk}/extend/"' not in page
    assert "once its 1080p version has been made" in page
    sent = SandboxTask.objects.count()
    client.post(f"/clips/{root.pk}/extend/", {"prompt": "Fireworks"})
    assert SandboxTask.objects.count() == sent
    # The 1080p copy is the same footage: never a take or a part of a chain.
    assert chains.timeline(root).clip_count == 1
    assert not chains.project_chain_page(project).object_list


def test_1080p_is_offered_for_16_9_kie_clips_only(
    client, user, project, live_server, sandbox_account
):
    kie = sandbox_account("kie")
    portrait = stored_clip(
        project=project,
        user=user,
        account=kie,
        seconds=2,
        model="veo3",
        params={"duration": 8, "aspect_ratio": "9:16", "resolution": "720p"},
    )
    apimart = stored_clip(project=project, user=user, account=sandbox_account("apimart"), seconds=2)
    client.force_login(user)
    assert "16:9 clips only" in client.get(f"/clips/{portrait.pk}/").content.decode()
    assert "Get 1080p" not in client.get(f"/clips/{apimart.pk}/").content.decode()
    client.post(f"/clips/{portrait.pk}/1080p/")
    assert not Clip.objects.filter(kind=ClipKind.UPSCALE).exists()
    with pytest.raises(services.CannotUpscale):
        services.request_1080p(source=apimart, user=user)


def test_a_reviewer_cannot_ask_for_a_1080p_version(
    client, project, live_server, sandbox_account, django_user_model, user
):
    from videos.models import Membership, Role

    kie = sandbox_account("kie")
    clip = stored_clip(
        project=project, user=user, account=kie, seconds=2, model="veo3", params=SIXTEEN_NINE
    )
    rita = django_user_model.objects.create_user("rita", password="pw-rita-123")
    Membership.objects.create(project=project, user=rita, role=Role.REVIEWER)
    client.force_login(rita)
    assert "Get 1080p" not in client.get(f"/clips/{clip.pk}/").content.decode()
    assert client.post(f"/clips/{clip.pk}/1080p/").status_code == 403
    assert not Clip.objects.filter(kind=ClipKind.UPSCALE).exists()


# --- NewAPI: retrying the extension -----------------------------------------------------------


def test_after_extend_failed_the_extension_is_retried_by_remix_id_and_the_chain_plays_15_s(
    client, user, project, live_server, sandbox_account, drain_queue
):
    newapi = sandbox_account("newapi")
    partial = generate(
        drain_queue,
        project=project,
        user=user,
        account=newapi,
        model="veo_3_1-fast-remix",
        params={
            "duration": 15,
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "prompt_extend": "The camera pulls back [sandbox:extend_failed]",
        },
        prompt="A lighthouse at dusk",
    )
    assert partial.status == ClipStatus.PARTIAL, partial.error_message
    remix_id = partial.params["remix_id"]
    assert remix_id.startswith("video_")
    client.force_login(user)
    page = client.get(f"/clips/{partial.pk}/").content.decode()
    assert "Retry the extension" in page
    assert "Continue from last frame" in page

    response = client.post(
        f"/clips/{partial.pk}/retry-extension/", {"prompt_extend": "The camera pulls back"}
    )
    take = Clip.objects.get(parent=partial)
    assert response["Location"] == f"/clips/{take.pk}/"
    assert take.kind == ClipKind.EXTEND
    take = finish(drain_queue, take)
    assert take.status == ClipStatus.READY, take.error_message
    retry = SandboxTask.objects.get(provider="newapi", kind="remix", request__remix_of=remix_id)
    assert retry.request["body"] == {
        "model": "veo_3_1-fast-remix",
        "prompt": "The camera pulls back",
    }
    assert take.duration_seconds == pytest.approx(15, abs=0.05)
    line = chains.timeline(partial)
    assert [s.clip.pk for s in line.segments] == [partial.pk, take.pk]
    assert line.total == pytest.approx(15, abs=0.1)  # 8 s kept + the new 7 s, nothing twice


def test_only_a_partial_newapi_clip_offers_the_retry(
    client, user, project, live_server, sandbox_account
):
    apimart = stored_clip(project=project, user=user, account=sandbox_account("apimart"), seconds=2)
    client.force_login(user)
    assert "Retry the extension" not in client.get(f"/clips/{apimart.pk}/").content.decode()
    client.post(f"/clips/{apimart.pk}/retry-extension/", {"prompt_extend": "More"})
    assert not Clip.objects.filter(parent=apimart).exists()


# --- kie: continuation or stitched whole, the timeline plays each second once ----------------


def test_a_kie_continuation_is_all_new_and_a_stitched_whole_starts_after_the_source(
    user, project, live_server, sandbox_account
):
    kie = sandbox_account("kie")
    root = stored_clip(
        project=project, user=user, account=kie, seconds=8, model="veo3", params=SIXTEEN_NINE
    )
    params = {"duration": 7, "source_seconds": root.duration_seconds, "aspect_ratio": "16:9"}
    continuation = stored_clip(
        project=project,
        user=user,
        account=kie,
        seconds=7,
        parent=root,
        kind=ClipKind.EXTEND,
        model="veo3",
        params=params,
    )
    assert continuation.timeline_range() == (0, pytest.approx(7, abs=0.05))
    stitched = stored_clip(
        project=project,
        user=user,
        account=kie,
        seconds=15,
        parent=root,
        kind=ClipKind.EXTEND,
        model="veo3",
        params=params,
    )
    assert stitched.timeline_range() == (
        pytest.approx(8, abs=0.05),
        pytest.approx(15, abs=0.05),
    )


# --- sound --------------------------------------------------------------------------------------


def test_sound_asked_of_apimart_is_in_the_clip_and_kies_always_is_and_the_export_keeps_it(
    client, user, project, live_server, sandbox_account, drain_queue, settings
):
    settings.PUBLIC_URL = live_server.url
    apimart = sandbox_account("apimart")
    with_sound = generate(
        drain_queue,
        project=project,
        user=user,
        account=apimart,
        model="veo3.1-fast-official",
        params={**SIXTEEN_NINE, "duration": 4, "generate_audio": True},
        prompt="A busy coffee shop",
    )
    silent = generate(
        drain_queue,
        project=project,
        user=user,
        account=apimart,
        model="veo3.1-fast-official",
        params={**SIXTEEN_NINE, "duration": 4, "generate_audio": False},
        prompt="A quiet library",
    )
    assert streams(with_sound.file_key) == {"video", "audio"}
    assert streams(silent.file_key) == {"video"}
    client.force_login(user)
    assert (
        "<dt>Sound</dt><dd>With sound</dd>"
        in client.get(f"/clips/{with_sound.pk}/").content.decode()
    )

    kie = sandbox_account("kie")
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=kie,
        model="veo3_fast",
        params=SIXTEEN_NINE,
        prompt="Rain on a tin roof",
    )
    take = finish(drain_queue, chains.extend_clip(source=root, user=user, prompt="It stops"))
    assert streams(root.file_key) == streams(take.file_key) == {"video", "audio"}
    client.post(f"/clips/{root.pk}/export/")
    made = ChainExport.objects.get(root=root)
    drain_queue(
        until=lambda: (
            ChainExport.objects.get(pk=made.pk).status in {ExportStatus.READY, ExportStatus.FAILED}
        ),
        timeout=60,
    )
    made.refresh_from_db()
    assert made.status == ExportStatus.READY, made.error_message
    assert streams(made.file_key) == {"video", "audio"}
    assert made.duration_seconds == pytest.approx(15, abs=0.1)


# --- a provider's units are never silently dollars ------------------------------------------


def test_kling_units_without_a_unit_price_settle_at_the_estimate_and_say_so_everywhere(
    client, user, project, live_server, sandbox_account, admin_user
):
    kling = sandbox_account("kling")
    ModelPrice.objects.create(kind="kling", model="kling-v1-6", per_clip="0", per_second="0.028")
    clip = services.create_clip(
        project=project,
        user=user,
        account=kling,
        model="kling-v1-6",
        prompt="A kite",
        params={"duration": 5, "aspect_ratio": "16:9", "resolution": "std"},
    )
    ledger.record_submission(clip=clip)
    Clip.objects.filter(pk=clip.pk).update(status=ClipStatus.READY, cost=Decimal("1"))
    clip.refresh_from_db()
    ledger.settle(clip=clip, reported_cost=Decimal("1"), failed=False)
    entry = LedgerEntry.objects.get(clip=clip)
    assert entry.actual_cost == Decimal("0.14")  # the estimate, not "$1.00"
    assert entry.actual_is_estimate
    assert str(pricing.actual_cost(clip)) == (
        "1 Kling unit (no USD price per unit is set; the $0.14 estimate stands in)"
    )

    client.force_login(user)
    assert "1 Kling unit (no USD price per unit is set" in (
        client.get(f"/clips/{clip.pk}/").content.decode()
    )
    client.force_login(admin_user)
    audit = client.get("/audit/").content.decode()
    assert "reported 1 Kling unit; no USD price per unit is set" in audit
    assert "$1.00" not in audit
    usage = client.get("/usage/").content.decode()
    assert "in the provider's own units" in usage and "$1.00" not in usage


def test_with_a_unit_price_the_units_become_dollars(user, project, live_server, sandbox_account):
    kling = sandbox_account("kling")
    kling.unit_price = Decimal("0.14")
    kling.save()
    clip = services.create_clip(
        project=project,
        user=user,
        account=kling,
        model="kling-v1-6",
        prompt="A kite",
        params={"duration": 5, "aspect_ratio": "16:9", "resolution": "std"},
    )
    ledger.settle(clip=clip, reported_cost=Decimal("2"), failed=False)
    entry = LedgerEntry.objects.get(clip=clip)
    assert (entry.actual_cost, entry.actual_is_estimate) == (Decimal("0.28"), False)
    Clip.objects.filter(pk=clip.pk).update(cost=Decimal("2"))
    clip.refresh_from_db()
    assert str(pricing.actual_cost(clip)) == "$0.28"
