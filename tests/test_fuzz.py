"""Whatever a browser, a script or a typo sends, the studio answers below 500.

Hypothesis throws values at every form and query string a member can reach: the project
page's filters and search, the new-clip form (GET refreshes and POSTs), comments,
decisions, the budget, members and the usage period. A 500 (or an exception out of a view)
fails the test with the smallest input that caused it.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videos.models import Clip, Frame, Membership, ProviderAccount, Role

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BIG = [
    str(2**63 - 1),
    str(2**63),
    str(2**64),
    "9" * 40,
    "-1",
    "0",
    "1e309",
    "NaN",
    "inf",
    "-0",
    "0x10",
    "１２",  # full-width digits: isdigit() says yes, int() agrees, the database must too
    "٣",
    "²",
]
# Every kind of text a field may get, weighted towards numbers (ids, pages, money, times).
value = st.one_of(
    st.sampled_from(BIG),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
)
# Links are drawn from a fixed list: random host names would each cost a DNS lookup.
link = st.sampled_from(
    [
        "",
        "http://127.0.0.1/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/x.png",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_x",
        "https://",
        "http://a@b@c/x",
        "data:image/png;base64,@@@",
        "data:,",
        "https://" + "a" * 2100 + ".png",
        "http://999.999.999.999/x.png",
    ]
)


def query(**fields: st.SearchStrategy) -> st.SearchStrategy[dict[str, str]]:
    """A dict with any subset of the given fields."""
    return st.fixed_dictionaries({}, optional=fields)


@pytest.fixture
def studio(client, user, project):
    Membership.objects.filter(project=project, user=user).update(role=Role.ADMIN)
    account = ProviderAccount.objects.create(
        all_projects=True,
        kind="apimart",
        label="apimart",
        base_url="http://127.0.0.1:9/v1",
        credential="sk-fuzz-0001",
    )
    clip = Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model="veo3.1-fast-official",
        prompt="A lighthouse at dusk",
        status="ready",
        duration_seconds=8.0,
    )
    Frame.objects.create(clip=clip, role="first", source_url="https://cdn.example.com/a.png")
    get_user_model().objects.create_user("sam", "sam@example.com", "pw-sam-12345")
    client.force_login(user)
    return {"client": client, "project": project, "clip": clip, "account": account}


def assert_below_500(response) -> None:
    assert response.status_code < 500, response.content[:500]


@FUZZ
@given(
    params=query(
        q=value, status=value, provider=value, creator=value, page=value, sort=value, x=value
    ),
    htmx=st.booleans(),
)
def test_project_page_filters_and_search(studio, params, htmx):
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "clip-grid"} if htmx else {}
    response = studio["client"].get(f"/projects/{studio['project'].pk}/", params, **headers)
    assert_below_500(response)


@FUZZ
@given(
    params=query(
        provider_account=value,
        model=st.one_of(value, st.just("veo3.1-fast-official")),
        duration=value,
        aspect_ratio=value,
        resolution=value,
        frame_transport=value,
        from_clip=value,
        keep_frames=st.lists(value, max_size=3),
        prompt=value,
    ),
    target=st.sampled_from(["", "clip-fields", "clip-estimate"]),
)
def test_the_new_clip_form_opened_or_refreshed_with_any_query(studio, params, target):
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": target} if target else {}
    response = studio["client"].get(
        f"/projects/{studio['project'].pk}/clips/new/", params, **headers
    )
    assert_below_500(response)


@FUZZ
@given(
    data=query(
        provider_account=value,
        model=st.one_of(value, st.just("veo3.1-fast-official")),
        prompt=value,
        negative_prompt=value,
        duration=st.one_of(value, st.just("8")),
        aspect_ratio=st.one_of(value, st.just("16:9")),
        resolution=st.one_of(value, st.just("720p")),
        first_frame_link=link,
        last_frame_link=link,
        reference_links=link,
        frame_transport=value,
        from_clip=value,
        keep_frames=st.lists(value, max_size=3),
        refresh=st.sampled_from(["", "1"]),
    )
)
def test_the_new_clip_form_posted_with_anything(studio, data):
    data.setdefault("provider_account", str(studio["account"].pk))
    response = studio["client"].post(f"/projects/{studio['project'].pk}/clips/new/", data)
    assert_below_500(response)


@FUZZ
@given(
    data=query(body=value, timecode=value, scope=value, reply_to=value),
    decision=query(verdict=value, note=value, scope=value),
)
def test_comments_and_decisions(studio, data, decision):
    clip = studio["clip"].pk
    assert_below_500(studio["client"].post(f"/clips/{clip}/comments/", data))
    assert_below_500(studio["client"].post(f"/clips/{clip}/decisions/", decision))


@FUZZ
@given(
    budget=query(budget=value),
    member=query(who=value, role=value),
    period=query(days=value),
)
def test_budget_members_and_usage(studio, budget, member, period):
    project = studio["project"].pk
    client = studio["client"]
    assert_below_500(client.post(f"/projects/{project}/settings/budget/", budget))
    assert_below_500(client.post(f"/projects/{project}/settings/members/", member))
    assert_below_500(client.get(f"/projects/{project}/usage/", period))


@pytest.mark.parametrize("name", ["from_clip", "keep_frames"])
def test_an_id_above_two_to_the_63_opening_the_new_clip_form_is_a_message(studio, name):
    url = f"/projects/{studio['project'].pk}/clips/new/?{name}={2**64}"
    response = studio["client"].get(url)
    assert response.status_code == 200
    assert 'class="form-error"' in response.content.decode()


def test_an_id_above_two_to_the_63_posted_with_the_new_clip_form_is_a_form_error(studio):
    data = {
        "provider_account": str(studio["account"].pk),
        "model": "veo3.1-fast-official",
        "duration": "8",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "prompt": "A lighthouse at dusk",
        "from_clip": str(2**64),
        "keep_frames": [str(2**64)],
    }
    response = studio["client"].post(f"/projects/{studio['project'].pk}/clips/new/", data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "does not exist; start afresh." in html
    assert Clip.objects.count() == 1
