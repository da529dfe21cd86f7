"""The new-clip form: only what the chosen model accepts, refused combinations explained."""

from __future__ import annotations

import base64
import itertools
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict

from tests.test_frames import image_bytes
from videos import providers
from videos.forms import ClipForm
from videos.models import Clip, Frame, ModelPrice, ProviderAccount

pytestmark = pytest.mark.django_db

PROMPTS = {"prompt": "A paper boat drifting down a rainy street"}


@pytest.fixture
def accounts(db):
    return {
        kind: ProviderAccount.objects.create(
            all_projects=True,
            kind=kind,
            label=f"{kind} account",
            base_url="http://127.0.0.1:9/x",
            credential="sk-1",
        )
        for kind in ("apimart", "kie", "kling", "newapi")
    }


@pytest.fixture
def public_url(settings):
    settings.PUBLIC_URL = "https://studio.example.com"


def png(name="frame.png", size=(640, 360), image_format="PNG") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, image_bytes(image_format, size), content_type="image/png")


def fields(account, model, **extra) -> dict:
    spec = providers.model_spec(account.kind, model)
    data = {
        "provider_account": str(account.pk),
        "model": model,
        "duration": str(spec.default_duration),
        "aspect_ratio": spec.aspect_ratios[0],
        "resolution": spec.default_resolution,
        **PROMPTS,
    }
    if "prompt_extend" in spec.prompts:
        data["prompt_extend"] = "The boat slips under a bridge"
    data.update(extra)
    return data


def form_for(account, data, files=None, project=None) -> ClipForm:
    return ClipForm(
        data,
        MultiValueDict(files or {}),
        accounts=ProviderAccount.objects.filter(pk=account.pk),
        project=project,
    )


def media_files(settings) -> list[Path]:
    root = Path(settings.STORAGES["default"]["OPTIONS"]["location"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# --- settings: every offered combination is accepted, anything else refused ---------------


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        (kind, spec.name)
        for kind in ("apimart", "kie", "kling", "newapi")
        for spec in providers.models_for(kind)
    ],
)
def test_every_combination_the_model_offers_is_accepted(accounts, kind, model):
    account = accounts[kind]
    spec = providers.model_spec(kind, model)
    for duration, ratio, resolution in itertools.product(
        spec.durations, spec.aspect_ratios, spec.resolutions
    ):
        form = form_for(
            account,
            fields(
                account,
                model,
                duration=str(duration),
                aspect_ratio=ratio,
                resolution=resolution,
                # A first frame, for the models that only animate an image.
                first_frame_link="https://cdn.example.com/a.png",
            ),
        )
        assert form.is_valid(), (duration, ratio, resolution, form.errors)
        assert form.params()["duration"] == duration


