"""Seams and drift: chains made through the sandbox are scored in the queue, and the chain
page says where a hand-over jumps and from which hop the look has drifted too far."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from django.core.files import File
from django.core.files.storage import default_storage
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from sandbox.render import render_mp4
from tests.browser import shot
from tests.chain_helpers import finish, generate
from videos import chains, handoff, media, seams
from videos.models import Clip, ClipKind, ClipStatus

pytestmark = pytest.mark.django_db(transaction=True)

KLING = {"duration": 5, "aspect_ratio": "16:9", "resolution": "std"}
PROMPT = "A fox in the snow"


@pytest.fixture(autouse=True)
def quick_sandbox(fast_sandbox, settings):
    # A chain waits on several provider tasks in a row; the twin's need not take long.
    settings.SANDBOX_TASK_SECONDS = 0.5


def scored(drain_queue, clip: Clip) -> Clip:
    drain_queue(until=lambda: seams.is_scored(Clip.objects.get(pk=clip.pk)), timeout=60)
    clip.refresh_from_db()
    return clip


def chain_through_the_sandbox(drain_queue, *, user, project, account, drifting: list[bool]):
    """A Kling chain: a generation, then one continuation from the last frame per hop, each
    with the sandbox's drift fault when asked (it grades its video a step warmer)."""
    root = generate(
        drain_queue,
        project=project,
        user=user,
        account=account,
        model="kling-v1-6",
        params=KLING,
        prompt=PROMPT,
    )
    parts = [scored(drain_queue, root)]
    for drift in drifting:
        take = chains.continue_clip(
            source=parts[-1],
            user=user,
            account=account,
            model="kling-v1-6",
            prompt=PROMPT + (" [sandbox:drift]" if drift else ""),
            params=KLING,
        )
        parts.append(scored(drain_queue, finish(drain_queue, take)))
    return parts


def report(parts: list[Clip]) -> None:
    for position, part in enumerate(parts[1:], start=2):
        seam, drift = part.quality["seam"], part.quality["drift"]
        print(
            f"\npart {position}: seam ΔE {seam['delta_e']:.2f} (warmth {seam['warmth']:+.2f}, "
            f"sharpness ×{seam['sharpness']:.2f}, motion {seam['motion']:.2f} vs "
            f"{seam['typical_motion']:.2f}) {seam['notes']}; drift ΔE {drift['delta_e']:.2f}"
            f"{' WARN' if drift['warn'] else ''}"
        )


def test_a_drifting_chain_warns_from_the_hop_where_drift_passes_the_threshold(
    client, user, project, live_server, sandbox_account, drain_queue
):
    kling = sandbox_account("kling")
    # Part 2 carries on cleanly; parts 3 and 4 each come back a step warmer.
    parts = chain_through_the_sandbox(
        drain_queue, user=user, project=project, account=kling, drifting=[False, True, True]
    )
    report(parts)
    second, third, fourth = (part.quality for part in parts[1:])
    assert second["seam"]["notes"] == []
    assert "colour shifted warmer" in third["seam"]["notes"]
    assert "colour shifted warmer" in fourth["seam"]["notes"]
    # One step stays under the threshold; two pass it.
    assert not second["drift"]["warn"] and not third["drift"]["warn"]
    assert fourth["drift"]["warn"]
    assert fourth["drift"]["delta_e"] > third["drift"]["delta_e"] > second["drift"]["delta_e"]

    client.force_login(user)
    page = client.get(f"/clips/{parts[0].pk}/chain/").content.decode()
    assert "Drifting from part 4 on." in page
    assert "Part 4 looks warmer than the first part" in page
    assert page.count('class="drift-point is-warn"') == 1
    assert page.count("colour shifted warmer") == 2
    assert page.count("smooth hand-over") == 1
    # Everything is measured: the strip does not poll.
    assert "Measuring" not in page
    assert 'hx-target="this"' not in page.split('id="seams"')[1].split(">")[0]


