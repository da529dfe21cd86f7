"""Frame images: judged by their bytes, stored with the clip, served to providers by signed link."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib

import httpx
import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from videos import frames
from videos.frames import FrameError
from videos.models import Clip, Frame, ProviderAccount


def image_bytes(
    image_format: str = "PNG",
    size: tuple[int, int] = (640, 360),
    color: tuple[int, int, int] = (30, 120, 200),
    **options,
) -> bytes:
    buffer = io.BytesIO()
    mode = "RGB" if image_format != "GIF" else "P"
    Image.new(mode, size, color if mode == "RGB" else 1).save(buffer, image_format, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas: the "pixel flood" attack."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


# --- what is accepted ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
def test_png_jpeg_and_webp_are_accepted_with_their_real_size(image_format, content_type):
    content = image_bytes(image_format, (640, 360))
    assert frames.check_image(content, kind="apimart") == (content_type, 640, 360)


def test_the_name_does_not_matter_only_the_bytes():
    upload = _upload("holiday.gif", image_bytes("JPEG"))
    frame = frames.from_upload(upload, kind="newapi", role="first")
    assert frame.content_type == "image/jpeg" and (frame.width, frame.height) == (640, 360)


# --- what is refused, and why --------------------------------------------------------------


def test_a_truncated_png_is_refused_as_damaged():
    content = image_bytes("PNG", (64, 64))
    with pytest.raises(FrameError, match="damaged or incomplete"):
        frames.check_image(content[: len(content) - 20], kind="apimart")


def test_a_truncated_jpeg_is_refused_as_damaged():
    content = image_bytes("JPEG", (640, 360))
    with pytest.raises(FrameError, match="damaged or incomplete"):
        frames.check_image(content[: len(content) // 2], kind="apimart")


def test_a_gif_is_refused_by_name():
    with pytest.raises(FrameError, match="GIF images are not accepted"):
        frames.check_image(image_bytes("GIF"), kind="apimart")


def test_a_text_file_renamed_png_is_not_an_image():
    upload = _upload("frame.png", b"just some notes, not a picture\n" * 10)
    with pytest.raises(FrameError, match="not an image the studio can read"):
        frames.from_upload(upload, kind="apimart", role="first")


def test_an_image_over_10_mb_is_refused_before_it_is_decoded():
    # Uncompressed PNG of real pixels, a little over 10 MB.
    content = image_bytes("PNG", (2000, 1800), compress_level=0)
    assert len(content) > 10 * 1024 * 1024
    with pytest.raises(FrameError, match="the limit is 10 MB"):
        frames.check_image(content, kind="apimart")


def test_a_real_image_over_40_megapixels_is_refused():
    buffer = io.BytesIO()
    # One colour, one bit per pixel: 40.8 MP in about 15 kB.
    Image.new("1", (8000, 5100), 1).save(buffer, "PNG")
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(FrameError, match="at most 40 megapixels"):
        frames.check_image(buffer.getvalue(), kind="apimart")


def test_a_pixel_flood_header_is_refused_without_decoding_it():
    started = time.monotonic()
    with pytest.raises(FrameError, match="at most 40 megapixels"):
        frames.check_image(png_claiming(50_000, 50_000), kind="apimart")
    assert time.monotonic() - started < 1.0


def test_kling_needs_300_px_on_the_short_side():
    with pytest.raises(FrameError, match="at least 300 px on the short side; this one is 640×200"):
        frames.check_image(image_bytes("PNG", (640, 200)), kind="kling")
    # The same image is fine where the provider documents no minimum.
    assert frames.check_image(image_bytes("PNG", (640, 200)), kind="kie")[1:] == (640, 200)


def test_kling_takes_no_webp_and_no_extreme_shapes():
    with pytest.raises(FrameError, match="Kling takes JPEG or PNG images only"):
        frames.check_image(image_bytes("WEBP", (640, 360)), kind="kling")
    with pytest.raises(FrameError, match="between 1:2.5 and 2.5:1"):
        frames.check_image(image_bytes("PNG", (1600, 400)), kind="kling")


# --- links and data: URIs ------------------------------------------------------------------


def test_a_data_uri_is_decoded_and_checked_like_an_upload():
    encoded = base64.b64encode(image_bytes("WEBP", (500, 500))).decode()
    frame = frames.from_link(f"data:image/webp;base64,{encoded}", kind="newapi", role="last")
    assert frame.content_type == "image/webp" and frame.width == 500 and not frame.source_url


def test_a_data_uri_holding_a_gif_is_refused():
    encoded = base64.b64encode(image_bytes("GIF")).decode()
    with pytest.raises(FrameError, match="GIF images are not accepted"):
        frames.from_link(f"data:image/png;base64,{encoded}", kind="newapi", role="first")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data:image/png,not-base64", "must look like data:image/png;base64"),
        ("data:image/png;base64,@@@@", "not valid Base64"),
        ("ftp://example.com/a.png", "public image link starting with https://"),
        ("javascript:alert(1)", "public image link"),
        ("example.com/a.png", "public image link"),
    ],
)
def test_bad_links_are_explained(text, message):
    with pytest.raises(FrameError, match=message):
        frames.from_link(text, kind="apimart", role="first")


def test_a_public_link_is_kept_as_is_and_not_fetched():
    frame = frames.from_link(" https://cdn.example.com/shot.png ", kind="apimart", role="first")
    assert frame.source_url == "https://cdn.example.com/shot.png" and not frame.content


# --- the signed link providers fetch -------------------------------------------------------


@pytest.fixture
def stored_frame(project, user):
    account = ProviderAccount.objects.create(
        all_projects=True,
        kind="apimart",
        label="apimart",
        base_url="http://127.0.0.1:9/x",
        credential="sk-x",
    )
    clip = Clip.objects.create(
        project=project, created_by=user, provider_account=account, model="m", prompt="p"
    )
    content = image_bytes("PNG", (320, 180))
    checked = frames.from_upload(_upload("shot.png", content), kind="apimart", role="first")
    (stored,) = frames.store(clip, [checked])
    return stored, content


def test_a_signed_link_serves_the_image_without_login(client, settings, stored_frame):
    settings.PUBLIC_URL = "https://studio.example.com"
    frame, content = stored_frame
    url = frames.link_to(frame)
    assert url.startswith("https://studio.example.com/frames/") and url.endswith("/first.png")
    response = client.get(url.removeprefix("https://studio.example.com"))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == content


def test_a_tampered_link_is_refused(client, settings, stored_frame):
    settings.PUBLIC_URL = "https://studio.example.com"
    frame, _ = stored_frame
    other = frames.link_to(frame).removeprefix("https://studio.example.com")
    forged = other.replace(f"/frames/{frame.pk}:", f"/frames/{frame.pk + 1}:")
    assert forged != other
    assert client.get(forged).status_code == 404


def test_an_expired_link_is_refused(client, settings, stored_frame, monkeypatch):
    settings.PUBLIC_URL = "https://studio.example.com"
    frame, _ = stored_frame
    # A link signed a day and a minute ago.
    signed_at = int(time.time()) - frames.LINK_MAX_AGE_SECONDS - 60
    monkeypatch.setattr(
        signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(signed_at)
    )
    path = frames.link_to(frame).removeprefix("https://studio.example.com")
    monkeypatch.undo()
    response = client.get(path)
    assert response.status_code == 410
    assert b"expired" in response.content


def test_uploads_need_a_public_address_for_link_only_providers(settings):
    settings.PUBLIC_URL = ""
    assert frames.usable_transports(("url",)) == ()
    assert frames.usable_transports(("url", "base64")) == ("base64",)
    settings.PUBLIC_URL = "https://studio.example.com"
    assert frames.usable_transports(("url", "base64")) == ("url", "base64")


# One S3 test for the creator's files, in one bucket: the test SeaweedFS server has room
# for the volumes of only a few buckets.
@pytest.mark.s3
def test_on_s3_frames_and_downloads_are_presigned_links(s3_storage, stored_frame, client, user):
    frame, content = stored_frame
    url = frames.provider_input(frame, transport="url").url
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=" in url
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200 and response.content == content

    clip = frame.clip
    key = default_storage.save("clips/1/x.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42video"))
    Clip.objects.filter(pk=clip.pk).update(status="ready", file_key=key)
    client.force_login(user)
    response = client.get(f"/clips/{clip.pk}/download/")
    assert response.status_code == 302
    fetched = httpx.get(response["Location"], timeout=10)
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x00\x00\x00\x18ftyp")
    assert fetched.headers["content-disposition"] == f'attachment; filename="clip-{clip.pk}-p.mp4"'


def _upload(name: str, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="image/png")


def test_storing_frames_keeps_their_size_type_and_order(stored_frame):
    frame, _ = stored_frame
    frame.refresh_from_db()
    assert (frame.role, frame.position, frame.content_type) == ("first", 0, "image/png")
    assert (frame.width, frame.height) == (320, 180)
    assert frame.image.name.endswith("/first-0.png")
    assert Frame.objects.count() == 1


# --- links to private addresses --------------------------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        "http://169.254.169.254/latest/meta-data/iam.png",
        "http://127.0.0.1:8000/admin/shot.png",
        "https://10.0.0.8/shot.png",
        "http://[::1]/shot.png",
    ],
)
def test_a_link_to_a_private_address_is_refused_in_plain_words(link):
    with pytest.raises(FrameError, match="private or local address") as refused:
        frames.from_link(link, kind="apimart", role="first")
    assert "Paste a public link or upload the image." in str(refused.value)


def test_a_sandbox_account_may_paste_a_loopback_link():
    frame = frames.from_link(
        "http://127.0.0.1:8000/shot.png", kind="apimart", role="first", allow_private=True
    )
    assert frame.source_url == "http://127.0.0.1:8000/shot.png"


def _link_accounts() -> dict[str, ProviderAccount]:
    return {
        name: ProviderAccount.objects.create(
            all_projects=True,
            kind="apimart",
            label=f"apimart {name}",
            base_url=base_url,
            credential="sk-1",
        )
        for name, base_url in (
            ("real", "http://127.0.0.1:9/v1"),
            ("sandbox", "http://127.0.0.1:9/sandbox/apimart"),
        )
    }


def _clip_post(account: ProviderAccount, **extra) -> dict:
    return {
        "provider_account": str(account.pk),
        "model": "veo3.1-fast-official",
        "duration": "8",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "prompt": "A lighthouse at dusk",
        **extra,
    }


@pytest.mark.django_db
def test_the_form_refuses_a_private_link_next_to_the_field_unless_the_account_is_a_sandbox(
    client, user, project
):
    accounts = _link_accounts()
    client.force_login(user)
    link = "http://127.0.0.1:8000/admin/shot.png"
    url = f"/projects/{project.pk}/clips/new/"
    html = client.post(url, _clip_post(accounts["real"], first_frame_link=link)).content.decode()
    assert 'id="id_first_frame_link-error"' in html
    assert "This link points at a private or local address" in html
    assert not Clip.objects.exists()

    response = client.post(url, _clip_post(accounts["sandbox"], first_frame_link=link))
    assert response.status_code == 302
    assert Frame.objects.get().source_url == link


@pytest.mark.django_db
def test_a_kept_loopback_link_from_a_sandbox_clip_is_refused_for_a_real_account(
    client, user, project
):
    accounts = _link_accounts()
    clip = Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=accounts["sandbox"],
        model="veo3.1-fast-official",
        prompt="p",
    )
    frame = Frame.objects.create(clip=clip, role="first", source_url="http://127.0.0.1:8000/a.png")
    client.force_login(user)
    data = _clip_post(accounts["real"], from_clip=str(clip.pk), keep_frames=[str(frame.pk)])
    html = client.post(f"/projects/{project.pk}/clips/new/", data).content.decode()
    assert 'id="id_keep_frames-error"' in html and "private or local address" in html
    assert Clip.objects.count() == 1


# --- previews of pasted links ------------------------------------------------------------------


@pytest.fixture
def image_host():
    from tests.test_netguard import Listener

    server = Listener(routes={"/shot.png": ("image/png", image_bytes("PNG", (320, 180)))})
    yield server
    server.close()


def _linked_frame(project, user, account, url) -> Frame:
    clip = Clip.objects.create(
        project=project, created_by=user, provider_account=account, model="m", prompt="p"
    )
    return Frame.objects.create(clip=clip, role="first", source_url=url)


@pytest.mark.django_db
def test_a_pasted_link_preview_is_never_a_redirect_and_never_fetches_a_private_address(
    client, user, project, image_host
):
    accounts = _link_accounts()
    frame = _linked_frame(
        project, user, accounts["real"], f"http://127.0.0.1:{image_host.port}/shot.png"
    )
    client.force_login(user)
    response = client.get(f"/frames/{frame.pk}/image")
    assert response.status_code == 502 and "Location" not in response
    assert response["Content-Type"] == "image/svg+xml"
    assert b"Linked image not shown" in response.content
    assert b"private or local address" in response.content
    assert image_host.hits == []


@pytest.mark.django_db
def test_a_sandbox_link_preview_is_a_checked_copy_of_the_image(client, user, project, image_host):
    accounts = _link_accounts()
    frame = _linked_frame(
        project, user, accounts["sandbox"], f"http://127.0.0.1:{image_host.port}/shot.png"
    )
    client.force_login(user)
    response = client.get(f"/frames/{frame.pk}/image")
    assert response.status_code == 200 and "Location" not in response
    assert response["Content-Type"] == "image/png"
    assert response.content == image_bytes("PNG", (320, 180))
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    assert [hit["path"] for hit in image_host.hits] == ["/shot.png"]


@pytest.mark.django_db
def test_a_link_that_is_not_an_image_previews_as_a_placeholder(client, user, project, image_host):
    accounts = _link_accounts()
    frame = _linked_frame(
        project, user, accounts["sandbox"], f"http://127.0.0.1:{image_host.port}/page.html"
    )
    client.force_login(user)
    response = client.get(f"/frames/{frame.pk}/image")
    assert response.status_code == 502 and response["Content-Type"] == "image/svg+xml"
    assert b"not an image the studio can read" in response.content
    assert b"hello from loopback" not in response.content
