""" "Test connection" against the provider twins over real HTTP, in plain words."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from sandbox.models import SandboxTask
from videos import connection
from videos.connection import Outcome
from videos.models import AuditEvent, ProviderAccount

pytestmark = pytest.mark.django_db(transaction=True)


def account(
    live_server, kind: str, key: str, secret: str = "", base_url: str = ""
) -> ProviderAccount:
    return ProviderAccount.objects.create(
        all_projects=True,
        kind=kind,
        label=f"{kind} test",
        base_url=base_url or f"{live_server.url}/sandbox/{kind}",
        credential=key,
        secret_key=secret,
    )


@pytest.mark.parametrize(
    ("kind", "key", "secret", "outcome", "words"),
    [
        ("apimart", "sk-conn-apimart-0001", "", Outcome.WORKS, "Works"),
        ("apimart", "sk-bad-apimart-0002", "", Outcome.BAD_KEY, "Bad key"),
        ("apimart", "sk-empty-apimart-0003", "", Outcome.NO_BALANCE, "No balance"),
        ("newapi", "sk-conn-newapi-0004", "", Outcome.WORKS, "Works"),
        ("newapi", "sk-bad-newapi-0005", "", Outcome.BAD_KEY, "Bad key"),
        ("kie", "sk-conn-kie-0006", "", Outcome.WORKS, "Works"),
        ("kie", "sk-bad-kie-0007", "", Outcome.BAD_KEY, "Bad key"),
        ("kie", "sk-empty-kie-0008", "", Outcome.NO_BALANCE, "No balance"),
        (
            "kling",
            "AKconnkling0009abcdef",
            "sandbox-secret-AKconnkling0009abcdef",
            Outcome.WORKS,
            "Works",
        ),
        (
            "kling",
            "AKconnkling0010abcdef",
            "not-the-right-secret-for-this-key-0010",
            Outcome.BAD_KEY,
            "Bad key",
        ),
        ("kling", "sk-empty-kling-0011", "", Outcome.NO_BALANCE, "No balance"),
    ],
)
def test_each_provider_answers_in_plain_words(live_server, kind, key, secret, outcome, words):
    result = connection.check(account(live_server, kind, key, secret))
    assert result.outcome is outcome
    assert result.message.startswith(words)
    # A cheap call: nothing was generated at the provider.
    assert not SandboxTask.objects.exists()


def test_a_working_account_reports_its_balance(live_server):
    result = connection.check(account(live_server, "kie", "sk-conn-kie-balance-12"))
    assert result.balance == 1000
    assert "1000 left" in result.message


def test_an_address_where_nothing_listens_is_unreachable(live_server):
    dead = account(live_server, "apimart", "sk-conn-dead-0012", base_url="http://127.0.0.1:9/v")
    result = connection.check(dead)
    assert result.outcome is Outcome.UNREACHABLE
    assert "http://127.0.0.1:9/v" in result.message


def test_a_base_url_that_is_not_the_provider_says_so(live_server):
    wrong = account(live_server, "kie", "sk-conn-wrong-0013", base_url=f"{live_server.url}/nope")
    result = connection.check(wrong)
    assert result.outcome is Outcome.ERROR
    assert "does not look like kie.ai" in result.message


def test_the_admin_button_tests_an_account_and_the_log_says_who(client, live_server):
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-1")
    good = account(live_server, "apimart", "sk-conn-admin-0014")
    bad = account(live_server, "kie", "sk-bad-admin-0015")
    client.force_login(staff)
    change_url = reverse("admin:videos_provideraccount_change", args=[good.pk])
    assert "Test connection</button>" in client.get(change_url).content.decode()

    response = client.post(
        reverse("admin:videos_provideraccount_test", args=[good.pk]), follow=True
    )
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == change_url
    assert "Apimart test: Works: the provider accepted the key; 100 left" in html

    response = client.post(
        reverse("admin:videos_provideraccount_changelist"),
        {"action": "test_connection", "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "Kie test: Bad key: the provider refused this key." in html
    outcomes = list(
        AuditEvent.objects.filter(action="key.tested")
        .order_by("pk")
        .values_list("actor__username", "detail")
    )
    assert outcomes == [
        ("root", {"outcome": "works"}),
        ("root", {"outcome": "works"}),
        ("root", {"outcome": "bad_key"}),
    ]
    # GET does nothing: the test is a POST from the button or the action.
    assert (
        client.get(reverse("admin:videos_provideraccount_test", args=[good.pk])).status_code == 405
    )