def test_a_chain_without_drift_shows_no_warning(
    client, user, project, live_server, sandbox_account, drain_queue
):
    kling = sandbox_account("kling")
    parts = chain_through_the_sandbox(
        drain_queue, user=user, project=project, account=kling, drifting=[False, False, False]
    )
    report(parts)
    for part in parts[1:]:
        assert part.quality["seam"]["notes"] == []
        assert not part.quality["drift"]["warn"]
        assert part.quality["drift"]["delta_e"] < seams.DRIFT_WARN_DELTA_E / 2

    client.force_login(user)
    page = client.get(f"/clips/{parts[0].pk}/chain/").content.decode()
    assert "Seams and drift" in page
    assert "Drifting" not in page
    assert "is-warn" not in page
    assert page.count("smooth hand-over") == 3


# --- chains drawn directly with the sandbox renderer (no provider involved) -----------------


def drawn_part(
    *, project, user, account, parent: Clip | None, effects: tuple[str, ...] = ()
) -> Clip:
    """A finished clip whose video the sandbox renderer made from the parent's hand-off still."""
    first = handoff.pick(parent).image if parent is not None else None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part.mp4"
        render_mp4(
            path,
            seconds=4 if parent is None else 3,
            width=480,
            height=270,
            scene=PROMPT,
            caption=PROMPT,
            label="SANDBOX · Kling · kling-v1-6",
            first_frame=first,
            effects=effects,
        )
        info = media.probe(str(path))
        with path.open("rb") as handle:
            key = default_storage.save(f"clips/{project.pk}/drawn.mp4", File(handle))
    return Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model="kling-v1-6",
        prompt=PROMPT + "".join(f" [sandbox:{effect}]" for effect in effects),
        params=KLING,
        parent=parent,
        root=None if parent is None else (parent.root or parent),
        kind=ClipKind.GENERATE if parent is None else ClipKind.CONTINUE,
        status=ClipStatus.READY,
        file_key=key,
        duration_seconds=info.duration,
        width=info.width,
        height=info.height,
        provider_task_id=f"drawn-{key[-16:]}",
    )


def drawn_chain(*, project, user, account, effects: list[tuple[str, ...]]) -> list[Clip]:
    parts = [drawn_part(project=project, user=user, account=account, parent=None)]
    for part_effects in effects:
        parts.append(
            drawn_part(
                project=project, user=user, account=account, parent=parts[-1], effects=part_effects
            )
        )
    return parts


def queued_steps() -> list[tuple[str, int]]:
    broker = get_broker()
    steps = []
    while packages := broker.dequeue():
        for ack_id, pack in packages:
            broker.acknowledge(ack_id)
            task = SignedPackage.loads(pack)
            steps.append((task["func"], *task["args"]))
    return steps


def test_the_chain_page_queues_unscored_parts_and_polls_until_they_are_in(
    client, user, project, live_server, sandbox_account, drain_queue
):
    kling = sandbox_account("kling")
    parts = drawn_chain(project=project, user=user, account=kling, effects=[(), ("drift",)])
    client.force_login(user)

    page = client.get(f"/clips/{parts[0].pk}/chain/").content.decode()
    assert "Measuring 3 parts…" in page
    assert "every 2s" in page.split('id="seams"')[1].split(">")[0]
    assert queued_steps() == [("videos.tasks.score_seams", part.pk) for part in parts]

    for part in parts:
        seams.score_clip(clip_id=part.pk)
    fragment = client.get(
        f"/clips/{parts[0].pk}/chain/", headers={"HX-Request": "true", "HX-Target": "seams"}
    )
    html = fragment.content.decode()
    assert html.lstrip().startswith('<section id="seams"')
    assert "Measuring" not in html and "every 2s" not in html
    assert "colour shifted warmer" in html

    # Choosing another take queues its scores if it has none yet.
    other = drawn_part(project=project, user=user, account=kling, parent=parts[1])
    chains.choose_main_take(take=other, user=user)
    drain_queue(until=lambda: seams.is_scored(Clip.objects.get(pk=other.pk)), timeout=30)


