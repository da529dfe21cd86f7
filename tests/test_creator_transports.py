"""Each frame reaches the provider twin the way that provider takes it, over real HTTP."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from sandbox.models import SandboxTask
from tests.test_frames import image_bytes
from videos.models import Clip

pytestmark = pytest.mark.django_db(transaction=True)

FIRST = image_bytes("PNG", (640, 360), (200, 40, 40))
LAST = image_bytes("JPEG", (640, 360), (40, 40, 200))


@pytest.fixture
def studio(client, user, live_server, settings):
    # Providers fetch stored frames from the studio's public address: here, the live server.
    settings.PUBLIC_URL = live_server.url
    client.force_login(user)
    return client


def submit(studio, project, drain_queue, data: dict) -> tuple[Clip, SandboxTask]:
    """Post the form, run the queue until the provider has the task, return what it got."""
    response = studio.post(f"/projects/{project.pk}/clips/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    clip = Clip.objects.get()
    drain_queue(
        until=lambda: Clip.objects.get(pk=clip.pk).status not in {"queued", "submitting"},
        timeout=30,
    )
    clip.refresh_from_db()
    assert clip.provider_task_id, clip.error_message
    # Kling's task ids are kept as "family:id" in the studio.
    return clip, SandboxTask.objects.get(task_id=clip.provider_task_id.rpartition(":")[2])


def files(**images: bytes) -> dict:
    return {
        name: SimpleUploadedFile(f"{name}.img", content, "application/octet-stream")
        for name, content in images.items()
    }


def test_newapi_gets_uploaded_frames_as_multipart_file_parts(
    studio, project, live_server, sandbox_account, drain_queue
):
    newapi = sandbox_account("newapi")
    clip, task = submit(
        studio,
        project,
        drain_queue,
        {
            "provider_account": newapi.pk,
            "model": "veo_3_1-fast-fl-remix",
            "prompt": "A red door opens",
            "prompt_extend": "A blue room behind it",
            "duration": "15",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "frame_transport": "file",
            **files(first_frame=FIRST, last_frame=LAST),
        },
    )
    assert clip.params["frame_transport"] == "file"
    received = task.request["input_reference"]
    assert [(r["form"], r["content_type"], r["bytes"]) for r in received] == [
        ("file", "image/png", len(FIRST)),
        ("file", "image/jpeg", len(LAST)),
    ]
    assert task.request["content_type"] == "multipart/form-data"


def test_newapi_gets_data_uris_when_the_creator_chooses_them(
    studio, project, live_server, sandbox_account, drain_queue
):
    newapi = sandbox_account("newapi")
    _, task = submit(
        studio,
        project,
        drain_queue,
        {
            "provider_account": newapi.pk,
            "model": "veo_3_1-fast-remix",
            "prompt": "Three objects on a table",
            "prompt_extend": "They start to spin",
            "duration": "15",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "frame_transport": "data_uri",
            "references": [
                SimpleUploadedFile("a.png", FIRST, "image/png"),
                SimpleUploadedFile("b.jpg", LAST, "image/jpeg"),
            ],
        },
    )
    assert [
        (r["form"], r["content_type"], r["bytes"]) for r in task.request["input_reference"]
    ] == [
        ("data_uri", "image/png", len(FIRST)),
        ("data_uri", "image/jpeg", len(LAST)),
    ]


def test_kling_gets_raw_base64_without_a_data_prefix(
    studio, project, live_server, sandbox_account, drain_queue
):
    kling = sandbox_account("kling")
    clip, task = submit(
        studio,
        project,
        drain_queue,
        {
            "provider_account": kling.pk,
            "model": "kling-v1-6",
            "prompt": "A kite rises",
            "duration": "5",
            "aspect_ratio": "16:9",
            "resolution": "std",
            **files(first_frame=FIRST, last_frame=LAST),
        },
    )
    assert clip.params["frame_transport"] == "base64"
    body = task.request["body"]
    assert not body["image"].startswith("data:")
    assert base64.b64decode(body["image"]) == FIRST
    assert base64.b64decode(body["image_tail"]) == LAST
    assert task.kind == "image2video"


def fetch(url: str) -> httpx.Response:
    # As the provider would: no cookies, no session, just the link.
    return httpx.get(url, timeout=10)


def test_apimart_gets_signed_links_that_serve_the_stored_images(
    studio, project, live_server, sandbox_account, drain_queue
):
    apimart = sandbox_account("apimart")
    _, task = submit(
        studio,
        project,
        drain_queue,
        {
            "provider_account": apimart.pk,
            "model": "veo3.1-fast-official",
            "prompt": "A train crosses a bridge",
            "duration": "8",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            **files(first_frame=FIRST, last_frame=LAST),
        },
    )
    first_url, last_url = task.request["first_frame_image"], task.request["last_frame_image"]
    assert first_url.startswith(f"{live_server.url}/frames/")
    first, last = fetch(first_url), fetch(last_url)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert hashlib.sha256(first.content).digest() == hashlib.sha256(FIRST).digest()
    assert last.content == LAST and last.headers["content-type"] == "image/jpeg"
    # Tampering with the link gets nothing.
    assert fetch(first_url.replace("/frames/", "/frames/9")).status_code == 404


def test_kie_gets_signed_links_for_first_and_last_frames(
    studio, project, live_server, sandbox_account, drain_queue
):
    kie = sandbox_account("kie")
    _, task = submit(
        studio,
        project,
        drain_queue,
        {
            "provider_account": kie.pk,
            "model": "veo3",
            "prompt": "A lantern floats up",
            "duration": "8",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            **files(first_frame=FIRST, last_frame=LAST),
        },
    )
    assert task.request["generationType"] == "FIRST_AND_LAST_FRAMES_2_VIDEO"
    urls = task.request["imageUrls"]
    assert [fetch(url).content for url in urls] == [FIRST, LAST]


def test_kling_can_be_sent_links_instead_and_a_pasted_link_goes_as_it_is(
    studio, project, live_server, sandbox_account, drain_queue
):
    kling = sandbox_account("kling")
    _, task = submit(
        studio,
        project,
        drain_queue,
        {
            "provider_account": kling.pk,
            "model": "kling-v1-6",
            "prompt": "Waves",
            "duration": "5",
            "aspect_ratio": "16:9",
            "resolution": "std",
            "frame_transport": "url",
            "first_frame_link": "https://cdn.example.com/opening.png",
            **files(last_frame=LAST),
        },
    )
    body = task.request["body"]
    assert body["image"] == "https://cdn.example.com/opening.png"
    assert body["image_tail"].startswith(f"{live_server.url}/frames/")
    assert fetch(body["image_tail"]).content == LAST
