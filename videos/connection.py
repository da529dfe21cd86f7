""" "Test connection": one cheap authenticated call to an account's provider, in plain words.

Each provider client's ``check_connection()`` makes nothing and costs nothing (a balance or
model-list query) and returns the balance it saw, if the provider reports one. The answer
is one of four outcomes an admin can act on: works, bad key, no balance, unreachable, plus
"error" for anything else, with the provider's own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from videos import audit
from videos.models import ProviderAccount
from videos.pipeline import client_for_account
from videos.providers import ProviderError
from videos.redact import redact

# Kling's body codes (its error-code page): 1000-1004 authentication, 1103 no access;
# 1101 arrears (postpaid) and 1102 resource pack used up or expired (prepaid).
KLING_BAD_KEY = {"1000", "1001", "1002", "1003", "1004", "1103"}
KLING_NO_BALANCE = {"1101", "1102"}


class Outcome(StrEnum):
    WORKS = "works"
    BAD_KEY = "bad_key"
    NO_BALANCE = "no_balance"
    UNREACHABLE = "unreachable"
    ERROR = "error"


@dataclass(frozen=True)
class ConnectionResult:
    outcome: Outcome
    message: str
    balance: Decimal | None = None

    @property
    def works(self) -> bool:
        return self.outcome is Outcome.WORKS


def _redacted(text: str, account: ProviderAccount) -> str:
    # A provider that echoes the key in an error must not put it on an admin page.
    return redact(text, account.secrets())


def _from_error(exc: ProviderError, account: ProviderAccount) -> ConnectionResult:
    said = _redacted(exc.provider_message, account)
    said_suffix = f" (the provider said: {said})" if said else ""
    if exc.code == "no_key":
        return ConnectionResult(Outcome.BAD_KEY, "Bad key: no key is stored for this account.")
    if exc.code in {"unreachable", "no_answer"}:
        return ConnectionResult(
            Outcome.UNREACHABLE,
            f"Unreachable: nothing answered at {account.base_url} in time. Check the base "
            "URL and that the provider is up.",
        )
    if exc.http_status in {401, 403} or exc.code in KLING_BAD_KEY:
        return ConnectionResult(
            Outcome.BAD_KEY,
            "Bad key: the provider refused this key. Type the key again, or make a new one "
            f"in the provider's dashboard{said_suffix}.",
        )
    if exc.http_status == 402 or exc.code in KLING_NO_BALANCE:
        return ConnectionResult(
            Outcome.NO_BALANCE,
            f"No balance: the key works, but the account has run out. Top it up{said_suffix}.",
        )
    if exc.http_status == 404:
        return ConnectionResult(
            Outcome.ERROR,
            f"The base URL answered but does not look like {account.get_kind_display()}: "
            f"check it{said_suffix}.",
        )
    return ConnectionResult(Outcome.ERROR, f"{_redacted(exc.message, account)}{said_suffix}")


def check(account: ProviderAccount) -> ConnectionResult:
    """Ask the provider whether this account works. Never raises for a provider's answer."""
    try:
        balance = client_for_account(account).check_connection()
    except ProviderError as exc:
        return _from_error(exc, account)
    if balance is not None and balance <= 0:
        return ConnectionResult(
            Outcome.NO_BALANCE,
            "No balance: the key works, but the account has nothing left to spend. Top it up.",
            balance=balance,
        )
    if balance is None:
        return ConnectionResult(Outcome.WORKS, "Works: the provider accepted the key.")
    return ConnectionResult(
        Outcome.WORKS,
        f"Works: the provider accepted the key; {balance.normalize():f} left "
        "(in the provider's units).",
        balance=balance,
    )


def check_and_record(*, account: ProviderAccount, actor) -> ConnectionResult:
    """Check an account and record who checked it and what came back."""
    result = check(account)
    audit.record(
        actor=actor,
        action=audit.Action.KEY_TESTED,
        target=audit.account_target(account),
        detail={"outcome": result.outcome.value},
    )
    return result
