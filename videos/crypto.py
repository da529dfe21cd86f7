"""Encryption at rest for provider credentials (Fernet, keys from FERNET_KEYS)."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FERNET_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise InvalidToken(
            "A stored credential cannot be decrypted with any key in FERNET_KEYS."
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key."""
    return fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column holding Fernet tokens; Python code sees plaintext.

    The plaintext never reaches the database, fixtures or ``repr``: only this field's
    ``to_python``/``get_prep_value`` cross the boundary.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
