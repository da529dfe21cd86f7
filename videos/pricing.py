"""What a clip is expected to cost, from the admin's price table, and what it did cost."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from videos.models import Clip, ModelPrice

CENTS = Decimal("0.01")
# The unit each provider reports its cost in (TaskState.cost); apimart and the NewAPI
# gateway report none.
PROVIDER_UNITS = {"kie": "credits", "kling": "units"}


def estimate_cost(kind: str, model: str, seconds: float | int | None) -> Decimal | None:
    """USD for one clip of ``seconds`` from the price table; None when the model has no row."""
    price = ModelPrice.objects.filter(kind=kind, model=model).first()
    if price is None:
        return None
    total = price.per_clip + price.per_second * Decimal(str(seconds or 0))
    return total.quantize(Decimal("0.0001"))


def estimate_for(kind: str, model: str, params: dict) -> Decimal | None:
    """USD for one submission with these params: a request for several samples (apimart's
    ``sample_count``) is paid for each video it returns."""
    one = estimate_cost(kind, model, params.get("duration"))
    if one is None:
        return None
    try:
        samples = max(1, int(params.get("sample_count") or 1))
    except (TypeError, ValueError):
        samples = 1
    return one * samples


@dataclass(frozen=True)
class Cost:
    amount: Decimal
    unit: str  # "USD" or the provider's own unit

    def __str__(self) -> str:
        if self.unit == "USD":
            return f"${self.amount.quantize(CENTS)}"
        return f"{self.amount.normalize():f} {self.unit}"


def actual_cost(clip: Clip) -> Cost | None:
    """The provider's reported cost: in USD when the account says what a unit costs."""
    if clip.cost is None:
        return None
    unit_price = clip.provider_account.unit_price
    if unit_price is not None:
        return Cost(clip.cost * unit_price, "USD")
    return Cost(clip.cost, PROVIDER_UNITS.get(clip.provider_account.kind, "units"))