def test_scoring_a_whole_line_reads_each_part_once_and_matches_the_queue(
    user, project, live_server, sandbox_account
):
    kling = sandbox_account("kling")
    parts = drawn_chain(project=project, user=user, account=kling, effects=[("drift",)] * 3)
    seams.score_line(chains.timeline(parts[0]))
    at_once = [Clip.objects.get(pk=part.pk).quality for part in parts]
    Clip.objects.filter(pk__in=[part.pk for part in parts]).update(quality={})
    for part in parts:
        seams.score_clip(clip_id=part.pk)
    one_by_one = [Clip.objects.get(pk=part.pk).quality for part in parts]
    assert at_once == one_by_one
    quality = seams.line_quality(chains.timeline(parts[0]))
    assert [point.warn for point in quality.drift] == [False, False, True, True]
    assert quality.first_warning.position == 3


@pytest.mark.s3
def test_seams_and_the_hand_off_read_videos_from_s3(
    user, project, live_server, sandbox_account, s3_storage
):
    kling = sandbox_account("kling")
    parts = drawn_chain(project=project, user=user, account=kling, effects=[("drift",)] * 2)
    for part in parts:
        seams.score_clip(clip_id=part.pk)
    quality = seams.line_quality(chains.timeline(Clip.objects.get(pk=parts[0].pk)))
    assert quality.complete
    assert [point.warn for point in quality.drift] == [False, False, True]
    # Each part's end is kept beside it in the bucket, for the next part's seam.
    assert all(default_storage.exists(seams._tail_key(part)) for part in parts)
    still = chains.handoff_for(parts[-1], match_colours=True)
    assert still.matched and still.still.content.startswith(b"\xff\xd8")


def wait_until(page, expression: str, timeout: float = 10.0) -> None:
    """Poll from Python: the page's CSP refuses the string predicates wait_for_function
    evaluates in the page."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"Still false after {timeout} s: {expression}"
        time.sleep(0.05)


@pytest.mark.browser
def test_the_chain_page_shows_each_seam_and_the_drift_line(
    page, live_server, user, project, sandbox_account
):
    kling = sandbox_account("kling")
    parts = drawn_chain(
        project=project,
        user=user,
        account=kling,
        effects=[(), ("drift",), ("drift", "blur_end"), (), ("drift",)],
    )
    seams.score_line(chains.timeline(parts[0]))

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("casey")
    page.get_by_label("Password").fill("pw-casey-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/projects/")
    page.goto(f"{live_server.url}/clips/{parts[0].pk}/chain/")
    wait_until(page, "document.querySelector('#chain-player').chainPlayer !== undefined")
    warning = page.get_by_role("alert").filter(has_text="Drifting from part")
    assert warning.inner_text().startswith("Drifting from part 4 on.")
    assert page.locator(".seam-strip .seam").count() == 5
    assert page.locator(".drift-point").count() == 6
    assert page.locator(".drift-point.is-warn").count() == 3
    page.locator("#seams").scroll_into_view_if_needed()
    shot(page, "seams-01-chain-page")

    # A seam's time plays the chain from that hand-over.
    page.locator(".seam-at").nth(2).click()
    wait_until(
        page,
        "Math.abs(document.querySelector('#chain-player').chainPlayer.currentTime() - "
        f"{chains.timeline(parts[0]).segments[3].offset}) < 0.15",
    )

    page.goto(f"{live_server.url}/clips/{parts[-1].pk}/continue/")
    page.get_by_label("Match colours to the chain’s first part").check()
    page.get_by_text("Before matching").wait_for()
    assert "Sent, colours matched" in page.locator("#handoff").inner_text()
    shot(page, "seams-02-continue-matched")
