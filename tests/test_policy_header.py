"""The Content-Security-Policy header built once is the one django-csp builds, and answers
that change their policy or use a nonce still get django-csp's own."""

from __future__ import annotations

import pytest
from csp.constants import NONCE
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory

from videos.policy_header import CSPMiddleware


def answer(middleware_class, *, prepare=lambda request, response: None):
    request = RequestFactory().get("/projects/")

    def view(request):
        response = HttpResponse("ok")
        prepare(request, response)
        return response

    return middleware_class(view)(request)


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False


def test_a_plain_answer_gets_the_policy_django_csp_builds():
    ours = answer(CSPMiddleware)["Content-Security-Policy"]
    assert ours == answer(DjangoCSPMiddleware)["Content-Security-Policy"]
    assert "default-src 'self'" in ours and "frame-ancestors 'none'" in ours


def test_the_built_policy_follows_the_settings_of_the_process(settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert answer(CSPMiddleware)["Content-Security-Policy"] == "default-src 'none'"


@pytest.mark.parametrize(
    "prepare, expected",
    [
        # A view's own header is kept (the frame preview sets a stricter one).
        (
            lambda request, response: response.__setitem__(
                "Content-Security-Policy", "default-src 'none'"
            ),
            "default-src 'none'",
        ),
        # django-csp's @csp_update sets this on the answer.
        (
            lambda request, response: setattr(
                response, "_csp_update", {"img-src": ["https://images.example"]}
            ),
            "https://images.example",
        ),
    ],
    ids=["own header", "csp_update"],
)
def test_answers_with_their_own_policy_go_through_django_csp(prepare, expected):
    ours = answer(CSPMiddleware, prepare=prepare)["Content-Security-Policy"]
    assert expected in ours
    assert ours == answer(DjangoCSPMiddleware, prepare=prepare)["Content-Security-Policy"]


def test_a_template_that_used_a_nonce_gets_it_in_the_policy(settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"script-src": ["'self'", NONCE]}}
    used = {}

    def use_nonce(request, response):
        used["nonce"] = str(request.csp_nonce)

    policy = answer(CSPMiddleware, prepare=use_nonce)["Content-Security-Policy"]
    assert f"script-src 'self' 'nonce-{used['nonce']}'" in policy
    # Another answer, without a nonce, does not carry the first one's.
    assert "nonce" not in answer(CSPMiddleware)["Content-Security-Policy"]


def test_an_exempt_answer_has_no_policy():
    exempt = answer(
        CSPMiddleware, prepare=lambda request, response: setattr(response, "_csp_exempt", True)
    )
    assert "Content-Security-Policy" not in exempt
