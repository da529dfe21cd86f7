"""A provider that echoes the key in its error never gets it shown, stored or logged."""

from __future__ import annotations

import httpx
import pytest

from videos import pipeline
from videos.models import Clip, ClipStatus, Role
from videos.pipeline import tracker as tracking
from videos.redact import redact

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-sandbox-test-key-0001"  # the sandbox_apimart fixture's key


def echoing(status: int):
    """A provider that quotes the request's Authorization header back in its error."""

    def answer(request: httpx.Request) -> httpx.Response:
        said = f"Invalid token: {request.headers['Authorization']} (key {KEY})"
        return httpx.Response(status, json={"error": {"code": status, "message": said}})

    return httpx.MockTransport(answer)


@pytest.fixture
def clip(project, user, sandbox_apimart):
    return Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=sandbox_apimart,
        model="veo3.1-fast-official",
        prompt="A kite",
        params={"duration": 4, "aspect_ratio": "16:9", "resolution": "720p"},
    )


def test_redact_removes_stored_keys_and_anything_token_shaped():
    text = "bad key sk-abcdefghijklmnop; Bearer eyJhbGciOi.eyJpc3MiOiJ4.sig and bearer zzzzzzzzzz"
    clean = redact(text, ("sk-abcdefghijklmnop",))
    assert "sk-abcdefghijklmnop" not in clean and "eyJhbGciOi" not in clean
    assert "zzzzzzzzzz" not in clean
    assert "[key …mnop]" in clean


def test_a_refusal_that_echoes_the_key_is_saved_and_shown_without_it(
    client, user, project, clip, monkeypatch
):
    real = pipeline.submit.client_for_account

    def with_echo(account, **kwargs):
        return real(account, http=httpx.Client(base_url=account.base_url, transport=echoing(401)))

    monkeypatch.setattr(pipeline.submit, "client_for_account", with_echo)
    pipeline.submit_clip(clip_id=clip.pk)

    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED
    assert "Invalid token" in clip.provider_message
    assert KEY not in clip.provider_message and KEY not in clip.error_message
    # A reviewer sees the provider's words without the key (the suite's leak scanner also
    # fails this test if the key reaches any page or log line).
    reviewer = user.__class__.objects.create_user("rev", "rev@example.com")
    project.memberships.create(user=reviewer, role=Role.REVIEWER)
    client.force_login(reviewer)
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "Invalid token" in page and KEY not in page


def test_a_status_check_that_echoes_the_key_is_logged_without_it(clip, monkeypatch, caplog):
    pipeline.submit_clip(clip_id=clip.pk)
    tracker = tracking.Tracker(threads=1)
    monkeypatch.setattr(
        tracker,
        "http_for",
        lambda account: httpx.Client(base_url=account.base_url, transport=echoing(500)),
    )
    Clip.objects.filter(pk=clip.pk).update(next_poll_at=None)
    try:
        tracker.run_once()
    finally:
        tracker.close()
    assert "status check failed" in caplog.text
    assert KEY not in caplog.text
    assert Clip.objects.get(pk=clip.pk).poll_failures == 1
