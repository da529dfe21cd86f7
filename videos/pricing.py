"""What a clip is expected to cost, from the admin's price table, and what it did cost."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from videos.models import Clip, ModelPrice

CENTS = Decimal("0.01")
# The unit each provider reports its cost in (TaskState.cost), one and many; apimart and the
# NewAPI gateway report none. A reported unit is never taken for a dollar: without the
# account's unit price, its USD value is unknown and the estimate stands in.
PROVIDER_UNITS = {"kie": ("kie credit", "kie credits"), "kling": ("Kling unit", "Kling units")}


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


def reports_units(kind: str) -> bool:
    """The provider reports its cost in its own units (kie credits, Kling units)."""
    return kind in PROVIDER_UNITS


def units_text(kind: str, amount: Decimal) -> str:
    """2 -> "2 Kling units"; 1 -> "1 Kling unit"."""
    one, many = PROVIDER_UNITS.get(kind, ("unit", "units"))
    number = amount.normalize()
    return f"{number:f} {one if number == 1 else many}"


@dataclass(frozen=True)
class Cost:
    amount: Decimal
    unit: str  # "USD", or the provider's kind when its unit has no USD price
    # Set when the unit has no price: the USD estimate that stands in for it.
    estimate: Decimal | None = None

    @property
    def is_usd(self) -> bool:
        return self.unit == "USD"

    def __str__(self) -> str:
        if self.is_usd:
            return f"${self.amount.quantize(CENTS)}"
        stands_in = (
            f"; the ${self.estimate.quantize(CENTS)} estimate stands in"
            if self.estimate is not None
            else ""
        )
        return f"{units_text(self.unit, self.amount)} (no USD price per unit is set{stands_in})"


def actual_cost(clip: Clip) -> Cost | None:
    """The provider's reported cost: in USD when the account says what a unit costs."""
    if clip.cost is None:
        return None
    kind = clip.provider_account.kind
    unit_price = clip.provider_account.unit_price
    if not reports_units(kind):
        return Cost(clip.cost, "USD")
    if unit_price is not None:
        return Cost(clip.cost * unit_price, "USD")
    return Cost(clip.cost, kind, estimate=clip.estimated_cost)


def unpriced_units_note(*, kind: str, cost: Decimal | None, unit_price: Decimal | None) -> str:
    """What a ledger line says when the provider's reported units have no USD price."""
    if cost is None or unit_price is not None or not reports_units(kind):
        return ""
    return f"reported {units_text(kind, cost)}; no USD price per unit is set"
