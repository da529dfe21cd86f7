"""The rough edges a demanding creator, reviewer and admin hit, each in Chromium."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import expect

from tests.browser import shot
from tests.chain_helpers import done, stored_clip
from tests.conftest import grant_spending
from tests.test_frames import image_bytes
from videos import ledger, services
from videos.models import (
    Clip,
    ClipKind,
    ClipStatus,
    Membership,
    ModelPrice,
    Project,
    ProviderAccount,
    Role,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIXTEEN_NINE = {"duration": 8, "aspect_ratio": "16:9", "resolution": "720p"}


def log_in(tab, live_server, username: str = "casey", password: str = "pw-casey-123") -> None:
    tab.goto(f"{live_server.url}/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(re.compile(r"/projects/$|/admin/"))


def staff_user():
    admin = get_user_model().objects.create_superuser("ada", "ada@example.com", "pw-ada-12345")
    return grant_spending(admin)


def png(name: str, content: bytes) -> dict:
    return {"name": name, "mimeType": "image/png", "buffer": content}


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth + 1"
    )


# --- the clip page -------------------------------------------------------------------------------


def test_a_clip_that_turns_ready_enables_extend_and_fills_its_details_without_a_reload(
    page, live_server, user, project, sandbox_account, drain_queue, settings
):
    settings.SANDBOX_TASK_SECONDS = 3
    kie = sandbox_account("kie")
    clip = services.create_clip(
        project=project,
        user=user,
        account=kie,
        model="veo3_fast",
        prompt="Rain on a tin roof",
        params=SIXTEEN_NINE,
    )
    log_in(page, live_server)
    page.goto(f"{live_server.url}/clips/{clip.pk}/")
    expect(page.locator("#chain-state")).to_contain_text("Only a clip that finished")
    expect(page.locator("#chain-state button", has_text="Extend")).to_be_disabled()
    expect(page.locator("#clip-details")).not_to_contain_text("SHA-256")
    shot(page, "rough-01-clip-generating")

    drain_queue(until=done(clip.pk), timeout=60)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY
    # No reload: the poll that saw Ready swapped the details and the chain's actions too.
    expect(page.locator("#clip-status-text")).to_have_text("Ready", timeout=15_000)
    expect(page.locator("#chain-state a", has_text="Extend")).to_be_visible()
    expect(page.locator("#chain-state a", has_text="Continue from last frame")).to_be_visible()
    expect(page.locator("#clip-details")).to_contain_text(clip.sha256)
    expect(page.locator("#clip-details")).to_contain_text(clip.provider_task_id)
    expect(page.locator("#clip-hd")).to_contain_text("Get 1080p")
    # Labels, not internal ids, as the form showed them.
    expect(page.locator("#clip-details")).to_contain_text("Veo 3.1 Fast")
    expect(page.locator("#clip-details")).to_contain_text("With sound")
    shot(page, "rough-02-clip-ready-without-reload")

    # The 1080p version, beside the 720p one, polled until kie has made it.
    page.get_by_role("button", name="Get 1080p").click()
    hd = Clip.objects.get(parent=clip, kind=ClipKind.UPSCALE)
    expect(page.locator("#clip-hd")).to_contain_text("Queued")
    drain_queue(until=done(hd.pk), timeout=60)
    expect(page.locator("#clip-hd video")).to_be_visible(timeout=15_000)
    expect(page.locator("#clip-hd")).to_contain_text("Download 1080p")
    page.reload()
    expect(page.locator("#chain-state")).to_contain_text("once its 1080p version has been made")
    shot(page, "rough-03-clip-with-1080p")


def test_an_extension_says_what_it_adds_and_how_long_the_whole_video_is(
    page, live_server, user, project, sandbox_account
):
    apimart = sandbox_account("apimart")
    root = stored_clip(project=project, user=user, account=apimart, seconds=8)
    take = stored_clip(
        project=project,
        user=user,
        account=apimart,
        seconds=15,
        parent=root,
        kind=ClipKind.EXTEND,
        new_from=root.duration_seconds,
        params={"duration": 7, "aspect_ratio": "16:9", "resolution": "720p", "raw": False},
    )
    log_in(page, live_server)
    page.goto(f"{live_server.url}/clips/{take.pk}/")
    settings_line = page.locator("#clip-details dt:has-text('Settings') + dd")
    expect(settings_line).to_have_text("New part 7.0 s of a 15.0 s video · 16:9 · 720p")
    shot(page, "rough-04-extension-details")


def test_kling_units_read_the_same_on_the_clip_budget_and_audit_pages(
    page, live_server, user, project, sandbox_account
):
    kling = sandbox_account("kling")
    ModelPrice.objects.create(kind="kling", model="kling-v1-6", per_clip="0", per_second="0.028")
    project.budget = Decimal("10")
    project.save()
    clip = stored_clip(
        project=project,
        user=user,
        account=kling,
        seconds=5,
        model="kling-v1-6",
        params={"duration": 5, "aspect_ratio": "16:9", "resolution": "std"},
        estimated_cost=Decimal("0.14"),
        cost=Decimal("1"),
    )
    ledger.settle(clip=clip, reported_cost=Decimal("1"), failed=False)
    Membership.objects.create(project=project, user=staff_user(), role=Role.ADMIN)
    log_in(page, live_server, "ada", "pw-ada-12345")
    page.goto(f"{live_server.url}/clips/{clip.pk}/")
    expect(page.locator(".status-row")).to_contain_text("1 Kling unit (no USD price per unit")
    page.goto(f"{live_server.url}/audit/")
    expect(page.locator(".units-note")).to_contain_text("reported 1 Kling unit")
    expect(page.get_by_text("$1.00")).to_have_count(0)
    shot(page, "rough-05-audit-units")
    page.goto(f"{live_server.url}/usage/")
    expect(page.locator(".usage-note").first).to_contain_text("provider's own units")
    expect(page.locator(".budget").first).to_contain_text("$0.14")
    shot(page, "rough-06-usage-units")


# --- the new-clip form ---------------------------------------------------------------------------


def test_the_new_clip_form_offers_each_models_options_and_sorts_providers_as_people_read(
    page, live_server, user, project, sandbox_account
):
    sandbox_account("kie")
    apimart = sandbox_account("apimart")
    ProviderAccount.objects.create(
        all_projects=True,
        kind="kling",
        label="Kling (sandbox)",
        base_url=f"{live_server.url}/sandbox/kling",
        credential="sk-kling-browser-1",
    )
    ProviderAccount.objects.create(
        all_projects=True,
        kind="newapi",
        label="Big gateway",
        base_url=f"{live_server.url}/sandbox/newapi",
        credential="sk-newapi-browser-1",
    )
    log_in(page, live_server)
    page.goto(f"{live_server.url}/projects/{project.pk}/clips/new/")
    labels = page.locator("#id_provider_account option").all_inner_texts()
    assert labels == sorted(labels, key=str.lower), labels
    page.get_by_label("Provider").select_option(str(apimart.pk))
    page.wait_for_load_state("networkidle")
    expect(page.get_by_label("Seed")).to_be_visible()
    expect(page.get_by_label("Generate sound")).to_be_visible()
    expect(page.get_by_label("Avoid")).to_be_visible()
    shot(page, "rough-07-apimart-options")
    page.get_by_label("Provider").select_option(label="kie (sandbox)")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_label("Avoid")).to_have_count(0)
    expect(page.get_by_label("Watermark text")).to_be_visible()
    expect(page.get_by_label("Translate to English first")).to_be_checked()
    expect(page.locator("fieldset.options")).to_contain_text("This model makes sound.")
    assert no_horizontal_scroll(page)
    shot(page, "rough-08-kie-options")


def test_the_form_warns_before_generate_when_the_estimate_passes_the_budget_left(
    page, live_server, user, project, sandbox_account
):
    sandbox_account("kie")
    ModelPrice.objects.create(kind="kie", model="veo3", per_clip="1.25", per_second="0")
    project.budget = Decimal("1.00")
    project.save()
    log_in(page, live_server)
    page.goto(f"{live_server.url}/projects/{project.pk}/clips/new/")
    page.get_by_label("Model").select_option(label="Veo 3.1 Quality")
    warning = page.locator(".budget-warning")
    expect(warning).to_contain_text("more than the $1.00 the project has left")
    expect(page.locator("#clip-estimate")).to_contain_text("$1.00 left of the project's $1.00")
    shot(page, "rough-09-budget-warning")
    page.get_by_label("Model").select_option(label="Veo 3.1 Fast")
    expect(warning).to_contain_text("this model has no price")


def test_reference_captions_keep_the_part_of_the_name_that_differs(
    page, live_server, user, project, sandbox_account
):
    sandbox_account("kie")
    log_in(page, live_server)
    page.goto(f"{live_server.url}/projects/{project.pk}/clips/new/")
    page.get_by_label("Model").select_option(label="Veo 3.1 Fast")
    names = ["reference-shot-left.png", "reference-shot-right.png", "reference-shot-top.png"]
    page.set_input_files(
        "#id_references",
        files=[
            png(name, image_bytes("PNG", (400, 300), (40 * n, 90, 200)))
            for n, name in enumerate(names)
        ],
    )
    captions = page.locator("#slot-reference .preview-name").all_inner_texts()
    assert len(set(captions)) == 3, captions
    assert all(caption.endswith(".png") for caption in captions), captions
    titles = page.locator("#slot-reference .preview-name").evaluate_all(
        "nodes => nodes.map(n => n.title)"
    )
    assert titles == names
    shot(page, "rough-10-reference-captions")


def test_a_pasted_data_uri_shows_a_preview_and_a_refused_file_says_why(
    page, live_server, user, project, sandbox_account, settings
):
    import base64

    settings.PUBLIC_URL = live_server.url
    sandbox_account("apimart")
    log_in(page, live_server)
    page.goto(f"{live_server.url}/projects/{project.pk}/clips/new/")
    uri = (
        "data:image/png;base64,"
        + base64.b64encode(image_bytes("PNG", (640, 360), (20, 160, 90))).decode()
    )
    link = page.locator("#id_first_frame_link")
    link.fill(uri)
    chip = page.locator("#slot-first .link-chip")
    expect(chip).to_contain_text("Pasted PNG image")
    expect(link).to_be_hidden()  # no wall of Base64
    assert page.evaluate("document.querySelector('#slot-first .link-chip img').naturalWidth") == 640
    # A file the slot cannot take is said so, and never left as a broken picture.
    page.set_input_files(
        "#id_last_frame",
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}],
    )
    refused = page.locator("#slot-last .preview.refused")
    expect(refused).to_contain_text("notes.txt: not a JPEG, PNG or WebP image. Not added.")
    assert page.evaluate("document.querySelector('#id_last_frame').files.length") == 0
    expect(page.locator("#slot-last .preview img")).to_have_count(0)
    shot(page, "rough-11-data-uri-and-refused-file")
    # "Change" opens the box again, empty.
    chip.get_by_role("button", name="Change").click()
    expect(link).to_be_visible()
    expect(link).to_have_value("")


def test_a_newcomer_sees_estimates_at_once_on_the_demo(page, live_server, settings):
    call_command("seed_demo", base_url=live_server.url)
    password = (settings.DATA_DIR / "demo-login.txt").read_text().strip()
    project = Project.objects.get(name="Demo project")
    assert ModelPrice.objects.count() >= 16
    log_in(page, live_server, "admin", password)
    page.goto(f"{live_server.url}/projects/{project.pk}/clips/new/")
    page.get_by_label("Provider").select_option(label="apimart (sandbox)")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#clip-estimate")).to_contain_text("Estimated cost: $0.80")
    page.get_by_label("Provider").select_option(label="kie.ai (sandbox)")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#clip-estimate")).to_contain_text("Estimated cost: $")
    shot(page, "rough-12-demo-estimate")


# --- error pages ---------------------------------------------------------------------------------


def test_a_reviewer_on_the_new_clip_url_is_told_why_and_where_to_go(
    page, live_server, user, project
):
    rita = get_user_model().objects.create_user("rita", password="pw-rita-123")
    Membership.objects.create(project=project, user=rita, role=Role.REVIEWER)
    log_in(page, live_server, "rita", "pw-rita-123")
    response = page.goto(f"{live_server.url}/projects/{project.pk}/clips/new/")
    assert response.status == 403
    expect(page.locator(".error-page")).to_contain_text("You review this project")
    expect(page.locator(".error-page")).to_contain_text("A project admin can make you a creator")
    expect(page.get_by_role("link", name="Your projects")).to_be_visible()
    expect(page.get_by_role("link", name="Back to the project")).to_have_attribute(
        "href", f"/projects/{project.pk}/"
    )
    expect(page.locator(".topbar")).to_be_visible()  # the studio's own layout
    shot(page, "rough-13-403")
    response = page.goto(f"{live_server.url}/clips/987654/")
    assert response.status == 404
    expect(page.locator(".error-page")).to_contain_text("not a member of")
    shot(page, "rough-14-404")


def test_a_server_error_shows_the_studios_500_page(page, live_server, settings):
    settings.ROOT_URLCONF = "tests.broken_urls"
    response = page.goto(f"{live_server.url}/boom/")
    assert response.status == 500
    expect(page.locator(".error-page")).to_contain_text("Something went wrong on our side")
    expect(page.locator(".topbar")).to_be_visible()
    shot(page, "rough-15-500")


# --- the admin -----------------------------------------------------------------------------------


def test_the_admin_is_clipchains_and_keeps_a_refused_key_honest(page, live_server, settings):
    staff_user()
    log_in(page, live_server, "ada", "pw-ada-12345")
    page.goto(f"{live_server.url}/admin/")
    expect(page).to_have_title(re.compile("Clipchain admin"))
    expect(page.locator("#site-name")).to_have_text("Clipchain admin")
    expect(page.get_by_text("Django administration")).to_have_count(0)

    page.goto(f"{live_server.url}/admin/videos/provideraccount/add/")
    help_texts = page.locator(".form-row.field-credential .help, .field-credential .help")
    expect(help_texts.first).not_to_contain_text("leave empty to keep")
    page.get_by_label("Kind").select_option("kie")
    page.get_by_label("Label").fill("kie production")
    page.get_by_label("Base URL").fill("not a url")
    page.locator("#id_credential").fill("sk-kie-typed-0001")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".field-credential .errorlist")).to_contain_text("type it again")
    expect(page.locator("#id_credential")).to_have_value("")
    assert not ProviderAccount.objects.exists()
    shot(page, "rough-16-admin-refused-save")


def test_the_provider_account_list_fits_1280_px(page, live_server):
    staff_user()
    for n in range(3):
        ProviderAccount.objects.create(
            kind="newapi",
            label=f"Gateway {n} with a rather long label",
            base_url=f"https://gateway-{n}.reseller.example.com/api/openai/compatible/v1/proxy",
            credential=f"sk-gateway-long-{n:04d}",
            all_projects=True,
        )
    log_in(page, live_server, "ada", "pw-ada-12345")
    page.goto(f"{live_server.url}/admin/videos/provideraccount/")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    shot(page, "rough-17-admin-accounts-1280")
    assert no_horizontal_scroll(page)
    # Every column is on screen: the table is not cut off inside its box either.
    assert page.evaluate(
        "(() => { const t = document.querySelector('#result_list');"
        " return t.getBoundingClientRect().right <="
        " document.querySelector('#changelist-filter').getBoundingClientRect().left; })()"
    )
    expect(page.locator("#result_list th").filter(has_text="Offered to")).to_be_visible()
    cell = page.locator(".url-cell").first
    assert cell.get_attribute("title").startswith("https://gateway-")


def test_a_price_is_set_for_a_model_picked_from_the_known_list(page, live_server):
    staff_user()
    log_in(page, live_server, "ada", "pw-ada-12345")
    page.goto(f"{live_server.url}/admin/videos/modelprice/add/")
    model = page.get_by_label("Model")
    options = model.locator("option").all_inner_texts()
    assert "Veo 3.1 Fast (veo3_fast)" in options and "Kling 1.6 (kling-v1-6)" in options
    model.select_option("kie:veo3_fast")
    page.get_by_label("Per clip").fill("0.30")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#result_list")).to_contain_text("Veo 3.1 Fast (veo3_fast)")
    price = ModelPrice.objects.get()
    assert (price.kind, price.model, price.per_clip) == ("kie", "veo3_fast", Decimal("0.30"))
    shot(page, "rough-18-admin-price")


def test_the_retry_of_a_failed_newapi_extension_is_offered_on_the_clip(
    page, live_server, user, project, sandbox_account
):
    newapi = sandbox_account("newapi")
    clip = stored_clip(
        project=project,
        user=user,
        account=newapi,
        seconds=8,
        model="veo_3_1-fast-remix",
        status=ClipStatus.PARTIAL,
        error_code="extend_failed",
        error_message="The provider was busy. You can retry the extension, or continue from "
        "the 8 s clip.",
        params={
            "duration": 15,
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "prompt_extend": "The camera pulls back",
            "remix_id": "video_0123",
            "partial": True,
        },
    )
    log_in(page, live_server)
    page.goto(f"{live_server.url}/clips/{clip.pk}/")
    expect(page.get_by_role("button", name="Retry the extension")).to_be_visible()
    expect(page.get_by_label("What happens in the extension")).to_have_value(
        "The camera pulls back"
    )
    expect(page.locator("#chain-state a", has_text="Continue from last frame")).to_be_visible()
    shot(page, "rough-19-retry-extension")
