"""The creator's workflow in Chromium: frames in the form, generation, the library."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from sandbox.models import SandboxTask
from tests.browser import shot
from tests.test_frames import image_bytes
from videos.models import Clip, ClipStatus, ModelPrice, ProviderAccount

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST = image_bytes("PNG", (640, 360), (230, 120, 40))
LAST = image_bytes("PNG", (640, 360), (40, 90, 200))


def png(name: str, content: bytes) -> dict:
    return {"name": name, "mimeType": "image/png", "buffer": content}


def log_in(tab, live_server) -> None:
    tab.goto(f"{live_server.url}/login/")
    tab.get_by_label("Username").fill("casey")
    tab.get_by_label("Password").fill("pw-casey-123")
    tab.get_by_role("button", name="Log in").click()


def test_creator_generates_from_a_first_and_a_last_frame_and_watches_it_become_ready(
    page,
    live_server,
    user,
    project,
    sandbox_apimart,
    drain_queue,
    settings,
):
    # apimart fetches frames by link: the studio's public address is the live server.
    settings.PUBLIC_URL = live_server.url
    settings.SANDBOX_TASK_SECONDS = 5
    ModelPrice.objects.create(
        kind="apimart", model="veo3.1-quality-official", per_clip="0", per_second="0.40"
    )
    log_in(page, live_server)
    page.goto(f"{live_server.url}/projects/{project.pk}/clips/new/")
    page.get_by_label("Provider").select_option(label="apimart (sandbox)")
    # Let the redraw that choice starts land before the next step, as a person would.
    page.wait_for_load_state("networkidle")

    page.set_input_files("#id_first_frame", files=[png("first.png", FIRST)])
    expect(page.locator("#slot-first .preview img")).to_have_count(1)
    # Changing the model redraws the fields; the chosen file stays chosen.
    page.get_by_label("Model").select_option(label="Veo 3.1 Quality")
    expect(page.locator("#id_model")).to_have_value("veo3.1-quality-official")
    expect(page.locator("#clip-estimate")).to_contain_text("$3.20")
    assert page.evaluate("document.querySelector('#id_first_frame').files.length") == 1
    expect(page.locator("#slot-first .preview-name")).to_have_text("first.png")

    page.set_input_files("#id_last_frame", files=[png("last.png", LAST)])
    page.get_by_label("Prompt", exact=True).fill("Sunset over the bay, the sky turns blue")
    page.get_by_label("Duration").select_option("6")
    expect(page.locator("#clip-estimate")).to_contain_text("$2.40")
    shot(page, "creator-01-form-with-frames")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(re.compile(r"/clips/\d+/$"))
    clip = Clip.objects.get()
    assert clip.estimated_cost is not None and float(clip.estimated_cost) == 2.4
    shot(page, "creator-02-clip-queued")

    drain_queue(until=lambda: bool(Clip.objects.get(pk=clip.pk).poster_key), timeout=60)
    expect(page.locator("#clip-status-text")).to_have_text("Ready", timeout=15_000)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY

    # apimart received the two frames as links that serve exactly the uploaded images.
    task = SandboxTask.objects.get(task_id=clip.provider_task_id)
    for field, content in (("first_frame_image", FIRST), ("last_frame_image", LAST)):
        response = httpx.get(task.request[field], timeout=10)
        assert response.status_code == 200 and response.content == content

    page.reload()
    expect(page.locator(".frame-list figure")).to_have_count(2)
    expect(page.locator(".status-row")).to_contain_text("Download")
    shot(page, "creator-03-clip-ready")

    # The library: the poster, and a muted preview while the pointer rests on it.
    page.get_by_role("link", name=project.name).click()
    card = page.locator(".clip-card").first
    expect(card.locator("img")).to_be_visible()
    card.locator(".thumb").hover()
    expect(card.locator("video.hover-preview")).to_have_count(1)
    assert page.evaluate("document.querySelector('video.hover-preview').muted") is True
    shot(page, "creator-04-library-hover")
    page.mouse.move(5, 5)
    expect(card.locator("video.hover-preview")).to_have_count(0)


def test_reference_images_can_be_dropped_and_reordered_before_generating(
    page,
    live_server,
    user,
    project,
    drain_queue,
    settings,
):
    settings.PUBLIC_URL = live_server.url
    ProviderAccount.objects.create(
        all_projects=True,
        kind="kie",
        label="kie (sandbox)",
        base_url=f"{live_server.url}/sandbox/kie",
        credential="sk-kie-browser",
    )
    colours = {"red.png": (220, 30, 30), "green.png": (30, 200, 30), "blue.png": (30, 30, 220)}
    log_in(page, live_server)
    page.goto(f"{live_server.url}/projects/{project.pk}/clips/new/")
    page.get_by_label("Model").select_option(label="Veo 3.1 Fast")
    page.set_input_files(
        "#id_references",
        files=[png(name, image_bytes("PNG", (400, 300), rgb)) for name, rgb in colours.items()],
    )
    names = page.locator("#slot-reference .preview-name")
    expect(names).to_have_text(["1. red.png", "2. green.png", "3. blue.png"])
    page.get_by_role("button", name="Move later").first.click()
    expect(names).to_have_text(["1. green.png", "2. red.png", "3. blue.png"])
    page.get_by_role("button", name="Remove blue.png").click()
    expect(names).to_have_text(["1. green.png", "2. red.png"])
    # Dropping a file onto the slot adds it, as dragging from the desktop does.
    page.evaluate(
        """async (bytes) => {
            const file = new File([new Uint8Array(bytes)], "yellow.png", {type: "image/png"});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            const zone = document.querySelector("#slot-reference");
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true,
                                                      cancelable: true}));
        }""",
        list(image_bytes("PNG", (400, 300), (230, 210, 20))),
    )
    expect(names).to_have_text(["1. green.png", "2. red.png", "3. yellow.png"])
    page.get_by_label("Prompt", exact=True).fill("Three colours dance")
    shot(page, "creator-05-references")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(re.compile(r"/clips/\d+/$"))
    clip = Clip.objects.get()
    stored = [frame.image.open().read() for frame in clip.frames.order_by("position")]
    expected = [(30, 200, 30), (220, 30, 30), (230, 210, 20)]
    assert stored == [image_bytes("PNG", (400, 300), rgb) for rgb in expected]
