"""Provider keys at rest: encrypted, rotated under new keys, and never rendered or logged."""

from __future__ import annotations

import io
import logging

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.http import HttpResponse
from django.test import override_settings
from django.urls import path

from videos import crypto
from videos.models import AuditEvent, ProviderAccount

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def leaky_page(request):
    # Deliberately wrong: the scanner must notice this page.
    account = ProviderAccount.objects.get()
    return HttpResponse(f"<p>Your key is {account.credential}</p>")


urlpatterns = [path("leaky/", leaky_page)]


def raw_tokens(pk: int) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credential, secret_key FROM videos_provideraccount WHERE id = %s", [pk]
        )
        return cursor.fetchone()


def make_account(**fields) -> ProviderAccount:
    return ProviderAccount.objects.create(
        all_projects=True,
        kind=fields.pop("kind", "kling"),
        label=fields.pop("label", "Kling Singapore"),
        base_url="https://api-singapore.klingai.com",
        credential=fields.pop("credential", "AKrotation0123456789"),
        secret_key=fields.pop("secret_key", "SKrotation-secret-0123456789"),
        **fields,
    )


@pytest.fixture
def fresh_fernet_cache():
    # videos.crypto caches one MultiFernet per key tuple; each test starts and ends clean.
    crypto._fernet.cache_clear()
    yield
    crypto._fernet.cache_clear()


def test_a_saved_key_is_stored_encrypted_and_read_back_as_typed():
    account = make_account()
    credential, secret = raw_tokens(account.pk)
    assert "AKrotation0123456789" not in credential
    assert "SKrotation-secret" not in secret
    assert crypto.decrypt(credential) == "AKrotation0123456789"
    assert ProviderAccount.objects.get().secret_key == "SKrotation-secret-0123456789"
    assert account.credential_last4 == "6789"


def test_rotation_re_encrypts_every_key_so_the_old_fernet_key_can_be_removed(fresh_fernet_cache):
    with override_settings(FERNET_KEYS=[OLD_KEY]):
        account = make_account()
        plain_account = make_account(
            kind="apimart", credential="sk-apimart-rotate-42", secret_key=""
        )
    old_credential, _ = raw_tokens(account.pk)

    # Without rotation, dropping the old key makes the stored keys unreadable.
    with override_settings(FERNET_KEYS=[NEW_KEY]), pytest.raises(InvalidToken):
        ProviderAccount.objects.get(pk=account.pk)

    with override_settings(FERNET_KEYS=[NEW_KEY, OLD_KEY]):
        call_command("rotate_credentials", stdout=io.StringIO())

    credential, secret = raw_tokens(account.pk)
    assert credential != old_credential
    assert Fernet(NEW_KEY.encode()).decrypt(credential.encode()) == b"AKrotation0123456789"
    with pytest.raises(InvalidToken):
        Fernet(OLD_KEY.encode()).decrypt(credential.encode())
    assert raw_tokens(plain_account.pk)[1] == ""  # an empty secret stays empty

    crypto._fernet.cache_clear()
    with override_settings(FERNET_KEYS=[NEW_KEY]):
        reread = ProviderAccount.objects.get(pk=account.pk)
        assert reread.credential == "AKrotation0123456789"
        assert reread.secret_key == "SKrotation-secret-0123456789"
        assert ProviderAccount.objects.get(pk=plain_account.pk).credential == "sk-apimart-rotate-42"
    event = AuditEvent.objects.get(action="keys.reencrypted")
    assert event.detail == {"accounts": 2}


def test_rotation_stops_without_changing_anything_when_a_key_is_missing(fresh_fernet_cache):
    with override_settings(FERNET_KEYS=[OLD_KEY]):
        account = make_account()
    before = raw_tokens(account.pk)
    with override_settings(FERNET_KEYS=[NEW_KEY]), pytest.raises(CommandError) as refused:
        call_command("rotate_credentials")
    assert "cannot be decrypted" in str(refused.value)
    assert raw_tokens(account.pk) == before
    assert not AuditEvent.objects.filter(action="keys.reencrypted").exists()


@pytest.mark.urls(__name__)
def test_the_leak_scanner_flags_a_page_that_renders_a_stored_key(client, no_credential_leaks):
    make_account(credential="sk-deliberately-leaked-0001")
    mark = len(no_credential_leaks.leaks)
    response = client.get("/leaky/")
    assert response.status_code == 200
    found = no_credential_leaks.take_since(mark)
    assert found == ["GET /leaky/ (200) contains the key ending …0001"]


def test_the_leak_scanner_flags_a_log_line_with_a_stored_key(no_credential_leaks):
    account = make_account(credential="sk-deliberately-logged-0002")
    mark = len(no_credential_leaks.leaks)
    logging.getLogger("videos.pipeline").warning("calling with %s", account.credential)
    found = no_credential_leaks.take_since(mark)
    assert found == ["a log record from 'videos.pipeline' contains the key ending …0002"]


def test_the_leak_scanner_also_knows_secret_keys_and_ignores_the_last_four(
    client, no_credential_leaks
):
    make_account(credential="AKscanner-access-0003", secret_key="SKscanner-secret-0004")
    assert {"AKscanner-access-0003", "SKscanner-secret-0004"} <= no_credential_leaks.secrets
    mark = len(no_credential_leaks.leaks)
    no_credential_leaks.scan("Key …0003, secret …0004", "a page showing last fours")
    assert no_credential_leaks.take_since(mark) == []