@pytest.mark.parametrize(
    ("kind", "model", "field", "value"),
    [
        ("apimart", "veo3.1-fast-official", "duration", "5"),
        ("apimart", "veo3.1-fast-official", "aspect_ratio", "1:1"),
        ("apimart", "veo3.1-fast-official", "resolution", "std"),
        ("kie", "veo3", "duration", "6"),
        ("kie", "veo3", "resolution", "1080p"),
        ("kling", "kling-v1-6", "duration", "8"),
        ("kling", "kling-v1-6", "resolution", "1080p"),
        ("kling", "kling-v2-1-master", "resolution", "pro"),
        ("newapi", "veo_3_1-fast-remix", "duration", "8"),
        ("newapi", "veo_3_1-fast-remix", "resolution", "1080p"),
        ("newapi", "veo_3_1-fast-hd-remix", "resolution", "720p"),
        ("newapi", "veo_3_1-fast-remix", "aspect_ratio", "1:1"),
    ],
)
def test_a_setting_the_model_does_not_offer_is_refused_next_to_it(
    client, user, project, accounts, kind, model, field, value
):
    client.force_login(user)
    account = accounts[kind]
    response = client.post(
        f"/projects/{project.pk}/clips/new/", fields(account, model, **{field: value})
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="id_{field}-error"' in html and "is not one of the available choices" in html
    assert not Clip.objects.exists()


def test_the_15_s_models_need_their_extension_prompt(client, user, project, accounts):
    client.force_login(user)
    account = accounts["newapi"]
    data = fields(account, "veo_3_1-fast-remix")
    del data["prompt_extend"]
    html = client.post(f"/projects/{project.pk}/clips/new/", data).content.decode()
    assert 'id="id_prompt_extend-error"' in html and "This field is required." in html
    assert not Clip.objects.exists()


# --- which fields each model shows ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "model", "shown", "hidden"),
    [
        (
            "apimart",
            "veo3.1-fast-official",
            ["first_frame", "last_frame"],
            ["references", "prompt_extend", "frame_transport"],
        ),
        ("kie", "veo3", ["first_frame", "last_frame"], ["references", "frame_transport"]),
        ("kie", "veo3_fast", ["first_frame", "last_frame", "references"], ["frame_transport"]),
        ("kling", "kling-v1-6", ["first_frame", "last_frame", "frame_transport"], ["references"]),
        ("kling", "kling-v2-1-master", ["first_frame"], ["last_frame", "references"]),
        (
            "newapi",
            "veo_3_1-fast-remix",
            ["references", "prompt_extend", "frame_transport"],
            ["first_frame", "last_frame"],
        ),
        ("newapi", "veo_3_1-fast-fl-remix", ["first_frame", "last_frame"], ["references"]),
    ],
)
def test_only_the_slots_and_fields_the_model_accepts_are_shown(
    client, user, project, accounts, public_url, kind, model, shown, hidden
):
    client.force_login(user)
    html = client.get(
        f"/projects/{project.pk}/clips/new/",
        {"provider_account": accounts[kind].pk, "model": model},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert html.lstrip().startswith('<div id="clip-fields"')
    for name in shown:
        assert f'name="{name}"' in html, name
    for name in hidden:
        assert f'name="{name}"' not in html, name


@pytest.mark.parametrize(
    ("kind", "model", "default", "offered"),
    [
        ("newapi", "veo_3_1-fast-remix", "file", ["file", "url", "data_uri"]),
        ("kling", "kling-v1-6", "base64", ["url", "base64"]),
    ],
)
def test_send_images_as_offers_each_way_with_the_best_preselected(
    client, user, project, accounts, public_url, kind, model, default, offered
):
    client.force_login(user)
    html = client.get(
        f"/projects/{project.pk}/clips/new/",
        {"provider_account": accounts[kind].pk, "model": model},
    ).content.decode()
    assert ">Send images as</label>" in html
    assert f'<option value="{default}" selected>' in html
    for transport in offered:
        assert f'<option value="{transport}"' in html


def test_without_a_public_address_kling_sends_base64_and_asks_nothing(
    client, user, project, accounts, settings
):
    settings.PUBLIC_URL = ""
    client.force_login(user)
    account = accounts["kling"]
    html = client.get(
        f"/projects/{project.pk}/clips/new/", {"provider_account": account.pk}
    ).content.decode()
    assert "Send images as" not in html
    form = form_for(account, fields(account, "kling-v1-6"), {"first_frame": [png()]})
    assert form.is_valid(), form.errors
    assert form.params()["frame_transport"] == "base64"


def test_the_chosen_transport_is_saved_with_the_clip(client, user, project, accounts, public_url):
    client.force_login(user)
    account = accounts["newapi"]
    data = fields(account, "veo_3_1-fast-remix", frame_transport="data_uri")
    data["references"] = [png("a.png"), png("b.png")]
    response = client.post(f"/projects/{project.pk}/clips/new/", data)
    clip = Clip.objects.get()
    assert response["Location"] == f"/clips/{clip.pk}/"
    assert clip.params["frame_transport"] == "data_uri"
    assert list(clip.frames.order_by("position").values_list("role", "position")) == [
        ("reference", 0),
        ("reference", 1),
    ]


# --- frames: accepted and refused combinations, per provider --------------------------------


@pytest.mark.parametrize(
    ("kind", "model", "given"),
    [
        ("apimart", "veo3.1-fast-official", {"first_frame": 1}),
        ("apimart", "veo3.1-quality-official", {"first_frame": 1, "last_frame": 1}),
        ("kie", "veo3", {"first_frame": 1, "last_frame": 1}),
        ("kie", "veo3_fast", {"references": 3}),
        ("kling", "kling-v1", {"first_frame": 1, "last_frame": 1}),
        ("kling", "kling-v1-5", {"first_frame": 1}),
        ("kling", "kling-v2-1-master", {"first_frame": 1}),
        ("newapi", "veo_3_1-fast-fl-remix", {"first_frame": 1}),
        ("newapi", "veo_3_1-fast-fl-hd-remix", {"first_frame": 1, "last_frame": 1}),
        ("newapi", "veo_3_1-remix", {"references": 3}),
        ("newapi", "veo_3_1-hd-remix", {}),
    ],
)
def test_frames_the_model_accepts_are_stored_with_the_clip(
    client, user, project, accounts, public_url, kind, model, given
):
    client.force_login(user)
    data = fields(accounts[kind], model)
    for name, count in given.items():
        data[name] = [png(f"{name}-{i}.png") for i in range(count)] if count > 1 else png()
    response = client.post(f"/projects/{project.pk}/clips/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    clip = Clip.objects.get()
    roles = sorted(clip.frames.values_list("role", flat=True))
    expected = sorted(
        role
        for name, count in given.items()
        for role in [{"first_frame": "first", "last_frame": "last"}.get(name, "reference")] * count
    )
    assert roles == expected
    for frame in clip.frames.all():
        assert frame.image.read().startswith(b"\x89PNG") and (frame.width, frame.height) == (
            640,
            360,
        )


@pytest.mark.parametrize(
    ("kind", "model", "given", "field", "message"),
    [
        (
            "apimart",
            "veo3.1-fast-official",
            {"last_frame": 1},
            "last_frame",
            "A last frame needs a first frame too",
        ),
        ("kie", "veo3", {"last_frame": 1}, "last_frame", "needs a first frame"),
        ("kie", "veo3_fast", {"references": 4}, "references", "up to 3 reference images"),
        (
            "kie",
            "veo3_fast",
            {"first_frame": 1, "references": 1},
            "references",
            "either first/last frames or reference images, not both",
        ),
        ("kling", "kling-v1-6", {"last_frame": 1}, "last_frame", "needs a first frame"),
        ("kling", "kling-v1-5", {}, "first_frame", "animates an image: add a first frame"),
        ("newapi", "veo_3_1-fast-fl-remix", {}, "first_frame", "add a first frame"),
        (
            "newapi",
            "veo_3_1-fast-fl-remix",
            {"last_frame": 1},
            "first_frame",
            "add a first frame",
        ),
        ("newapi", "veo_3_1-fast-remix", {"references": 4}, "references", "up to 3"),
    ],
)
def test_frame_combinations_the_model_refuses_are_explained_and_nothing_is_saved(
    client, user, project, accounts, public_url, settings, kind, model, given, field, message
):
    client.force_login(user)
    data = fields(accounts[kind], model)
    for name, count in given.items():
        data[name] = [png(f"{name}-{i}.png") for i in range(count)] if count > 1 else png()
    html = client.post(f"/projects/{project.pk}/clips/new/", data).content.decode()
    assert f'id="id_{field}-error"' in html
    assert message in html
    assert not Clip.objects.exists() and not Frame.objects.exists()
    assert media_files(settings) == []


@pytest.mark.parametrize(
    ("kind", "model", "upload", "message"),
    [
        ("apimart", "veo3.1-fast-official", ("a.gif", "GIF", (64, 64)), "GIF images are not"),
        ("kling", "kling-v1-6", ("small.png", "PNG", (400, 200)), "at least 300 px"),
        ("kling", "kling-v1-6", ("a.webp", "WEBP", (640, 360)), "JPEG or PNG images only"),
        ("newapi", "veo_3_1-fast-fl-remix", ("a.gif", "GIF", (64, 64)), "GIF images are not"),
    ],
)
def test_a_bad_image_gets_a_message_next_to_its_slot_and_nothing_is_saved(
    client, user, project, accounts, public_url, settings, kind, model, upload, message
):
    client.force_login(user)
    name, image_format, size = upload
    data = fields(accounts[kind], model)
    data["first_frame"] = png(name, size, image_format)
    html = client.post(f"/projects/{project.pk}/clips/new/", data).content.decode()
    assert 'id="id_first_frame-error"' in html and message in html
    assert not Clip.objects.exists() and media_files(settings) == []


def test_a_good_first_frame_and_a_bad_last_frame_save_nothing(
    client, user, project, accounts, public_url, settings
):
    client.force_login(user)
    data = fields(accounts["kling"], "kling-v1-6")
    data["first_frame"] = png("first.png")
    data["last_frame"] = SimpleUploadedFile("last.png", b"not an image at all", "image/png")
    html = client.post(f"/projects/{project.pk}/clips/new/", data).content.decode()
    assert 'id="id_last_frame-error"' in html and "not an image the studio can read" in html
    assert not Clip.objects.exists() and media_files(settings) == []


def test_a_file_and_a_link_in_one_slot_is_refused(client, user, project, accounts, public_url):
    client.force_login(user)
    data = fields(accounts["apimart"], "veo3.1-fast-official")
    data["first_frame"] = png()
    data["first_frame_link"] = "https://cdn.example.com/a.png"
    html = client.post(f"/projects/{project.pk}/clips/new/", data).content.decode()
    assert 'id="id_first_frame_link-error"' in html and "not both" in html
    assert not Clip.objects.exists()


def test_a_pasted_link_is_stored_as_a_link(client, user, project, accounts):
    client.force_login(user)
    data = fields(accounts["apimart"], "veo3.1-fast-official")
    data["first_frame_link"] = "https://cdn.example.com/opening.jpg"
    client.post(f"/projects/{project.pk}/clips/new/", data)
    frame = Frame.objects.get()
    assert frame.source_url == "https://cdn.example.com/opening.jpg" and not frame.image


def test_a_pasted_data_uri_is_stored_as_an_image(client, user, project, accounts, public_url):
    client.force_login(user)
    data = fields(accounts["kie"], "veo3")
    encoded = base64.b64encode(image_bytes("JPEG", (800, 450))).decode()
    data["first_frame_link"] = f"data:image/jpeg;base64,{encoded}"
    client.post(f"/projects/{project.pk}/clips/new/", data)
    frame = Frame.objects.get()
    assert not frame.source_url and frame.image.name.endswith(".jpg")
    assert (frame.content_type, frame.width, frame.height) == ("image/jpeg", 800, 450)


def test_link_only_providers_refuse_uploads_without_a_public_address(
    client, user, project, accounts, settings
):
    settings.PUBLIC_URL = ""
    client.force_login(user)
    data = fields(accounts["apimart"], "veo3.1-fast-official")
    data["first_frame"] = png()
    html = client.post(f"/projects/{project.pk}/clips/new/", data).content.decode()
    assert 'id="id_first_frame-error"' in html and "Paste a public image link instead" in html
    assert not Clip.objects.exists()


def test_an_oversized_upload_is_refused_through_the_form(
    client, user, project, accounts, public_url, settings
):
    client.force_login(user)
    data = fields(accounts["newapi"], "veo_3_1-fast-fl-remix")
    data["first_frame"] = SimpleUploadedFile(
        "big.png", image_bytes("PNG", (2000, 1800), compress_level=0), "image/png"
    )
    html = client.post(f"/projects/{project.pk}/clips/new/", data).content.decode()
    assert 'id="id_first_frame-error"' in html and "the limit is 10 MB" in html
    assert not Clip.objects.exists() and media_files(settings) == []


# --- the estimate -----------------------------------------------------------------------------


def test_the_estimate_comes_from_the_price_table_and_is_saved(client, user, project, accounts):
    ModelPrice.objects.create(
        kind="apimart", model="veo3.1-fast-official", per_clip="0.10", per_second="0.15"
    )
    client.force_login(user)
    account = accounts["apimart"]
    html = client.get(
        f"/projects/{project.pk}/clips/new/",
        {"provider_account": account.pk, "model": "veo3.1-fast-official"},
    ).content.decode()
    assert "Estimated cost: <strong>$1.30</strong>" in html  # 0.10 + 8 s × 0.15
    fragment = client.get(
        f"/projects/{project.pk}/clips/new/",
        {"provider_account": account.pk, "model": "veo3.1-fast-official", "duration": "4"},
        headers={"HX-Request": "true", "HX-Target": "clip-estimate"},
    ).content.decode()
    assert fragment.strip().startswith('<div id="clip-estimate"')
    assert "$0.70" in fragment
    client.post(
        f"/projects/{project.pk}/clips/new/",
        fields(account, "veo3.1-fast-official", duration="6"),
    )
    assert Clip.objects.get().estimated_cost == Decimal("1.0000")


def test_a_model_without_a_price_says_so(client, user, project, accounts):
    client.force_login(user)
    html = client.get(
        f"/projects/{project.pk}/clips/new/", {"provider_account": accounts["kling"].pk}
    ).content.decode()
    assert "No price set for this model" in html
    client.post(f"/projects/{project.pk}/clips/new/", fields(accounts["kling"], "kling-v1-6"))
    assert Clip.objects.get().estimated_cost is None


def test_without_javascript_update_choices_redraws_the_form_for_the_chosen_model(
    client, user, project, accounts
):
    client.force_login(user)
    data = fields(accounts["newapi"], "veo_3_1-fast-fl-remix", refresh="1")
    response = client.post(f"/projects/{project.pk}/clips/new/", data)
    html = response.content.decode()
    assert response.status_code == 200 and "Update choices" in html
    assert 'name="first_frame"' in html and 'name="prompt_extend"' in html
    assert 'role="alert"' not in html
    assert not Clip.objects.exists()
